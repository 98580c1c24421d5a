"""Turning fetched bytes into cache rows: slim parsing, sane dates, clean text, no duplicates."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from tests.accounts.factories import make_account
from webmail.mail import blobs
from webmail.mail.actions.store import Incoming, store_messages
from webmail.mail.models import Folder, Message
from webmail.mailcore.mime import parse_message
from webmail.mailcore.summary import clean, slim_for_parsing

pytestmark = [pytest.mark.django_db]


def _with_attachment(kind: str = "application/pdf", encoding: str = "base64") -> bytes:
    blob = base64.encodebytes(bytes(range(256)) * 400).replace(b"\n", b"\r\n")
    return (
        b"From: a@example.test\r\nSubject: Report\r\nMessage-ID: <r@x>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nSee the report attached.\r\n--b\r\n"
        + f"Content-Type: {kind}; name=r.pdf\r\nContent-Disposition: attachment; filename=r.pdf\r\n".encode()
        + f"Content-Transfer-Encoding: {encoding}\r\n\r\n".encode()
        + blob
        + b"--b--\r\n"
    )


def test_slim_parsing_cuts_big_attachments_but_keeps_what_the_cache_needs():
    raw = _with_attachment()
    slim = slim_for_parsing(raw)
    assert len(slim) < len(raw) // 10
    full, cut = parse_message(raw), parse_message(slim)
    assert (cut.text, cut.snippet, cut.has_attachments, cut.subject, cut.problems) == (
        full.text, full.snippet, full.has_attachments, full.subject, full.problems
    )  # fmt: skip


def test_slim_parsing_keeps_text_parts_and_small_messages_whole():
    as_text = _with_attachment(kind="text/html")
    assert slim_for_parsing(as_text) == as_text
    small = b"Subject: x\r\n\r\nhello\r\n"
    assert slim_for_parsing(small) is small


def test_clean_removes_nul_and_lone_surrogates():
    assert clean("a\x00b\udcff", 10) == "ab?"
    assert clean(None) == ""


def test_store_keeps_raw_bytes_fixes_absurd_dates_and_skips_known_uids(alice):
    account = make_account(alice)
    folder = Folder.objects.create(account=account, name="INBOX")
    raw = b"Subject: old\r\nDate: Tue, 1 Jan 1850 00:00:00 +1400\r\nMessage-ID: <x@y>\r\n\r\nbody\x00\r\n"
    when = datetime(2024, 5, 1, tzinfo=UTC)

    [row] = store_messages(folder, [Incoming(uid=3, raw=raw, flags=("\\Seen", "$X"), internal_date=when)])

    assert row.date == when and row.internal_date == when
    assert blobs.unpack(Message.objects.get(pk=row.pk).body.raw_compressed) == raw
    assert (row.seen, row.keywords) == (True, ["$X"])
    assert store_messages(folder, [Incoming(uid=3, raw=raw)]) == []
    assert Message.objects.filter(folder=folder).count() == 1


def test_bulk_insert_values_are_what_django_would_store():
    """insert_rows prepares JSON, datetimes and bytes itself on SQLite: the same values as Django."""
    from datetime import timedelta, timezone

    from django.db import connection

    from webmail.mail.actions.store import _preparer
    from webmail.mail.models import MessageBody

    samples = {
        Message._meta.get_field("to"): [[["Ann", "ann@example.test"]], [], [["é\u2603", "x@y"]]],
        Message._meta.get_field("date"): [
            datetime(2024, 5, 1, 12, 30, tzinfo=UTC),
            datetime(2024, 5, 1, 12, 30, 0, 123456, tzinfo=timezone(timedelta(hours=-7))),
            None,
        ],
        MessageBody._meta.get_field("raw_compressed"): [b"\x00\x01raw", b""],
    }
    for field, values in samples.items():
        prep = _preparer(field)
        for value in values:
            ours, django = prep(value), field.get_db_prep_save(value, connection)
            if isinstance(django, memoryview):
                django = bytes(django)
            if hasattr(django, "obj"):  # psycopg's Jsonb wrapper (PostgreSQL: Django's own route)
                ours, django = ours.obj, django.obj
            assert ours == django, (field.name, value)
