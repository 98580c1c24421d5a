"""Celery tasks for the mail cache: thin wrappers that call one action each."""

from __future__ import annotations

from celery import shared_task

from webmail.mail.actions import schedule


@shared_task(name="sync.account", acks_late=True, soft_time_limit=3000, time_limit=3300)
def sync_account(account_id: int, folder_names: list[str] | None = None) -> None:
    """Sync one account (IMAP: all folders, or the named ones; POP3: download new mail)."""
    schedule.do_sync(account_id, folder_names)


@shared_task(name="sync.due", acks_late=True, soft_time_limit=60, time_limit=90)
def sync_due_accounts() -> None:
    """Enqueue a sync for every account that is due (run by beat every minute)."""
    schedule.enqueue_due_syncs()


@shared_task(
    name="sync.apply_changes",
    bind=True,
    acks_late=True,
    max_retries=20,
    soft_time_limit=600,
    time_limit=660,
)
def apply_changes(self, account_id: int) -> None:  # type: ignore[no-untyped-def]
    """Carry a person's changes (flags, moves, deletes, appends) to the server; retry with backoff."""
    from webmail.mail.actions.changes import do_apply_changes
    from webmail.mailcore.errors import MailError

    try:
        outcome = do_apply_changes(account_id)
    except MailError as exc:
        raise self.retry(exc=exc, countdown=min(600, 5 * 2**self.request.retries))
    if outcome == "busy":  # a sync or another apply holds the account: come back shortly
        raise self.retry(countdown=2, max_retries=200)


@shared_task(name="sync.cleanup", acks_late=True, soft_time_limit=600, time_limit=660)
def cleanup() -> None:
    """Housekeeping run by beat: remove conversations left empty by expunges."""
    schedule.do_delete_empty_threads()
