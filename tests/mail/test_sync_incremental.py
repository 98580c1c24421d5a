"""Incremental sync: new mail, flags and expunges by another client, UIDVALIDITY changes, QRESYNC vs fallback."""

from __future__ import annotations

import pytest

from tests.mail.conftest import append_many, assert_cache_matches, cache_state, message
from webmail.mail.actions.sync import do_sync_account
from webmail.mail.models import Folder, Message, Thread

pytestmark = [pytest.mark.django_db, pytest.mark.mailstack]

# Every path runs every test: QRESYNC (Dovecot's default, with LIST-STATUS) and capabilities
# hidden; the plain path is an old server: no LIST-STATUS either, so LIST, LSUB and SELECT.
PATHS = {
    "qresync": [],
    "condstore": ["QRESYNC"],
    "plain": ["QRESYNC", "CONDSTORE", "ESEARCH", "LIST-STATUS"],
}
LIST_STATUS = b'LIST "" "*" RETURN (SUBSCRIBED CHILDREN SPECIAL-USE STATUS (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ))'


@pytest.fixture(params=list(PATHS))
def path(request, settings):
    settings.WEBMAIL_IMAP_DISABLED_CAPS = PATHS[request.param]
    return request.param


def test_sync_picks_up_new_mail(path, account, server, mailstack, remote_user):
    append_many(server, "INBOX", [message(i) for i in range(5)])
    do_sync_account(account.pk)

    mailstack.deliver_lmtp(remote_user.address, message(5))
    append_many(server, "Archive", [message(6)])
    report = do_sync_account(account.pk)

    assert report.new == 2
    assert report.per_folder["INBOX"] == {"new": 1, "changed": 0, "expunged": 0}
    assert_cache_matches(account, server)


def test_sync_applies_flag_changes_by_another_client(path, account, server):
    append_many(server, "INBOX", [message(i) for i in range(6)])
    do_sync_account(account.pk)

    server.select_folder("INBOX")
    server.add_flags([1, 2], [b"\\Seen"])
    server.add_flags([3], [b"\\Flagged", b"\\Answered", b"$Label1", b"Work"])
    server.add_flags([4], [b"\\Deleted"])
    report = do_sync_account(account.pk)

    assert report.changed == 4
    assert_cache_matches(account, server)
    inbox = Folder.objects.get(account=account, name="INBOX")
    assert inbox.unread_count == 3  # 6 - 2 seen - 1 deleted

    server.select_folder("INBOX")
    server.remove_flags([3], [b"$Label1"])
    server.remove_flags([1], [b"\\Seen"])
    report = do_sync_account(account.pk)
    assert report.changed == 2
    assert_cache_matches(account, server)


def test_sync_removes_messages_expunged_by_another_client(path, account, server):
    append_many(server, "INBOX", [message(i) for i in range(8)])
    do_sync_account(account.pk)

    server.select_folder("INBOX")
    server.delete_messages([2, 3, 7])
    server.expunge()
    report = do_sync_account(account.pk)

    assert report.expunged == 3
    assert_cache_matches(account, server)
    assert Folder.objects.get(account=account, name="INBOX").total_count == 5


def test_sync_refetches_a_folder_whose_uidvalidity_changed(path, account, server):
    server.create_folder("Box")
    append_many(server, "Box", [message(i) for i in range(4)])
    do_sync_account(account.pk)
    before = Folder.objects.get(account=account, name="Box")

    server.delete_folder("Box")
    server.create_folder("Box")
    append_many(server, "Box", [message(i) for i in range(2, 5)])  # same Message-IDs, new UIDs 1..3
    report = do_sync_account(account.pk)

    box = Folder.objects.get(account=account, name="Box")
    assert box.uidvalidity != before.uidvalidity
    assert report.per_folder["Box"]["new"] == 3
    assert_cache_matches(account, server)
    assert sorted(Message.objects.filter(folder=box).values_list("message_id", flat=True)) == [
        "m2@test", "m3@test", "m4@test"
    ]  # fmt: skip


def test_sync_refetches_when_a_folder_is_renamed_away_and_recreated(path, account, server):
    server.create_folder("Box")
    append_many(server, "Box", [message(i) for i in range(3)])
    do_sync_account(account.pk)

    server.rename_folder("Box", "Moved")
    server.create_folder("Box")
    append_many(server, "Box", [message(9)])
    do_sync_account(account.pk)

    assert_cache_matches(account, server)
    assert cache_state(account, "Moved") and len(cache_state(account, "Box")) == 1


def test_sync_with_nothing_changed_changes_nothing(path, account, server):
    append_many(server, "INBOX", [message(i) for i in range(5)])
    do_sync_account(account.pk)
    rows = list(Message.objects.filter(account=account).order_by("id").values())

    report = do_sync_account(account.pk)

    assert (report.new, report.changed, report.expunged) == (0, 0, 0)
    assert list(Message.objects.filter(account=account).order_by("id").values()) == rows


def test_qresync_and_fallback_paths_give_the_same_cache(settings, account, server, alice):
    from tests.accounts.factories import make_account

    server.create_folder("Box")
    append_many(server, "INBOX", [message(i) for i in range(10)])
    append_many(server, "Box", [message(i, subject=f"Re: Message {i - 1}") for i in range(10, 15)])
    other = make_account(
        alice,
        password=account.get_incoming_password(),
        email="second@example.test",
        incoming_host=account.incoming_host,
        incoming_port=account.incoming_port,
        incoming_username=account.incoming_username,
    )
    do_sync_account(account.pk)
    settings.WEBMAIL_IMAP_DISABLED_CAPS = PATHS["plain"]
    do_sync_account(other.pk)

    server.select_folder("INBOX")
    server.add_flags([1, 2], [b"\\Seen"])
    server.delete_messages([5])
    server.expunge()
    append_many(server, "INBOX", [message(20)], flags=(b"\\Flagged",))
    settings.WEBMAIL_IMAP_DISABLED_CAPS = []
    do_sync_account(account.pk)
    settings.WEBMAIL_IMAP_DISABLED_CAPS = PATHS["plain"]
    do_sync_account(other.pk)

    fields = ["folder__name", "uid", "seen", "flagged", "keywords", "message_id", "subject", "snippet"]
    assert list(Message.objects.filter(account=account).order_by("folder__name", "uid").values(*fields)) == (
        list(Message.objects.filter(account=other).order_by("folder__name", "uid").values(*fields))
    )
    assert Thread.objects.filter(account=account).count() == Thread.objects.filter(account=other).count()
    assert_cache_matches(account, server)
    assert_cache_matches(other, server)


def test_no_change_resync_with_qresync_sends_few_commands(account, server, command_counter):
    server.create_folder("Big")
    append_many(server, "Big", [message(i) for i in range(300)])
    do_sync_account(account.pk)
    command_counter().clear()

    do_sync_account(account.pk)

    sent = command_counter()
    # One SELECT (QRESYNC) per folder and nothing else per folder, whatever its size.
    folders = Folder.objects.filter(account=account, selectable=True).count()
    assert len(sent) <= folders + 2, sent
    assert not any(line.startswith(b"UID FETCH") or line.startswith(b"UID SEARCH") for line in sent)


@pytest.mark.parametrize("hidden", [[], ["QRESYNC"]], ids=["qresync", "condstore"])
def test_no_change_resync_with_list_status_sends_one_list_and_no_select(
    settings, hidden, account, server, command_counter
):
    settings.WEBMAIL_IMAP_DISABLED_CAPS = hidden
    server.create_folder("Big")
    append_many(server, "Big", [message(i) for i in range(300)])
    do_sync_account(account.pk)
    before = dict(Folder.objects.filter(account=account).values_list("name", "last_synced_at"))
    command_counter().clear()

    report = do_sync_account(account.pk)

    # One round trip gives folders, subscriptions, special use and status: nothing changed, so
    # no folder is selected (LOGIN and ENABLE go through imapclient, not _command).
    assert command_counter() == [LIST_STATUS]
    assert (report.new, report.changed, report.expunged, report.error) == (0, 0, 0, "")
    assert report.per_folder["Big"] == {"new": 0, "changed": 0, "expunged": 0}
    after = dict(Folder.objects.filter(account=account).values_list("name", "last_synced_at"))
    assert all(after[name] > before[name] for name in before if before[name])
    assert_cache_matches(account, server)


def test_list_status_selects_only_the_folders_that_changed(account, server, command_counter):
    append_many(server, "INBOX", [message(i) for i in range(5)])
    append_many(server, "Archive", [message(i) for i in range(5, 8)])
    append_many(server, "Sent", [message(i) for i in range(8, 10)])
    do_sync_account(account.pk)
    server.select_folder("INBOX")
    server.add_flags([2], [b"\\Flagged"])  # HIGHESTMODSEQ moves
    append_many(server, "Archive", [message(20)])  # UIDNEXT moves
    server.select_folder("Sent")
    server.delete_messages([1])
    server.expunge()  # HIGHESTMODSEQ moves, MESSAGES falls
    command_counter().clear()

    report = do_sync_account(account.pk)

    selects = sorted(line.split(b" ")[1] for line in command_counter() if line.startswith(b"SELECT"))
    assert selects == [b'"Archive"', b'"INBOX"', b'"Sent"']
    assert (report.new, report.changed, report.expunged) == (1, 1, 1)
    assert_cache_matches(account, server)


def test_without_list_status_the_no_change_pass_selects_every_folder(
    settings, account, server, command_counter
):
    settings.WEBMAIL_IMAP_DISABLED_CAPS = ["LIST-STATUS"]
    append_many(server, "INBOX", [message(i) for i in range(5)])
    do_sync_account(account.pk)
    command_counter().clear()

    do_sync_account(account.pk)

    sent = command_counter()
    folders = Folder.objects.filter(account=account, selectable=True).count()
    assert not any(line.startswith(b"LIST") for line in sent)  # LIST and LSUB through imapclient
    assert len(sent) == folders and all(b"(QRESYNC (" in line for line in sent), sent
    assert_cache_matches(account, server)
