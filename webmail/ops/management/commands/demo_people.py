"""Create the demo people alice and bob, with mail accounts on the project's own mail stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Identity, MailAccount

# Web logins, and the mailbox passwords tests/mailstack/seed.py gives the same two people.
PEOPLE = [("alice", "alice-demo", "Alice Liddell", "alice"), ("bob", "bob-demo", "Bob Builder", "bob")]


class Command(BaseCommand):
    help = "Create demo people alice and bob whose mail accounts point at a running test mail stack."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "stack_dir", type=Path, help="state directory of `python -m tests.mailstack start`"
        )

    @transaction.atomic
    def handle(self, *args: Any, stack_dir: Path, **options: Any) -> None:
        try:
            state = json.loads((stack_dir / "stack.json").read_text())
        except (OSError, ValueError) as exc:
            raise CommandError(f"no running mail stack in {stack_dir}: {exc}")
        ports = state["ports"]
        User = get_user_model()
        self.stdout.write("\nDemo people (web login / password):")
        for username, web_password, full_name, mailbox_password in PEOPLE:
            user, _ = User.objects.get_or_create(
                username=username, defaults={"email": f"{username}@example.test"}
            )
            user.set_password(web_password)
            user.save()
            address = f"{username}@example.test"
            account, created = MailAccount.objects.update_or_create(
                user=user,
                email=address,
                defaults=dict(
                    name="Demo mail stack",
                    display_name=full_name,
                    incoming_protocol="imap",
                    incoming_host="localhost",
                    incoming_port=ports["imap"],
                    incoming_security="starttls",
                    incoming_username=address,
                    smtp_host="localhost",
                    smtp_port=ports["submission"],
                    smtp_security="starttls",
                    smtp_username=address,
                ),
            )
            account.set_incoming_password(mailbox_password)
            account.save()
            if created:
                Identity.objects.create(
                    account=account, display_name=full_name, email=address, is_default=True
                )
            self.stdout.write(f"  {username} / {web_password}   (mailbox {address})")
        self.stdout.write("")
