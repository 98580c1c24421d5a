"""The web process runs a bounded number of requests at once and queues the rest."""

from __future__ import annotations

import asyncio

from webmail.ops.concurrency import ConcurrencyLimit


def test_requests_beyond_the_limit_wait_their_turn_and_all_complete(settings):
    settings.WEBMAIL_WEB_CONCURRENCY = 3
    running = 0
    peak = 0

    async def app(scope, receive, send):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        await send({"type": "done"})

    limited = ConcurrencyLimit(app)
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def burst():
        await asyncio.gather(*(limited({"type": "http"}, None, send) for _ in range(20)))
        await limited({"type": "websocket"}, None, send)  # other scopes pass straight through

    # Playwright may leave an event loop on this thread: run ours on a thread of its own.
    import threading

    thread = threading.Thread(target=lambda: asyncio.run(burst()))
    thread.start()
    thread.join(30)
    assert peak == 3
    assert len(sent) == 21
