"""Sync one mail account now, in the foreground, printing progress."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.models import MailAccount
from webmail.mail.actions.sync import do_sync_account


class Command(BaseCommand):
    help = "Sync one mail account now (by id or email address), printing progress per folder."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("account", help="account id or email address")
        parser.add_argument("--folder", action="append", help="only this folder (repeatable)")

    def handle(self, *args: Any, account: str, folder: list[str] | None, **options: Any) -> None:
        query = (
            MailAccount.objects.filter(pk=int(account))
            if account.isdigit()
            else MailAccount.objects.filter(email__iexact=account)
        )
        found = list(query[:2])
        if len(found) != 1:
            raise CommandError(f"{'no' if not found else 'more than one'} mail account matches {account!r}")
        target = found[0]
        started = time.monotonic()

        def progress(name: str, done: int, total: int) -> None:
            self.stdout.write(f"  {name}: {done}/{total} messages", ending="\r" if done < total else "\n")
            self.stdout.flush()

        self.stdout.write(f"Syncing {target} ...")
        report = do_sync_account(
            target.pk, folder_names=folder, progress=progress if options["verbosity"] else None
        )
        if report.skipped:
            raise CommandError("another sync of this account is running (or the account is disabled or POP3)")
        if report.error:
            raise CommandError(f"sync failed: {report.error}")
        for name, stats in report.per_folder.items():
            if any(stats.values()) or options["verbosity"] > 1:
                self.stdout.write(
                    f"  {name}: {stats['new']} new, {stats['changed']} changed, {stats['expunged']} expunged"
                )
        self.stdout.write(
            self.style.SUCCESS(
                f"Done in {time.monotonic() - started:.2f}s: {report.folders} folders, {report.new} new, "
                f"{report.changed} changed, {report.expunged} expunged."
            )
        )
