"""App configuration for compose and send."""

from django.apps import AppConfig


class ComposeConfig(AppConfig):
    """The compose app."""

    name = "webmail.compose"
    label = "compose"
    verbose_name = "Compose and send"
