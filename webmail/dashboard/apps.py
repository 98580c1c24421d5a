"""App configuration of the operator dashboard."""

from django.apps import AppConfig


class DashboardConfig(AppConfig):
    """The dashboard app (no models: limits and invites live in accounts)."""

    name = "webmail.dashboard"
    label = "dashboard"
    verbose_name = "Operator dashboard"
