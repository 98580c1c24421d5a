"""Turn fetched raw messages into cache rows: parse, thread, and store in bulk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Count, Q

from webmail.mail import blobs
from webmail.mail.conversations import Threadable, assign_threads
from webmail.mail.models import Folder, Message, MessageBody
from webmail.mailcore.addresses import Address
from webmail.mailcore.mime import ParsedMessage, parse_message

SYSTEM_FLAGS = {"\\seen", "\\flagged", "\\answered", "\\draft", "\\deleted", "\\recent"}


@dataclass(frozen=True)
class Incoming:
    """A message to store: its raw bytes and what the server says about it."""

    uid: int
    raw: bytes
    flags: tuple[str, ...] = ()
    internal_date: datetime | None = None
    modseq: int | None = None


def clean(value: str | None, limit: int | None = None) -> str:
    """Return VALUE safe for any database: no NUL, no lone surrogates, at most LIMIT characters."""
    if not value:
        return ""
    text = value.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text[:limit] if limit else text


def addresses(items: Sequence[Address]) -> list[list[str]]:
    return [[clean(a.name, 300), clean(a.email, 320)] for a in items[:500]]


def flag_fields(flags: Sequence[str]) -> dict[str, object]:
    """Return the Message fields for an IMAP flag list (system flags as booleans, the rest keywords)."""
    lowered = {f.lower() for f in flags}
    return {
        "seen": "\\seen" in lowered,
        "flagged": "\\flagged" in lowered,
        "answered": "\\answered" in lowered,
        "draft": "\\draft" in lowered,
        "deleted": "\\deleted" in lowered,
        "keywords": sorted({clean(f, 100) for f in flags if f.lower() not in SYSTEM_FLAGS}),
    }


def build_message(folder: Folder, item: Incoming, parsed: ParsedMessage) -> Message:
    internal = item.internal_date or parsed.date or datetime.now(UTC)
    if internal.tzinfo is None:
        internal = internal.replace(tzinfo=UTC)
    first_from = parsed.from_[0] if parsed.from_ else None
    return Message(
        account_id=folder.account_id,
        folder=folder,
        uid=item.uid,
        modseq=item.modseq,
        internal_date=internal,
        size=len(item.raw),
        date=parsed.date or internal,
        subject=clean(parsed.subject, 2000),
        from_name=clean(first_from.name if first_from else "", 300),
        from_email=clean(first_from.email if first_from else "", 320),
        sender=addresses(parsed.sender),
        reply_to=addresses(parsed.reply_to),
        to=addresses(parsed.to),
        cc=addresses(parsed.cc),
        bcc=addresses(parsed.bcc),
        message_id=clean(parsed.message_id, 500),
        in_reply_to=clean(parsed.in_reply_to, 500),
        references=clean(" ".join(parsed.references), 20000),
        snippet=clean(parsed.snippet, 300),
        has_attachments=parsed.has_attachments,
        parse_problems=[clean(p, 200) for p in parsed.problems[:20]],
        **flag_fields(item.flags),
    )


def store_messages(folder: Folder, items: Sequence[Incoming]) -> list[Message]:
    """Store ITEMS in FOLDER (skipping UIDs already cached) and return the new rows.

    Must run inside a transaction; the caller records its progress (Folder.synced_uid) in the same one.
    """
    if not items:
        return []
    present = set(
        Message.objects.filter(folder=folder, uid__in=[i.uid for i in items]).values_list("uid", flat=True)
    )
    todo = [i for i in items if i.uid not in present]
    parsed = [parse_message(i.raw) for i in todo]
    rows = [build_message(folder, item, p) for item, p in zip(todo, parsed, strict=True)]
    threadables = [
        Threadable(m.message_id, m.in_reply_to, m.references.split(), m.subject, m.date) for m in rows
    ]
    assign_threads(folder.account_id, threadables)
    for row, t in zip(rows, threadables, strict=True):
        row.thread = t.thread
    Message.objects.bulk_create(rows, batch_size=500)
    MessageBody.objects.bulk_create(
        [
            MessageBody(message_id=row.pk, raw_compressed=blobs.pack(item.raw), text=clean(p.text))
            for row, item, p in zip(rows, todo, parsed, strict=True)
        ],
        batch_size=200,
    )
    return rows


def refresh_counts(folder: Folder) -> None:
    """Recompute the folder's total and unread counts from the cache."""
    counts = Message.objects.filter(folder=folder).aggregate(
        total=Count("id"), unread=Count("id", filter=Q(seen=False, deleted=False))
    )
    folder.total_count, folder.unread_count = counts["total"], counts["unread"]
    Folder.objects.filter(pk=folder.pk).update(total_count=counts["total"], unread_count=counts["unread"])
