"""Keep the cache true to the IMAP server: folders, new mail, flags and expunges (RFC 3501, RFC 7162).

Crash safety: each batch of new messages is stored in one transaction together with the folder's
`synced_uid`, so a sync killed at any point resumes above the last stored UID with nothing lost and
nothing stored twice (and (folder, uid) is unique besides). HIGHESTMODSEQ is saved only after a
folder's changes are all applied, so an interrupted delta is simply asked for again.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.connection import incoming_endpoint, net_guard, tls_config
from accounts.models import AccountState, MailAccount
from webmail.mail.actions.changes import apply_pending
from webmail.mail.actions.outcome import record_failure, record_success
from webmail.mail.actions.store import (
    POOL_MIN,
    Incoming,
    ParseJob,
    flag_fields,
    refresh_counts,
    start_parse_pool,
    store_messages,
)
from webmail.mail.events import send_event_on_commit
from webmail.mail.locks import AccountLock, LockLost, account_lock, request_again, take_again_request
from webmail.mail.models import Folder, Message, SpecialUse, SyncState
from webmail.mail.walcheckpoint import Checkpoints, checkpoints_aside
from webmail.mailcore import types as imap_types
from webmail.mailcore.errors import MailError
from webmail.mailcore.imap import ImapSession, ListStatus

log = logging.getLogger(__name__)

BATCH_MESSAGES = 500  # per FETCH of full messages and per transaction
FIRST_BATCH = 100  # the first batch of a folder: the pipeline (fetch, parse, store) fills sooner
BATCH_BYTES = 16 * 1024 * 1024  # ... or fewer when the messages are large: memory stays flat
PREFETCH = 1  # fetched batches waiting to be stored (plus one being stored, one on the wire)
FLAG_BATCH = 5000  # UIDs per FLAGS fetch in the full reconcile path
SPECIAL_USE = {
    "\\sent": SpecialUse.SENT,
    "\\drafts": SpecialUse.DRAFTS,
    "\\trash": SpecialUse.TRASH,
    "\\junk": SpecialUse.JUNK,
    "\\archive": SpecialUse.ARCHIVE,
    "\\all": SpecialUse.ALL,
    "\\flagged": SpecialUse.FLAGGED,
}


@dataclass
class SyncReport:
    """What one sync pass did, for logs, the management command and tests."""

    folders: int = 0
    new: int = 0
    changed: int = 0
    expunged: int = 0
    skipped: bool = False  # another sync held the lock
    error: str = ""
    per_folder: dict[str, dict[str, int]] = field(default_factory=dict)
    budget: Budget | None = None  # the owner's cache storage quota, when one is set


@dataclass
class Budget:
    """Bytes of new mail the owner's cache may still take (their storage quota minus what is cached)."""

    room: int
    reached: bool = False

    @classmethod
    def for_account(cls, account: MailAccount) -> Budget | None:
        from django.db.models import Sum

        from accounts.limits import effective_limits

        limit = effective_limits(account.user).max_cache_bytes
        if not limit:
            return None
        used = Message.objects.filter(account__user_id=account.user_id).aggregate(n=Sum("size"))["n"] or 0
        return cls(room=limit - used)

    def take(self, sizes: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Keep the oldest messages that fit; note when some did not."""
        kept = []
        for uid, size in sizes:
            if size > self.room:
                self.reached = True
                break
            self.room -= size
            kept.append((uid, size))
        return kept


QUOTA_NOTE = "Your storage quota here is full: new mail stays on the server and is not downloaded."


Progress = Callable[[str, int, int], None]


def open_session(account: MailAccount) -> ImapSession:
    """Return a logged-in IMAP session for ACCOUNT (capabilities hidden per settings, for tests)."""
    return ImapSession(
        incoming_endpoint(account),
        tls=tls_config(),
        guard=net_guard(),
        disabled_caps=frozenset(getattr(settings, "WEBMAIL_IMAP_DISABLED_CAPS", ())),
    )


def do_sync_account(
    account_id: int, *, folder_names: Iterable[str] | None = None, progress: Progress | None = None
) -> SyncReport:
    """Sync ACCOUNT_ID's folders (all, or FOLDER_NAMES) under the account lock; record the outcome.

    Precondition: none; a missing, disabled or POP3 account is ignored. Another sync holding the
    lock makes this one a no-op that asks the holder to go round once more.
    """
    account = MailAccount.objects.filter(pk=account_id).first()
    report = SyncReport()
    if account is None or account.state == AccountState.DISABLED or account.incoming_protocol != "imap":
        report.skipped = True
        return report
    with account_lock(account.pk, ttl=settings.WEBMAIL_SYNC_LOCK_TTL) as lock:
        if lock is None:
            request_again(account.pk)
            report.skipped = True
            return report
        SyncState.objects.get_or_create(account=account)
        report.budget = Budget.for_account(account)
        # Progress counts this pass only: a pass killed earlier left its own figures behind.
        # Progress counts this pass only; started_at marks complete passes (beat skips running ones).
        begun = {"started_at": timezone.now()} if not folder_names else {}
        SyncState.objects.filter(pk=account.pk).update(progress_done=0, progress_total=0, **begun)
        try:
            wanted = list(folder_names) if folder_names else None
            for _ in range(3):  # go round again while syncs were requested during this one
                with open_session(account) as session:
                    # Carry the person's own pending changes first, so the server state read next
                    # already has them (no flicker back to the old flags in the page).
                    apply_pending(session, account.pk)
                    _sync(session, account, lock, report, wanted, progress)
                if not take_again_request(account.pk):
                    break
                wanted = None  # a request came in meanwhile, maybe for another folder: do them all
        except MailError as exc:
            report.error = str(exc)
            record_failure(account, exc)
            return report
        except LockLost:
            # The lock expired (a stalled pass) and another sync may own the account now: stop
            # here; everything stored so far is committed and consistent.
            log.warning("sync of account %s lost its lock; stopping", account.pk)
            report.error = "lock lost"
            return report
        quota = report.budget is not None and report.budget.reached
        record_success(account, complete=not folder_names, reason=QUOTA_NOTE if quota else "")
    return report


def _sync(
    session: ImapSession,
    account: MailAccount,
    lock: AccountLock,
    report: SyncReport,
    folder_names: Iterable[str] | None,
    progress: Progress | None,
) -> None:
    # LIST-STATUS (RFC 5819): folders, subscriptions, special use and every folder's status in
    # one round trip; a folder whose status equals the cache needs no SELECT at all.
    listed = session.list_folders_with_status()
    folders = sync_folder_list(session, account, listed)
    statuses = listed.status if listed is not None else {}
    wanted = set(folder_names) if folder_names else None
    todo = [f for f in folders if f.selectable and (wanted is None or f.name in wanted)]
    todo.sort(key=lambda f: (f.special_use != SpecialUse.INBOX, f.name))
    report.folders += len(todo)
    unchanged: list[int] = []
    for folder in todo:
        if session.condstore and _unchanged(folder, statuses.get(folder.name)):
            unchanged.append(folder.pk)
            report.per_folder[folder.name] = {"new": 0, "changed": 0, "expunged": 0}
            continue
        lock.extend()
        stats = sync_folder(session, folder, lock=lock, progress=progress, budget=report.budget)
        if report.budget is not None and report.budget.reached:
            # Not everything is here: never let "UIDNEXT unchanged" skip this folder next time.
            Folder.objects.filter(pk=folder.pk).update(uidnext=None)
        report.per_folder[folder.name] = stats
        report.new += stats["new"]
        report.changed += stats["changed"]
        report.expunged += stats["expunged"]
    if unchanged:
        Folder.objects.filter(pk__in=unchanged).update(last_synced_at=timezone.now(), last_error="")


def _unchanged(folder: Folder, status: imap_types.FolderState | None) -> bool:
    """True when STATUS proves nothing changed since the cache was last completed (RFC 7162 3.1.2).

    Any flag change or expunge raises HIGHESTMODSEQ and any new message raises UIDNEXT; the
    cached values are saved only once a folder is completely synced, so an interrupted pass
    never matches. Without mod-sequences (no CONDSTORE, NOMODSEQ) nothing is proven.
    """
    return (
        status is not None
        and folder.uidvalidity is not None
        and folder.uidnext is not None
        and folder.highestmodseq is not None
        and status.highestmodseq is not None
        and status.uidvalidity == folder.uidvalidity
        and status.uidnext == folder.uidnext
        and status.highestmodseq == folder.highestmodseq
        and status.exists == folder.server_count
    )


def special_use_of(remote: imap_types.Folder) -> str:
    if remote.name.upper() == "INBOX":
        return SpecialUse.INBOX
    return SPECIAL_USE.get((remote.special_use or "").lower(), SpecialUse.NONE)


@transaction.atomic
def sync_folder_list(
    session: ImapSession, account: MailAccount, listed: ListStatus | None = None
) -> list[Folder]:
    """Make the cached folder list equal the server's (LIST + LSUB / SPECIAL-USE, RFC 6154).

    LISTED is a LIST-STATUS answer already read (RFC 5819), else LIST and LSUB are sent here.
    A folder that disappears while one with the same UIDVALIDITY appears was renamed: its cache is
    kept under the new name (Dovecot and most servers keep UIDVALIDITY across RENAME).
    """
    statuses = listed.status if listed is not None else {}
    remote = {f.name: f for f in (listed.folders if listed is not None else session.list_folders())}
    cached = {f.name: f for f in Folder.objects.filter(account=account, is_local=False)}
    gone = [f for name, f in cached.items() if name not in remote]
    new_names = [name for name in remote if name not in cached]
    if gone and new_names:
        by_validity = {f.uidvalidity: f for f in gone if f.uidvalidity}
        for name in list(new_names):
            status = (statuses.get(name) or session.folder_status(name)) if by_validity else None
            moved = by_validity.pop(status.uidvalidity, None) if status else None
            if moved is not None:
                moved.name = name
                moved.save(update_fields=["name"])
                cached[name] = moved
                gone.remove(moved)
                new_names.remove(name)
    if gone:
        Folder.objects.filter(pk__in=[f.pk for f in gone]).delete()
    result = []
    for name, r in remote.items():
        folder = cached.get(name) or Folder(account=account, name=name)
        values = {
            "delimiter": r.delimiter or "",
            "special_use": special_use_of(r),
            "subscribed": r.subscribed or special_use_of(r) == SpecialUse.INBOX,
            "selectable": r.selectable,
        }
        if folder.pk is None or any(getattr(folder, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(folder, k, v)
            folder.save()
        folder.account = account
        result.append(folder)
    if gone or new_names:
        send_event_on_commit(
            account.user_id, {"type": "mail.changed", "account": account.pk, "folders": True}
        )
    return result


def sync_folder(
    session: ImapSession,
    folder: Folder,
    *,
    lock: AccountLock | None = None,
    progress: Progress | None = None,
    budget: Budget | None = None,
) -> dict[str, int]:
    """Bring one folder's cache up to date and return counts of new, changed and expunged messages."""
    stats = {"new": 0, "changed": 0, "expunged": 0}
    use_qresync = session.qresync_enabled and bool(folder.uidvalidity and folder.highestmodseq)
    state = session.select(
        folder.name, qresync=(folder.uidvalidity, folder.highestmodseq) if use_qresync else None
    )
    if folder.uidvalidity is not None and state.uidvalidity != folder.uidvalidity:
        # RFC 3501 2.3.1.1: the old UIDs mean nothing now; start this folder again.
        log.info(
            "UIDVALIDITY of %s changed (%s -> %s): refetching",
            folder.name,
            folder.uidvalidity,
            state.uidvalidity,
        )
        with transaction.atomic():
            stats["expunged"] += Message.objects.filter(folder=folder).delete()[1].get("mail.Message", 0)
            folder.synced_uid, folder.highestmodseq, folder.uidnext = 0, None, None
            folder.total_count = folder.unread_count = 0
            folder.uidvalidity = state.uidvalidity
            folder.save(
                update_fields=[
                    "synced_uid",
                    "highestmodseq",
                    "uidnext",
                    "uidvalidity",
                    "total_count",
                    "unread_count",
                ]
            )
        use_qresync = False
    elif folder.uidvalidity is None:
        Folder.objects.filter(pk=folder.pk).update(uidvalidity=state.uidvalidity)
        folder.uidvalidity = state.uidvalidity

    nothing_new = state.uidnext is not None and folder.uidnext == state.uidnext
    if use_qresync and state.qresync:
        # RFC 7162 3.2.5.2: VANISHED (EARLIER) and FETCH FLAGS are the complete delta since our modseq.
        stats["expunged"] += _apply_vanished(folder, state.vanished)
        stats["changed"] += _apply_flag_changes(folder, state.changed)
        if state.highestmodseq == folder.highestmodseq and nothing_new:
            _finish_folder(folder, state, stats)
            return stats
    elif folder.synced_uid:
        expunged, changed = _full_reconcile(session, folder, state)
        stats["expunged"] += expunged
        stats["changed"] += changed

    stats["new"] += _fetch_new(session, folder, state, lock=lock, progress=progress, budget=budget)
    _finish_folder(folder, state, stats)
    return stats


def _finish_folder(folder: Folder, state: imap_types.FolderState, stats: dict[str, int]) -> None:
    with transaction.atomic():
        folder.uidnext = state.uidnext
        folder.highestmodseq = state.highestmodseq
        folder.server_count = state.exists
        folder.last_synced_at = timezone.now()
        folder.last_error = ""
        folder.save(
            update_fields=["uidnext", "highestmodseq", "server_count", "last_synced_at", "last_error"]
        )
        if any(stats.values()):
            refresh_counts(folder)
            send_event_on_commit(
                folder.account.user_id,
                {"type": "mail.changed", "account": folder.account_id, "folder": folder.pk, **stats},
            )


def _apply_vanished(folder: Folder, uids: Iterable[int]) -> int:
    uids = list(uids)
    deleted = 0
    for start in range(0, len(uids), 1000):
        deleted += (
            Message.objects.filter(folder=folder, uid__in=uids[start : start + 1000])
            .delete()[1]
            .get("mail.Message", 0)
        )
    return deleted


def _apply_flag_changes(folder: Folder, changes: Iterable[imap_types.FlagChange]) -> int:
    changed = 0
    with transaction.atomic():
        for change in changes:
            changed += Message.objects.filter(folder=folder, uid=change.uid).update(
                modseq=change.modseq, **flag_fields(change.flags)
            )
    return changed


def _full_reconcile(session: ImapSession, folder: Folder, state: imap_types.FolderState) -> tuple[int, int]:
    """Without a QRESYNC delta: find expunged UIDs and flag changes by comparing with the server."""
    server_uids = set(session.uid_search_all())
    cached = dict(Message.objects.filter(folder=folder, uid__gt=0).values_list("uid", "id"))
    expunged = _apply_vanished(folder, [uid for uid in cached if uid not in server_uids])
    known = sorted(uid for uid in cached if uid in server_uids)
    if folder.highestmodseq and state.highestmodseq and session.condstore:
        wanted = set(known)
        changes = [c for c in session.changed_since(folder.highestmodseq) if c.uid in wanted]
        changed = _apply_flag_changes(folder, changes)
        return expunged, changed
    changed = 0
    current = {
        uid: (seen, flagged, answered, draft, deleted, kw)
        for uid, seen, flagged, answered, draft, deleted, kw in Message.objects.filter(
            folder=folder
        ).values_list("uid", "seen", "flagged", "answered", "draft", "deleted", "keywords")
    }
    for start in range(0, len(known), FLAG_BATCH):
        diffs = []
        for change in session.fetch_flags(known[start : start + FLAG_BATCH]):
            f = flag_fields(change.flags)
            if current.get(change.uid) != (
                f["seen"],
                f["flagged"],
                f["answered"],
                f["draft"],
                f["deleted"],
                f["keywords"],
            ):
                diffs.append(change)
        changed += _apply_flag_changes(folder, diffs)
    return expunged, changed


def _batches(sizes: list[tuple[int, int]]) -> Iterator[list[int]]:
    """Split SIZES into batches of UIDs; the first is small, so storing starts while the rest comes."""
    batch: list[int] = []
    total = 0
    limit = min(FIRST_BATCH, BATCH_MESSAGES)
    for uid, size in sizes:
        if batch and (len(batch) >= limit or total + size > BATCH_BYTES):
            yield batch
            batch, total, limit = [], 0, BATCH_MESSAGES
        batch.append(uid)
        total += size
    if batch:
        yield batch


Fetched = tuple[list[Incoming], ParseJob]


def _fetch_batch(session: ImapSession, folder: Folder, uids: list[int]) -> Fetched:
    """FETCH one batch of whole messages and start parsing them (in the parse thread)."""
    items = [
        Incoming(uid=m.uid, raw=m.raw, flags=m.flags, internal_date=m.internaldate, modseq=m.modseq)
        for chunk in session.fetch_headers(uids, batch=len(uids), full=True)
        for m in chunk
    ]
    return items, ParseJob(folder, items)


def _prefetch(session: ImapSession, folder: Folder, batches: list[list[int]]) -> Iterator[Fetched]:
    """Yield each batch's messages with their parsing begun, fetching the next batch in a thread.

    Three things overlap: the socket and TLS work of batch k+2, the parsing of batch k+1 and the
    storing of batch k (each releases the GIL for its own C work). At most PREFETCH batches wait,
    so memory stays bounded. Only the thread uses the session until the generator is done.
    """
    if len(batches) < 2:
        for uids in batches:
            yield _fetch_batch(session, folder, uids)
        return
    out: queue.Queue = queue.Queue(maxsize=PREFETCH)
    stop = threading.Event()

    def hand_over(item: object) -> bool:
        """Queue ITEM for the consumer; False once it has stopped listening."""
        while not stop.is_set():
            try:
                out.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for uids in batches:
                if not hand_over(_fetch_batch(session, folder, uids)):
                    return
            hand_over(None)
        except BaseException as exc:  # handed to the consumer, raised there
            hand_over(exc)

    thread = threading.Thread(target=run, name="imap-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = out.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def _fetch_new(
    session: ImapSession,
    folder: Folder,
    state: imap_types.FolderState,
    *,
    lock: AccountLock | None,
    progress: Progress | None,
    budget: Budget | None = None,
) -> int:
    """Fetch and store every message above synced_uid, batch by batch, each batch committed with progress.

    With a BUDGET, only as many (oldest first) as the owner's storage quota still takes.
    """
    if state.exists == 0:
        return 0
    uids = sorted(uid for uid in session.uid_search_all() if uid > folder.synced_uid)
    if not uids:
        return 0
    sizes = session.fetch_sizes(uids)
    if budget is not None:
        sizes = budget.take(sizes)
        if not sizes:
            return 0
    total = len(sizes)
    SyncState.objects.filter(pk=folder.account_id).update(progress_total=F("progress_total") + total)
    batches = list(_batches(sizes))
    if total >= POOL_MIN:
        start_parse_pool()  # in the background: the first batches are parsed in the thread meanwhile
    done = 0
    # closing(): on an exception the fetch thread must stop before the session is closed.
    with (
        contextlib.closing(_prefetch(session, folder, batches)) as fetching,
        checkpoints_aside() as checkpoints,
    ):
        done = _store_batches(
            folder, batches, fetching, total, lock=lock, progress=progress, checkpoints=checkpoints
        )
    return done


def _store_batches(
    folder: Folder,
    batches: list[list[int]],
    fetching: Iterator[Fetched],
    total: int,
    *,
    lock: AccountLock | None,
    progress: Progress | None,
    checkpoints: Checkpoints | None,
) -> int:
    done = 0
    for batch, (fetched, parsing) in zip(batches, fetching, strict=False):
        with transaction.atomic():
            stored = store_messages(folder, fetched, parsing)
            folder.synced_uid = max(batch)
            Folder.objects.filter(pk=folder.pk).update(
                synced_uid=folder.synced_uid,
                total_count=F("total_count") + len(stored),
                unread_count=F("unread_count") + sum(1 for m in stored if not m.seen and not m.deleted),
            )
            SyncState.objects.filter(pk=folder.account_id).update(
                progress_done=F("progress_done") + len(batch)
            )
            if stored:
                send_event_on_commit(
                    folder.account.user_id,
                    {
                        "type": "mail.new",
                        "account": folder.account_id,
                        "folder": folder.pk,
                        "count": len(stored),
                        "latest": {
                            "from": stored[-1].from_name or stored[-1].from_email,
                            "subject": stored[-1].subject[:200],
                        },
                    },
                )
        if checkpoints is not None:  # about what the batch added to the WAL (bodies compress, text does not)
            checkpoints.committed(sum(len(item.raw) for item in fetched))
        done += len(batch)
        if progress:
            progress(folder.name, done, total)
        if lock:
            lock.extend()
    return done
