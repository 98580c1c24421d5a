"""App configuration for operations commands."""

from django.apps import AppConfig


class OpsConfig(AppConfig):
    """The ops app (no models)."""

    name = "webmail.ops"
    label = "ops"

    def ready(self) -> None:
        from webmail.ops import signals  # noqa: F401  (connects the Celery signal receivers)
