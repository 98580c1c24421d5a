"""Changes people make to their mail: written to the cache at once, carried to the server by a task.

Every do_* here updates the cache in one transaction, records a PendingChange for IMAP folders and
enqueues `sync.apply_changes` after commit; the page can show the new state immediately. The task
applies changes in order under the account lock (so never in the middle of a sync). When the server
refuses a change, the cache is put back as the server has it and the person is told; the next sync
reconciles anything else (the server wins a conflict).
"""

from __future__ import annotations

import logging
import secrets
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.db import transaction

from webmail.mail import blobs
from webmail.mail.actions.store import Incoming, refresh_counts, store_messages
from webmail.mail.events import send_event_on_commit
from webmail.mail.models import Folder, Message, PendingChange, SpecialUse
from webmail.mailcore.errors import MailError

log = logging.getLogger(__name__)

TRANSIENT = {"refused", "timeout", "network", "tls", "unknown_host", "auth", "blocked_address", "capability"}


class ChangeRefused(ValueError):
    """A change that cannot be made (no such folder for this account, another account's folder...)."""


def _enqueue(account_ids: Iterable[int]) -> None:
    from webmail.mail.tasks import apply_changes

    for account_id in set(account_ids):
        transaction.on_commit(lambda a=account_id: apply_changes.delay(a))


def _changed_event(folders: Iterable[Folder]) -> None:
    by_user: dict[int, set[int]] = defaultdict(set)
    for folder in folders:
        by_user[folder.account.user_id].add(folder.pk)
    for user_id, ids in by_user.items():
        send_event_on_commit(user_id, {"type": "mail.changed", "folders": sorted(ids), "local": True})


def _rows(messages: Iterable[Message]) -> list[Message]:
    ids = [m.pk for m in messages]
    return list(Message.objects.filter(pk__in=ids).select_related("folder", "folder__account").order_by("pk"))


@transaction.atomic
def do_set_flags(
    messages: Iterable[Message],
    *,
    seen: bool | None = None,
    flagged: bool | None = None,
    answered: bool | None = None,
) -> int:
    """Set \\Seen, \\Flagged and/or \\Answered on MESSAGES; return how many rows changed.

    Precondition: the messages were loaded through access_* for their owner.
    """
    rows = _rows(messages)
    wanted = {
        k: v for k, v in (("seen", seen), ("flagged", flagged), ("answered", answered)) if v is not None
    }
    names = {"seen": "\\Seen", "flagged": "\\Flagged", "answered": "\\Answered"}
    changed: list[Message] = []
    for field, value in wanted.items():
        todo = [m for m in rows if getattr(m, field) != value]
        if not todo:
            continue
        Message.objects.filter(pk__in=[m.pk for m in todo]).update(**{field: value})
        server = [m for m in todo if not m.folder.is_local]
        by_account: dict[int, list[Message]] = defaultdict(list)
        for m in server:
            by_account[m.account_id].append(m)
        for account_id, items in by_account.items():
            PendingChange.objects.create(
                account_id=account_id,
                folder=items[0].folder,
                kind=PendingChange.Kind.FLAGS,
                messages=[m.pk for m in items],
                payload={"add" if value else "remove": [names[field]]},
            )
        _enqueue(by_account)
        changed.extend(todo)
    folders = {m.folder_id: m.folder for m in changed}
    for folder in folders.values():
        refresh_counts(folder)
    _changed_event(folders.values())
    return len({m.pk for m in changed})


@transaction.atomic
def do_move(messages: Iterable[Message], target: Folder) -> int:
    """Move MESSAGES into TARGET (same account); return how many moved."""
    rows = [m for m in _rows(messages) if m.folder_id != target.pk]
    if any(m.account_id != target.account_id for m in rows):
        raise ChangeRefused("messages can only move between folders of the same account")
    if not target.selectable:
        raise ChangeRefused("that folder cannot hold messages")
    touched = {target.pk: target}
    local_uid = _next_local_uid(target) if target.is_local else 0
    by_source: dict[int, list[Message]] = defaultdict(list)
    for m in rows:
        touched[m.folder_id] = m.folder
        if target.is_local:  # POP3 accounts: the cache is the only copy
            Message.objects.filter(pk=m.pk).update(folder=target, uid=local_uid)
            local_uid += 1
            continue
        if m.folder.is_local:
            raise ChangeRefused("local messages cannot move to a server folder")
        if m.uid <= 0 and _retarget_pending_move(m, target):
            continue
        by_source[m.folder_id].append(m)
        Message.objects.filter(pk=m.pk).update(folder=target, uid=-m.pk)
    if target.is_local:
        Folder.objects.filter(pk=target.pk).update(uidnext=local_uid)
    for items in by_source.values():
        PendingChange.objects.create(
            account_id=target.account_id,
            folder=items[0].folder,
            kind=PendingChange.Kind.MOVE,
            uids=[m.uid for m in items],
            messages=[m.pk for m in items],
            payload={"target": target.pk},
        )
    if by_source:
        _enqueue([target.account_id])
    for folder in touched.values():
        refresh_counts(folder)
    _changed_event(touched.values())
    return len(rows)


def _next_local_uid(folder: Folder) -> int:
    top = Message.objects.filter(folder=folder).order_by("-uid").values_list("uid", flat=True).first() or 0
    return max(folder.uidnext or 1, top + 1)


def _retarget_pending_move(message: Message, target: Folder) -> bool:
    """A message whose earlier move is not on the server yet: send that move to TARGET instead."""
    for change in PendingChange.objects.select_for_update().filter(
        account_id=message.account_id, kind=PendingChange.Kind.MOVE
    ):
        if message.pk in change.messages:
            index = change.messages.index(message.pk)
            if change.folder_id == target.pk:  # moved back where it is on the server: nothing to do
                uid = change.uids.pop(index)
                change.messages.pop(index)
                Message.objects.filter(pk=message.pk).update(folder=target, uid=uid)
            elif len(change.messages) == 1:
                change.payload = {**change.payload, "target": target.pk}
                Message.objects.filter(pk=message.pk).update(folder=target)
            else:  # split it off into its own change
                uid = change.uids.pop(index)
                change.messages.pop(index)
                PendingChange.objects.create(
                    account_id=message.account_id,
                    folder_id=change.folder_id,
                    kind=PendingChange.Kind.MOVE,
                    uids=[uid],
                    messages=[message.pk],
                    payload={"target": target.pk},
                )
                Message.objects.filter(pk=message.pk).update(folder=target)
            if change.messages:
                change.save()
            else:
                change.delete()
            return True
    return False


def special_folder(account_id: int, use: str) -> Folder | None:
    return Folder.objects.filter(account_id=account_id, special_use=use).select_related("account").first()


def _move_to_special(messages: Iterable[Message], use: str) -> int:
    rows = _rows(messages)
    moved = 0
    for account_id in sorted({m.account_id for m in rows}):
        target = special_folder(account_id, use)
        if target is None:
            raise ChangeRefused(f"this account has no {SpecialUse(use).label} folder")
        moved += do_move([m for m in rows if m.account_id == account_id], target)
    return moved


@transaction.atomic
def do_archive(messages: Iterable[Message]) -> int:
    """Move MESSAGES to their account's Archive folder."""
    return _move_to_special(messages, SpecialUse.ARCHIVE)


@transaction.atomic
def do_mark_spam(messages: Iterable[Message]) -> int:
    """Move MESSAGES to their account's Junk folder."""
    return _move_to_special(messages, SpecialUse.JUNK)


@transaction.atomic
def do_delete(messages: Iterable[Message]) -> int:
    """Move MESSAGES to Trash; those already in Trash (or in an account without one) go for good."""
    rows = _rows(messages)
    done = 0
    for account_id in sorted({m.account_id for m in rows}):
        mine = [m for m in rows if m.account_id == account_id]
        trash = special_folder(account_id, SpecialUse.TRASH)
        if trash is None:
            done += do_expunge(mine)
            continue
        done += do_expunge([m for m in mine if m.folder_id == trash.pk])
        done += do_move([m for m in mine if m.folder_id != trash.pk], trash)
    return done


@transaction.atomic
def do_expunge(messages: Iterable[Message]) -> int:
    """Delete MESSAGES for good, from the cache now and from the server by the task."""
    rows = _rows(messages)
    by_folder: dict[int, list[Message]] = defaultdict(list)
    for m in rows:
        by_folder[m.folder_id].append(m)
    for items in by_folder.values():
        folder = items[0].folder
        server = [m for m in items if not folder.is_local]
        on_server = [m.uid for m in server if m.uid > 0]
        pending = [m for m in server if m.uid <= 0]
        if on_server:
            PendingChange.objects.create(
                account_id=folder.account_id, folder=folder, kind=PendingChange.Kind.EXPUNGE, uids=on_server
            )
        for m in pending:  # still on its way here: expunge it once its move is applied
            for change in PendingChange.objects.select_for_update().filter(
                account_id=m.account_id, kind=PendingChange.Kind.MOVE
            ):
                if m.pk in change.messages:
                    change.payload = {**change.payload, "expunge": [*change.payload.get("expunge", []), m.pk]}
                    change.save(update_fields=["payload"])
        if server:
            _enqueue([folder.account_id])
    Message.objects.filter(pk__in=[m.pk for m in rows]).delete()
    folders = {m.folder_id: m.folder for m in rows}
    for folder in folders.values():
        refresh_counts(folder)
    _changed_event(folders.values())
    return len(rows)


@transaction.atomic
def do_append(
    folder: Folder, raw: bytes, *, flags: Iterable[str] = (), date: datetime | None = None
) -> Message:
    """Store RAW in FOLDER now (e.g. a draft or a sent copy) and APPEND it to the server by the task."""
    uid = _next_local_uid(folder) if folder.is_local else -secrets.randbelow(2**62) - 1
    (row,) = store_messages(folder, [Incoming(uid=uid, raw=raw, flags=tuple(flags), internal_date=date)])
    if folder.is_local:
        Folder.objects.filter(pk=folder.pk).update(uidnext=uid + 1)
    else:
        PendingChange.objects.create(
            account_id=folder.account_id,
            folder=folder,
            kind=PendingChange.Kind.APPEND,
            messages=[row.pk],
            payload={"flags": list(flags)},
        )
        _enqueue([folder.account_id])
    refresh_counts(folder)
    _changed_event([folder])
    return row


# --- carrying changes to the server (runs in the task, under the account lock) ---------------------


def apply_pending(session, account_id: int) -> tuple[int, list[str]]:  # type: ignore[no-untyped-def]
    """Apply the account's pending changes in order with SESSION; return (applied, refusals).

    A refusal by the server (NO/BAD) reverts that change in the cache and is reported; a network
    failure stops here and re-raises, leaving the rest for the retry.
    """
    applied, refusals = 0, []
    for change in PendingChange.objects.filter(account_id=account_id).select_related(
        "folder", "folder__account"
    ):
        try:
            _apply_one(session, change)
        except MailError as exc:
            if exc.kind in TRANSIENT:
                PendingChange.objects.filter(pk=change.pk).update(
                    attempts=change.attempts + 1, last_error=str(exc)
                )
                raise
            log.warning("server refused %s: %s", change, exc)
            with transaction.atomic():
                _revert(change)
                change.delete()
            refusals.append(str(exc))
            continue
        change.delete()
        applied += 1
    return applied, refusals


def _apply_one(session, change: PendingChange) -> None:  # type: ignore[no-untyped-def]
    folder = change.folder
    if change.kind == PendingChange.Kind.FLAGS:
        uids = list(
            Message.objects.filter(pk__in=change.messages, uid__gt=0).values_list("folder__name", "uid")
        )
        by_folder: dict[str, list[int]] = defaultdict(list)
        for name, uid in uids:
            by_folder[name].append(uid)
        for name, items in by_folder.items():
            session.select(name)
            if change.payload.get("add"):
                session.add_flags(items, change.payload["add"])
            if change.payload.get("remove"):
                session.remove_flags(items, change.payload["remove"])
    elif change.kind == PendingChange.Kind.MOVE:
        target = Folder.objects.get(pk=change.payload["target"])
        session.select(folder.name)
        mapping = session.move(change.uids, target.name)
        expunge_ids = set(change.payload.get("expunge", []))
        to_expunge = []
        with transaction.atomic():
            for msg_id, old_uid in zip(change.messages, change.uids, strict=True):
                new_uid = mapping.get(old_uid)
                if msg_id in expunge_ids:
                    if new_uid:
                        to_expunge.append(new_uid)
                    continue
                taken = new_uid and Message.objects.filter(folder=target, uid=new_uid).exists()
                if new_uid and not taken:
                    Message.objects.filter(pk=msg_id, folder=target).update(uid=new_uid)
                else:  # no COPYUID (or a sync got there first): the next sync fetches it
                    Message.objects.filter(pk=msg_id, uid__lte=0).delete()
        if to_expunge:
            session.select(target.name)
            session.expunge_uids(to_expunge)
    elif change.kind == PendingChange.Kind.EXPUNGE:
        session.select(folder.name)
        session.expunge_uids(change.uids)
    elif change.kind == PendingChange.Kind.APPEND:
        for row in Message.objects.filter(pk__in=change.messages).select_related("body"):
            uid = session.append(
                folder.name,
                blobs.unpack(row.body.raw_compressed),
                change.payload.get("flags", []),
                row.internal_date,
            )
            if uid and not Message.objects.filter(folder=folder, uid=uid).exists():
                Message.objects.filter(pk=row.pk).update(uid=uid)
            else:
                Message.objects.filter(pk=row.pk).delete()


def _revert(change: PendingChange) -> None:
    folder = change.folder
    if change.kind == PendingChange.Kind.FLAGS:
        # Re-read every flag of the folder at the next sync (the full reconcile path).
        Folder.objects.filter(
            pk__in=Message.objects.filter(pk__in=change.messages).values("folder_id")
        ).update(highestmodseq=None)
    elif change.kind == PendingChange.Kind.MOVE:
        for msg_id, uid in zip(change.messages, change.uids, strict=True):
            Message.objects.filter(pk=msg_id).update(folder=folder, uid=uid)
    elif change.kind == PendingChange.Kind.EXPUNGE:
        # Fetch them again: they are still on the server.
        low = min(change.uids) - 1
        Folder.objects.filter(pk=folder.pk, synced_uid__gt=low).update(synced_uid=low, highestmodseq=None)
    elif change.kind == PendingChange.Kind.APPEND:
        return  # keep the local copy; the person sees the error and can try again
    for f in Folder.objects.filter(account_id=change.account_id):
        refresh_counts(f)


def do_apply_changes(account_id: int) -> str:
    """Carry the account's pending changes to its server; return "done", "busy" or "idle".

    Raises MailError on a network failure so that the task retries later.
    """
    from accounts.models import MailAccount
    from webmail.mail.actions.sync import open_session
    from webmail.mail.locks import account_lock

    if not PendingChange.objects.filter(account_id=account_id).exists():
        return "idle"
    account = MailAccount.objects.get(pk=account_id)
    with account_lock(account_id) as lock:
        if lock is None:
            return "busy"
        with open_session(account) as session:
            applied, refusals = apply_pending(session, account_id)
    if refusals:
        from webmail.mail.events import send_event

        send_event(
            account.user_id, {"type": "mail.change_refused", "account": account_id, "errors": refusals[:5]}
        )
        from webmail.mail.actions.schedule import request_sync

        request_sync(account_id)
    return "done"
