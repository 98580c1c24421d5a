"""Show the sync state of every mail account (or one), for operators."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone

from accounts.models import MailAccount
from webmail.mail.models import Folder, SyncState


class Command(BaseCommand):
    help = "Show sync state: per account, last success, failures, next retry; with --folders, per folder."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("account", nargs="?", help="account id or email address")
        parser.add_argument("--folders", action="store_true")

    def handle(self, *args: Any, account: str | None, folders: bool, **options: Any) -> None:
        accounts = MailAccount.objects.select_related("user").order_by("pk")
        if account:
            accounts = (
                accounts.filter(pk=int(account))
                if account.isdigit()
                else accounts.filter(email__iexact=account)
            )
        states = {s.pk: s for s in SyncState.objects.filter(account__in=accounts)}
        now = timezone.now()
        self.stdout.write(f"{'id':>5}  {'account':<36} {'state':<20} {'last sync':<12} {'failures':>8}  note")
        for acc in accounts:
            state = states.get(acc.pk)
            last = _ago(now, state.finished_at) if state and state.finished_at else "never"
            note = ""
            if state and state.in_first_sync:
                note = f"first sync {state.progress_done}/{state.progress_total}"
            elif state and state.last_error:
                retry = f", retry in {_ago(state.next_attempt_at, now)}" if state.next_attempt_at else ""
                note = f"{state.last_error[:80]}{retry}"
            self.stdout.write(
                f"{acc.pk:>5}  {str(acc.email)[:36]:<36} {acc.state:<20} {last:<12} {state.failures if state else 0:>8}  {note}"
            )
            if folders:
                for folder in Folder.objects.filter(account=acc).order_by("name"):
                    self.stdout.write(
                        f"{'':>7}{folder.name[:40]:<40} {folder.total_count:>7} msgs {folder.unread_count:>6} unread"
                        f"  uidvalidity={folder.uidvalidity} modseq={folder.highestmodseq}"
                    )


def _ago(later: Any, earlier: Any) -> str:
    seconds = max(0, int((later - earlier).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"
