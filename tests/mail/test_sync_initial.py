"""Initial sync against the real Dovecot: every corpus message cached with its raw bytes, and the folder list."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mail.conftest import append_many, assert_cache_matches, maildir_put, message, raw_of
from webmail.mail.actions.sync import do_sync_account
from webmail.mail.models import Folder, Message, MessageBody, SpecialUse, SyncState

pytestmark = [pytest.mark.django_db, pytest.mark.mailstack]

CORPUS = sorted((Path(__file__).resolve().parent.parent / "corpus").glob("*.eml"))
MALFORMED = {
    "truncated.eml",
    "eight_bit_headers.eml",
    "unknown_charset.eml",
    "nul_bytes.eml",
    "no_headers.eml",
    "empty.eml",
    "giant_header.eml",
    "missing_boundary_param.eml",
}


def _seed_corpus(mailstack, remote_user, server) -> dict[str, int]:
    """Put every corpus file in INBOX; return file name -> UID."""
    for path in CORPUS:
        raw = path.read_bytes()
        if raw:
            server.append("INBOX", raw)
        else:  # Dovecot's APPEND refuses a zero-byte message; a delivery agent may still write one
            maildir_put(mailstack, remote_user, raw)
    server.select_folder("INBOX", readonly=True)
    sizes = server.fetch(server.search("ALL"), ["RFC822.SIZE"])
    assert len(sizes) == len(CORPUS)
    # Order on the server: appended ones by UID, the Maildir one picked up last.
    names = [p.name for p in CORPUS if p.read_bytes()] + [p.name for p in CORPUS if not p.read_bytes()]
    return dict(zip(names, sorted(sizes), strict=True))


def test_initial_sync_caches_every_corpus_message_with_its_raw_bytes(mailstack, remote_user, account, server):
    uids = _seed_corpus(mailstack, remote_user, server)

    report = do_sync_account(account.pk)

    assert report.error == ""
    assert report.new == len(CORPUS)
    assert_cache_matches(account, server, ["INBOX"])
    server.select_folder("INBOX", readonly=True)
    on_server = server.fetch(list(uids.values()), ["BODY.PEEK[]"])
    for name, uid in uids.items():
        assert raw_of(account, "INBOX", uid) == on_server[uid][b"BODY[]"], name
    by_name = {
        name: Message.objects.get(account=account, folder__name="INBOX", uid=uid)
        for name, uid in uids.items()
    }
    for name in MALFORMED:
        assert by_name[name].parse_problems, f"{name} should record its parse problems"
    plain = by_name["plain_ascii.eml"]
    assert plain.parse_problems == []
    assert plain.from_email and plain.subject and plain.message_id
    assert plain.snippet
    assert MessageBody.objects.get(message=plain).text.strip()
    assert by_name["attachment_pdf.eml"].has_attachments
    assert not by_name["plain_ascii.eml"].has_attachments
    assert by_name["non_ascii_headers.eml"].subject.isascii() is False  # RFC 2047 decoded
    reply = by_name["reply_with_references.eml"]
    assert (reply.message_id, reply.in_reply_to) == ("lunch-3@example.test", "lunch-2@example.test")
    assert reply.references.split() == ["lunch-1@example.test", "lunch-2@example.test"]
    html_only = MessageBody.objects.get(message=by_name["newsletter_html_only.eml"]).text
    assert html_only.strip() and "<" not in html_only[:200]
    assert "\x00" not in MessageBody.objects.get(message=by_name["nul_bytes.eml"]).text


def test_initial_sync_keeps_envelope_fields(account, server):
    raw = message(
        1,
        subject="=?utf-8?q?Caf=C3=A9_au_lait?=",
        Cc="Carol <carol@example.test>, dave@example.test",
        Reply_To="List <list@example.test>",
        In_Reply_To="<m0@test>",
        References="<m-1@test> <m0@test>",
    )
    server.append("INBOX", raw, flags=[b"\\Seen", b"\\Flagged", b"$Important"])

    do_sync_account(account.pk)

    m = Message.objects.get(account=account, folder__name="INBOX")
    assert m.subject == "Café au lait"
    assert (m.from_name, m.from_email) == ("Sender 1", "sender1@example.org")
    assert m.cc == [["Carol", "carol@example.test"], ["", "dave@example.test"]]
    assert m.reply_to == [["List", "list@example.test"]]
    assert (m.seen, m.flagged, m.answered, m.keywords) == (True, True, False, ["$Important"])
    assert m.size == len(raw_of(account, "INBOX", m.uid))
    assert m.internal_date.tzinfo is not None
    folder = m.folder
    assert (folder.total_count, folder.unread_count) == (1, 0)
    assert SyncState.objects.get(account=account).finished_at is not None
    account.refresh_from_db()
    assert account.state == "ok"


def test_folder_list_has_special_use_hierarchy_and_subscriptions(account, server):
    server.create_folder("Projects")
    server.create_folder("Projects/Garden")
    server.subscribe_folder("Projects/Garden")
    server.create_folder("Unsubscribed")
    server.unsubscribe_folder("Unsubscribed")

    do_sync_account(account.pk)

    folders = {f.name: f for f in Folder.objects.filter(account=account)}
    assert set(folders) == {
        "INBOX", "Drafts", "Sent", "Trash", "Junk", "Archive", "Projects", "Projects/Garden", "Unsubscribed"
    }  # fmt: skip
    roles = {f.special_use: name for name, f in folders.items() if f.special_use}
    assert roles == {
        SpecialUse.INBOX: "INBOX",
        SpecialUse.DRAFTS: "Drafts",
        SpecialUse.SENT: "Sent",
        SpecialUse.TRASH: "Trash",
        SpecialUse.JUNK: "Junk",
        SpecialUse.ARCHIVE: "Archive",
    }
    garden = folders["Projects/Garden"]
    assert (garden.delimiter, garden.depth, garden.display_name) == ("/", 1, "Garden")
    assert garden.subscribed and folders["INBOX"].subscribed
    assert not folders["Unsubscribed"].subscribed
    assert all(f.uidvalidity for f in folders.values())


def test_folder_list_falls_back_to_names_without_special_use(settings, account, server):
    settings.WEBMAIL_IMAP_DISABLED_CAPS = ["SPECIAL-USE"]
    server.create_folder("Spam")

    do_sync_account(account.pk)

    # Dovecot still sends \Sent etc. in LIST flags without being asked; the heuristics keep them.
    roles = dict(Folder.objects.filter(account=account).values_list("name", "special_use"))
    assert roles["Sent"] == SpecialUse.SENT
    assert roles["Junk"] == SpecialUse.JUNK
    assert roles["Spam"] == ""  # Junk is already flagged: never guess a second one


def test_folders_created_renamed_and_deleted_on_the_server_follow(account, server):
    server.create_folder("Old")
    server.create_folder("Gone")
    append_many(server, "Old", [message(i) for i in range(3)])
    append_many(server, "Gone", [message(10)])
    do_sync_account(account.pk)
    old = Folder.objects.get(account=account, name="Old")
    kept_ids = set(Message.objects.filter(folder=old).values_list("id", flat=True))

    server.rename_folder("Old", "Renamed")
    server.delete_folder("Gone")
    server.create_folder("Fresh")
    append_many(server, "Fresh", [message(20)])
    report = do_sync_account(account.pk)

    names = set(Folder.objects.filter(account=account).values_list("name", flat=True))
    assert {"Renamed", "Fresh"} <= names and not {"Old", "Gone"} & names
    renamed = Folder.objects.get(account=account, name="Renamed")
    assert renamed.pk == old.pk  # same UIDVALIDITY: the cache was kept, not refetched
    assert set(Message.objects.filter(folder=renamed).values_list("id", flat=True)) == kept_ids
    assert report.per_folder["Renamed"]["new"] == 0
    assert not Message.objects.filter(account=account, message_id="m10@test").exists()
    assert_cache_matches(account, server)


def test_sync_of_named_folders_only_touches_them(account, server):
    append_many(server, "INBOX", [message(1)])
    append_many(server, "Sent", [message(2)])

    report = do_sync_account(account.pk, folder_names=["Sent"])

    assert set(report.per_folder) == {"Sent"}
    assert list(Message.objects.filter(account=account).values_list("folder__name", flat=True)) == ["Sent"]
