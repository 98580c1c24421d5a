"""Decide which accounts to sync when: periodic passes, retries with backoff, syncs on request."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from accounts.models import AccountState, MailAccount


def due_account_ids() -> list[int]:
    """Return accounts to sync now: active ones not synced within the interval, or whose retry is due.

    Accounts whose password was refused wait for the person (a new password or a test) instead.
    """
    now = timezone.now()
    stale = now - timedelta(minutes=settings.WEBMAIL_SYNC_INTERVAL)
    return list(
        MailAccount.objects.exclude(state__in=[AccountState.DISABLED, AccountState.AUTH_FAILED])
        .filter(
            Q(sync__isnull=True)
            | Q(sync__next_attempt_at__isnull=False, sync__next_attempt_at__lte=now)
            | Q(sync__next_attempt_at__isnull=True, sync__finished_at__isnull=True)
            | Q(sync__next_attempt_at__isnull=True, sync__finished_at__lte=stale)
        )
        .values_list("pk", flat=True)
    )


def due_and_unlocked_ids() -> list[int]:
    """Due accounts, less those whose sync is running right now (their Redis lock is held).

    The lock expires WEBMAIL_SYNC_LOCK_TTL seconds after a killed worker stopped renewing it, so
    a dead pass holds its account back for that long, not longer.
    """
    from webmail.mail.locks import lock_key, redis_client

    ids = due_account_ids()
    if not ids:
        return []
    pipe = redis_client().pipeline(transaction=False)
    for account_id in ids:
        pipe.exists(lock_key(account_id))
    return [account_id for account_id, held in zip(ids, pipe.execute(), strict=True) if not held]


def enqueue_due_syncs() -> int:
    """Enqueue a sync task for each due account; return how many."""
    from webmail.mail.tasks import sync_account

    ids = due_and_unlocked_ids()
    for account_id in ids:
        sync_account.delay(account_id)
    return len(ids)


def request_sync(account_id: int, folder_names: list[str] | None = None) -> None:
    """Ask for a sync of one account (or some of its folders) once the current transaction commits."""
    from webmail.mail.tasks import sync_account

    sync_account.delay_on_commit(account_id, folder_names)


def do_sync(account_id: int, folder_names: list[str] | None = None) -> object:
    """Run the right sync for the account's protocol: IMAP sync, or POP3 download."""
    protocol = MailAccount.objects.filter(pk=account_id).values_list("incoming_protocol", flat=True).first()
    if protocol == "pop3":
        from webmail.mail.actions.pop3 import do_fetch_pop3

        return do_fetch_pop3(account_id)
    from webmail.mail.actions.sync import do_sync_account

    return do_sync_account(account_id, folder_names=folder_names)


def do_delete_empty_threads(batch: int = 5000) -> int:
    """Delete conversations whose last message was expunged (their keys go with them); return how many."""
    from webmail.mail.models import Thread

    deleted = 0
    while True:
        ids = list(Thread.objects.filter(messages__isnull=True).values_list("pk", flat=True)[:batch])
        if not ids:
            return deleted
        deleted += Thread.objects.filter(pk__in=ids).delete()[1].get("mail.Thread", 0)
