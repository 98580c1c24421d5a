"""SMTP submission with a hook just before DATA, so the outbox knows when an attempt may have reached the server.

mailcore.smtp.submit has no such hook yet; this wraps its public connect() and its transaction.
Replace with `smtp.submit(..., before_data=...)` once mailcore offers it (see the README section).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable

from webmail.mailcore import smtp
from webmail.mailcore.netguard import NetGuard
from webmail.mailcore.types import Endpoint, SubmitResult, TLSConfig


def submit(
    endpoint: Endpoint,
    *,
    tls: TLSConfig,
    guard: NetGuard,
    mail_from: str,
    rcpts: Iterable[str],
    raw: bytes,
    before_data: Callable[[], None],
    helo: str = smtp.DEFAULT_HELO,
) -> SubmitResult:
    """Like mailcore.smtp.submit; call BEFORE_DATA once every RCPT is answered, before DATA is sent."""
    client = smtp.connect(endpoint, tls=tls, guard=guard, helo=helo)
    original_data = client.data

    def data(msg: bytes) -> tuple[int, bytes]:
        before_data()
        return original_data(msg)

    client.data = data  # type: ignore[method-assign]
    try:
        return smtp._transaction(client, endpoint, mail_from, list(rcpts), raw)  # noqa: SLF001
    finally:
        with contextlib.suppress(Exception):
            client.quit()
        with contextlib.suppress(Exception):
            client.close()
