"""Turn a stored mail account into mailcore endpoints, with the operator's TLS and network policy."""

from __future__ import annotations

from django.conf import settings

from accounts.models import MailAccount, Protocol
from webmail.mailcore.errors import MailError
from webmail.mailcore.netguard import NetGuard
from webmail.mailcore.probe import probe_imap, probe_pop3, probe_smtp
from webmail.mailcore.types import Endpoint, TLSConfig


def tls_config() -> TLSConfig:
    """Return the TLS trust settings (system store plus the operator's extra CA file, if any)."""
    return TLSConfig(ca_file=settings.WEBMAIL_EXTRA_CA_FILE)


def net_guard() -> NetGuard:
    """Return the guard that keeps people's accounts off the operator's internal network."""
    return NetGuard(
        allowed_hosts=frozenset(h.lower() for h in settings.WEBMAIL_ALLOWED_MAIL_HOSTS),
        allowed_networks=tuple(settings.WEBMAIL_ALLOWED_MAIL_NETWORKS),
    )


def incoming_endpoint(account: MailAccount) -> Endpoint:
    """Return where ACCOUNT fetches mail from, with its decrypted password."""
    return Endpoint(
        host=account.incoming_host,
        port=account.incoming_port,
        security=account.incoming_security,
        username=account.incoming_username,
        password=account.get_incoming_password(),
        timeout=float(settings.WEBMAIL_CONNECT_TIMEOUT),
    )


def smtp_endpoint(account: MailAccount) -> Endpoint:
    """Return where ACCOUNT submits mail, with its decrypted password."""
    return Endpoint(
        host=account.smtp_host,
        port=account.smtp_port,
        security=account.smtp_security,
        username=account.smtp_username or account.incoming_username,
        password=account.get_smtp_password(),
        timeout=float(settings.WEBMAIL_CONNECT_TIMEOUT),
    )


def outcome(func, endpoint: Endpoint) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Run one probe and return {"ok", "kind", "message"} for storing and showing."""
    try:
        result = func(endpoint, tls=tls_config(), guard=net_guard())
    except MailError as exc:
        return {"ok": False, "kind": exc.kind, "message": str(exc)}
    return {"ok": True, "kind": "ok", "message": result.detail}


def probe_account(account: MailAccount) -> tuple[dict[str, object], dict[str, object]]:
    """Log in for real to ACCOUNT's incoming server and its SMTP server; return both outcomes."""
    incoming = probe_imap if account.incoming_protocol == Protocol.IMAP else probe_pop3
    return outcome(incoming, incoming_endpoint(account)), outcome(probe_smtp, smtp_endpoint(account))
