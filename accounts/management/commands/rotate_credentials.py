"""Re-encrypt every stored mail password with the newest key of WEBMAIL_CREDENTIAL_KEYS."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts import credentials
from accounts.models import MailAccount


class Command(BaseCommand):
    help = "Re-encrypt stored mail passwords with the first (newest) credential key."

    def handle(self, *args: Any, **options: Any) -> None:
        count = 0
        with transaction.atomic():
            for account in MailAccount.objects.select_for_update().only(
                "id", "incoming_password_token", "smtp_password_token"
            ):
                account.incoming_password_token = credentials.rotate(account.incoming_password_token)
                account.smtp_password_token = credentials.rotate(account.smtp_password_token)
                account.save(update_fields=["incoming_password_token", "smtp_password_token"])
                count += 1
        self.stdout.write(f"Re-encrypted the passwords of {count} mail account(s).")
