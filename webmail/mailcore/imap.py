"""IMAP4rev1 sessions over imapclient, with guarded connects, QRESYNC and CONDSTORE (RFC 3501, 7162)."""

from __future__ import annotations

import contextlib
import imaplib
import socket
import ssl
from collections.abc import Iterable, Iterator
from datetime import datetime

from imapclient import IMAPClient
from imapclient import exceptions as imap_exc

from webmail.mailcore import transport
from webmail.mailcore.errors import MailError
from webmail.mailcore.imapwire import (
    LITERAL,
    UNTAGGED_NUM,
    ListStatus,
    detect_special_use,
    flag_changes,
    flag_names,
    format_sequence_set,
    message_flags,
    modseq_of,
    parse_appenduid,
    parse_esearch_all,
    parse_fetch,
    parse_fetch_message,
    parse_list_status,
    parse_search,
    parse_select,
    parse_sizes,
    parse_uid_mapping,
    quote_mailbox,
)
from webmail.mailcore.netguard import NetGuard
from webmail.mailcore.types import Endpoint, FlagChange, Folder, FolderState, MessageData, TLSConfig


class _GuardedIMAP4(imaplib.IMAP4):
    """imaplib connection to a pre-checked IP; TLS (implicit or STARTTLS) verifies the host name."""

    def __init__(
        self, host: str, port: int, ip: str, timeout: float | None, ctx: ssl.SSLContext | None
    ) -> None:
        self._ip = ip
        self._implicit_tls = ctx
        self._greeted = False
        super().__init__(host, port, timeout)

    def _get_capabilities(self) -> None:
        # imaplib's hook after the greeting (and after STARTTLS). RFC 3501 7.1: a greeting may
        # carry "[CAPABILITY ...]"; imaplib sends CAPABILITY anyway, a round trip for nothing.
        # Only the greeting is trusted: after STARTTLS the list is asked for again (RFC 3501 6.2.1).
        greeting = self.untagged_responses.pop("CAPABILITY", None) if not self._greeted else None
        self._greeted = True
        if greeting and greeting[-1]:
            self.capabilities = tuple(str(greeting[-1], self._encoding).upper().split())
            return
        super()._get_capabilities()

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        sock = transport.open_socket(self._ip, self.port, timeout)
        if self._implicit_tls is not None:
            # imaplib.IMAP4.starttls also uses server_hostname=self.host: the name, not the IP.
            return transport.start_tls(sock, self._implicit_tls, self.host)
        return sock


class _GuardedIMAPClient(IMAPClient):
    """IMAPClient whose socket goes to the NetGuard's checked IP."""

    def __init__(self, endpoint: Endpoint, ip: str, ctx: ssl.SSLContext) -> None:
        self._guarded_ip = ip
        super().__init__(
            endpoint.host,
            port=endpoint.port,
            ssl=endpoint.security == "tls",
            ssl_context=ctx,
            timeout=endpoint.timeout,
        )

    def _create_IMAP4(self) -> imaplib.IMAP4:  # noqa: N802 - imapclient's hook name
        ctx = self.ssl_context if self.ssl else None
        return _GuardedIMAP4(self.host, self.port, self._guarded_ip, self._timeout.connect, ctx)


def _imap_error(exc: BaseException, endpoint: Endpoint, during: str) -> MailError:
    where = endpoint.address
    if isinstance(exc, MailError):
        return exc
    if isinstance(exc, imap_exc.LoginError):
        return MailError(
            "auth",
            f"{where} refused the user name or password for {endpoint.username!r}.",
            host=endpoint.host,
            port=endpoint.port,
        )
    if isinstance(exc, imap_exc.CapabilityError):
        return MailError("capability", f"{where}: {exc}.", host=endpoint.host, port=endpoint.port)
    if isinstance(exc, imaplib.IMAP4.abort | imap_exc.IMAPClientAbortError):
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, OSError | EOFError):
            return transport.to_mail_error(cause, endpoint, during)
        return MailError(
            "network",
            f"{where} closed the connection while {during}.",
            host=endpoint.host,
            port=endpoint.port,
        )
    if isinstance(exc, imaplib.IMAP4.error):
        text = str(exc)
        if "not IMAP4 compliant" in text:
            return MailError(
                "capability",
                f"{where} is not an IMAP4rev1 server (no IMAP4rev1 in its capabilities).",
                host=endpoint.host,
                port=endpoint.port,
            )
        return MailError(
            "protocol",
            f"{where} refused a command while {during}: {text}",
            host=endpoint.host,
            port=endpoint.port,
        )
    if isinstance(exc, OSError | EOFError):
        return transport.to_mail_error(exc, endpoint, during)
    return MailError(
        "protocol",
        f"Unexpected answer from {where} while {during} ({type(exc).__name__}).",
        host=endpoint.host,
        port=endpoint.port,
    )


@contextlib.contextmanager
def imap_errors(endpoint: Endpoint, during: str) -> Iterator[None]:
    """Re-raise imapclient, imaplib, socket and TLS exceptions as MailError."""
    try:
        yield
    except MailError:
        raise
    except (imaplib.IMAP4.error, OSError, EOFError, ValueError) as e:
        raise _imap_error(e, endpoint, during) from e


def _caps(client: IMAPClient) -> frozenset[str]:
    return frozenset(c.decode("ascii", "replace").upper() for c in client.capabilities())


def connect(endpoint: Endpoint, *, tls: TLSConfig, guard: NetGuard, login: bool = True) -> IMAPClient:
    """Return a connected (and by default logged-in) IMAPClient; MailError on any failure.

    The caller owns the client and must log out.
    """
    ip = transport.resolve(endpoint, guard)
    ctx = transport.ssl_context(tls)
    with imap_errors(endpoint, "connecting"):
        client = _GuardedIMAPClient(endpoint, ip, ctx)
    try:
        with imap_errors(endpoint, "starting TLS"):
            if endpoint.security == "starttls":
                if "STARTTLS" not in _caps(client):
                    raise MailError(
                        "capability",
                        f"{endpoint.address} does not offer STARTTLS; use TLS or another port.",
                        host=endpoint.host,
                        port=endpoint.port,
                    )
                client.starttls(ctx)
        with imap_errors(endpoint, "reading capabilities"):
            caps = _caps(client)
        # RFC 3501 6.1.1: an IMAP4rev1 server lists IMAP4rev1 (RFC 9051: or IMAP4rev2).
        if not caps & {"IMAP4REV1", "IMAP4REV2"}:
            raise MailError(
                "capability",
                f"{endpoint.address} is not an IMAP4rev1 server (no IMAP4rev1 in its capabilities).",
                host=endpoint.host,
                port=endpoint.port,
            )
        if login:
            with imap_errors(endpoint, "logging in"):
                _login(client, endpoint, caps)
    except BaseException:
        with contextlib.suppress(Exception):
            client.shutdown()
        raise
    return client


def _login(client: IMAPClient, endpoint: Endpoint, caps: frozenset[str]) -> None:
    if "LOGINDISABLED" in caps:
        # RFC 3501 6.2.3: LOGIN is forbidden until TLS is active.
        raise MailError(
            "capability",
            f"{endpoint.address} does not allow logging in without TLS.",
            host=endpoint.host,
            port=endpoint.port,
        )
    if endpoint.password.isascii() and endpoint.username.isascii():
        client.login(endpoint.username, endpoint.password)
    elif "AUTH=PLAIN" in caps:
        # LOGIN strings are ASCII in imaplib; SASL PLAIN (RFC 4616) carries UTF-8.
        try:
            client.plain_login(endpoint.username, endpoint.password)
        except imap_exc.IMAPClientError as e:
            raise imap_exc.LoginError(str(e)) from e
    else:
        raise MailError(
            "capability",
            f"{endpoint.address} offers no way to log in with a non-ASCII user name or password.",
            host=endpoint.host,
            port=endpoint.port,
        )


# -- The session

_CHANGE_RESPONSES = (b"EXISTS", b"EXPUNGE", b"FETCH", b"VANISHED", b"RECENT")


class ImapSession:
    """One logged-in IMAP connection: folders, QRESYNC/CONDSTORE sync, fetch, flags, move, append, IDLE.

    Use as a context manager. Not thread-safe (one command at a time, like the protocol).
    `disabled_caps` hides server capabilities, to run the fallback paths against a full server.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        tls: TLSConfig,
        guard: NetGuard,
        disabled_caps: Iterable[str] = (),
    ) -> None:
        self.endpoint = endpoint
        self._tls, self._guard = tls, guard
        self.disabled_caps = frozenset(c.upper() for c in disabled_caps)
        self._client: IMAPClient | None = None
        self._tag = 0
        self._caps: frozenset[str] = frozenset()
        self.qresync_enabled = False
        self.selected: FolderState | None = None
        self._idling = False

    # -- lifecycle

    def __enter__(self) -> ImapSession:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Connect, log in and ENABLE QRESYNC when offered (RFC 7162 3.2.3)."""
        client = connect(self.endpoint, tls=self._tls, guard=self._guard)
        client.normalise_times = False  # keep INTERNALDATE time zones: no naive datetimes
        self._client = client
        with self._errors("reading capabilities"):
            self._caps = _caps(client) - self.disabled_caps
            if "QRESYNC" in self._caps:
                enabled = client.enable("QRESYNC")
                self.qresync_enabled = b"QRESYNC" in [e.upper() for e in enabled]

    def close(self) -> None:
        """Log out (best effort) and close the socket, without waiting for the server's answer.

        RFC 3501 6.1.3: the server answers LOGOUT with BYE and OK and closes the connection;
        nothing in that answer is of use here, so waiting a round trip for it is skipped.
        """
        client, self._client = self._client, None
        if client is None:
            return
        with contextlib.suppress(Exception):
            if self._idling:
                client.idle_done()
            self._tag += 1
            client._imap.send(b"W%d LOGOUT\r\n" % self._tag)
        with contextlib.suppress(Exception):
            client.shutdown()

    @property
    def client(self) -> IMAPClient:
        if self._client is None:
            raise MailError("network", f"The IMAP session with {self.endpoint.address} is closed.")
        return self._client

    @property
    def capabilities(self) -> frozenset[str]:
        """Post-login capabilities, minus disabled ones."""
        return self._caps

    def has(self, capability: str) -> bool:
        return capability.upper() in self._caps

    @property
    def condstore(self) -> bool:
        return self.has("CONDSTORE") or self.qresync_enabled

    def _errors(self, during: str) -> contextlib.AbstractContextManager[None]:
        return imap_errors(self.endpoint, during)

    # -- raw commands (imapclient has no QRESYNC, CHANGEDSINCE 1:* or MOVE COPYUID support)

    def _read_response(self) -> bytes:
        imap = self.client._imap
        buf = imap.readline()
        if not buf:
            raise imaplib.IMAP4.abort("socket error: EOF")
        while True:
            m = LITERAL.search(buf, len(buf) - 24 if len(buf) > 24 else 0)
            if not m or m.end() != len(buf):
                return buf.rstrip(b"\r\n")
            buf += imap.read(int(m.group(1)))
            line = imap.readline()
            if not line:
                raise imaplib.IMAP4.abort("socket error: EOF")
            buf += line

    def _command(self, line: bytes, during: str) -> tuple[list[bytes], bytes]:
        """Send one command (no literals); return (untagged payloads, tagged status text).

        NO/BAD become MailError("protocol").
        """
        self._tag += 1
        tag = b"W%d" % self._tag
        with self._errors(during):
            self.client._imap.send(tag + b" " + line + b"\r\n")
            untagged: list[bytes] = []
            while True:
                resp = self._read_response()
                if resp.startswith(b"* "):
                    untagged.append(resp[2:])
                elif resp.startswith(tag + b" "):
                    status = resp[len(tag) + 1 :]
                    break
                # "+" continuations are not expected for these commands; ignore stray lines.
        word = status.split(b" ", 1)[0].upper()
        if word != b"OK":
            text = status.decode("utf-8", "replace")
            raise MailError(
                "protocol",
                f"{self.endpoint.address} refused {during}: {text}",
                host=self.endpoint.host,
                port=self.endpoint.port,
            )
        return untagged, status

    def _quote(self, folder: str) -> bytes:
        return quote_mailbox(folder)

    # -- folders

    def list_folders(self) -> list[Folder]:
        """LIST every folder with its special use and subscription."""
        with self._errors("listing folders"):
            listed = self.client.list_folders()
            subscribed = {name for _f, _d, name in self.client.list_sub_folders()}
        rows = []
        for flags, delim, name in listed:
            d = delim.decode() if isinstance(delim, bytes) else delim
            rows.append((str(name), d, flag_names(flags)))
        return _folders(rows, subscribed)

    @property
    def list_status(self) -> bool:
        """True when one LIST can also return subscriptions and STATUS (RFC 5258, RFC 5819)."""
        return self.has("LIST-STATUS") and self.has("LIST-EXTENDED")

    def list_folders_with_status(self) -> ListStatus | None:
        """LIST every folder with subscriptions, special use and STATUS in one round trip.

        `LIST "" "*" RETURN (SUBSCRIBED CHILDREN SPECIAL-USE STATUS (MESSAGES UIDNEXT UIDVALIDITY
        HIGHESTMODSEQ))` (RFC 5258 3, RFC 6154 2, RFC 5819 2). None when the server does not
        offer LIST-STATUS (or its answer does not parse): use list_folders and SELECT instead.
        A folder the server sent no STATUS for (\\Noselect, or a lookup problem the RFC lets it
        drop) has no entry in `status`.
        """
        if not self.list_status:
            return None
        returns = [b"SUBSCRIBED", b"CHILDREN"]
        if self.has("SPECIAL-USE"):
            returns.append(b"SPECIAL-USE")
        items = b"MESSAGES UIDNEXT UIDVALIDITY" + (b" HIGHESTMODSEQ" if self.condstore else b"")
        line = b'LIST "" "*" RETURN (' + b" ".join(returns) + b" STATUS (" + items + b"))"
        untagged, _ = self._command(line, "listing folders")
        try:
            listed, raw_status = parse_list_status(untagged)
        except (ValueError, UnicodeError):
            return None
        rows, subscribed = [], set()
        for name, delim, flags in listed:
            lowered = [f.lower() for f in flags]
            if "\\subscribed" in lowered:
                subscribed.add(name)
            # RFC 5258 3.4: \\NonExistent (a parent that is only a name) implies \\Noselect, which
            # is what plain LIST says of it.
            rows.append(
                (
                    name,
                    delim,
                    tuple(
                        "\\Noselect" if low == "\\nonexistent" else f
                        for f, low in zip(flags, lowered, strict=True)
                        if low != "\\subscribed"
                    ),
                )
            )
        status = {}
        for name, values in raw_status.items():
            if "UIDVALIDITY" not in values:
                continue
            status[name] = FolderState(
                name=name,
                uidvalidity=values["UIDVALIDITY"],
                uidnext=values.get("UIDNEXT"),
                exists=values.get("MESSAGES", 0),
                # RFC 7162 3.1.2.3: 0 means the mailbox has no mod-sequences (NOMODSEQ).
                highestmodseq=(values.get("HIGHESTMODSEQ") or None) if self.condstore else None,
            )
        return ListStatus(folders=tuple(_folders(rows, subscribed)), status=status)

    def create_folder(self, name: str) -> None:
        with self._errors(f"creating {name!r}"):
            self.client.create_folder(name)
            self.client.subscribe_folder(name)

    def select(
        self, folder: str, qresync: tuple[int, int] | None = None, *, readonly: bool = False
    ) -> FolderState:
        """SELECT (or EXAMINE) folder; with qresync=(uidvalidity, modseq) also fetch the delta.

        RFC 7162 3.2.5: the server answers VANISHED (EARLIER) with the UIDs expunged since
        modseq and FETCH (UID FLAGS MODSEQ) for messages changed since then. The delta is
        only valid when the UIDVALIDITY still matches (FolderState.qresync is then True).
        """
        verb = b"EXAMINE" if readonly else b"SELECT"
        params = b""
        use_qresync = qresync is not None and self.qresync_enabled
        if use_qresync:
            uidvalidity, modseq = qresync  # type: ignore[misc]
            params = b" (QRESYNC (%d %d))" % (uidvalidity, modseq)
        elif self.has("CONDSTORE") and not self.qresync_enabled:
            params = b" (CONDSTORE)"  # RFC 7162 3.1.8: ask for HIGHESTMODSEQ
        untagged, status = self._command(verb + b" " + self._quote(folder) + params, f"selecting {folder!r}")
        # imaplib tracks the state for the commands imapclient sends later.
        self.client._imap.state = "SELECTED"
        self.client._imap.is_readonly = readonly
        r = parse_select(untagged)
        if r.uidvalidity is None:
            raise MailError("protocol", f"{self.endpoint.address} sent no UIDVALIDITY for {folder!r}.")
        highest = None if (r.nomodseq or not self.condstore) else r.highestmodseq
        matched = use_qresync and qresync is not None and qresync[0] == r.uidvalidity and highest is not None
        self.selected = FolderState(
            name=folder,
            uidvalidity=r.uidvalidity,
            uidnext=r.uidnext,
            exists=r.exists,
            highestmodseq=highest,
            vanished=r.vanished if matched else (),
            changed=r.changed if matched else (),
            qresync=matched,
        )
        return self.selected

    def _require_selected(self) -> FolderState:
        if self.selected is None:
            raise MailError("protocol", "No folder is selected.")
        return self.selected

    # -- reading

    def uid_search_all(self) -> tuple[int, ...]:
        """Every UID in the selected folder (ESEARCH when offered: RFC 4731)."""
        self._require_selected()
        if self.has("ESEARCH"):
            untagged, _ = self._command(b"UID SEARCH RETURN (ALL) ALL", "listing messages")
            found = parse_esearch_all(untagged)
            if found is not None:
                return found
        untagged, _ = self._command(b"UID SEARCH ALL", "listing messages")
        return parse_search(untagged)

    def fetch_headers(
        self, uids: Iterable[int], *, batch: int = 500, full: bool = False
    ) -> Iterator[list[MessageData]]:
        """Yield batches of messages: flags, INTERNALDATE, size, MODSEQ and the header (or full) bytes.

        BODY.PEEK keeps \\Seen unchanged (RFC 3501 6.4.5). UIDs that no longer exist are skipped.
        """
        self._require_selected()
        if not 0 < batch <= 10_000:
            raise ValueError("batch must be between 1 and 10000")
        section = b"BODY.PEEK[]" if full else b"BODY.PEEK[HEADER]"
        items = b"UID FLAGS INTERNALDATE RFC822.SIZE " + section + (b" MODSEQ" if self.condstore else b"")
        key = b"BODY[]" if full else b"BODY[HEADER]"
        ordered = sorted(set(uids))
        for i in range(0, len(ordered), batch):
            chunk = ordered[i : i + batch]
            line = b"UID FETCH " + format_sequence_set(chunk).encode() + b" (" + items + b")"
            untagged, _ = self._command(line, "fetching messages")
            wanted = set(chunk)
            fast: dict[int, MessageData] = {}
            slow: list[bytes] = []
            for r in untagged:
                if not _is_fetch(r):
                    continue
                found = parse_fetch_message(r, key)
                if found is not None and found.uid in wanted:
                    fast[found.uid] = found
                else:
                    slow.append(r)
            del untagged
            with self._errors("reading messages"):
                fetched = parse_fetch(slow) if slow else {}
            out = []
            for uid in sorted(set(fetched) | set(fast)):
                if uid in fast:
                    out.append(fast[uid])
                    continue
                item = fetched[uid]
                if uid not in wanted or key not in item:
                    continue  # unsolicited FETCH (e.g. a flag change by another client)
                out.append(
                    MessageData(
                        uid=uid,
                        flags=message_flags(item.get(b"FLAGS", ())),  # type: ignore[arg-type]
                        internaldate=item.get(b"INTERNALDATE"),  # type: ignore[arg-type]
                        size=int(item.get(b"RFC822.SIZE", 0)),  # type: ignore[arg-type]
                        modseq=modseq_of(item.get(b"MODSEQ")),
                        raw=bytes(item[key] or b""),  # type: ignore[arg-type]
                    )
                )
            yield out

    def fetch_sizes(self, uids: Iterable[int], *, batch: int = 10_000) -> list[tuple[int, int]]:
        """Return (uid, RFC822.SIZE) for UIDS in the selected folder, so callers can batch by bytes."""
        self._require_selected()
        ordered = sorted(set(uids))
        out: list[tuple[int, int]] = []
        for i in range(0, len(ordered), batch):
            chunk = ordered[i : i + batch]
            line = b"UID FETCH " + format_sequence_set(chunk).encode() + b" (UID RFC822.SIZE)"
            untagged, _ = self._command(line, "listing message sizes")
            with self._errors("reading message sizes"):
                sizes = parse_sizes(r for r in untagged if _is_fetch(r))
            wanted = set(chunk)
            out.extend((uid, size) for uid, size in sorted(sizes.items()) if uid in wanted)
        return out

    def fetch_flags(self, uids: Iterable[int], *, batch: int = 10_000) -> tuple[FlagChange, ...]:
        """Return the current flags of UIDS (the reconcile path for servers without CONDSTORE)."""
        self._require_selected()
        ordered = sorted(set(uids))
        out: list[FlagChange] = []
        items = b"(UID FLAGS MODSEQ)" if self.condstore else b"(UID FLAGS)"
        for i in range(0, len(ordered), batch):
            chunk = ordered[i : i + batch]
            untagged, _ = self._command(
                b"UID FETCH " + format_sequence_set(chunk).encode() + b" " + items, "fetching flags"
            )
            with self._errors("reading flags"):
                fetched = parse_fetch(r for r in untagged if _is_fetch(r))
            wanted = set(chunk)
            out.extend(c for c in flag_changes(fetched) if c.uid in wanted)
        return tuple(out)

    def folder_status(self, folder: str) -> FolderState:
        """STATUS a folder without selecting it (RFC 3501 6.3.10): UIDVALIDITY, UIDNEXT, MESSAGES."""
        items = [b"MESSAGES", b"UIDNEXT", b"UIDVALIDITY"]
        if self.condstore:
            items.append(b"HIGHESTMODSEQ")
        with self._errors(f"asking the status of {folder!r}"):
            st = self.client.folder_status(folder, items)
        return FolderState(
            name=folder,
            uidvalidity=int(st.get(b"UIDVALIDITY", 0)),
            uidnext=int(st[b"UIDNEXT"]) if b"UIDNEXT" in st else None,
            exists=int(st.get(b"MESSAGES", 0)),
            highestmodseq=int(st[b"HIGHESTMODSEQ"]) if b"HIGHESTMODSEQ" in st else None,
        )

    def changed_since(self, modseq: int) -> tuple[FlagChange, ...]:
        """Flags of messages changed since modseq in the selected folder (RFC 7162 3.1.4.1)."""
        self._require_selected()
        if not self.condstore:
            raise MailError("capability", f"{self.endpoint.address} does not support CONDSTORE.")
        untagged, _ = self._command(
            b"UID FETCH 1:* (UID FLAGS) (CHANGEDSINCE %d)" % modseq, "fetching flag changes"
        )
        with self._errors("reading flag changes"):
            return flag_changes(parse_fetch(r for r in untagged if _is_fetch(r)))

    def noop(self) -> None:
        with self._errors("checking the connection"):
            self.client.noop()

    # -- changing

    def add_flags(self, uids: Iterable[int], flags: Iterable[str]) -> None:
        self._store(uids, b"+FLAGS.SILENT", flags)

    def remove_flags(self, uids: Iterable[int], flags: Iterable[str]) -> None:
        self._store(uids, b"-FLAGS.SILENT", flags)

    def set_flags(self, uids: Iterable[int], flags: Iterable[str]) -> None:
        self._store(uids, b"FLAGS.SILENT", flags)

    def _store(self, uids: Iterable[int], action: bytes, flags: Iterable[str]) -> None:
        self._require_selected()
        uid_list = sorted(set(uids))
        if not uid_list:
            return
        flag_list = b" ".join(f.encode("ascii") for f in flags)
        for i in range(0, len(uid_list), 10_000):
            chunk = format_sequence_set(uid_list[i : i + 10_000]).encode()
            self._command(b"UID STORE " + chunk + b" " + action + b" (" + flag_list + b")", "changing flags")

    def move(self, uids: Iterable[int], folder: str) -> dict[int, int]:
        """Move messages to folder; return old UID -> new UID when the server says (UIDPLUS).

        MOVE (RFC 6851) when offered, else COPY + \\Deleted + UID EXPUNGE (RFC 4315 2.1).
        """
        self._require_selected()
        uid_list = sorted(set(uids))
        if not uid_list:
            return {}
        uid_set = format_sequence_set(uid_list).encode()
        if self.has("MOVE"):
            untagged, status = self._command(
                b"UID MOVE " + uid_set + b" " + self._quote(folder), "moving messages"
            )
            # RFC 6851 4.3: COPYUID comes in an untagged OK before the expunges.
            for text in [*untagged, status]:
                mapping = parse_uid_mapping(text)
                if mapping:
                    return mapping
            return {}
        _, status = self._command(b"UID COPY " + uid_set + b" " + self._quote(folder), "copying messages")
        mapping = parse_uid_mapping(status)
        self.expunge_uids(uid_list)
        return mapping

    def expunge_uids(self, uids: Iterable[int]) -> None:
        """Remove exactly these messages: \\Deleted, then UID EXPUNGE (RFC 4315 2.1).

        Without UIDPLUS, plain EXPUNGE also removes other messages already marked \\Deleted.
        """
        uid_list = sorted(set(uids))
        if not uid_list:
            return
        self.add_flags(uid_list, ["\\Deleted"])
        if self.has("UIDPLUS"):
            for i in range(0, len(uid_list), 10_000):
                chunk = format_sequence_set(uid_list[i : i + 10_000]).encode()
                self._command(b"UID EXPUNGE " + chunk, "expunging messages")
        else:
            self._command(b"EXPUNGE", "expunging messages")

    def append(
        self, folder: str, raw: bytes, flags: Iterable[str] = (), date: datetime | None = None
    ) -> int | None:
        """Store raw in folder; return its UID from APPENDUID (RFC 4315 3), None without UIDPLUS."""
        if date is not None and date.tzinfo is None:
            raise ValueError("append date must be timezone-aware")
        with self._errors(f"appending to {folder!r}"):
            status = self.client.append(folder, raw, flags=tuple(flags), msg_time=date)
        if not self.has("UIDPLUS"):
            return None
        found = parse_appenduid(status if isinstance(status, bytes) else str(status).encode())
        return found[1] if found else None

    # -- IDLE (RFC 2177), for the watcher service

    def idle_start(self) -> None:
        """Enter IDLE on the selected folder; the server then pushes changes."""
        self._require_selected()
        if not self.has("IDLE"):
            raise MailError("capability", f"{self.endpoint.address} does not support IDLE.")
        with self._errors("starting IDLE"):
            self.client.idle()
        self._idling = True

    def idle_check(self, timeout: float) -> bool:
        """Wait up to timeout seconds; return True if the server reported a change in the folder."""
        with self._errors("waiting in IDLE"):
            responses = self.client.idle_check(timeout=timeout)
        return any(_is_change(r) for r in responses)

    def idle_done(self) -> bool:
        """Leave IDLE; return True if changes arrived since the last check. Re-IDLE before 29 min."""
        with self._errors("ending IDLE"):
            _text, responses = self.client.idle_done()
        self._idling = False
        return any(_is_change(r) for r in responses)


def _folders(rows: list[tuple[str, str | None, tuple[str, ...]]], subscribed: set[str]) -> list[Folder]:
    roles = detect_special_use(rows)
    return [
        Folder(
            name=name, delimiter=d, flags=flags, special_use=roles.get(name), subscribed=name in subscribed
        )
        for name, d, flags in rows
    ]


def _is_fetch(payload: bytes) -> bool:
    m = UNTAGGED_NUM.match(payload[:40])
    return bool(m and m.group(2).upper() == b"FETCH")


def _is_change(response: tuple) -> bool:
    return any(isinstance(x, bytes) and x.upper() in _CHANGE_RESPONSES for x in response[:2])
