"""Every change to people's mail accounts: check_* validates, do_* writes in a transaction."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts import signals
from accounts.models import AccountState, AuditEvent, ConnectionCheck, Identity, MailAccount
from webmail.mail.events import send_event_on_commit


@transaction.atomic
def do_add_mail_account(
    user: AbstractBaseUser, account: MailAccount, request: HttpRequest | None = None
) -> MailAccount:
    """Save the new ACCOUNT (built by MailAccountForm, unsaved) for USER with a default identity.

    Precondition: the account has passed MailAccountForm validation.
    """
    account.user = user
    account.save()
    Identity.objects.create(
        account=account, display_name=account.display_name, email=account.email, is_default=True
    )
    signals.record(
        AuditEvent.Kind.MAIL_ACCOUNT_ADDED, user, request, account_id=account.pk, email=account.email
    )
    return account


@transaction.atomic
def do_update_mail_account(
    account: MailAccount, changed: list[str], request: HttpRequest | None = None
) -> None:
    """Save ACCOUNT after an edit; a changed server or password makes it "new" again until checked."""
    account.state = AccountState.NEW
    account.state_reason = ""
    account.state_changed_at = timezone.now()
    account.save()
    signals.record(
        AuditEvent.Kind.MAIL_ACCOUNT_CHANGED,
        account.user,
        request,
        account_id=account.pk,
        fields=sorted(changed),
    )


@transaction.atomic
def do_remove_mail_account(account: MailAccount, request: HttpRequest | None = None) -> None:
    """Delete ACCOUNT, its stored credentials and everything cached for it."""
    signals.record(
        AuditEvent.Kind.MAIL_ACCOUNT_REMOVED,
        account.user,
        request,
        account_id=account.pk,
        email=account.email,
    )
    account.delete()


@transaction.atomic
def do_request_connection_check(account: MailAccount) -> ConnectionCheck:
    """Create a pending connection check for ACCOUNT and enqueue it after commit."""
    from accounts.tasks import run_connection_check

    check = ConnectionCheck.objects.create(account=account)
    run_connection_check.delay_on_commit(check.pk)
    return check


def do_run_connection_check(check_id: int) -> ConnectionCheck | None:
    """Log in to the check's servers (outside any transaction) and store the outcome.

    Idempotent: a check that already finished is left as it is.
    """
    from accounts.connection import probe_account

    check = ConnectionCheck.objects.select_related("account").filter(pk=check_id).first()
    if check is None or check.done:
        return check
    incoming, smtp = probe_account(check.account)
    with transaction.atomic():
        updated = ConnectionCheck.objects.filter(pk=check.pk, finished_at__isnull=True).update(
            incoming=incoming, smtp=smtp, finished_at=timezone.now()
        )
        if updated:
            _set_state_from_check(check.account, incoming, smtp)
            if incoming.get("ok"):
                from webmail.mail.actions.schedule import request_sync

                request_sync(check.account.pk)
            send_event_on_commit(
                check.account.user_id,
                {"type": "account.status", "account": check.account.pk, "check": check.pk},
            )
    check.refresh_from_db()
    return check


def _set_state_from_check(account: MailAccount, incoming: dict, smtp: dict) -> None:
    if incoming.get("ok") and smtp.get("ok"):
        state, reason = AccountState.OK, ""
    elif incoming.get("kind") == "auth" or smtp.get("kind") == "auth":
        state = AccountState.AUTH_FAILED
        reason = str(incoming.get("message") if incoming.get("kind") == "auth" else smtp.get("message"))
    else:
        state = AccountState.CONNECTION_FAILING
        reason = str(incoming.get("message") if not incoming.get("ok") else smtp.get("message"))
    MailAccount.objects.filter(pk=account.pk).update(
        state=state, state_reason=reason, state_changed_at=timezone.now()
    )


@transaction.atomic
def do_set_account_enabled(
    account: MailAccount, enabled: bool, actor: AbstractBaseUser, request: HttpRequest | None = None
) -> None:
    """Disable ACCOUNT (no syncs, no watcher) or enable it again (checked by the next sync).

    Recorded as an operator action in the owner's audit log.
    """
    if enabled and account.state == AccountState.DISABLED:
        state, reason = AccountState.NEW, ""
    elif not enabled:
        state, reason = AccountState.DISABLED, "Disabled by an operator"
    else:
        return
    MailAccount.objects.filter(pk=account.pk).update(
        state=state, state_reason=reason, state_changed_at=timezone.now()
    )
    signals.record(
        AuditEvent.Kind.OPERATOR_ACTION,
        account.user,
        request,
        action="enable" if enabled else "disable",
        account_id=account.pk,
        operator=actor.get_username(),
    )
    if enabled:
        from webmail.mail.actions.schedule import request_sync

        request_sync(account.pk)
