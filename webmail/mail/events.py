"""Publish events to a person's open pages, only after the transaction that caused them commits.

Publishing goes through one long-lived event loop per process (a daemon thread), so the Channels
layer keeps its Redis connection instead of opening one per event, and the action that published
does not wait for Redis: events leave in the order they were sent. Push is best effort by design:
a page that missed something catches up from the cache when its socket reconnects.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from concurrent.futures import Future
from typing import Any

from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger(__name__)
PUBLISH_TIMEOUT = 10  # seconds a publication may take before it is given up (and logged)

_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None
_loop_lock = threading.Lock()


def person_group(user_id: int) -> str:
    """Return the Channels group of one person; chosen on the server, never from client input."""
    return f"person.{int(user_id)}"


def _publisher_loop() -> asyncio.AbstractEventLoop:
    """The process's publishing loop, started on first use (and again after a fork)."""
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid() or not _loop.is_running():
            loop = asyncio.new_event_loop()
            started = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(started.set)
                loop.run_forever()

            threading.Thread(target=run, name="event-publisher", daemon=True).start()
            started.wait(5)
            _loop, _loop_pid = loop, os.getpid()
        return _loop


def _log_failure(future: Future, kind: str, user_id: int) -> None:
    exc = future.exception()
    if exc is not None:
        log.warning("could not publish %s to person %s: %s", kind, user_id, exc)


def send_event(user_id: int, event: dict[str, Any]) -> Future | None:
    """Send EVENT (a dict with a dotted "type", e.g. "mail.new") to USER_ID's pages now.

    Returns the future of the publication (tests may wait on it); never raises.
    """
    layer = get_channel_layer()
    if layer is None:
        return None
    try:
        # Bounded: the channel layer's reads have no timeout (see CHANNEL_LAYERS), and a Redis that
        # stops answering must fail the publication (logged), not keep it waiting.
        future = asyncio.run_coroutine_threadsafe(
            asyncio.wait_for(layer.group_send(person_group(user_id), event), PUBLISH_TIMEOUT),
            _publisher_loop(),
        )
    except Exception:  # A push failure must never break the action that caused it.
        log.warning("could not publish %s to person %s", event.get("type"), user_id, exc_info=True)
        return None
    future.add_done_callback(lambda f: _log_failure(f, str(event.get("type")), user_id))
    return future


def send_event_on_commit(user_id: int, event: dict[str, Any]) -> None:
    """Send EVENT to USER_ID's pages once the current transaction commits."""
    transaction.on_commit(lambda: send_event(user_id, event))
