"""SMTP submission over smtplib with guarded connects, STARTTLS, AUTH and SMTPUTF8 (RFC 5321, 6409, 6531)."""

from __future__ import annotations

import base64
import contextlib
import re
import smtplib
import socket
import ssl
from collections.abc import Iterable, Iterator

from webmail.mailcore import transport
from webmail.mailcore.errors import MailError, SmtpReplyError
from webmail.mailcore.netguard import NetGuard
from webmail.mailcore.types import Endpoint, SubmitResult, TLSConfig

DEFAULT_HELO = "localhost"


class _GuardedSMTP(smtplib.SMTP):
    """smtplib connection to a pre-checked IP; TLS (implicit or STARTTLS) verifies the host name."""

    def __init__(
        self, endpoint: Endpoint, ip: str, implicit_tls: ssl.SSLContext | None, *, helo: str
    ) -> None:
        self._ip = ip
        self._implicit_tls = implicit_tls
        # Connects at once; smtplib keeps the name for STARTTLS and raises SMTPConnectError
        # unless the greeting is 220 (RFC 5321 3.1: 554 means "no service here").
        super().__init__(endpoint.host, endpoint.port, local_hostname=helo, timeout=endpoint.timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock = transport.open_socket(self._ip, port, timeout)
        if self._implicit_tls is not None:
            # smtplib.SMTP.starttls also uses server_hostname=self._host: the name, not the IP.
            return transport.start_tls(sock, self._implicit_tls, host)
        return sock


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _smtp_error(exc: BaseException, endpoint: Endpoint, during: str) -> MailError:
    where = endpoint.address
    host, port = endpoint.host, endpoint.port
    if isinstance(exc, MailError):
        return exc
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return MailError(
            "auth",
            f"{where} refused the user name or password for {endpoint.username!r} "
            f"({exc.smtp_code} {_text(exc.smtp_error)}).",
            host=host,
            port=port,
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return MailError("capability", f"{where} does not support {during}: {exc}.", host=host, port=port)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        # smtplib turns a read timeout into SMTPServerDisconnected; the cause says which.
        if isinstance(exc.__context__, OSError):
            return transport.to_mail_error(exc.__context__, endpoint, during)
        return MailError("network", f"{where} closed the connection while {during}.", host=host, port=port)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = {r: (c, _text(m)) for r, (c, m) in exc.recipients.items()}
        code, text = next(iter(refused.values()), (554, ""))
        return SmtpReplyError(
            code,
            text,
            f"{where} refused every recipient: {_fmt_refused(refused)}.",
            host=host,
            port=port,
            refused=refused,
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        code, text = exc.smtp_code, _text(exc.smtp_error)
        if 400 <= code < 600:
            return SmtpReplyError(
                code, text, f"{where} answered {code} {text} while {during}.", host=host, port=port
            )
        return MailError("protocol", f"{where} answered {code} {text} while {during}.", host=host, port=port)
    if isinstance(exc, smtplib.SMTPException):
        if "authentication method" in str(exc):
            return MailError(
                "capability", f"{where} offers no login method this client supports.", host=host, port=port
            )
        return MailError(
            "protocol", f"{where} broke the protocol while {during}: {exc}.", host=host, port=port
        )
    return transport.to_mail_error(exc, endpoint, during)


def _fmt_refused(refused: dict[str, tuple[int, str]]) -> str:
    return "; ".join(f"{r}: {c} {m}" for r, (c, m) in refused.items())


@contextlib.contextmanager
def smtp_errors(endpoint: Endpoint, during: str) -> Iterator[None]:
    """Re-raise smtplib, socket and TLS exceptions as MailError."""
    try:
        yield
    except MailError:
        raise
    except (OSError, EOFError) as e:  # smtplib.SMTPException is an OSError
        raise _smtp_error(e, endpoint, during) from e


def connect(
    endpoint: Endpoint, *, tls: TLSConfig, guard: NetGuard, login: bool = True, helo: str = DEFAULT_HELO
) -> smtplib.SMTP:
    """Return a connected client after EHLO, STARTTLS when asked and AUTH when a user name is set."""
    ip = transport.resolve(endpoint, guard)
    ctx = transport.ssl_context(tls)
    with smtp_errors(endpoint, "connecting"):
        client = _GuardedSMTP(endpoint, ip, ctx if endpoint.security == "tls" else None, helo=helo)
    try:
        with smtp_errors(endpoint, "saying EHLO"):
            client.ehlo()
        if endpoint.security == "starttls":
            if not client.has_extn("starttls"):
                raise MailError(
                    "capability",
                    f"{endpoint.address} does not offer STARTTLS; use TLS or another port.",
                    host=endpoint.host,
                    port=endpoint.port,
                )
            with smtp_errors(endpoint, "starting TLS"):
                client.starttls(context=ctx)
                client.ehlo()  # RFC 3207 4.2: forget what was learned before TLS
        if login and endpoint.username:
            if not client.has_extn("auth"):
                raise MailError(
                    "capability",
                    f"{endpoint.address} does not offer AUTH, so it cannot check the user name and password"
                    + (
                        ""
                        if endpoint.security != "none"
                        else " (many servers offer AUTH only after STARTTLS)"
                    )
                    + ".",
                    host=endpoint.host,
                    port=endpoint.port,
                )
            with smtp_errors(endpoint, "logging in"):
                _login(client, endpoint)
    except BaseException:
        with contextlib.suppress(Exception):
            client.close()
        raise
    return client


def _login(client: smtplib.SMTP, endpoint: Endpoint) -> None:
    """Authenticate once with the best offered mechanism (RFC 4954).

    smtplib.login would try every mechanism in turn, turning one wrong password into
    several failed logins (and tripping server lockouts sooner).
    """
    offered = client.esmtp_features.get("auth", "").upper().split()
    if "PLAIN" in offered:
        # RFC 4616 with an initial response (RFC 4954 4); UTF-8, which smtplib.auth would refuse.
        token = base64.b64encode(b"\0" + endpoint.username.encode() + b"\0" + endpoint.password.encode())
        code, reply = client.docmd("AUTH", "PLAIN " + token.decode("ascii"))
        if code != 235:
            raise smtplib.SMTPAuthenticationError(code, reply)
        return
    client.user, client.password = endpoint.username, endpoint.password
    for mechanism, method in (
        ("LOGIN", client.auth_login),
        ("CRAM-MD5", client.auth_cram_md5),  # RFC 2195
    ):
        if mechanism in offered:
            client.auth(mechanism, method)
            return
    raise MailError(
        "capability",
        f"{endpoint.address} offers no login method this client supports ({' '.join(offered) or 'none'}).",
        host=endpoint.host,
        port=endpoint.port,
    )


def capabilities(client: smtplib.SMTP) -> tuple[str, ...]:
    """Return the EHLO keywords (RFC 5321 4.1.1.1), AUTH mechanisms spelled out."""
    caps = []
    for name, params in client.esmtp_features.items():
        caps.append(f"{name.upper()} {params}".strip() if name.lower() == "auth" else name.upper())
    return tuple(caps)


def submit(
    endpoint: Endpoint,
    *,
    tls: TLSConfig,
    guard: NetGuard,
    mail_from: str,
    rcpts: Iterable[str],
    raw: bytes,
    helo: str = DEFAULT_HELO,
) -> SubmitResult:
    """Send raw to rcpts in one transaction; SmtpReplyError ("temporary" 4xx or "permanent" 5xx) on refusal.

    Recipients refused while others are accepted come back in `refused`; the message is sent.
    """
    rcpts = list(rcpts)
    client = connect(endpoint, tls=tls, guard=guard, helo=helo)
    try:
        return _transaction(client, endpoint, mail_from, rcpts, raw)
    finally:
        with contextlib.suppress(Exception):
            client.quit()
        with contextlib.suppress(Exception):
            client.close()


def _needs_smtputf8(mail_from: str, rcpts: list[str], raw: bytes) -> bool:
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    return not (mail_from.isascii() and all(r.isascii() for r in rcpts) and head.isascii())


def _transaction(
    client: smtplib.SMTP, endpoint: Endpoint, mail_from: str, rcpts: list[str], raw: bytes
) -> SubmitResult:
    where = endpoint.address
    options: list[str] = []
    if client.has_extn("8bitmime") and not raw.isascii():
        options.append("BODY=8BITMIME")  # RFC 6152 2
    if _needs_smtputf8(mail_from, rcpts, raw):
        if not client.has_extn("smtputf8"):
            raise MailError(
                "capability",
                f"{where} does not accept internationalised addresses or headers (no SMTPUTF8).",
                host=endpoint.host,
                port=endpoint.port,
            )
        options.append("SMTPUTF8")  # RFC 6531 3.4
    with smtp_errors(endpoint, "sending MAIL FROM"):
        code, msg = client.mail(mail_from, options)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, msg, mail_from)
    accepted: list[str] = []
    refused: dict[str, tuple[int, str]] = {}
    with smtp_errors(endpoint, "sending RCPT TO"):
        for rcpt in rcpts:
            code, msg = client.rcpt(rcpt)
            if code in (250, 251):
                accepted.append(rcpt)
            else:
                refused[rcpt] = (code, _text(msg))
    if not accepted:
        with contextlib.suppress(Exception):
            client.rset()
        code, text = next(iter(refused.values()), (554, "no recipients"))
        # Temporary if any refusal was temporary: retrying later can help.
        if any(400 <= c < 500 for c, _ in refused.values()):
            code = min(c for c, _ in refused.values())
        raise SmtpReplyError(
            code,
            text,
            f"{where} refused every recipient: {_fmt_refused(refused)}.",
            host=endpoint.host,
            port=endpoint.port,
            refused=refused,
        )
    # RFC 5321 2.3.8: lines end in CRLF; a bare LF must never reach the server.
    raw = re.sub(rb"\r?\n", b"\r\n", raw)
    with smtp_errors(endpoint, "sending the message"):
        code, msg = client.data(raw)
        if code != 250:
            raise smtplib.SMTPDataError(code, msg)
    return SubmitResult(accepted=tuple(accepted), refused=refused, reply=f"{code} {_text(msg)}")
