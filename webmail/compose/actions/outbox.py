"""Sending: queue (with undo and send-later), claim by conditional UPDATE, submit, retry, record.

Exactly once, by design:
- A message leaves `queued`/`retrying` only through `_claim`, a conditional UPDATE on (id, state,
  attempts) that exactly one caller wins; duplicate task deliveries find nothing to claim.
- A claim is a lease (LEASE_SECONDS) longer than the task's hard time limit, so a living worker
  always finishes before anyone else may take the message over.
- `data_started_at` is committed just before DATA. A message found in `sending` with an expired
  lease (its worker died) is retried at once when no attempt reached DATA (the server discards a
  transaction without a complete DATA, RFC 5321 4.1.1.4). Otherwise its Message-ID is looked up in
  the Sent folder (the server may have filed it); when absent, the message is not sent again
  automatically: it becomes `failed` with `uncertain` set and the person decides. The same holds
  for a connection lost after DATA began (RFC 5321 6.1: the reply to the final dot is the only proof).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.connection import net_guard, smtp_endpoint, tls_config
from webmail.compose import submission
from webmail.compose.actions.drafts import ComposeRefused, to_outgoing_draft
from webmail.compose.build import build_message
from webmail.compose.models import OutgoingMessage, State
from webmail.mail.actions.changes import do_append, do_expunge, special_folder
from webmail.mail.events import send_event_on_commit
from webmail.mail.models import Message, PendingChange, SpecialUse
from webmail.mailcore.errors import MailError, SmtpReplyError

log = logging.getLogger(__name__)

LEASE_SECONDS = 150  # > the send task's hard time limit (120 s): a dead worker's message waits at most this
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 3600
# Failures worth trying again later: 4xx replies and the network (RFC 5321 4.2.1, 4.5.4.1).
TEMPORARY_KINDS = {"temporary", "network", "timeout", "refused", "unknown_host"}
# Submission servers known to file a copy in Sent themselves: appending another would duplicate it.
SERVER_FILES_SENT = {"smtp.gmail.com", "smtp.office365.com", "smtp-mail.outlook.com"}


class RateLimited(ComposeRefused):
    """The person has sent too much in the last hour."""


def _event(outgoing: OutgoingMessage, state: str) -> None:
    send_event_on_commit(outgoing.user_id, {"type": "compose.state", "outgoing": outgoing.pk, "state": state})


def check_rate(user_id: int, recipients: int) -> None:
    """Raise RateLimited when sending one more message to RECIPIENTS would pass the hourly limits."""
    since = timezone.now() - timedelta(hours=1)
    recent = OutgoingMessage.objects.filter(user_id=user_id, queued_at__gte=since).exclude(state=State.DRAFT)
    stats = recent.aggregate(r=Sum("recipient_count"))
    count = recent.count()
    rcpts = stats["r"] or 0
    from django.contrib.auth import get_user_model

    from accounts.limits import effective_limits

    # The operator's per-person or global limit (dashboard), else the setting.
    max_msgs = effective_limits(get_user_model()(pk=user_id)).max_sends_per_hour
    max_rcpts = settings.WEBMAIL_SEND_RATE_RECIPIENTS_PER_HOUR
    if count + 1 > max_msgs:
        raise RateLimited(
            _("You have sent %(n)d messages in the last hour, the most allowed. Try again later.")
            % {"n": count}
        )
    if rcpts + recipients > max_rcpts:
        raise RateLimited(
            _(
                "This message would take you past %(max)d recipients in one hour "
                "(%(used)d so far). Try again later or with fewer recipients."
            )
            % {"max": max_rcpts, "used": rcpts}
        )


@transaction.atomic
def do_queue_send(outgoing: OutgoingMessage, *, send_at=None, delay: int | None = None) -> OutgoingMessage:  # type: ignore[no-untyped-def]
    """Build OUTGOING and put it in the outbox, to go at SEND_AT or after the undo delay.

    Precondition: the draft was saved from a form that passed ComposeForm.check_for_sending().
    Raise ComposeRefused (or RateLimited) and leave the draft as it was otherwise.
    """
    get_user_model().objects.select_for_update().filter(pk=outgoing.user_id).first()  # one send at a time
    locked = OutgoingMessage.objects.select_for_update().get(pk=outgoing.pk)
    if locked.state != State.DRAFT:
        raise ComposeRefused(_("This message is already in the outbox."))
    built = to_outgoing_draft(locked)
    raw = build_message(built)
    if len(raw) > settings.WEBMAIL_MAX_MESSAGE_BYTES:
        from django.template.defaultfilters import filesizeformat

        raise ComposeRefused(
            _("The message is %(size)s; the most that can be sent is %(max)s.")
            % {"size": filesizeformat(len(raw)), "max": filesizeformat(settings.WEBMAIL_MAX_MESSAGE_BYTES)}
        )
    rcpts = built.envelope_recipients
    check_rate(outgoing.user_id, len(rcpts))
    now = timezone.now()
    if delay is None:
        delay = settings.WEBMAIL_UNDO_SEND_SECONDS
    when = send_at if send_at is not None and send_at > now else now + timedelta(seconds=delay)
    locked.raw = raw
    locked.mail_from = built.from_.email
    locked.rcpts = rcpts
    locked.recipient_count = len(rcpts)
    locked.state = State.QUEUED
    locked.send_at = when
    locked.queued_at = now
    locked.attempts = 0
    locked.first_attempt_at = locked.data_started_at = locked.next_attempt_at = None
    locked.lease_expires_at = None
    locked.last_error = locked.server_reply = ""
    locked.refused = {}
    locked.uncertain = False
    locked.save()
    _enqueue(locked.pk, when)
    _event(locked, State.QUEUED)
    return locked


def _enqueue(outgoing_id: int, when) -> None:  # type: ignore[no-untyped-def]
    from webmail.compose.tasks import deliver

    def go() -> None:
        if when is None or when <= timezone.now():
            deliver.delay(outgoing_id)
        elif when - timezone.now() < timedelta(minutes=50):
            # Within the broker's visibility timeout (1 h); later ones are picked up by send.due.
            deliver.apply_async((outgoing_id,), eta=when)

    transaction.on_commit(go)


@transaction.atomic
def do_cancel_send(outgoing: OutgoingMessage) -> bool:
    """Take a queued message back to a draft (undo send / cancel send-later); False when too late."""
    changed = OutgoingMessage.objects.filter(pk=outgoing.pk, state=State.QUEUED).update(
        state=State.DRAFT, send_at=None, queued_at=None, raw=b"", rcpts=[], recipient_count=0
    )
    if changed:
        outgoing.refresh_from_db()
        _event(outgoing, State.DRAFT)
    return bool(changed)


@transaction.atomic
def do_edit_again(outgoing: OutgoingMessage) -> bool:
    """Turn a failed message back into a draft so the person can fix and send it again."""
    changed = OutgoingMessage.objects.filter(pk=outgoing.pk, state=State.FAILED).update(
        state=State.DRAFT, send_at=None, queued_at=None, uncertain=False
    )
    return bool(changed)


def _claim(row: dict, now) -> int | None:  # type: ignore[no-untyped-def]
    """Take the message for one attempt; return the new attempt number, or None if another won."""
    updates = dict(
        state=State.SENDING,
        attempts=F("attempts") + 1,
        lease_expires_at=now + timedelta(seconds=LEASE_SECONDS),
    )
    if row["first_attempt_at"] is None:
        updates["first_attempt_at"] = now
    changed = OutgoingMessage.objects.filter(
        pk=row["pk"], state=row["state"], attempts=row["attempts"]
    ).update(**updates)
    return row["attempts"] + 1 if changed == 1 else None


def due_filter(now) -> Q:  # type: ignore[no-untyped-def]
    return (
        Q(state=State.QUEUED, send_at__lte=now)
        | Q(state=State.RETRYING, next_attempt_at__lte=now)
        | Q(state=State.SENDING, lease_expires_at__lt=now)
    )


def do_deliver(outgoing_id: int) -> str:
    """Make one delivery attempt of OUTGOING_ID if it is due; return what happened.

    Runs in autocommit (a task), so the claim and the DATA marker are committed at once.
    """
    now = timezone.now()
    row = (
        OutgoingMessage.objects.filter(pk=outgoing_id)
        .filter(due_filter(now))
        .values("pk", "state", "attempts", "first_attempt_at", "data_started_at")
        .first()
    )
    if row is None:
        return "not due"
    recovering = row["state"] == State.SENDING
    attempt = _claim(row, now)
    if attempt is None:
        return "taken"
    outgoing = OutgoingMessage.objects.select_related("account").get(pk=outgoing_id)
    if recovering and row["data_started_at"] is not None:
        return _settle_uncertain(outgoing, attempt, _("The worker sending it stopped after handing it over."))
    OutgoingMessage.objects.filter(pk=outgoing_id, attempts=attempt).update(data_started_at=None)

    def before_data() -> None:
        OutgoingMessage.objects.filter(pk=outgoing_id, attempts=attempt).update(
            data_started_at=timezone.now()
        )

    try:
        result = submission.submit(
            smtp_endpoint(outgoing.account),
            tls=tls_config(),
            guard=net_guard(),
            mail_from=outgoing.mail_from,
            rcpts=list(outgoing.rcpts),
            raw=bytes(outgoing.raw),
            before_data=before_data,
        )
    except SmtpReplyError as exc:
        return _failed_attempt(outgoing, attempt, exc, replied=True)
    except MailError as exc:
        data_started = OutgoingMessage.objects.filter(pk=outgoing_id, data_started_at__isnull=False).exists()
        if data_started:
            return _settle_uncertain(outgoing, attempt, str(exc))
        return _failed_attempt(outgoing, attempt, exc, replied=False)
    _record_sent(outgoing, attempt, result.reply, result.refused)
    return "sent"


@transaction.atomic
def _record_sent(outgoing: OutgoingMessage, attempt: int, reply: str, refused: dict) -> None:  # type: ignore[type-arg]
    """Mark sent, file the copy in Sent, drop the Drafts copy and mark the replied message answered."""
    changed = OutgoingMessage.objects.filter(pk=outgoing.pk, attempts=attempt, state=State.SENDING).update(
        state=State.SENT,
        sent_at=timezone.now(),
        server_reply=reply,
        refused={k: list(v) for k, v in refused.items()},
        lease_expires_at=None,
        next_attempt_at=None,
        last_error="",
    )
    if not changed:
        log.error("outgoing %s: lease lost before recording success", outgoing.pk)
        return
    sent = special_folder(outgoing.account_id, SpecialUse.SENT)
    host = outgoing.account.smtp_host.lower()
    if sent is not None and host not in SERVER_FILES_SENT:
        if not Message.objects.filter(folder=sent, message_id=outgoing.message_id).exists():
            do_append(sent, bytes(outgoing.raw), flags=["\\Seen"], date=timezone.now())
    if outgoing.draft_message_id:
        stale = list(Message.objects.filter(pk=outgoing.draft_message_id))
        if stale:
            do_expunge(stale)
    if outgoing.source_message_id and outgoing.kind in ("reply", "reply_all"):
        _mark_answered(outgoing.source_message_id)
    _event(outgoing, State.SENT)


def _mark_answered(message_id: int) -> None:
    """Set \\Answered in the cache and queue it for the server (until changes.do_set_flags has answered=)."""
    message = Message.objects.filter(pk=message_id, answered=False).select_related("folder").first()
    if message is None:
        return
    Message.objects.filter(pk=message.pk).update(answered=True)
    if not message.folder.is_local and message.uid > 0:
        PendingChange.objects.create(
            account_id=message.account_id,
            folder=message.folder,
            kind=PendingChange.Kind.FLAGS,
            messages=[message.pk],
            payload={"add": ["\\Answered"]},
        )
        from webmail.mail.tasks import apply_changes

        account_id = message.account_id
        transaction.on_commit(lambda: apply_changes.delay(account_id))


def _backoff(attempt: int) -> int:
    return min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** max(0, attempt - 1))


@transaction.atomic
def _failed_attempt(outgoing: OutgoingMessage, attempt: int, exc: MailError, *, replied: bool) -> str:
    now = timezone.now()
    refused = {k: list(v) for k, v in getattr(exc, "refused", {}).items()}
    reply = f"{exc.code} {exc.reply}" if isinstance(exc, SmtpReplyError) else ""
    temporary = exc.kind in TEMPORARY_KINDS
    deadline = (outgoing.first_attempt_at or now) + timedelta(hours=settings.WEBMAIL_SEND_RETRY_HOURS)
    next_at = now + timedelta(seconds=_backoff(attempt))
    base = OutgoingMessage.objects.filter(pk=outgoing.pk, attempts=attempt, state=State.SENDING)
    if temporary and next_at <= deadline:
        base.update(
            state=State.RETRYING,
            next_attempt_at=next_at,
            last_error=str(exc),
            server_reply=reply,
            refused=refused,
            lease_expires_at=None,
            data_started_at=None,
        )
        _enqueue(outgoing.pk, next_at)
        _event(outgoing, State.RETRYING)
        return "retrying"
    reason = str(exc)
    if temporary:
        reason = _("Gave up after %(hours)d hours: %(error)s") % {
            "hours": settings.WEBMAIL_SEND_RETRY_HOURS,
            "error": exc,
        }
    base.update(
        state=State.FAILED,
        last_error=reason,
        server_reply=reply,
        refused=refused,
        lease_expires_at=None,
        next_attempt_at=None,
    )
    _event(outgoing, State.FAILED)
    return "failed"


def _found_in_sent(outgoing: OutgoingMessage) -> bool | None:
    """Look for the Message-ID in the Sent folder, refreshed from the server; None if it cannot tell."""
    from webmail.mail.actions.sync import do_sync_account

    sent = special_folder(outgoing.account_id, SpecialUse.SENT)
    if sent is None:
        return None
    try:
        report = do_sync_account(outgoing.account_id, folder_names=[sent.name])
    except MailError:
        return None
    if report.skipped or report.error:
        return None
    return Message.objects.filter(folder=sent, message_id=outgoing.message_id, uid__gt=0).exists()


def _settle_uncertain(outgoing: OutgoingMessage, attempt: int, why: str) -> str:
    """An attempt may have reached the server: mark it sent if Sent has it, else stop and tell the person."""
    found = _found_in_sent(outgoing)
    if found:
        _record_sent(outgoing, attempt, _("Found in the Sent folder after an interrupted attempt."), {})
        return "sent"
    reason = _(
        "It is not certain whether this message was delivered: %(why)s It was not sent again "
        "automatically, so that nobody gets it twice. Check with the recipients, then send it again "
        "if needed."
    ) % {"why": why if why.endswith(".") else why + "."}
    with transaction.atomic():
        OutgoingMessage.objects.filter(pk=outgoing.pk, attempts=attempt, state=State.SENDING).update(
            state=State.FAILED, uncertain=True, last_error=reason, lease_expires_at=None
        )
        _event(outgoing, State.FAILED)
    return "uncertain"


def enqueue_due(limit: int = 500) -> int:
    """Enqueue a delivery for every message that is due (send-later, retries, expired leases)."""
    from webmail.compose.tasks import deliver

    ids = list(
        OutgoingMessage.objects.filter(due_filter(timezone.now()))
        .order_by("send_at")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in ids:
        deliver.delay(pk)
    return len(ids)
