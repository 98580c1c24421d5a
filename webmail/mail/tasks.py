"""Celery tasks for the mail cache: thin wrappers that call one action each."""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_process_shutdown

from webmail.mail.actions import schedule


@shared_task(name="sync.account", bind=True, acks_late=True, soft_time_limit=3000, time_limit=3300)
def sync_account(self, account_id: int, folder_names: list[str] | None = None) -> None:  # type: ignore[no-untyped-def]
    """Sync one account (IMAP: all folders, or the named ones; POP3: download new mail).

    When another pass holds the account, it was asked to go round again; should that pass be dead,
    the note dies with it, so this task also comes back once the lock may have expired.
    """
    from django.conf import settings

    from webmail.mail.locks import lock_key, redis_client

    report = schedule.do_sync(account_id, folder_names)
    if getattr(report, "skipped", False) and redis_client().exists(lock_key(account_id)):
        if self.request.retries < 3:
            raise self.retry(countdown=settings.WEBMAIL_SYNC_LOCK_TTL, max_retries=3)


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


@shared_task(name="sync.index", bind=True, acks_late=True, soft_time_limit=1500, time_limit=1560)
def index_fulltext(self) -> None:  # type: ignore[no-untyped-def]
    """Index the messages queued for full-text search (after a sync stored them; beat every minute).

    Another indexer at work: come back shortly (mail stored after its last look is then taken;
    beat's next run would take it anyway).
    """
    from webmail.mail.fulltext import run_indexing

    if run_indexing() is None and self.request.retries < 6:
        raise self.retry(countdown=5, max_retries=6)


@worker_process_shutdown.connect
def close_parse_pool(**_kwargs: object) -> None:
    """A prefork child leaves with os._exit (no atexit): stop its parse process here instead."""
    from webmail.mail.actions.store import stop_parse_pool

    stop_parse_pool()
