"""Celery tasks of the send queue: thin wrappers that call one action each."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="send.deliver", acks_late=True, soft_time_limit=100, time_limit=120, ignore_result=True)
def deliver(outgoing_id: int) -> str:
    """Make one delivery attempt of an outgoing message if it is due (idempotent)."""
    from webmail.compose.actions.outbox import do_deliver

    return do_deliver(outgoing_id)


@shared_task(name="send.due", acks_late=True, soft_time_limit=60, time_limit=90, ignore_result=True)
def deliver_due() -> int:
    """Enqueue every message that is due: send-later, retries, and leases of workers that died."""
    from webmail.compose.actions.outbox import enqueue_due

    return enqueue_due()
