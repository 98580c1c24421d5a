"""Open guarded, verified connections to mail servers and turn socket failures into MailError."""

from __future__ import annotations

import contextlib
import functools
import socket
import ssl
from collections.abc import Iterator

from webmail.mailcore.errors import MailError
from webmail.mailcore.netguard import NetGuard
from webmail.mailcore.types import Endpoint, TLSConfig

SECURITY_LABELS = {"tls": "TLS", "starttls": "STARTTLS", "none": "an unencrypted connection"}


@functools.lru_cache(maxsize=8)
def ssl_context(tls: TLSConfig) -> ssl.SSLContext:
    """Return a client context that always verifies the certificate and the host name.

    It trusts the system store plus tls.ca_file. One context per TLSConfig is shared (contexts are
    thread-safe): loading the system store costs about 1 MB, which an IDLE watcher holding a
    thousand connections must not pay a thousand times.
    """
    # RFC 8314 and RFC 7817: mail clients verify the server certificate against the host name.
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if tls.ca_file:
        ctx.load_verify_locations(cafile=tls.ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def open_socket(ip: str, port: int, timeout: float | None) -> socket.socket:
    """Connect to the checked ip (never the name again: no DNS rebinding) within timeout."""
    return socket.create_connection((ip, port), timeout=timeout)


def start_tls(sock: socket.socket, ctx: ssl.SSLContext, host: str) -> ssl.SSLSocket:
    """Start TLS on sock with SNI and certificate checks for the original host name."""
    return ctx.wrap_socket(sock, server_hostname=host)


def resolve(endpoint: Endpoint, guard: NetGuard) -> str:
    """Return the checked IP for the endpoint; MailError on unknown or blocked hosts."""
    return guard.resolve(endpoint.host, endpoint.port)


def to_mail_error(exc: BaseException, endpoint: Endpoint, during: str = "connecting") -> MailError:
    """Classify a network-level exception; the message names host and port, never a password."""
    where = endpoint.address
    if isinstance(exc, MailError):
        return exc
    if isinstance(exc, socket.gaierror):
        return MailError("unknown_host", f"Cannot find the server {endpoint.host!r}.", host=endpoint.host)
    if isinstance(exc, ConnectionRefusedError):
        return MailError(
            "refused",
            f"{where} refused the connection: nothing is listening on port {endpoint.port}.",
            host=endpoint.host,
            port=endpoint.port,
        )
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError since Python 3.10
        return MailError(
            "timeout",
            f"{where} did not answer within {endpoint.timeout:g} s while {during}.",
            host=endpoint.host,
            port=endpoint.port,
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or exc.reason or str(exc)
        return MailError(
            "tls",
            f"The certificate of {where} cannot be trusted: {reason}.",
            host=endpoint.host,
            port=endpoint.port,
        )
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        return MailError(
            "tls",
            f"TLS with {where} failed while {during}: {reason}. Is the port meant for "
            f"{SECURITY_LABELS[endpoint.security]}?",
            host=endpoint.host,
            port=endpoint.port,
        )
    if isinstance(exc, ConnectionError | EOFError):
        return MailError(
            "network",
            f"{where} closed the connection while {during}.",
            host=endpoint.host,
            port=endpoint.port,
        )
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
        return MailError(
            "network",
            f"Cannot reach {where} while {during}: {reason}.",
            host=endpoint.host,
            port=endpoint.port,
        )
    return MailError(
        "protocol",
        f"Unexpected failure with {where} while {during}: {type(exc).__name__}.",
        host=endpoint.host,
        port=endpoint.port,
    )


@contextlib.contextmanager
def network_errors(endpoint: Endpoint, during: str = "connecting") -> Iterator[None]:
    """Re-raise socket and TLS exceptions as MailError; MailError passes through unchanged."""
    try:
        yield
    except MailError:
        raise
    except (OSError, EOFError) as e:  # ssl.SSLError and socket errors are OSErrors
        raise to_mail_error(e, endpoint, during) from e


def tls_detail(sock: object) -> str:
    """Describe the TLS version of a connected socket, for probe details."""
    if isinstance(sock, ssl.SSLSocket):
        return f"{sock.version() or 'TLS'}"
    return "no encryption"
