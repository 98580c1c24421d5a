"""Record how a sync pass ended (IMAP or POP3): failures with backoff, or success. One rule set."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import AccountState, MailAccount
from webmail.mail.events import send_event_on_commit
from webmail.mail.models import SyncState
from webmail.mailcore.errors import MailError

log = logging.getLogger(__name__)

FIRST_RETRY = timedelta(seconds=30)
LAST_RETRY = timedelta(hours=1)


def record_success(account: MailAccount, *, complete: bool = True, reason: str = "") -> None:
    """Clear failures; a pass over everything also counts as the last complete sync.

    REASON is a note that stays on a working account (e.g. "the server has no UIDL").
    """
    now = timezone.now()
    done = {"finished_at": now} if complete else {}
    SyncState.objects.filter(pk=account.pk).update(
        failures=0, next_attempt_at=None, last_error="", progress_done=0, progress_total=0, **done
    )
    if account.state != AccountState.OK or account.state_reason != reason:
        MailAccount.objects.filter(pk=account.pk).update(
            state=AccountState.OK, state_reason=reason, state_changed_at=now
        )


def record_failure(account: MailAccount, exc: MailError, *, what: str = "sync") -> None:
    """Store a human-readable reason; back off exponentially (30 s doubling to 1 h); stop on auth failure.

    A refused password waits for the person (a new password, or "Test connection") instead of
    retrying: retrying would only lock the account at their provider.
    """
    now = timezone.now()
    state, _ = SyncState.objects.get_or_create(account=account)
    failures = state.failures + 1
    delay = min(FIRST_RETRY * 2 ** min(failures - 1, 10), LAST_RETRY)
    auth = exc.kind == "auth"
    with transaction.atomic():
        SyncState.objects.filter(pk=account.pk).update(
            failures=failures,
            last_error=str(exc),
            last_error_at=now,
            next_attempt_at=None if auth else now + delay,
        )
        MailAccount.objects.filter(pk=account.pk).update(
            state=AccountState.AUTH_FAILED if auth else AccountState.CONNECTION_FAILING,
            state_reason=str(exc),
            state_changed_at=now,
        )
        send_event_on_commit(
            account.user_id, {"type": "account.status", "account": account.pk, "error": str(exc)}
        )
    log.warning("%s of account %s failed (%s): %s", what, account.pk, exc.kind, exc)
