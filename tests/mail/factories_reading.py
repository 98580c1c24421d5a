"""Build cached folders and messages for reading tests, the way sync stores them."""

from __future__ import annotations

import http.server
import itertools
import threading
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

from django.db import transaction

from tests.accounts.factories import make_account
from webmail.mail import fulltext
from webmail.mail.actions.store import Incoming, refresh_counts, store_messages
from webmail.mail.models import Folder, Message, SpecialUse

_uids = itertools.count(1)

STANDARD_FOLDERS = [
    ("INBOX", SpecialUse.INBOX),
    ("Archive", SpecialUse.ARCHIVE),
    ("Drafts", SpecialUse.DRAFTS),
    ("Junk", SpecialUse.JUNK),
    ("Sent", SpecialUse.SENT),
    ("Trash", SpecialUse.TRASH),
]


def make_mailbox(user, **account_fields) -> dict[str, Folder]:
    """Create a mail account for USER with the standard folders; return them by special use."""
    account = make_account(user, **account_fields)
    folders = {}
    for name, use in STANDARD_FOLDERS:
        folders[use or name] = Folder.objects.create(
            account=account, name=name, delimiter="/", special_use=use
        )
    return folders


def build_raw(
    *,
    subject: str = "Hello",
    sender: str = "Carol Example <carol@example.test>",
    to: str = "alice@example.test",
    cc: str | None = None,
    reply_to: str | None = None,
    date: datetime | None = None,
    text: str | None = "Hello there.\n",
    html: str | None = None,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    attachments: list[tuple[str, str, bytes]] = (),
    headers: dict[str, str] | None = None,
) -> bytes:
    """Return an RFC 5322 message built with the standard library."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date or datetime(2024, 3, 1, 10, 0, tzinfo=UTC))
    msg["Message-ID"] = f"<{message_id or f'msg{next(_uids)}@example.test'}>"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
        msg["References"] = f"<{in_reply_to}>"
    for key, value in (headers or {}).items():
        msg[key] = value
    if text is not None:
        msg.set_content(text)
    if html is not None:
        if text is None:
            msg.set_content(html, subtype="html")
        else:
            msg.add_alternative(html, subtype="html")
    for filename, ctype, data in attachments:
        maintype, subtype = ctype.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def store_raw(folder: Folder, raw: bytes, *, flags: tuple[str, ...] = (), uid: int | None = None) -> Message:
    """Store RAW in FOLDER like a sync would (and index it, as the task started then would)."""
    with transaction.atomic():
        (row,) = store_messages(folder, [Incoming(uid or next(_uids), raw, flags)])
        refresh_counts(folder)
    fulltext.index_pending()
    return Message.objects.get(pk=row.pk)


def empty_fulltext_queue() -> None:
    """Forget queued ids that earlier tests left (on PostgreSQL, the flush between transactional
    tests is a TRUNCATE, which fires no trigger), so a test can count the queue exactly."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM mail_fts_pending")


def make_message(folder: Folder, *, flags: tuple[str, ...] = (), **fields) -> Message:
    """Store a message built from FIELDS (see build_raw) in FOLDER."""
    return store_raw(folder, build_raw(**fields), flags=flags)


# A valid 1x1 PNG (red), so browsers render what the canary serves.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
    "0000000c4944415408d763f8cfc000000301010018dd8db00000000049454e44ae426082"
)


class Canary:
    """An HTTP server on 127.0.0.1 that records every request it gets."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        canary = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                canary.hits.append(self.path)
                canary.headers = dict(self.headers)
                body, ctype = {
                    "/big.png": (PNG + b"0" * (6 * 1024 * 1024), "image/png"),
                    "/page.html": (b"<script>alert(1)</script>", "image/png"),
                    "/svg": (b"<svg onload='alert(1)'/>", "image/svg+xml"),
                }.get(self.path.split("?")[0], (PNG, "image/png"))
                if self.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", "http://10.0.0.1/x.png")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Set-Cookie", "tracker=1")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
