"""ImapSession against the real Dovecot, and its response parsers against literal bytes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from webmail.mailcore.errors import MailError
from webmail.mailcore.imap import ImapSession
from webmail.mailcore.imapwire import (
    detect_special_use,
    format_sequence_set,
    parse_appenduid,
    parse_esearch_all,
    parse_fetch,
    parse_fetch_message,
    parse_list_status,
    parse_search,
    parse_select,
    parse_sequence_set,
    parse_sizes,
    parse_uid_mapping,
    quote_mailbox,
    split_literals,
)
from webmail.mailcore.types import FlagChange


def message(n: int, subject: str | None = None) -> bytes:
    return (
        f"From: Sender <sender@example.org>\r\nTo: someone@example.test\r\n"
        f"Subject: {subject or f'message {n}'}\r\nMessage-ID: <m{n}-{time.time_ns()}@example.org>\r\n\r\n"
        f"Body of message {n}.\r\n"
    ).encode()


# -- parsers, with bytes as servers send them


def test_parse_select_reads_a_qresync_answer():
    # RFC 7162 3.2.5.1 example, as Dovecot sends it (payloads after "* ").
    responses = [
        rb"FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Forwarded)",
        rb"OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Forwarded \*)] Flags permitted.",
        b"10 EXISTS",
        b"0 RECENT",
        b"OK [UIDVALIDITY 67890007] UIDs valid",
        b"OK [UIDNEXT 600] Predicted next UID",
        b"OK [HIGHESTMODSEQ 90060115205545359] Highest",
        b"VANISHED (EARLIER) 41,43:116,118,120:211,214:540",
        rb"49 FETCH (UID 117 FLAGS (\Seen \Answered) MODSEQ (90060115194045001))",
        rb"50 FETCH (UID 119 FLAGS (\Draft $Forwarded) MODSEQ (90060115194045308))",
    ]
    r = parse_select(responses)
    assert (r.exists, r.uidvalidity, r.uidnext, r.highestmodseq) == (10, 67890007, 600, 90060115205545359)
    assert r.flags[:2] == ("\\Answered", "\\Flagged")
    assert "\\*" in r.permanent_flags
    assert r.vanished[:3] == (41, 43, 44)
    assert 117 not in r.vanished and 540 in r.vanished and 541 not in r.vanished
    assert len(r.vanished) == 1 + 74 + 1 + 92 + 327
    assert r.changed == (
        FlagChange(uid=117, flags=("\\Seen", "\\Answered"), modseq=90060115194045001),
        FlagChange(uid=119, flags=("\\Draft", "$Forwarded"), modseq=90060115194045308),
    )


def test_parse_select_notes_a_folder_without_modseqs():
    r = parse_select(
        [b"3 EXISTS", b"OK [UIDVALIDITY 5] x", b"OK [NOMODSEQ] Sorry, this mailbox format has no modseqs"]
    )
    assert r.nomodseq and r.highestmodseq is None and r.exists == 3


def test_vanished_ranges_are_clipped_at_uidnext():
    r = parse_select([b"OK [UIDNEXT 11] x", b"VANISHED (EARLIER) 1:4294967295"])
    assert r.vanished == tuple(range(1, 11))


def test_sequence_sets_expand_and_compress():
    assert parse_sequence_set(b"1:3,7,10:8") == (1, 2, 3, 7, 8, 9, 10)
    assert parse_sequence_set("5:*", max_uid=7) == (5, 6, 7)
    with pytest.raises(ValueError):
        parse_sequence_set("5:*")
    assert format_sequence_set([9, 1, 2, 3, 7, 8, 3]) == "1:3,7:9"
    assert format_sequence_set([4]) == "4"


def test_split_literals_gives_imaplibs_shape():
    resp = b"1 (UID 5 BODY[HEADER] {8}\r\nA: b\r\n\r\n FLAGS (\\Seen))"
    assert split_literals(resp) == [(b"1 (UID 5 BODY[HEADER] {8}", b"A: b\r\n\r\n"), b" FLAGS (\\Seen))"]


def test_parse_fetch_keys_by_uid_and_keeps_literals_and_time_zones():
    fetched = parse_fetch(
        [
            b'1 (UID 5 FLAGS (\\Seen) INTERNALDATE "17-Jul-2024 10:00:00 +0200" RFC822.SIZE 9 MODSEQ (12) '
            b"BODY[] {9}\r\nA: b\r\n\r\nx)",
            b"2 (FLAGS (\\Deleted))",  # no UID: dropped
        ]
    )
    assert list(fetched) == [5]
    item = fetched[5]
    assert item[b"BODY[]"] == b"A: b\r\n\r\nx"
    assert item[b"INTERNALDATE"] == datetime(2024, 7, 17, 8, 0, tzinfo=UTC)
    assert item[b"MODSEQ"] == (12,)


def test_parse_fetch_message_reads_the_sync_shape_quickly_and_exactly():
    body = b"A: b\r\n\r\n) {3}\r\nUID 99 FLAGS (\\Draft)"  # literal bytes that look like items
    response = (
        b'4 FETCH (UID 7 FLAGS (\\Seen $Label1 \\Recent) INTERNALDATE "17-Jul-2024 10:00:00 +0200" '
        b"RFC822.SIZE %d MODSEQ (12) BODY[] {%d}\r\n" % (len(body), len(body)) + body + b")"
    )
    m = parse_fetch_message(response, b"BODY[]")
    assert m is not None
    assert (m.uid, m.flags, m.size, m.modseq, m.raw) == (7, ("\\Seen", "$Label1"), len(body), 12, body)
    assert m.internaldate == datetime(2024, 7, 17, 10, 0, tzinfo=timezone(timedelta(hours=2)))
    # Items after the literal are read too.
    after = b"5 FETCH (BODY[] {1}\r\nx UID 8 FLAGS ())"
    assert parse_fetch_message(after, b"BODY[]").uid == 8


def test_parse_fetch_message_leaves_other_shapes_to_the_general_parser():
    assert parse_fetch_message(b"1 FETCH (UID 5 FLAGS (\\Seen))", b"BODY[]") is None
    assert parse_fetch_message(b"1 FETCH (UID 5 BODY[HEADER] {1}\r\nx)", b"BODY[]") is None
    assert parse_fetch_message(b"1 FETCH (FLAGS () BODY[] {1}\r\nx)", b"BODY[]") is None  # no UID
    two = b"1 FETCH (UID 5 BODY[] {1}\r\nx BODY[HEADER] {1}\r\ny)"
    assert parse_fetch_message(two, b"BODY[]") is None
    assert parse_fetch_message(b"1 FETCH (UID 5 BODY[] {9}\r\nshort)", b"BODY[]") is None


def test_parse_sizes_reads_the_listing_shape_and_leaves_others_to_the_general_parser():
    responses = [
        b"1 FETCH (UID 7 RFC822.SIZE 1234)",
        b"2 fetch (rfc822.size 55 uid 9)",  # either order, any case
        b"3 FETCH (UID 10 RFC822.SIZE 66 FLAGS (\\Seen))",  # more items: the general parser
        b"4 FETCH (FLAGS (\\Seen) UID 11)",  # an unsolicited flag change: no size, left out
        b"5 FETCH (RFC822.SIZE 12)",  # no UID: cannot be told apart from another message
    ]
    assert parse_sizes(responses) == {7: 1234, 9: 55, 10: 66}


def test_parse_list_status_reads_folders_subscriptions_and_status():
    # RFC 5819 2 example shapes, plus Dovecot's: quoted and literal names, NIL delimiter,
    # modified UTF-7, extended data after the name, a folder without STATUS (\Noselect).
    responses = [
        rb'LIST (\HasNoChildren \Subscribed) "." INBOX',
        b"STATUS INBOX (MESSAGES 17 UIDNEXT 18 UIDVALIDITY 1700000001 HIGHESTMODSEQ 42)",
        rb'LIST (\HasNoChildren \Subscribed \Sent) "." "Sent Items"',
        b'STATUS "Sent Items" (MESSAGES 0 UIDNEXT 1 UIDVALIDITY 1700000002 HIGHESTMODSEQ 1)',
        rb'LIST (\Noselect \HasChildren) "/" {8}' + b"\r\nProjects",
        rb'LIST (\HasNoChildren) "/" "Entw&APw-rfe/Quote\"d" ("CHILDINFO" ("SUBSCRIBED"))',
        b'STATUS "Entw&APw-rfe/Quote\\"d" (UIDVALIDITY 3 UIDNEXT 9 MESSAGES 8 HIGHESTMODSEQ 0)',
        rb"LIST (\HasNoChildren) NIL Flat",
        b"STATUS {4}\r\nFlat (MESSAGES 1 UIDNEXT 2 UIDVALIDITY 4)",
    ]
    listed, status = parse_list_status(responses)
    assert listed == [
        ("INBOX", ".", ("\\HasNoChildren", "\\Subscribed")),
        ("Sent Items", ".", ("\\HasNoChildren", "\\Subscribed", "\\Sent")),
        ("Projects", "/", ("\\Noselect", "\\HasChildren")),
        ('Entwürfe/Quote"d', "/", ("\\HasNoChildren",)),
        ("Flat", None, ("\\HasNoChildren",)),
    ]
    assert status["INBOX"] == {"MESSAGES": 17, "UIDNEXT": 18, "UIDVALIDITY": 1700000001, "HIGHESTMODSEQ": 42}
    assert status['Entwürfe/Quote"d']["HIGHESTMODSEQ"] == 0
    assert status["Flat"] == {"MESSAGES": 1, "UIDNEXT": 2, "UIDVALIDITY": 4}
    assert "Projects" not in status
    with pytest.raises(ValueError):
        parse_list_status([b'LIST (\\HasNoChildren) "." "unterminated'])


def test_uid_mapping_and_appenduid():
    assert parse_uid_mapping(b"OK [COPYUID 38505 304,319:320 3956:3958] Done") == {
        304: 3956,
        319: 3957,
        320: 3958,
    }
    assert parse_uid_mapping(b"OK [COPYUID 1 3:1 10:12] Done") == {3: 10, 2: 11, 1: 12}
    assert parse_uid_mapping(b"OK Done") == {}
    assert parse_appenduid(b"[APPENDUID 38505 3955] APPEND completed") == (38505, 3955)
    assert parse_appenduid(b"APPEND completed") is None


def test_mailbox_names_are_modified_utf7_and_quoted():
    assert quote_mailbox("Entwürfe") == b'"Entw&APw-rfe"'
    assert quote_mailbox('a "b" \\ c') == b'"a \\"b\\" \\\\ c"'


def test_search_answers():
    assert parse_esearch_all([b'ESEARCH (TAG "W3") UID ALL 1:3,9']) == (1, 2, 3, 9)
    assert parse_esearch_all([b'ESEARCH (TAG "W3") UID']) == ()
    assert parse_esearch_all([b"3 EXISTS"]) is None
    assert parse_search([b"SEARCH 4 2 9", b"SEARCH"]) == (2, 4, 9)


def test_special_use_comes_from_flags_then_from_well_known_names():
    roles = detect_special_use(
        [
            ("INBOX", "/", ()),
            ("Sent Items", "/", ()),
            ("Gesendet", "/", ()),
            ("Papierkorb", "/", ()),
            ("[Gmail]/All Mail", "/", ()),
            ("Spam", "/", ("\\HasNoChildren",)),
            ("Old Junk", "/", ("\\Junk",)),
            ("INBOX.Drafts", ".", ()),
            ("Projects/Sent", "/", ()),
        ]
    )
    assert roles == {
        "Sent Items": "\\Sent",  # first of the name hints wins
        "Papierkorb": "\\Trash",
        "[Gmail]/All Mail": "\\All",
        "Old Junk": "\\Junk",  # a flag beats the name "Spam"
        "INBOX.Drafts": "\\Drafts",
    }


# -- against Dovecot

pytestmark_stack = pytest.mark.mailstack


@pytest.fixture
def session_for(endpoint, stack_tls, loopback_guard):
    opened: list[ImapSession] = []

    def make(user, *, disabled_caps=(), security="tls") -> ImapSession:
        s = ImapSession(
            endpoint(user, "imap", security), tls=stack_tls, guard=loopback_guard, disabled_caps=disabled_caps
        )
        s.open()
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


@pytest.fixture
def inbox_with(mailstack, user):
    """Deliver n messages to a fresh user's INBOX and return the user."""

    def make(n: int):
        for i in range(1, n + 1):
            mailstack.deliver_lmtp(user.address, message(i))
        return user

    return make


@pytestmark_stack
def test_list_folders_reports_special_use_and_subscriptions(user, session_for):
    s = session_for(user)
    s.create_folder("Entwürfe/Ärger")
    folders = {f.name: f for f in s.list_folders()}
    assert {f.special_use for f in folders.values()} >= {
        "\\Sent",
        "\\Drafts",
        "\\Trash",
        "\\Junk",
        "\\Archive",
    }
    assert folders["Sent"].special_use == "\\Sent"
    assert folders["INBOX"].special_use is None
    assert folders["Entwürfe/Ärger"].subscribed and folders["Entwürfe/Ärger"].delimiter == "/"
    assert folders["Entwürfe/Ärger"].special_use is None  # Drafts is already flagged
    assert folders["INBOX"].selectable and folders["Sent"].selectable


@pytestmark_stack
def test_list_status_gives_folders_subscriptions_and_status_in_one_command(inbox_with, session_for):
    user = inbox_with(3)
    s = session_for(user)
    s.create_folder("Entwürfe/Ärger")
    s.client.unsubscribe_folder("Entwürfe/Ärger")
    s.create_folder("Kept")
    assert s.list_status  # Dovecot offers LIST-EXTENDED and LIST-STATUS
    plain = {f.name: f for f in s.list_folders()}

    listed = s.list_folders_with_status()

    assert listed is not None
    assert {f.name: f for f in listed.folders} == plain  # same names, flags, roles, subscriptions
    assert not plain["Entwürfe/Ärger"].subscribed and plain["Kept"].subscribed
    inbox = s.select("INBOX")
    assert listed.status["INBOX"] == type(inbox)(
        name="INBOX",
        uidvalidity=inbox.uidvalidity,
        uidnext=4,
        exists=3,
        highestmodseq=inbox.highestmodseq,
    )
    assert set(listed.status) == {f.name for f in listed.folders if f.selectable}


@pytestmark_stack
def test_list_status_is_not_used_when_hidden_or_without_condstore(inbox_with, session_for):
    user = inbox_with(1)
    hidden = session_for(user, disabled_caps=["LIST-STATUS"])
    assert not hidden.list_status and hidden.list_folders_with_status() is None
    plain = session_for(user, disabled_caps=["QRESYNC", "CONDSTORE"])
    listed = plain.list_folders_with_status()
    assert listed is not None and listed.status["INBOX"].highestmodseq is None
    assert listed.status["INBOX"].uidnext == 2


@pytestmark_stack
def test_select_reports_the_folder_state(inbox_with, session_for):
    s = session_for(inbox_with(3))
    state = s.select("INBOX")
    assert state.exists == 3 and state.uidnext == 4 and state.uidvalidity > 0
    assert state.highestmodseq and not state.qresync
    assert s.qresync_enabled


@pytestmark_stack
def test_qresync_select_returns_vanished_uids_and_changed_flags(mailstack, inbox_with, session_for):
    user = inbox_with(5)
    before = session_for(user).select("INBOX")
    other = mailstack.imap_client(user)
    other.select_folder("INBOX")
    other.delete_messages([2, 4])
    other.expunge()
    other.add_flags([3], [b"\\Flagged"])
    other.logout()

    state = session_for(user).select("INBOX", qresync=(before.uidvalidity, before.highestmodseq))
    assert state.qresync
    assert set(state.vanished) >= {2, 4} and not set(state.vanished) & {1, 3, 5}
    assert [(c.uid, "\\Flagged" in c.flags) for c in state.changed] == [(3, True)]
    assert state.changed[0].modseq > before.highestmodseq
    assert state.exists == 3


@pytestmark_stack
def test_qresync_delta_is_ignored_when_uidvalidity_changed(inbox_with, session_for):
    s = session_for(inbox_with(1))
    before = s.select("INBOX")
    state = s.select("INBOX", qresync=(before.uidvalidity + 1, 1))
    assert not state.qresync and state.vanished == () and state.changed == ()


@pytestmark_stack
def test_without_qresync_the_fallback_uses_condstore_and_search(mailstack, inbox_with, session_for):
    user = inbox_with(4)
    s = session_for(user, disabled_caps={"QRESYNC"})
    assert not s.qresync_enabled
    before = s.select("INBOX", qresync=(1, 1))
    assert not before.qresync and before.highestmodseq
    other = mailstack.imap_client(user)
    other.select_folder("INBOX")
    other.add_flags([1], [b"\\Seen"])
    other.delete_messages([2])
    other.expunge()
    other.logout()
    s.noop()
    changes = s.changed_since(before.highestmodseq)
    assert [(c.uid, c.flags) for c in changes] == [(1, ("\\Seen",))]
    assert s.uid_search_all() == (1, 3, 4)


@pytestmark_stack
def test_without_condstore_there_are_no_modseqs(inbox_with, session_for):
    s = session_for(inbox_with(2), disabled_caps={"QRESYNC", "CONDSTORE", "ESEARCH"})
    state = s.select("INBOX")
    assert state.highestmodseq is None
    with pytest.raises(MailError) as info:
        s.changed_since(1)
    assert info.value.kind == "capability"
    assert s.uid_search_all() == (1, 2)
    [batch] = list(s.fetch_headers([1, 2]))
    assert [m.modseq for m in batch] == [None, None]


@pytestmark_stack
def test_fetch_headers_yields_bounded_batches_without_marking_seen(inbox_with, session_for):
    s = session_for(inbox_with(5))
    s.select("INBOX")
    batches = list(s.fetch_headers([5, 1, 2, 3, 4, 99], batch=2))
    assert [[m.uid for m in b] for b in batches] == [[1, 2], [3, 4], [5]]
    first = batches[0][0]
    assert first.raw.endswith(b"\r\n\r\n") and b"Subject: message 1" in first.raw
    assert b"Body of message" not in first.raw
    assert first.internaldate.tzinfo is not None
    assert first.size > len(first.raw) and first.modseq
    [full] = list(s.fetch_headers([3], full=True))
    assert full[0].raw.endswith(b"Body of message 3.\r\n")
    assert len(full[0].raw) == full[0].size
    assert all("\\Seen" not in m.flags for b in s.fetch_headers([1, 2, 3, 4, 5]) for m in b)


@pytestmark_stack
def test_flags_are_set_added_and_removed(inbox_with, session_for):
    s = session_for(inbox_with(2))
    s.select("INBOX")
    s.add_flags([1, 2], ["\\Seen", "$Label1"])
    s.remove_flags([2], ["\\Seen"])
    s.set_flags([1], ["\\Flagged"])
    flags = {m.uid: set(m.flags) for b in s.fetch_headers([1, 2]) for m in b}
    assert flags == {1: {"\\Flagged"}, 2: {"$Label1"}}


@pytestmark_stack
@pytest.mark.parametrize("disabled", [(), ("MOVE",)], ids=["move", "copy-expunge"])
def test_move_returns_the_new_uids(inbox_with, session_for, disabled):
    s = session_for(inbox_with(3), disabled_caps=disabled)
    s.select("INBOX")
    assert s.move([1, 3], "Archive") == {1: 1, 3: 2}
    assert s.uid_search_all() == (2,)
    s.select("Archive")
    assert s.uid_search_all() == (1, 2)


@pytestmark_stack
def test_expunge_uids_removes_only_those(inbox_with, session_for):
    s = session_for(inbox_with(3))
    s.select("INBOX")
    s.expunge_uids([2])
    assert s.uid_search_all() == (1, 3)


@pytestmark_stack
def test_append_returns_the_uid_and_keeps_flags_and_date(user, session_for):
    s = session_for(user)
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=2)))
    uid = s.append("Drafts", message(1, "draft"), flags=["\\Draft", "\\Seen"], date=when)
    assert uid == 1
    assert s.append("Drafts", message(2)) == 2
    s.select("Drafts")
    [[m, _]] = list(s.fetch_headers([1, 2]))
    assert set(m.flags) == {"\\Draft", "\\Seen"}
    assert m.internaldate == when
    with pytest.raises(ValueError):
        s.append("Drafts", message(3), date=datetime(2024, 1, 1))


@pytestmark_stack
def test_idle_sees_a_delivery(mailstack, user, session_for):
    s = session_for(user)
    s.select("INBOX")
    s.idle_start()
    assert s.idle_check(timeout=0.1) is False
    mailstack.deliver_lmtp(user.address, message(1))
    assert s.idle_check(timeout=5) is True  # the server pushed the change (RFC 2177)
    s.idle_done()
    assert s.uid_search_all() == (1,)


@pytestmark_stack
def test_starttls_session_works_too(inbox_with, session_for):
    s = session_for(inbox_with(1), security="starttls")
    assert s.select("INBOX").exists == 1
    assert "IMAP4REV1" in s.capabilities


@pytestmark_stack
def test_a_missing_folder_is_a_protocol_error(user, session_for):
    with pytest.raises(MailError) as info:
        session_for(user).select("No such folder")
    assert info.value.kind == "protocol"
    assert "No such folder" in str(info.value)
