"""A sync that finds nothing new costs a fixed, small number of round trips and queries."""

from __future__ import annotations

import imaplib

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.mail.conftest import append_many, message
from webmail.mail.actions.sync import do_sync_account

pytestmark = [pytest.mark.django_db, pytest.mark.mailstack]


@pytest.fixture
def wire(monkeypatch):
    """Record every command line the IMAP client writes (imaplib's and ImapSession's alike)."""
    sent: list[bytes] = []
    original = imaplib.IMAP4.send

    def recording(self, data):
        sent.extend(line.split(b" ", 1)[1] for line in data.split(b"\r\n") if b" " in line)
        return original(self, data)

    monkeypatch.setattr(imaplib.IMAP4, "send", recording)
    return sent


def test_no_change_resync_is_login_enable_one_list_and_logout(account, server, wire):
    """LOGOUT is sent but its answer is not waited for (RFC 3501 6.1.3: nothing in it is needed)."""
    append_many(server, "INBOX", [message(i) for i in range(20)])
    do_sync_account(account.pk)
    wire.clear()

    with CaptureQueriesContext(connection) as queries:
        report = do_sync_account(account.pk)

    # The greeting and the LOGIN answer carry the capabilities: no CAPABILITY command.
    verbs = [line.split(b" ", 1)[0].upper() for line in wire]
    assert verbs == [b"LOGIN", b"ENABLE", b"LIST", b"LOGOUT"], wire
    assert (report.new, report.changed, report.expunged, report.error) == (0, 0, 0, "")
    # Account, sync state, the owner's quota (2), pending changes, folders, and the bookkeeping.
    assert len(queries) <= 12, [q["sql"] for q in queries]
