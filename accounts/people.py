"""A person's life cycle: invites, email verification, settings, and deleting everything."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts import signals
from accounts.models import AuditEvent, Invite, Profile

VERIFY_SALT = "accounts.verify-email"
VERIFY_MAX_AGE = 3 * 24 * 3600


def signup_policy() -> str:
    """Return "open", "invite" or "closed"."""
    return settings.WEBMAIL_SIGNUP


def profile_for(user: AbstractBaseUser) -> Profile:
    """Return USER's settings (made with the defaults on first use)."""
    profile, _ = Profile.objects.get_or_create(user=user)
    return profile


# --- invites -----------------------------------------------------------------------------------


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


@transaction.atomic
def do_create_invite(
    staff: AbstractBaseUser,
    *,
    email: str = "",
    note: str = "",
    days: int | None = None,
    request: HttpRequest | None = None,
) -> tuple[Invite, str]:
    """Make an invite and return it with its token (the only time the token is known)."""
    token = secrets.token_urlsafe(24)
    invite = Invite.objects.create(
        token_hash=_hash(token),
        email=email,
        note=note,
        created_by=staff,
        expires_at=timezone.now() + timedelta(days=days or settings.WEBMAIL_INVITE_DAYS),
    )
    signals.record(AuditEvent.Kind.INVITE_CREATED, staff, request, invite_id=invite.pk)
    return invite, token


def find_invite(token: str) -> Invite | None:
    """Return the usable invite for TOKEN, or None (unknown, used or expired)."""
    invite = Invite.objects.filter(token_hash=_hash(token)).first()
    return invite if invite is not None and invite.usable else None


def do_use_invite(invite: Invite, user: AbstractBaseUser) -> bool:
    """Mark INVITE used by USER; False when someone else used it first."""
    return bool(
        Invite.objects.filter(pk=invite.pk, used_at__isnull=True, expires_at__gt=timezone.now()).update(
            used_at=timezone.now(), used_by=user
        )
    )


# --- email verification ------------------------------------------------------------------------


def verification_token(user: AbstractBaseUser) -> str:
    return signing.dumps({"u": user.pk, "e": user.email}, salt=VERIFY_SALT)


def send_verification(request: HttpRequest, user: AbstractBaseUser) -> None:
    """Mail USER a link that proves they own their address."""
    link = request.build_absolute_uri(reverse("signup_verify", args=[verification_token(user)]))
    context = {"user": user, "link": link, "days": VERIFY_MAX_AGE // 86400}
    send_mail(
        render_to_string("registration/verify_email_subject.txt", context).strip(),
        render_to_string("registration/verify_email.txt", context),
        None,
        [user.email],
    )


def check_verification(token: str) -> Any:
    """Return the person TOKEN verifies (their address unchanged since), or None."""
    try:
        data = signing.loads(token, salt=VERIFY_SALT, max_age=VERIFY_MAX_AGE)
    except signing.BadSignature:
        return None
    user = get_user_model().objects.filter(pk=data.get("u")).first()
    if user is None or user.email != data.get("e"):
        return None
    return user


@transaction.atomic
def do_verify_email(user: AbstractBaseUser, request: HttpRequest | None = None) -> None:
    """Mark USER's address verified and let them sign in."""
    profile = profile_for(user)
    if profile.email_verified_at is None:
        profile.email_verified_at = timezone.now()
        profile.save(update_fields=["email_verified_at"])
        signals.record(AuditEvent.Kind.EMAIL_VERIFIED, user, request)
    if not user.is_active:
        user.is_active = True
        user.save(update_fields=["is_active"])


# --- deletion ----------------------------------------------------------------------------------


@transaction.atomic
def do_delete_person(user: AbstractBaseUser, request: HttpRequest | None = None) -> None:
    """Delete USER and everything of theirs: mail accounts with their stored credentials, the mail
    cache, outbox, devices, sessions, sign-in records and audit events naming them.

    Only an anonymous "account deleted" event (the former id) stays for the operator.
    """
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    from accounts.models import MailAccount
    from accounts.sessions import sign_out_everywhere

    user_id, username = user.pk, user.get_username()
    account_ids = list(MailAccount.objects.filter(user=user).values_list("pk", flat=True))
    sign_out_everywhere(user)
    if request is not None and hasattr(request, "session"):
        request.session.flush()
    AccessAttempt.objects.filter(username=username).delete()
    AccessLog.objects.filter(username=username).delete()
    AccessFailureLog.objects.filter(username=username).delete()
    AuditEvent.objects.filter(user__isnull=True, detail__username=username).delete()
    # Everything else hangs off the user row (on_delete=CASCADE): MailAccount and through it folders,
    # messages, bodies, sync state, pending changes and the outbox; Profile, Limits, devices.
    user.delete()
    AuditEvent.objects.create(kind=AuditEvent.Kind.PERSON_DELETED, detail={"former_user_id": user_id})
    transaction.on_commit(lambda: _forget_locks(account_ids))


def _forget_locks(account_ids: list[int]) -> None:
    """Drop Redis locks of deleted accounts (they would expire anyway)."""
    from webmail.mail.locks import break_lock

    for account_id in account_ids:
        try:
            break_lock(account_id)
        except Exception:  # noqa: BLE001, S110  Redis down: the locks expire by themselves
            pass
