"""Publish events to a person's open pages, only after the transaction that caused them commits."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)


def person_group(user_id: int) -> str:
    """Return the Channels group of one person; chosen on the server, never from client input."""
    return f"person.{int(user_id)}"


def send_event(user_id: int, event: dict[str, Any]) -> None:
    """Send EVENT (a dict with a dotted "type", e.g. "mail.new") to USER_ID's pages now."""
    layer = get_channel_layer()
    if layer is None:
        return

    def publish() -> None:
        try:
            async_to_sync(layer.group_send)(person_group(user_id), event)
        except Exception:  # A push failure must never break the action that caused it.
            log.warning("could not publish %s to person %s", event.get("type"), user_id, exc_info=True)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        publish()
        return
    # Called from a thread that runs an event loop (async code calling sync code directly):
    # async_to_sync cannot run here, so publish from a helper thread.
    helper = threading.Thread(target=publish, name="publish-event")
    helper.start()
    helper.join(10)


def send_event_on_commit(user_id: int, event: dict[str, Any]) -> None:
    """Send EVENT to USER_ID's pages once the current transaction commits."""
    transaction.on_commit(lambda: send_event(user_id, event))
