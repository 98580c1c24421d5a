"""Write-back: changes made in the cache reach the server, and refusals put the cache back."""

from __future__ import annotations

import pytest

from tests.mail.conftest import append_many, assert_cache_matches, message, server_state
from webmail.mail.actions import changes
from webmail.mail.actions.sync import do_sync_account
from webmail.mail.models import Folder, Message, PendingChange

pytestmark = [pytest.mark.django_db, pytest.mark.mailstack]


@pytest.fixture
def synced(account, server):
    """Five messages in INBOX, synced into the cache."""
    append_many(server, "INBOX", [message(n) for n in range(1, 6)])
    report = do_sync_account(account.pk)
    assert not report.error, report.error
    return account


def inbox(account, n: int | None = None):
    rows = Message.objects.filter(account=account, folder__name="INBOX").order_by("uid")
    return list(rows) if n is None else list(rows[:n])


def apply(account) -> str:
    return changes.do_apply_changes(account.pk)


def test_flags_are_set_in_the_cache_at_once_and_on_the_server_by_the_task(synced, server):
    first, second = inbox(synced, 2)
    assert changes.do_set_flags([first, second], seen=True, flagged=True) == 2
    first.refresh_from_db()
    assert first.seen and first.flagged
    assert Folder.objects.get(account=synced, name="INBOX").unread_count == 3
    assert PendingChange.objects.filter(account=synced).count() == 2
    assert apply(synced) == "done"
    state = server_state(server, "INBOX")
    assert {"\\seen", "\\flagged"} <= state[first.uid][0]
    assert not PendingChange.objects.filter(account=synced).exists()
    changes.do_set_flags([first], seen=False)
    apply(synced)
    assert "\\seen" not in server_state(server, "INBOX")[first.uid][0]
    do_sync_account(synced.pk)
    assert_cache_matches(synced, server)


def test_setting_a_flag_that_is_already_set_changes_nothing(synced):
    (first,) = inbox(synced, 1)
    changes.do_set_flags([first], seen=False)
    assert not PendingChange.objects.exists()


def test_move_uses_the_servers_new_uid_and_leaves_no_duplicate(synced, server):
    archive = Folder.objects.get(account=synced, name="Archive")
    moving = inbox(synced, 2)
    assert changes.do_move(moving, archive) == 2
    moved = Message.objects.filter(pk__in=[m.pk for m in moving])
    assert all(m.folder_id == archive.pk and m.uid < 0 for m in moved)
    apply(synced)
    assert all(m.uid > 0 for m in moved.all())
    do_sync_account(synced.pk)
    assert_cache_matches(synced, server, ["INBOX", "Archive"])
    assert Message.objects.filter(account=synced, folder=archive).count() == 2


def test_moving_twice_before_the_task_runs_ends_in_the_last_folder(synced, server):
    archive = Folder.objects.get(account=synced, name="Archive")
    junk = Folder.objects.get(account=synced, name="Junk")
    (m,) = inbox(synced, 1)
    changes.do_move([m], archive)
    m.refresh_from_db()
    changes.do_move([m], junk)
    apply(synced)
    do_sync_account(synced.pk)
    assert_cache_matches(synced, server, ["INBOX", "Archive", "Junk"])
    assert len(server_state(server, "Junk")) == 1 and not server_state(server, "Archive")


def test_moving_back_before_the_task_runs_is_a_no_op(synced, server):
    archive = Folder.objects.get(account=synced, name="Archive")
    inbox_folder = Folder.objects.get(account=synced, name="INBOX")
    (m,) = inbox(synced, 1)
    uid = m.uid
    changes.do_move([m], archive)
    m.refresh_from_db()
    changes.do_move([m], inbox_folder)
    m.refresh_from_db()
    assert (m.folder_id, m.uid) == (inbox_folder.pk, uid)
    assert not PendingChange.objects.filter(kind="move").exists()


def test_delete_moves_to_trash_and_deleting_from_trash_expunges(synced, server):
    (m,) = inbox(synced, 1)
    changes.do_delete([m])
    apply(synced)
    do_sync_account(synced.pk)
    trash_row = Message.objects.get(account=synced, folder__name="Trash")
    changes.do_delete([trash_row])
    assert not Message.objects.filter(account=synced, folder__name="Trash").exists()
    apply(synced)
    assert server_state(server, "Trash") == {}
    do_sync_account(synced.pk)
    assert_cache_matches(synced, server, ["INBOX", "Trash"])


def test_delete_of_a_message_whose_move_is_pending_expunges_it_after_the_move(synced, server):
    trash = Folder.objects.get(account=synced, name="Trash")
    (m,) = inbox(synced, 1)
    changes.do_move([m], trash)
    m.refresh_from_db()
    changes.do_delete([m])
    apply(synced)
    assert server_state(server, "Trash") == {}
    assert len(server_state(server, "INBOX")) == 4


def test_archive_and_spam_go_to_special_folders(synced, server):
    a, b = inbox(synced, 2)
    changes.do_archive([a])
    changes.do_mark_spam([b])
    apply(synced)
    assert len(server_state(server, "Archive")) == 1
    assert len(server_state(server, "Junk")) == 1


def test_append_stores_locally_then_takes_the_servers_uid(synced, server):
    drafts = Folder.objects.get(account=synced, name="Drafts")
    row = changes.do_append(drafts, message(99), flags=["\\Draft", "\\Seen"])
    assert row.uid < 0 and row.draft
    apply(synced)
    row.refresh_from_db()
    assert row.uid > 0
    do_sync_account(synced.pk)
    assert_cache_matches(synced, server, ["Drafts"])


def test_a_refused_move_is_put_back(synced, server):
    nowhere = Folder.objects.create(account=synced, name="Nowhere")  # not on the server: MOVE gets NO
    (m,) = inbox(synced, 1)
    uid = m.uid
    changes.do_move([m], nowhere)
    assert apply(synced) == "done"
    m.refresh_from_db()
    assert m.folder.name == "INBOX" and m.uid == uid


def test_reverting_an_expunge_brings_the_messages_back_at_the_next_sync(synced, server):
    m = inbox(synced, 1)[0]
    changes.do_expunge([m])
    change = PendingChange.objects.get(kind="expunge")
    changes._revert(change)  # what a refusal by the server does
    change.delete()
    do_sync_account(synced.pk)
    assert_cache_matches(synced, server, ["INBOX"])


def test_moves_between_accounts_are_refused(synced, bob):
    from tests.accounts.factories import make_account

    other = make_account(bob)
    folder = Folder.objects.create(account=other, name="INBOX")
    with pytest.raises(changes.ChangeRefused):
        changes.do_move(inbox(synced, 1), folder)
