"""Export a person's cached mail: one mbox file per folder (mboxrd quoting), in a zip, streamed.

mboxrd: every line matching ^>*From  gets one more ">" on export, so an importer that removes
one ">" from such lines gets the exact message bytes back (with LF line ends, as mbox stores them).
"""

from __future__ import annotations

import re
import time
import zipfile
from collections.abc import Iterator

from django.contrib.auth.models import AbstractBaseUser

from webmail.mail.blobs import unpack
from webmail.mail.models import Folder, Message, MessageBody

_FROM_LINE = re.compile(rb"^(>*From )", re.MULTILINE)
_UNSAFE = re.compile(r"[^\w.@+-]+")


class _Sink:
    """A write-only, unseekable file for ZipFile: what is written is collected for streaming."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.offset = 0

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.chunks = b"".join(self.chunks), []
        return data


def mbox_entry(raw: bytes, sender: str, when: float) -> bytes:
    """Return one mbox entry: the From_ line, the quoted message with LF line ends, a blank line."""
    body = raw.replace(b"\r\n", b"\n")
    body = _FROM_LINE.sub(rb">\1", body)
    if not body.endswith(b"\n"):
        body += b"\n"
    envelope = (sender or "MAILER-DAEMON").replace(" ", "") or "MAILER-DAEMON"
    return (
        b"From "
        + envelope.encode("ascii", "replace")
        + b" "
        + time.asctime(time.gmtime(when)).encode()
        + b"\n"
        + body
        + b"\n"
    )


def unquote_mboxrd(body: bytes) -> bytes:
    """Undo mboxrd quoting of one message read back from an mbox (for importers and tests)."""
    return re.sub(rb"^>(>*From )", rb"\1", body, flags=re.MULTILINE)


def folder_file_name(folder: Folder) -> str:
    account = _UNSAFE.sub("_", folder.account.name).strip("_") or "account"
    name = _UNSAFE.sub("_", folder.name.replace(folder.delimiter or "/", "/")).strip("_") or "folder"
    return f"{account}-{folder.account_id}/{name.replace('/', '_')}-{folder.pk}.mbox"


def stream_export(user: AbstractBaseUser) -> Iterator[bytes]:
    """Yield a zip archive of USER's cached mail, a folder at a time, without holding it in memory."""
    sink = _Sink()
    skipped = 0
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        folders = (
            Folder.objects.filter(account__user_id=user.pk)
            .select_related("account")
            .order_by("account_id", "name")
        )
        for folder in folders:
            with archive.open(folder_file_name(folder), mode="w", force_zip64=True) as entry:
                messages = (
                    Message.objects.filter(folder=folder)
                    .order_by("uid")
                    .values_list("pk", "from_email", "internal_date")
                )
                for batch in _batches(messages.iterator(chunk_size=200), 200):
                    bodies = dict(
                        MessageBody.objects.filter(message_id__in=[pk for pk, _, _ in batch]).values_list(
                            "message_id", "raw_compressed"
                        )
                    )
                    for pk, sender, when in batch:
                        if pk not in bodies:
                            skipped += 1
                            continue
                        entry.write(mbox_entry(unpack(bodies[pk]), sender, when.timestamp()))
                    yield sink.take()
            yield sink.take()
        note = "Exported mail: one mbox file (mboxrd) per folder.\n"
        if skipped:
            note += f"{skipped} message(s) had no downloaded content and were left out.\n"
        archive.writestr("README.txt", note)
    yield sink.take()


def _batches(items: Iterator, size: int) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
