"""Fixtures for sync tests: an IMAP account on the real mail stack and cache-versus-server checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from imapclient import IMAPClient

from tests.accounts.factories import make_account
from tests.mailstack.stack import MailStack, MailUser
from webmail.mail import blobs
from webmail.mail.locks import redis_client
from webmail.mail.models import Folder, Message


@pytest.fixture
def remote_user(mail_user) -> MailUser:
    """A fresh mailbox on the stack."""
    return mail_user("sync")


@pytest.fixture
def account(alice, remote_user, mailstack, mail_settings):
    """Alice's IMAP account on the stack (implicit TLS), with its lock cleared."""
    acc = make_account(
        alice,
        password=remote_user.password,
        email=remote_user.address,
        incoming_host="127.0.0.1",
        incoming_port=mailstack.imaps_port,
        incoming_security="tls",
        incoming_username=remote_user.address,
    )
    redis_client().delete(f"webmail:lock:account:{acc.pk}", f"webmail:sync-again:{acc.pk}")
    return acc


@pytest.fixture
def server(mailstack, remote_user) -> Iterator[IMAPClient]:
    """Another client of the same mailbox (the "other device"), for changes and assertions."""
    client = mailstack.imap_client(remote_user)
    yield client
    try:
        client.logout()
    except Exception:
        pass


def message(n: int, *, subject: str | None = None, size: int = 0, **headers: str) -> bytes:
    """Return a small RFC 5322 message numbered N (Message-ID <m{n}@test>), padded to about SIZE bytes."""
    lines = [
        f"From: Sender {n} <sender{n}@example.org>",
        "To: someone@example.test",
        f"Subject: {subject if subject is not None else f'Message {n}'}",
        f"Date: Mon, 1 Jan 2024 10:{n // 60 % 60:02d}:{n % 60:02d} +0000",
        f"Message-ID: <m{n}@test>",
    ]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    body = f"Body of message {n}.\r\n"
    if size > len(body):
        body += ("x" * 75 + "\r\n") * ((size - len(body)) // 77)
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def append_many(client: IMAPClient, folder: str, raws: list[bytes], flags: tuple = ()) -> None:
    """Append RAWS to FOLDER in MULTIAPPEND batches."""
    for i in range(0, len(raws), 500):
        client.multiappend(folder, [{"msg": r, "flags": flags} for r in raws[i : i + 500]])


def server_state(client: IMAPClient, folder: str) -> dict[int, tuple[frozenset[str], str]]:
    """Return {uid: (flags, Message-ID)} of FOLDER as the server holds it."""
    client.select_folder(folder, readonly=True)
    uids = client.search("ALL")
    out: dict[int, tuple[frozenset[str], str]] = {}
    for i in range(0, len(uids), 5000):
        chunk = uids[i : i + 5000]
        for uid, data in client.fetch(chunk, ["FLAGS", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]).items():
            flags = frozenset(f.decode().lower() for f in data[b"FLAGS"] if f.lower() != b"\\recent")
            header = data[b"BODY[HEADER.FIELDS (MESSAGE-ID)]"].decode("utf-8", "replace")
            mid = header.partition(":")[2].strip()
            out[uid] = (flags, mid)
    return out


def _cache_flags(m: Message) -> frozenset[str]:
    names = {"seen": "\\seen", "flagged": "\\flagged", "answered": "\\answered", "draft": "\\draft"}
    flags = {f for attr, f in names.items() if getattr(m, attr)}
    if m.deleted:
        flags.add("\\deleted")
    return frozenset(flags | {k.lower() for k in m.keywords})


def cache_state(account, folder: str) -> dict[int, tuple[frozenset[str], str]]:
    """Return {uid: (flags, Message-ID)} of FOLDER as the cache holds it (no duplicates allowed)."""
    rows = list(Message.objects.filter(account=account, folder__name=folder))
    uids = [m.uid for m in rows]
    assert len(uids) == len(set(uids)), "duplicate UIDs in the cache"
    return {m.uid: (_cache_flags(m), m.message_id) for m in rows}


def assert_cache_matches(account, client: IMAPClient, folders: list[str] | None = None) -> None:
    """Assert that every folder (or FOLDERS) holds in the cache exactly what the server holds."""
    names = folders or [n for flags, _d, n in client.list_folders() if b"\\Noselect" not in flags]
    for name in names:
        server = server_state(client, name)
        cached = cache_state(account, name)
        assert set(cached) == set(server), f"{name}: UIDs differ"
        for uid in server:
            assert cached[uid][0] == server[uid][0], f"{name} uid {uid}: flags differ"
            # The cache stores the bare id; the header carries angle brackets.
            assert cached[uid][1] in server[uid][1] or not server[uid][1], f"{name} uid {uid}: Message-ID"
        folder = Folder.objects.get(account=account, name=name)
        assert folder.total_count == len(server), f"{name}: total_count"
        status = client.folder_status(name, [b"UIDVALIDITY"])
        assert folder.uidvalidity == status[b"UIDVALIDITY"]


def raw_of(account, folder: str, uid: int) -> bytes:
    m = Message.objects.select_related("body").get(account=account, folder__name=folder, uid=uid)
    return blobs.unpack(m.body.raw_compressed)


@pytest.fixture
def command_counter(monkeypatch) -> Callable[[], list[bytes]]:
    """Record every command ImapSession sends through _command; return a function giving the list."""
    from webmail.mailcore.imap import ImapSession

    sent: list[bytes] = []
    original = ImapSession._command

    def counting(self, line, during):
        sent.append(line)
        return original(self, line, during)

    monkeypatch.setattr(ImapSession, "_command", counting)
    return lambda: sent


__all__ = ["MailStack"]


def maildir_put(
    mailstack: MailStack, user: MailUser, raw: bytes, folder: str = "INBOX", flags: str = ""
) -> None:
    """Write RAW straight into USER's Maildir (for bytes APPEND refuses, such as an empty message)."""
    import os
    import secrets
    import time
    from pathlib import Path

    root = Path(mailstack.maildir_root) / user.address / "Maildir"
    base = root if folder == "INBOX" else root / ("." + folder.replace("/", "."))
    uid_gid = os.stat(mailstack.maildir_root)
    for sub in ("cur", "new", "tmp"):
        (base / sub).mkdir(parents=True, exist_ok=True)
        os.chown(base / sub, uid_gid.st_uid, uid_gid.st_gid)
    path = base / "cur" / f"{int(time.time())}.{secrets.token_hex(8)}.stack:2,{flags}"
    path.write_bytes(raw)
    os.chown(path, uid_gid.st_uid, uid_gid.st_gid)
