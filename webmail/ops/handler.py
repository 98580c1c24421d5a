"""Django's ASGI handler with each request's sync work done in one trip to a thread.

Django's ASGIHandler builds an async middleware chain. With sync middleware (ours, and most of
contrib's) and sync views, one request then crosses between the event loop and its worker thread
five or six times: request_started, the middleware chain, back to the loop for the async core, the
view, and response.close(). The loop is shared with every open WebSocket and every other request,
so each crossing waits its turn, and under load those waits were most of a request's time.

This handler builds the sync chain (as Django's WSGI handler does) and runs request_started, the
chain, the view and, for ordinary responses, response.close() (request_finished: the database
connection goes back to the pool) in one call on the request's thread. The loop only reads the body
and sends the answer. Streaming responses (attachments, exports) are closed after sending, on the
same thread (Django's ThreadSensitiveContext).

Each request's thread is kept for the next one (a single-thread executor handed to the
ThreadSensitiveContext), where Django's handler starts a thread per request and joins it after:
that start and join cost 0.3 ms of CPU per request, measured, and each is a trip through the GIL
while other requests run. A request that ends abnormally (cancelled, or its answer failed to send)
gives its thread up instead, so no later request can wait behind work it left running.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse, HttpResponseBase
from django.urls import set_script_prefix

# Threads kept between requests; ConcurrencyLimit keeps requests (and so threads) below
# WEBMAIL_WEB_CONCURRENCY, this bounds them when that limit is off.
MAX_IDLE_THREADS = 64


class SyncChainASGIHandler(ASGIHandler):
    """An ASGIHandler whose middleware chain is sync and entered once per request."""

    def __init__(self) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        # Request threads between requests (at most as many as requests ever ran at once).
        self.idle_threads: list[ThreadPoolExecutor] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        thread = (
            self.idle_threads.pop()
            if self.idle_threads
            else ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")
        )
        try:
            async with ThreadSensitiveContext(executor=thread):
                await self.handle(scope, receive, send)
        except BaseException:
            thread.shutdown(wait=False)  # finishes what it runs, then ends; no one waits for it
            raise
        if len(self.idle_threads) < MAX_IDLE_THREADS:
            self.idle_threads.append(thread)
        else:
            thread.shutdown(wait=False)

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        try:
            response = await sync_to_async(self.respond, thread_sensitive=True)(scope, body_file)
            try:
                await self.send_response(response, send)
            finally:
                if response.streaming:
                    await sync_to_async(response.close, thread_sensitive=True)()
        finally:
            body_file.close()

    def respond(self, scope: dict[str, Any], body_file: Any) -> HttpResponseBase:
        """Run the request through the middleware and view; close an ordinary response at once."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
            response._handler_class = self.__class__
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
        if not response.streaming:
            response.close()  # its content stays readable for send_response
        return response
