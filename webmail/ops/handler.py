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
same thread (Django's ThreadSensitiveContext, kept by ASGIHandler.__call__).
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import FileResponse, HttpResponseBase
from django.urls import set_script_prefix


class SyncChainASGIHandler(ASGIHandler):
    """An ASGIHandler whose middleware chain is sync and entered once per request."""

    def __init__(self) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)

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
