"""Bound how many HTTP requests one web process runs at once; the others wait their turn.

Under ASGI Django runs each request's sync code in a thread of its own, with its own database
connection: without a bound, a burst of N requests opens N connections until PostgreSQL refuses
("too many clients") and people see errors. With the bound a burst queues for a few milliseconds
instead, and a process never holds more than WEBMAIL_WEB_CONCURRENCY database connections for
requests. Size it with the database in mind: web processes x this < max_connections (minus workers).
"""

from __future__ import annotations

import asyncio
from typing import Any

from django.conf import settings


class ConcurrencyLimit:
    """ASGI middleware: at most settings.WEBMAIL_WEB_CONCURRENCY HTTP requests in flight per process."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.semaphore: asyncio.Semaphore | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        limit = settings.WEBMAIL_WEB_CONCURRENCY
        if scope["type"] != "http" or limit <= 0:
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        if self.semaphore is None or self.loop is not loop:  # one per event loop (tests start several)
            self.semaphore, self.loop = asyncio.Semaphore(limit), loop
        async with self.semaphore:
            await self.app(scope, receive, send)
