"""Download POP3 mail into the account's local Inbox exactly once, and apply the leave-on-server policy.

Exactly once (RFC 1939 has no server-side "seen" state, so the cache keeps its own): each batch of
retrieved messages is stored in one transaction together with its Pop3Download ledger rows (UIDL ->
message). A message is DELEted only after that transaction commits, and deletions take effect only
at QUIT (RFC 1939 6). So a crash before the commit leaves the message on the server to be retrieved
again, and a crash after it leaves a ledger row that stops a second download; the next pass DELEs
whatever the policy says is due.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.connection import incoming_endpoint, net_guard, tls_config
from accounts.models import AccountState, LeaveOnServer, MailAccount, Protocol
from webmail.mail.actions.outcome import record_failure, record_success
from webmail.mail.actions.store import Incoming, ParseJob, insert_rows, store_messages
from webmail.mail.actions.sync import QUOTA_NOTE, Budget
from webmail.mail.events import send_event_on_commit
from webmail.mail.locks import AccountLock, account_lock, request_again, take_again_request
from webmail.mail.models import Folder, Message, Pop3Download, SpecialUse, SyncState
from webmail.mailcore.errors import MailError
from webmail.mailcore.pop3 import Pop3Refused, Pop3Session
from webmail.mailcore.types import Pop3Listing

log = logging.getLogger(__name__)

BATCH_MESSAGES = 500  # per transaction (messages and their ledger rows)
FIRST_BATCH = 100  # the first batch: storing starts while the rest is retrieved
BATCH_BYTES = 16 * 1024 * 1024  # ... or fewer when the messages are large: memory stays flat
LEDGER_CHUNK = 1000  # ids per IN (...) query
# The local folders of a POP3 account: (name, special use). POP3 has only the maildrop (RFC 1939 1).
LOCAL_FOLDERS = (
    ("INBOX", SpecialUse.INBOX),
    ("Archive", SpecialUse.ARCHIVE),
    ("Drafts", SpecialUse.DRAFTS),
    ("Sent", SpecialUse.SENT),
    ("Junk", SpecialUse.JUNK),
    ("Trash", SpecialUse.TRASH),
)
NO_UIDL_NOTE = (
    "This server does not support UIDL (RFC 1939 7): messages are recognised by a hash of their "
    "headers, so two messages with identical headers may be told apart only by their order."
)


@dataclass
class Pop3Report:
    """What one POP3 pass did, for logs, the management command and tests."""

    new: int = 0  # messages stored in the Inbox
    deleted: int = 0  # messages deleted from the server (QUIT succeeded)
    on_server: int = 0  # messages in the maildrop at the start of the pass
    failed: list[str] = field(default_factory=list)  # UIDLs the server would not hand over; retried later
    uidl_fallback: bool = False  # ids are header hashes: the server has no UIDL
    quota_reached: bool = False  # the owner's storage quota left newer messages on the server
    skipped: bool = False  # another sync held the lock, or the account is not an active POP3 one
    error: str = ""


def open_session(account: MailAccount) -> Pop3Session:
    """Return a POP3 session for ACCOUNT (not yet connected: use it as a context manager).

    Octet counts are checked here rather than in the session, so that a server that miscounts
    every time is told apart from a transfer that broke (see _recheck).
    """
    return Pop3Session(
        incoming_endpoint(account),
        tls=tls_config(),
        guard=net_guard(),
        disabled_caps=frozenset(getattr(settings, "WEBMAIL_POP3_DISABLED_CAPS", ())),
        check_sizes=False,
    )


def ensure_local_folders(account: MailAccount) -> dict[str, Folder]:
    """Create the local folders of a POP3 account if missing; return them by special use.

    A folder the person renamed keeps its special use and is found by it, not by its name.
    """
    found = {
        f.special_use: f
        for f in Folder.objects.filter(account=account, is_local=True).exclude(special_use=SpecialUse.NONE)
    }
    for name, use in LOCAL_FOLDERS:
        if use in found:
            continue
        folder, created = Folder.objects.get_or_create(
            account=account,
            name=name,
            defaults={"special_use": use, "is_local": True, "delimiter": "/", "uidvalidity": 1, "uidnext": 1},
        )
        if not created and (folder.special_use != use or not folder.is_local):
            folder.special_use, folder.is_local = use, True
            folder.save(update_fields=["special_use", "is_local"])
        found[use] = folder
    return found


def do_fetch_pop3(account_id: int, *, now: datetime | None = None) -> Pop3Report:
    """Download new mail of a POP3 account into its local Inbox under the account lock; apply the
    leave-on-server policy; record the outcome on the account.

    Precondition: none; a missing, disabled or IMAP account is ignored. Another sync holding the
    lock makes this one a no-op that asks the holder to go round once more. NOW (default: the
    current time) is when the pass happens: downloads are dated with it and the "delete after N
    days" rule is measured from it.
    """
    account = MailAccount.objects.filter(pk=account_id).first()
    report = Pop3Report()
    if (
        account is None
        or account.state == AccountState.DISABLED
        or account.incoming_protocol != Protocol.POP3
    ):
        report.skipped = True
        return report
    with account_lock(account.pk, ttl=settings.WEBMAIL_SYNC_LOCK_TTL) as lock:
        if lock is None:
            request_again(account.pk)
            report.skipped = True
            return report
        SyncState.objects.get_or_create(account=account)
        SyncState.objects.filter(pk=account.pk).update(started_at=timezone.now())
        try:
            for _ in range(3):  # go round again while syncs were requested during this one
                _fetch(account, lock, report, now or timezone.now())
                if not take_again_request(account.pk):
                    break
        except MailError as exc:
            report.error = str(exc)
            record_failure(account, exc, what="POP3 download")
            return report
        if report.failed:
            exc = MailError(
                "protocol",
                f"{account.incoming_host}:{account.incoming_port} did not hand over "
                f"{len(report.failed)} message(s); they stay on the server and will be tried again. "
                f"Last reason: {report.error}",
                host=account.incoming_host,
                port=account.incoming_port,
            )
            report.error = str(exc)
            record_failure(account, exc, what="POP3 download")
            return report
        _record_success(account, report)
    return report


def _fetch(account: MailAccount, lock: AccountLock, report: Pop3Report, now: datetime) -> None:
    """One session: list, retrieve what is new (batch by batch, committed), DELE what is due, QUIT."""
    inbox = ensure_local_folders(account)[SpecialUse.INBOX]
    with open_session(account) as session:
        listing = session.listing()
        report.on_server = len(listing)
        report.uidl_fallback = report.uidl_fallback or session.uidl_fallback
        ledger = _ledger(account, listing)
        new = [item for item in listing if item.uid not in ledger]
        budget = Budget.for_account(account)
        if budget is not None and new:  # the oldest that fit; the rest wait on the server
            new = new[: len(budget.take([(item.number, item.size) for item in new]))]
            report.quota_reached = budget.reached
        if new:
            SyncState.objects.filter(pk=account.pk).update(progress_total=len(new), progress_done=0)
        _download(session, account, inbox, new, ledger, report, lock, now)
        due = _due_for_deletion(account, listing, ledger, now)
        for item in due:
            session.dele(item.number)
        # Leaving the block sends QUIT: the server removes the DELEted messages (RFC 1939 6).
    if due:
        _mark_deleted(account, [item.uid for item in due], now)
        report.deleted += len(due)
    _mark_gone(account, listing, now)


@dataclass
class _Retrieved:
    """One batch as it came from the server: whole messages (item, raw, note) and refused UIDLs."""

    fetched: list[tuple[Pop3Listing, bytes, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (uidl, reason)
    parsing: ParseJob | None = None  # the fetched messages being parsed, in their order


def _download(
    session: Pop3Session,
    account: MailAccount,
    inbox: Folder,
    new: list[Pop3Listing],
    ledger: dict[str, datetime],
    report: Pop3Report,
    lock: AccountLock,
    now: datetime,
) -> None:
    """Retrieve NEW batch by batch and commit each batch with its ledger rows.

    A reader thread retrieves the next batch and starts its parsing (in the parse thread) while
    this thread stores the current one: the network, the parsing and the database writes overlap.
    Only this thread touches the database; the reader only the session, and it is joined before
    anyone else uses the session.
    """
    batches = _batches(new)
    handoff: queue.Queue[tuple[_Retrieved, BaseException | None] | None] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def read() -> None:
        for batch in batches:
            if stop.is_set():
                return
            got, failure = _Retrieved(), None
            try:
                _retrieve_batch(session, batch, got)
            except BaseException as exc:  # handed to the storing thread, which re-raises it
                failure = exc
            # UIDs are allocated when the batch is stored: store_messages sets them on the rows.
            got.parsing = ParseJob(inbox, [Incoming(uid=0, raw=raw) for _item, raw, _note in got.fetched])
            handoff.put((got, failure))
            if failure is not None:
                return
        handoff.put(None)

    reader = threading.Thread(target=read, name=f"pop3-retr-{account.pk}", daemon=True)
    reader.start()
    try:
        while (item := handoff.get()) is not None:
            got, failure = item
            for uidl, reason in got.failed:
                report.failed.append(uidl)
                report.error = reason
            # Also after a dropped connection: what arrived whole is kept; the rest stays on the
            # server for the next pass.
            _store_batch(account, inbox, got, ledger, report, now)
            lock.extend()
            if failure is not None:
                raise failure
    finally:
        stop.set()
        while reader.is_alive():  # unblock a reader waiting to hand over a batch
            try:
                handoff.get(timeout=0.05)
            except queue.Empty:
                pass
        reader.join()


def _ledger(account: MailAccount, listing: Sequence[Pop3Listing]) -> dict[str, datetime]:
    """Return {uidl: downloaded_at} for the listed messages already downloaded."""
    uids = [item.uid for item in listing]
    known: dict[str, datetime] = {}
    if len(uids) > LEDGER_CHUNK:
        # One scan of the account's ledger beats many IN queries on a large maildrop.
        wanted = set(uids)
        rows = Pop3Download.objects.filter(account=account).values_list("uidl", "downloaded_at")
        return {uidl: at for uidl, at in rows.iterator(chunk_size=5000) if uidl in wanted}
    for start in range(0, len(uids), LEDGER_CHUNK):
        chunk = uids[start : start + LEDGER_CHUNK]
        known.update(
            Pop3Download.objects.filter(account=account, uidl__in=chunk).values_list("uidl", "downloaded_at")
        )
    return known


def _batches(items: Sequence[Pop3Listing]) -> list[list[Pop3Listing]]:
    out: list[list[Pop3Listing]] = []
    batch: list[Pop3Listing] = []
    total = 0
    limit = min(FIRST_BATCH, BATCH_MESSAGES)
    for item in items:
        if batch and (len(batch) >= limit or total + item.size > BATCH_BYTES):
            out.append(batch)
            batch, total, limit = [], 0, BATCH_MESSAGES
        batch.append(item)
        total += item.size
    if batch:
        out.append(batch)
    return out


def _retrieve_batch(session: Pop3Session, batch: list[Pop3Listing], got: _Retrieved) -> None:
    """RETR BATCH (pipelined when the server allows) into GOT.

    A -ERR for one message (RFC 1939 3) leaves the session usable: that message is skipped, noted
    in GOT.failed and tried again next pass. Messages whose octet count differs from LIST are
    checked once more after the batch (see _recheck); a connection failure propagates, with
    GOT.fetched holding the messages that arrived whole. Touches no database.
    """
    by_number = {item.number: item for item in batch}
    pending = [item.number for item in batch]
    miscounted: list[tuple[Pop3Listing, bytes]] = []
    while pending:
        done = 0
        try:
            for number, raw in session.retr_many(pending):
                item = by_number[number]
                done += 1
                if item.size and len(raw) != item.size:
                    miscounted.append((item, raw))
                else:
                    got.fetched.append((item, raw, ""))
            pending = []
        except Pop3Refused as exc:
            item = by_number[pending[done]]
            log.warning("POP3 message %s refused: %s", item.uid, exc)
            got.failed.append((item.uid, str(exc)))
            pending = pending[done + 1 :]
    for item, raw in miscounted:
        try:
            got.fetched.append(_recheck(session, item, raw))
        except Pop3Refused as exc:
            got.failed.append((item.uid, str(exc)))


def _recheck(session: Pop3Session, item: Pop3Listing, raw: bytes) -> tuple[Pop3Listing, bytes, str]:
    """Tell a broken transfer from a server that miscounts: RETR once more.

    A count that differs from LIST (RFC 1939 5) means either. The same bytes twice are what the
    server has: keep them with a note. Two different transfers raise Pop3Refused, so the message
    is skipped and tried next pass.
    """
    _number, again = next(session.retr_many([item.number], window=1))
    if len(again) == item.size:
        return item, again, ""
    if again == raw:
        return item, raw, f"server listed {item.size} octets but sent {len(raw)}"
    raise Pop3Refused(
        "protocol",
        f"{session.endpoint.address} sent {len(raw)}, then {len(again)} octets for message "
        f"{item.number} but listed {item.size}: the transfer is incomplete.",
        host=session.endpoint.host,
        port=session.endpoint.port,
    )


def _store_batch(
    account: MailAccount,
    inbox: Folder,
    got: _Retrieved,
    ledger: dict[str, datetime],
    report: Pop3Report,
    now: datetime,
) -> None:
    """Store what GOT fetched in the Inbox with the ledger rows and progress, in one transaction.

    LEDGER gains the stored UIDLs once the transaction has committed.
    """
    fetched = got.fetched
    if not fetched:
        return
    with transaction.atomic():
        first = _allocate_uids(inbox, len(fetched))
        items = [Incoming(uid=first + i, raw=raw) for i, (_item, raw, _note) in enumerate(fetched)]
        stored = {m.uid: m for m in store_messages(inbox, items, got.parsing)}
        rows_ledger = []
        for incoming, (item, _raw, note) in zip(items, fetched, strict=True):
            message = stored.get(incoming.uid)
            if note and message is not None:
                message.parse_problems = [*message.parse_problems, note]
                Message.objects.filter(pk=message.pk).update(parse_problems=message.parse_problems)
            rows_ledger.append(
                Pop3Download(account=account, uidl=item.uid, message=message, downloaded_at=now)
            )
        insert_rows(rows_ledger, with_ids=False)
        rows = list(stored.values())
        Folder.objects.filter(pk=inbox.pk).update(
            total_count=F("total_count") + len(rows),
            unread_count=F("unread_count") + sum(1 for m in rows if not m.seen and not m.deleted),
            last_synced_at=now,
        )
        SyncState.objects.filter(pk=account.pk).update(progress_done=F("progress_done") + len(fetched))
        if rows:
            latest = max(rows, key=lambda m: m.date)
            send_event_on_commit(
                account.user_id,
                {
                    "type": "mail.new",
                    "account": account.pk,
                    "folder": inbox.pk,
                    "count": len(rows),
                    "latest": {
                        "from": latest.from_name or latest.from_email,
                        "subject": latest.subject[:200],
                    },
                },
            )
    report.new += len(stored)
    ledger.update((item.uid, now) for item, _raw, _note in fetched)


def _allocate_uids(folder: Folder, count: int) -> int:
    """Reserve COUNT local UIDs in FOLDER (its uidnext is the counter); return the first.

    The UPDATE comes first so that it takes the row lock: a concurrent local move into the same
    folder waits instead of reading the same counter.
    """
    Folder.objects.filter(pk=folder.pk).update(uidnext=Coalesce(F("uidnext"), Value(1)) + count)
    end = Folder.objects.filter(pk=folder.pk).values_list("uidnext", flat=True).get()
    return end - count


def _due_for_deletion(
    account: MailAccount,
    listing: Sequence[Pop3Listing],
    downloaded: dict[str, datetime],
    now: datetime,
) -> list[Pop3Listing]:
    """Return the listed messages whose download is committed and that the policy removes now."""
    policy = account.pop3_leave_on_server
    if policy == LeaveOnServer.KEEP:
        return []
    if policy == LeaveOnServer.DELETE_NOW:
        return [item for item in listing if item.uid in downloaded]
    cutoff = now - timedelta(days=account.pop3_delete_after_days)
    return [item for item in listing if item.uid in downloaded and downloaded[item.uid] <= cutoff]


def _mark_deleted(account: MailAccount, uids: list[str], now: datetime) -> None:
    for start in range(0, len(uids), LEDGER_CHUNK):
        Pop3Download.objects.filter(account=account, uidl__in=uids[start : start + LEDGER_CHUNK]).update(
            deleted_from_server_at=now
        )


def _mark_gone(account: MailAccount, listing: Sequence[Pop3Listing], now: datetime) -> None:
    """Note ledger rows whose message left the server (another client, or a QUIT whose note was lost)."""
    listed = {item.uid for item in listing}
    gone = [
        pk
        for pk, uidl in Pop3Download.objects.filter(account=account, deleted_from_server_at=None)
        .values_list("pk", "uidl")
        .iterator(chunk_size=5000)
        if uidl not in listed
    ]
    for start in range(0, len(gone), LEDGER_CHUNK):
        Pop3Download.objects.filter(pk__in=gone[start : start + LEDGER_CHUNK]).update(
            deleted_from_server_at=now
        )


def _record_success(account: MailAccount, report: Pop3Report) -> None:
    notes = [QUOTA_NOTE] if report.quota_reached else []
    notes += [NO_UIDL_NOTE] if report.uidl_fallback else []
    record_success(account, reason=" ".join(notes))
