"""App configuration for people and their mail accounts."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """The accounts app."""

    name = "accounts"
    verbose_name = "People and mail accounts"

    def ready(self) -> None:
        from accounts import signals  # noqa: F401  (connects the audit log receivers)
