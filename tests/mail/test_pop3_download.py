"""POP3 download against the real Dovecot: first and incremental download, leave-on-server policies,
exactly-once across a crash, the no-UIDL fallback, the malformed corpus and a 2,000-message maildrop."""

from __future__ import annotations

import os
import poplib
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from tests.accounts.factories import make_account
from tests.mail.conftest import message
from webmail.mail import blobs
from webmail.mail.actions import pop3 as pop3_actions
from webmail.mail.actions.pop3 import Pop3Report, do_fetch_pop3, ensure_local_folders
from webmail.mail.actions.schedule import do_sync
from webmail.mail.locks import account_lock, redis_client, take_again_request
from webmail.mail.models import Folder, Message, Pop3Download, SpecialUse, SyncState
from webmail.mailcore.pop3 import Pop3Session

pytestmark = [pytest.mark.django_db, pytest.mark.mailstack]

CORPUS = sorted((Path(__file__).resolve().parent.parent / "corpus").glob("*.eml"))


@pytest.fixture
def remote(mail_user):
    """A fresh POP3 maildrop on the stack."""
    return mail_user("pop")


@pytest.fixture
def pop_account(alice, remote, mailstack, mail_settings):
    """Alice's POP3 account on the stack (STLS on the plain port), keeping mail on the server."""
    return make_pop_account(alice, remote, mailstack.pop3_port)


def make_pop_account(user, remote, port: int, **fields):
    values = dict(
        password=remote.password,
        email=remote.address,
        incoming_protocol="pop3",
        incoming_host="127.0.0.1",
        incoming_port=port,
        incoming_security="starttls",
        incoming_username=remote.address,
    )
    values.update(fields)
    acc = make_account(user, **values)
    redis_client().delete(f"webmail:lock:account:{acc.pk}", f"webmail:sync-again:{acc.pk}")
    return acc


def deliver(mailstack, remote, numbers) -> None:
    for n in numbers:
        mailstack.deliver_lmtp(remote.address, message(n))


def server_messages(mailstack, remote) -> dict[str, bytes]:
    """Return {UIDL: raw} of the maildrop as another POP3 client sees it."""
    poplib._MAXLINE = 1_000_000  # the corpus has lines far over poplib's 2,048
    client = poplib.POP3("127.0.0.1", mailstack.pop3_port, timeout=10)
    try:
        client.user(remote.address)
        client.pass_(remote.password)
        out = {}
        for line in client.uidl()[1]:
            num, uidl = line.decode().split()
            lines = client.retr(int(num))[1]
            out[uidl] = b"\r\n".join(lines) + b"\r\n" if lines else b""
        return out
    finally:
        client.quit()


def inbox_of(account) -> Folder:
    return Folder.objects.get(account=account, is_local=True, special_use=SpecialUse.INBOX)


def cached_ids(account) -> list[str]:
    return sorted(Message.objects.filter(account=account).values_list("message_id", flat=True))


@pytest.fixture
def retr_count(monkeypatch):
    """Record the message numbers retrieved by any Pop3Session."""
    calls: list[int] = []
    original = Pop3Session.retr_many

    def counting(self, numbers, **kwargs):
        for number, raw in original(self, numbers, **kwargs):
            calls.append(number)
            yield number, raw

    monkeypatch.setattr(Pop3Session, "retr_many", counting)
    return calls


@pytest.fixture
def events(monkeypatch):
    """Record the events published (run on-commit callbacks with django_capture_on_commit_callbacks)."""
    sent: list[dict] = []
    monkeypatch.setattr("webmail.mail.events.send_event", lambda user_id, event: sent.append(event))
    return sent


def maildir_write(mailstack, remote, raws) -> None:
    """Write RAWS straight into REMOTE's Maildir INBOX (new/), everything owned by the mail user."""
    home = Path(mailstack.maildir_root) / remote.address
    owner = os.stat(mailstack.maildir_root)
    for sub in ("", "Maildir", "Maildir/cur", "Maildir/new", "Maildir/tmp"):
        (home / sub).mkdir(exist_ok=True)
        os.chown(home / sub, owner.st_uid, owner.st_gid)
    stamp = int(time.time())
    for i, raw in enumerate(raws):
        path = home / "Maildir" / "new" / f"{stamp}.M{i}P{os.getpid()}.pop3test"
        path.write_bytes(raw)
        os.chown(path, owner.st_uid, owner.st_gid)


def test_first_download_stores_every_message_in_the_local_inbox(
    mailstack, remote, pop_account, events, django_capture_on_commit_callbacks
):
    deliver(mailstack, remote, range(1, 6))

    with django_capture_on_commit_callbacks(execute=True):
        report = do_fetch_pop3(pop_account.pk)

    assert report == Pop3Report(new=5, on_server=5)
    folders = Folder.objects.filter(account=pop_account)
    assert sorted(f.special_use for f in folders) == sorted(
        ["inbox", "archive", "drafts", "sent", "junk", "trash"]
    )
    assert all(f.is_local for f in folders)
    inbox = inbox_of(pop_account)
    assert (inbox.total_count, inbox.unread_count, inbox.uidnext) == (5, 5, 6)
    on_server = server_messages(mailstack, remote)
    ledger = {d.uidl: d for d in Pop3Download.objects.filter(account=pop_account).select_related("message")}
    assert set(ledger) == set(on_server)
    for uidl, raw in on_server.items():
        m = ledger[uidl].message
        assert m.folder_id == inbox.pk
        assert blobs.unpack(m.body.raw_compressed) == raw
        assert m.thread_id is not None
        assert ledger[uidl].deleted_from_server_at is None
    m1 = Message.objects.get(account=pop_account, message_id="m1@test")
    assert (m1.subject, m1.from_name, m1.from_email) == ("Message 1", "Sender 1", "sender1@example.org")
    assert m1.snippet.startswith("Body of message 1")
    assert sorted(Message.objects.filter(folder=inbox).values_list("uid", flat=True)) == [1, 2, 3, 4, 5]
    state = SyncState.objects.get(pk=pop_account.pk)
    assert (state.failures, state.progress_total, state.last_error) == (0, 0, "")
    assert state.finished_at is not None
    pop_account.refresh_from_db()
    assert (pop_account.state, pop_account.state_reason) == ("ok", "")
    assert [e["type"] for e in events] == ["mail.new"]
    assert events[0]["count"] == 5 and events[0]["folder"] == inbox.pk


def test_incremental_download_retrieves_only_new_mail(mailstack, remote, pop_account, retr_count):
    deliver(mailstack, remote, [1, 2, 3])
    do_fetch_pop3(pop_account.pk)
    deliver(mailstack, remote, [4, 5])
    retr_count.clear()

    report = do_fetch_pop3(pop_account.pk)

    assert (report.new, report.on_server) == (2, 5)
    assert retr_count == [4, 5]
    assert cached_ids(pop_account) == [f"m{n}@test" for n in range(1, 6)]
    retr_count.clear()
    assert do_fetch_pop3(pop_account.pk).new == 0
    assert retr_count == []
    assert inbox_of(pop_account).total_count == 5


def test_keep_policy_never_deletes(mailstack, remote, pop_account):
    deliver(mailstack, remote, [1, 2])
    do_fetch_pop3(pop_account.pk)

    report = do_fetch_pop3(pop_account.pk, now=timezone.now() + timedelta(days=3650))

    assert report.deleted == 0
    assert len(server_messages(mailstack, remote)) == 2


def test_delete_policy_removes_mail_once_it_is_stored(mailstack, remote, pop_account):
    pop_account.pop3_leave_on_server = "delete"
    pop_account.save(update_fields=["pop3_leave_on_server"])
    deliver(mailstack, remote, [1, 2, 3])

    report = do_fetch_pop3(pop_account.pk)

    assert (report.new, report.deleted) == (3, 3)
    assert server_messages(mailstack, remote) == {}
    assert cached_ids(pop_account) == ["m1@test", "m2@test", "m3@test"]
    assert not Pop3Download.objects.filter(account=pop_account, deleted_from_server_at=None).exists()


def test_days_policy_deletes_mail_n_days_after_its_download(mailstack, remote, pop_account):
    pop_account.pop3_leave_on_server = "days"
    pop_account.pop3_delete_after_days = 3
    pop_account.save(update_fields=["pop3_leave_on_server", "pop3_delete_after_days"])
    t0 = timezone.now()
    deliver(mailstack, remote, [1, 2])
    assert do_fetch_pop3(pop_account.pk, now=t0).deleted == 0
    deliver(mailstack, remote, [3])
    assert do_fetch_pop3(pop_account.pk, now=t0 + timedelta(days=2)).new == 1

    almost = do_fetch_pop3(pop_account.pk, now=t0 + timedelta(days=3) - timedelta(seconds=1))
    due = do_fetch_pop3(pop_account.pk, now=t0 + timedelta(days=3))

    assert almost.deleted == 0
    assert due.deleted == 2
    remaining = server_messages(mailstack, remote)
    assert [b"<m3@test>" in raw for raw in remaining.values()] == [True]
    assert do_fetch_pop3(pop_account.pk, now=t0 + timedelta(days=5)).deleted == 1
    assert server_messages(mailstack, remote) == {}
    assert cached_ids(pop_account) == ["m1@test", "m2@test", "m3@test"]


def test_a_crash_between_commit_and_quit_neither_loses_nor_duplicates(
    mailstack, remote, pop_account, monkeypatch
):
    pop_account.pop3_leave_on_server = "delete"
    pop_account.save(update_fields=["pop3_leave_on_server"])
    deliver(mailstack, remote, [1, 2, 3])
    original = Pop3Session.dele

    def dele_then_crash(self, number):
        original(self, number)
        if number == 2:
            raise RuntimeError("worker killed after DELE, before QUIT")

    monkeypatch.setattr(Pop3Session, "dele", dele_then_crash)
    with pytest.raises(RuntimeError):
        do_fetch_pop3(pop_account.pk)
    assert cached_ids(pop_account) == ["m1@test", "m2@test", "m3@test"]
    assert len(server_messages(mailstack, remote)) == 3  # no QUIT: the DELEs were discarded
    monkeypatch.setattr(Pop3Session, "dele", original)

    report = do_fetch_pop3(pop_account.pk)

    assert (report.new, report.deleted, report.skipped) == (0, 3, False)
    assert server_messages(mailstack, remote) == {}
    assert cached_ids(pop_account) == ["m1@test", "m2@test", "m3@test"]
    assert Pop3Download.objects.filter(account=pop_account).count() == 3


def test_a_crash_before_the_commit_leaves_the_mail_to_the_next_pass(
    mailstack, remote, pop_account, monkeypatch
):
    pop_account.pop3_leave_on_server = "delete"
    pop_account.save(update_fields=["pop3_leave_on_server"])
    deliver(mailstack, remote, [1, 2])

    def crash(*args, **kwargs):
        raise RuntimeError("worker killed while storing")

    monkeypatch.setattr(pop3_actions, "store_messages", crash)
    with pytest.raises(RuntimeError):
        do_fetch_pop3(pop_account.pk)
    assert cached_ids(pop_account) == []
    assert not Pop3Download.objects.filter(account=pop_account).exists()
    monkeypatch.undo()

    assert do_fetch_pop3(pop_account.pk).new == 2
    assert cached_ids(pop_account) == ["m1@test", "m2@test"]
    assert server_messages(mailstack, remote) == {}


def test_without_uidl_messages_are_keyed_by_header_hashes_and_the_account_says_so(
    mailstack, remote, pop_account, settings
):
    settings.WEBMAIL_POP3_DISABLED_CAPS = ["UIDL"]
    deliver(mailstack, remote, [1, 2])

    report = do_fetch_pop3(pop_account.pk)
    deliver(mailstack, remote, [3])
    again = do_fetch_pop3(pop_account.pk)

    assert (report.new, report.uidl_fallback, again.new) == (2, True, 1)
    uidls = list(Pop3Download.objects.filter(account=pop_account).values_list("uidl", flat=True))
    assert len(uidls) == 3 and all(u.startswith("sha256:") for u in uidls)
    pop_account.refresh_from_db()
    assert pop_account.state == "ok"
    assert "UIDL" in pop_account.state_reason
    assert cached_ids(pop_account) == ["m1@test", "m2@test", "m3@test"]


def test_every_corpus_message_is_stored_with_its_raw_bytes(mailstack, remote, pop_account):
    maildir_write(mailstack, remote, [path.read_bytes() for path in CORPUS])

    report = do_fetch_pop3(pop_account.pk)

    assert report.error == ""
    assert report.new == len(CORPUS)
    on_server = server_messages(mailstack, remote)
    ledger = dict(
        Pop3Download.objects.filter(account=pop_account).values_list("uidl", "message__body__raw_compressed")
    )
    assert {uidl: blobs.unpack(packed) for uidl, packed in ledger.items()} == on_server
    assert Message.objects.filter(account=pop_account).exclude(parse_problems=[]).count() >= 5


def test_a_maildrop_of_2000_messages_downloads_in_batches_with_progress(
    mailstack, remote, pop_account, monkeypatch
):
    maildir_write(mailstack, remote, [message(n) for n in range(2000)])
    progress: list[tuple[int, int]] = []
    original = pop3_actions._store_batch

    def recording(*args, **kwargs):
        original(*args, **kwargs)
        state = SyncState.objects.get(pk=pop_account.pk)
        progress.append((state.progress_done, state.progress_total))

    monkeypatch.setattr(pop3_actions, "_store_batch", recording)

    report = do_fetch_pop3(pop_account.pk)

    assert (report.new, report.error) == (2000, "")
    sizes = [pop3_actions.FIRST_BATCH] + [pop3_actions.BATCH_MESSAGES] * 2000
    ends = [sum(sizes[: k + 1]) for k in range(len(sizes)) if sum(sizes[:k]) < 2000]
    assert progress == [(min(n, 2000), 2000) for n in ends]
    assert Message.objects.filter(account=pop_account).values("message_id").distinct().count() == 2000
    assert inbox_of(pop_account).total_count == 2000
    assert SyncState.objects.get(pk=pop_account.pk).progress_total == 0  # reset after the pass
    assert do_fetch_pop3(pop_account.pk).new == 0


def test_a_refused_password_stops_retries_and_says_why(mailstack, remote, alice, mail_settings):
    account = make_pop_account(alice, remote, mailstack.pop3_port, password="wrong")

    report = do_fetch_pop3(account.pk)

    assert "refused the user name or password" in report.error
    account.refresh_from_db()
    assert account.state == "auth_failed"
    assert remote.address in account.state_reason
    state = SyncState.objects.get(pk=account.pk)
    assert (state.failures, state.next_attempt_at) == (1, None)


def test_an_unreachable_server_backs_off(alice, remote, mail_settings):
    from tests.mailcore.conftest import free_port

    account = make_pop_account(alice, remote, free_port())
    before = timezone.now()

    do_fetch_pop3(account.pk)
    do_fetch_pop3(account.pk)

    state = SyncState.objects.get(pk=account.pk)
    assert state.failures == 2
    assert before + timedelta(seconds=55) < state.next_attempt_at < timezone.now() + timedelta(seconds=61)
    account.refresh_from_db()
    assert account.state == "connection_failing" and "refused" in account.state_reason


def test_a_held_lock_makes_the_pass_a_no_op_that_asks_for_another(mailstack, remote, pop_account):
    deliver(mailstack, remote, [1])
    with account_lock(pop_account.pk) as held:
        assert held is not None
        report = do_fetch_pop3(pop_account.pk)
    assert report.skipped and report.new == 0
    assert take_again_request(pop_account.pk)


def test_the_sync_dispatcher_downloads_pop3_accounts(mailstack, remote, pop_account):
    deliver(mailstack, remote, [1])

    report = do_sync(pop_account.pk)

    assert isinstance(report, Pop3Report) and report.new == 1


def test_imap_accounts_are_not_pop3_downloaded(alice, mail_settings):
    account = make_account(alice)

    assert do_fetch_pop3(account.pk).skipped


def test_local_folders_are_created_once_and_found_after_a_rename(alice):
    account = make_account(alice, incoming_protocol="pop3")
    first = ensure_local_folders(account)
    Folder.objects.filter(pk=first[SpecialUse.ARCHIVE].pk).update(name="Kept")

    again = ensure_local_folders(account)

    assert {k: f.pk for k, f in again.items()} == {k: f.pk for k, f in first.items()}
    assert Folder.objects.filter(account=account).count() == 6


def test_a_full_storage_quota_leaves_newer_mail_on_the_server_until_there_is_room(
    alice, pop_account, mailstack, remote
):
    from accounts.models import Limits
    from webmail.mail.actions.sync import QUOTA_NOTE

    for n in range(1, 5):
        mailstack.deliver_lmtp(remote.address, message(n, size=300_000))
    Limits.objects.create(user=alice, max_cache_mb=1)  # room for three of the four
    report = do_fetch_pop3(pop_account.pk)
    assert report.new == 3 and report.quota_reached and not report.error
    pop_account.refresh_from_db()
    assert pop_account.state == "ok" and QUOTA_NOTE in pop_account.state_reason
    assert len(server_messages(mailstack, remote)) == 4  # nothing deleted that was not downloaded
    Limits.objects.filter(user=alice).update(max_cache_mb=10)
    assert do_fetch_pop3(pop_account.pk).new == 1
    pop_account.refresh_from_db()
    assert pop_account.state_reason == ""
    assert len(cached_ids(pop_account)) == 4
