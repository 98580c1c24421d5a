"""App configuration for the mail cache."""

from django.apps import AppConfig


class MailConfig(AppConfig):
    """The mail app."""

    name = "webmail.mail"
    label = "mail"
    verbose_name = "Mail"
