"""Request ids for logs and the request metrics."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from webmail.ops import metrics
from webmail.ops.logs import request_id

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Request ids only tell log lines apart: a fast PRNG will do (os.urandom costs a system call).
_ids = random.Random()


class RequestIdMiddleware:
    """Take X-Request-ID from the proxy (when well-formed) or make one; count and time the request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if _SAFE_ID.match(incoming) else f"{_ids.getrandbits(64):016x}"
        token = request_id.set(rid)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
        finally:
            request_id.reset(token)
        match = getattr(request, "resolver_match", None)
        view = match.view_name if match and match.view_name else "unmatched"
        metrics.observe_request(
            request.method or "GET", view, response.status_code, time.perf_counter() - started
        )
        response["X-Request-ID"] = rid
        return response
