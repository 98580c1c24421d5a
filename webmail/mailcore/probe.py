"""Test a mail account's settings by connecting and logging in for real ("Test connection")."""

from __future__ import annotations

import contextlib

from webmail.mailcore import imap, pop3, smtp, transport
from webmail.mailcore.netguard import NetGuard
from webmail.mailcore.types import Endpoint, ProbeResult, TLSConfig


def _how(endpoint: Endpoint, sock: object) -> str:
    if endpoint.security == "none":
        return "without encryption"
    return f"over {transport.SECURITY_LABELS[endpoint.security]} ({transport.tls_detail(sock)})"


def probe_imap(endpoint: Endpoint, *, tls: TLSConfig, guard: NetGuard) -> ProbeResult:
    """Log in over IMAP and return the post-login capabilities; MailError on any failure."""
    client = imap.connect(endpoint, tls=tls, guard=guard)
    try:
        with imap.imap_errors(endpoint, "reading capabilities"):
            caps = tuple(c.decode("ascii", "replace") for c in client.capabilities())
            how = _how(endpoint, client.socket())
            client.logout()
    finally:
        with contextlib.suppress(Exception):
            client.shutdown()
    return ProbeResult(
        ok=True, capabilities=caps, detail=f"Logged in to {endpoint.address} as {endpoint.username} {how}."
    )


def probe_pop3(endpoint: Endpoint, *, tls: TLSConfig, guard: NetGuard) -> ProbeResult:
    """Log in over POP3 and count the messages; MailError on any failure."""
    client = pop3.connect(endpoint, tls=tls, guard=guard)
    try:
        with pop3.pop_errors(endpoint, "reading the mailbox"):
            caps = tuple(" ".join([k, *v]) for k, v in pop3.capa(client).items())
            count, size = client.stat()
            how = _how(endpoint, client.sock)
            client.quit()
    finally:
        with contextlib.suppress(Exception):
            client.close()
    return ProbeResult(
        ok=True,
        capabilities=caps,
        detail=f"Logged in to {endpoint.address} as {endpoint.username} {how}; {count} messages waiting.",
    )


def probe_smtp(
    endpoint: Endpoint, *, tls: TLSConfig, guard: NetGuard, helo: str = smtp.DEFAULT_HELO
) -> ProbeResult:
    """EHLO, STARTTLS when asked, and AUTH when a user name is set; MailError on any failure."""
    client = smtp.connect(endpoint, tls=tls, guard=guard, helo=helo)
    try:
        caps = smtp.capabilities(client)
        how = _how(endpoint, client.sock)
        with smtp.smtp_errors(endpoint, "saying goodbye"):
            client.quit()
    finally:
        with contextlib.suppress(Exception):
            client.close()
    who = f"logged in as {endpoint.username}" if endpoint.username else "connected without logging in"
    return ProbeResult(ok=True, capabilities=caps, detail=f"{endpoint.address}: {who} {how}.")
