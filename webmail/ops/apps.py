"""App configuration for operations commands."""

from django.apps import AppConfig


class OpsConfig(AppConfig):
    """The ops app (no models)."""

    name = "webmail.ops"
    label = "ops"
