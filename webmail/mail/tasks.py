"""Celery tasks for the mail cache: thin wrappers that call one action each."""

from __future__ import annotations

from celery import shared_task

from webmail.mail.actions import schedule
from webmail.mail.actions.sync import do_sync_account


@shared_task(name="sync.account", acks_late=True, soft_time_limit=3000, time_limit=3300)
def sync_account(account_id: int, folder_names: list[str] | None = None) -> None:
    """Sync one account (all folders, or the named ones)."""
    do_sync_account(account_id, folder_names=folder_names)


@shared_task(name="sync.due", acks_late=True, soft_time_limit=60, time_limit=90)
def sync_due_accounts() -> None:
    """Enqueue a sync for every account that is due (run by beat every minute)."""
    schedule.enqueue_due_syncs()
