"""POP3 sessions over poplib with guarded connects, STLS, APOP and SASL PLAIN (RFC 1939, 2449, 2595, 5034)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import poplib
import re
import socket
import ssl
from collections.abc import Iterable, Iterator

from webmail.mailcore import transport
from webmail.mailcore.errors import MailError
from webmail.mailcore.netguard import NetGuard
from webmail.mailcore.types import Endpoint, Pop3Listing, TLSConfig

MAX_LINE = 1_000_000
MAX_REPLY = 512 * 1024 * 1024  # a multi-line reply larger than this is a broken or hostile server
PIPELINE_WINDOW = 16  # RETR commands in flight with PIPELINING
READ_CHUNK = 256 * 1024


class Pop3Refused(MailError):
    """The server answered a command with -ERR (RFC 1939 3); the session is still usable."""


class _ConnectionClosed(poplib.error_proto):
    """The server closed the connection (EOF) in the middle of a reply."""


class _GuardedPOP3(poplib.POP3):
    """poplib connection to a pre-checked IP; TLS (implicit or STLS) verifies the host name."""

    def __init__(self, host: str, port: int, ip: str, timeout: float, ctx: ssl.SSLContext | None) -> None:
        self._ip = ip
        self._implicit_tls = ctx
        super().__init__(host, port, timeout)

    def _getline(self) -> tuple[bytes, int]:
        # poplib caps lines at 2048 bytes; real mail has longer ones (HTML without line breaks).
        line = self.file.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise poplib.error_proto("line too long")
        if not line:
            raise _ConnectionClosed("-ERR EOF")
        octets = len(line)
        if line[-2:] == b"\r\n":
            return line[:-2], octets
        if line[:1] == b"\r":
            return line[1:-1], octets
        return line[:-1], octets

    def _create_socket(self, timeout: float) -> socket.socket:
        sock = transport.open_socket(self._ip, self.port, timeout)
        if self._implicit_tls is not None:
            self._tls_established = True
            # poplib.POP3.stls also uses server_hostname=self.host: the name, not the IP.
            return transport.start_tls(sock, self._implicit_tls, self.host)
        return sock


_BARE_LF = re.compile(rb"(?<!\r)\n")


def _read_until(reader: io.BufferedIOBase, buf: bytearray, marker: bytes, start: int) -> int:
    """Read into BUF until MARKER occurs at or after START; return the index just past it."""
    pos = max(start, 0)
    while True:
        found = buf.find(marker, pos)
        if found >= 0:
            return found + len(marker)
        if len(buf) > MAX_REPLY:
            raise poplib.error_proto("line too long")
        pos = max(len(buf) - len(marker) + 1, start, 0)
        try:
            chunk = reader.read1(READ_CHUNK)
        except ssl.SSLEOFError:
            chunk = b""  # the peer went away without a TLS close_notify: the same as EOF here
        if not chunk:
            raise _ConnectionClosed("-ERR EOF")
        buf += chunk


def _unstuff(body: bytes) -> bytes:
    """Return a multi-line reply's body (each line CRLF-terminated) without dot-stuffing (RFC 1939 3).

    Lines ending in a bare LF get CRLF, as poplib's line reader would give them.
    """
    if body.startswith(b".."):
        body = body[1:]
    body = body.replace(b"\r\n..", b"\r\n.")
    if body.count(b"\n") != body.count(b"\r\n"):
        body = _BARE_LF.sub(b"\r\n", body)
    return body


def _pop_error(exc: BaseException, endpoint: Endpoint, during: str) -> MailError:
    where = endpoint.address
    if isinstance(exc, MailError):
        return exc
    if isinstance(exc, _ConnectionClosed):
        # Not a refusal: even while logging in, a dropped connection says nothing about the password.
        return MailError(
            "network",
            f"{where} closed the connection while {during}.",
            host=endpoint.host,
            port=endpoint.port,
        )
    if isinstance(exc, poplib.error_proto):
        text = b" ".join(a if isinstance(a, bytes) else str(a).encode() for a in exc.args).decode(
            "utf-8", "replace"
        )
        if during == "logging in" and "[SYS/" not in text.upper() and "[IN-USE]" not in text.upper():
            # RFC 2449 8.1: [AUTH] marks a credential problem; servers without codes just say -ERR.
            return MailError(
                "auth",
                f"{where} refused the user name or password for {endpoint.username!r} ({text}).",
                host=endpoint.host,
                port=endpoint.port,
            )
        if "line too long" in text or not text.startswith("-ERR"):
            return MailError(
                "protocol",
                f"{where} sent an unexpected answer while {during}.",
                host=endpoint.host,
                port=endpoint.port,
            )
        return Pop3Refused(
            "protocol",
            f"{where} refused a command while {during}: {text}",
            host=endpoint.host,
            port=endpoint.port,
        )
    return transport.to_mail_error(exc, endpoint, during)


@contextlib.contextmanager
def pop_errors(endpoint: Endpoint, during: str) -> Iterator[None]:
    """Re-raise poplib, socket and TLS exceptions as MailError."""
    try:
        yield
    except MailError:
        raise
    except (poplib.error_proto, OSError, EOFError) as e:
        raise _pop_error(e, endpoint, during) from e


def capa(client: poplib.POP3) -> dict[str, list[str]]:
    """Return the CAPA list (RFC 2449 5), keywords upper-cased; empty when CAPA is unsupported."""
    try:
        return {k.upper(): v for k, v in client.capa().items()}
    except poplib.error_proto:
        return {}  # RFC 2449 5: a server without CAPA answers -ERR


def _without(caps: dict[str, list[str]], disabled: frozenset[str]) -> dict[str, list[str]]:
    return {k: v for k, v in caps.items() if k not in disabled}


def connect(
    endpoint: Endpoint,
    *,
    tls: TLSConfig,
    guard: NetGuard,
    login: bool = True,
    method: str = "auto",
    disabled_caps: frozenset[str] = frozenset(),
) -> poplib.POP3:
    """Return a connected (and by default logged-in) poplib client; MailError on any failure."""
    ip = transport.resolve(endpoint, guard)
    ctx = transport.ssl_context(tls)
    with pop_errors(endpoint, "connecting"):
        client = _GuardedPOP3(
            endpoint.host, endpoint.port, ip, endpoint.timeout, ctx if endpoint.security == "tls" else None
        )
    try:
        with pop_errors(endpoint, "starting TLS"):
            caps = _without(capa(client), disabled_caps)
            if endpoint.security == "starttls":
                if "STLS" not in caps:
                    raise MailError(
                        "capability",
                        f"{endpoint.address} does not offer STLS; use TLS or another port.",
                        host=endpoint.host,
                        port=endpoint.port,
                    )
                client.stls(ctx)
                caps = _without(capa(client), disabled_caps)  # RFC 2595 4: may change after STLS
        if login:
            with pop_errors(endpoint, "logging in"):
                login_pop3(client, endpoint, caps, method)
    except BaseException:
        with contextlib.suppress(Exception):
            client.close()
        raise
    return client


def login_pop3(
    client: poplib.POP3, endpoint: Endpoint, caps: dict[str, list[str]], method: str = "auto"
) -> str:
    """Authenticate with the best offered method, or `method`; return the one used.

    Methods: "PLAIN" (SASL, RFC 5034), "USER" (USER/PASS, RFC 1939 7), "APOP" (RFC 1939 7).
    """
    method = method.upper()
    if method == "APOP":
        client.apop(endpoint.username, endpoint.password)
        return "APOP"
    if method == "USER":
        client.user(endpoint.username)
        client.pass_(endpoint.password)
        return "USER"
    sasl = [m.upper() for m in caps.get("SASL", [])]
    if "PLAIN" in sasl:
        # RFC 5034 4 + RFC 4616: AUTH PLAIN with an initial response, UTF-8 credentials.
        token = base64.b64encode(b"\0" + endpoint.username.encode() + b"\0" + endpoint.password.encode())
        # poplib has no AUTH command; _shortcmd sends one line and checks for +OK.
        client._shortcmd("AUTH PLAIN " + token.decode("ascii"))
        return "PLAIN"
    if "USER" in caps or not caps:
        client.user(endpoint.username)
        client.pass_(endpoint.password)
        return "USER"
    if b"<" in client.getwelcome():
        # RFC 1939 7: APOP digest of the greeting's timestamp and the secret.
        client.apop(endpoint.username, endpoint.password)
        return "APOP"
    raise MailError(
        "capability",
        f"{endpoint.address} offers no login method this client supports.",
        host=endpoint.host,
        port=endpoint.port,
    )


class Pop3Session:
    """One logged-in POP3 connection: list, unique ids, retrieve and delete (RFC 1939).

    Use as a context manager; leaving it sends QUIT, which commits deletions (RFC 1939 6).
    `disabled_caps` hides CAPA entries (e.g. "UIDL") to test fallbacks on a full server.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        tls: TLSConfig,
        guard: NetGuard,
        method: str = "auto",
        disabled_caps: Iterable[str] = (),
        check_sizes: bool = True,
    ) -> None:
        self.endpoint = endpoint
        self._tls, self._guard, self._method = tls, guard, method
        self.disabled_caps = frozenset(c.upper() for c in disabled_caps)
        self.check_sizes = check_sizes
        self._client: poplib.POP3 | None = None
        self.capabilities: dict[str, list[str]] = {}
        self._sizes: dict[int, int] | None = None
        # True once uidl() had to fall back to header hashes (no UIDL on the server).
        self.uidl_fallback = False

    def __enter__(self) -> Pop3Session:
        self.open()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.quit()
        else:
            self.close()  # no QUIT: RFC 1939 6, deletions are not committed

    def open(self) -> None:
        self._client = connect(
            self.endpoint,
            tls=self._tls,
            guard=self._guard,
            method=self._method,
            disabled_caps=self.disabled_caps,
        )
        with self._errors("reading capabilities"):
            # RFC 2449 5: capabilities may differ after login.
            self.capabilities = _without(capa(self._client), self.disabled_caps)

    @property
    def client(self) -> poplib.POP3:
        if self._client is None:
            raise MailError("network", f"The POP3 session with {self.endpoint.address} is closed.")
        return self._client

    def _errors(self, during: str) -> contextlib.AbstractContextManager[None]:
        return pop_errors(self.endpoint, during)

    def stat(self) -> tuple[int, int]:
        """Return (message count, total octets)."""
        with self._errors("reading the mailbox size"):
            return self.client.stat()

    def sizes(self) -> dict[int, int]:
        """Map message number to size in octets (LIST, RFC 1939 5)."""
        with self._errors("listing messages"):
            _resp, lines, _octets = self.client.list()
        out = {}
        for line in lines:
            num, _, size = line.partition(b" ")
            out[int(num)] = int(size.split()[0])
        self._sizes = out
        return out

    def uidl(self) -> dict[str, int]:
        """Map each message's unique id to its number in this session (RFC 1939 7).

        Without UIDL, the id is a SHA-256 of the header (TOP n 0), so the same message keeps
        the same id across sessions; identical headers get "#2", "#3" suffixes in order.
        """
        # A server without CAPA (RFC 2449) may still know UIDL: try it, fall back on -ERR.
        if "UIDL" in self.capabilities or (not self.capabilities and "UIDL" not in self.disabled_caps):
            try:
                with self._errors("listing unique ids"):
                    _resp, lines, _octets = self.client.uidl()
            except MailError as e:
                if e.kind != "protocol" or self.capabilities:
                    raise
            else:
                found: dict[str, int] = {}
                for line in lines:
                    num, _, uid = line.decode("utf-8", "replace").partition(" ")
                    found[uid.strip()] = int(num)
                return found
        self.uidl_fallback = True
        out: dict[str, int] = {}
        for num in sorted(self.sizes()):
            digest = "sha256:" + hashlib.sha256(self.top(num, 0)).hexdigest()
            key, n = digest, 1
            while key in out:
                n += 1
                key = f"{digest}#{n}"
            out[key] = num
        return out

    def listing(self) -> tuple[Pop3Listing, ...]:
        """Number, size and unique id of every message."""
        sizes = self.sizes()
        return tuple(
            Pop3Listing(number=num, size=sizes.get(num, 0), uid=uid)
            for uid, num in sorted(self.uidl().items(), key=lambda kv: kv[1])
        )

    def top(self, number: int, lines: int = 0) -> bytes:
        """Return the header and the first `lines` body lines (TOP, RFC 1939 7)."""
        with self._errors(f"reading message {number}"):
            _resp, body, _octets = self.client.top(number, lines)
        return b"\r\n".join(body) + b"\r\n"

    def retr(self, number: int) -> bytes:
        """Return the whole message, CRLF line ends, dot-unstuffed; check its size against LIST."""
        with self._errors(f"retrieving message {number}"):
            _resp, lines, _octets = self.client.retr(number)
        raw = b"\r\n".join(lines) + b"\r\n"
        if self.check_sizes:
            if self._sizes is None:
                self.sizes()
            expected = (self._sizes or {}).get(number)
            if expected is not None and expected != len(raw):
                raise MailError(
                    "protocol",
                    f"{self.endpoint.address} sent {len(raw)} octets for message {number} "
                    f"but listed {expected}: the transfer is incomplete or the server miscounts.",
                    host=self.endpoint.host,
                    port=self.endpoint.port,
                )
        return raw

    def retr_many(
        self, numbers: Iterable[int], *, window: int = PIPELINE_WINDOW
    ) -> Iterator[tuple[int, bytes]]:
        """Yield (number, raw) for each message in order, like retr() but faster.

        With PIPELINING (RFC 2449 6.6) up to `window` RETR commands are in flight; without it, one.
        Replies are read in large chunks and split at the RFC 1939 3 terminator (CRLF.CRLF) instead of
        line by line. A -ERR for one message raises Pop3Refused for it when reached; stop iterating
        and the session is still usable only once no RETR is in flight (so always drain or close).
        Sizes are not checked here: compare with sizes() as needed.
        """
        todo = list(numbers)
        if "PIPELINING" not in self.capabilities:
            window = 1
        client = self.client
        reader = client.file
        buf = bytearray()
        sent = 0
        for got, number in enumerate(todo):
            with self._errors(f"retrieving message {number}"):
                if sent < min(got + window, len(todo)):
                    upto = min(got + window, len(todo))
                    try:
                        client.sock.sendall(b"".join(b"RETR %d\r\n" % n for n in todo[sent:upto]))
                    except ssl.SSLEOFError:
                        raise _ConnectionClosed("-ERR EOF") from None
                    sent = upto
                status_end = _read_until(reader, buf, b"\r\n", 0)
                if not buf.startswith(b"+OK"):
                    line = bytes(buf[: status_end - 2])
                    del buf[:status_end]
                    if got + 1 < sent:
                        # Later commands are in flight: their replies must be read before another command.
                        self._drain(reader, buf, sent - got - 1)
                    raise poplib.error_proto(line)
                end = _read_until(reader, buf, b"\r\n.\r\n", status_end - 2)
                body = bytes(buf[status_end : end - 3])
                del buf[:end]
            yield number, _unstuff(body)
        if buf:
            raise MailError(
                "protocol",
                f"{self.endpoint.address} sent more than was asked for while retrieving messages.",
                host=self.endpoint.host,
                port=self.endpoint.port,
            )

    def _drain(self, reader: io.BufferedIOBase, buf: bytearray, replies: int) -> None:
        """Read and drop REPLIES pipelined RETR replies."""
        for _ in range(replies):
            status_end = _read_until(reader, buf, b"\r\n", 0)
            if buf.startswith(b"+OK"):
                end = _read_until(reader, buf, b"\r\n.\r\n", status_end - 2)
            else:
                end = status_end
            del buf[:end]

    def dele(self, number: int) -> None:
        """Mark a message deleted; the server removes it at QUIT (RFC 1939 6)."""
        with self._errors(f"deleting message {number}"):
            self.client.dele(number)

    def rset(self) -> None:
        with self._errors("undoing deletions"):
            self.client.rset()

    def noop(self) -> None:
        with self._errors("checking the connection"):
            self.client.noop()

    def quit(self) -> None:
        """Commit deletions and log out (UPDATE state, RFC 1939 6)."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            with pop_errors(self.endpoint, "committing deletions"):
                client.quit()
        finally:
            with contextlib.suppress(Exception):
                client.close()

    def close(self) -> None:
        """Drop the connection without QUIT: pending deletions are discarded."""
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
