"""Celery tasks for mail accounts: thin wrappers that call one action."""

from __future__ import annotations

from celery import shared_task

from accounts.actions import do_run_connection_check


@shared_task(name="sync.check_connection", acks_late=True, soft_time_limit=120, time_limit=150)
def run_connection_check(check_id: int) -> None:
    """Carry out one "Test connection" request."""
    do_run_connection_check(check_id)
