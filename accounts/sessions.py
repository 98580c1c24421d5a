"""A person's signed-in browsers: record them at sign-in, list them, sign them out."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.contrib.sessions.models import Session
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import SignInSession
from accounts.session_store import end_sessions

SESSION_ID_KEY = "_webmail_sign_in"
SEEN_KEY = "_webmail_seen"
KEY_KEY = "_webmail_key"
TOUCH_EVERY = timedelta(minutes=5)


def _user_agent(request: HttpRequest) -> str:
    return request.META.get("HTTP_USER_AGENT", "")[:300]


def record_sign_in(request: HttpRequest, user: AbstractBaseUser) -> SignInSession:
    """Store the browser that just signed in and tie it to the session."""
    if request.session.session_key is None:
        request.session.save()
    row = SignInSession.objects.create(
        user=user,
        session_key=request.session.session_key,
        ip=request.META.get("REMOTE_ADDR") or None,
        user_agent=_user_agent(request),
    )
    request.session[SESSION_ID_KEY] = row.pk
    return row


def touch(request: HttpRequest) -> None:
    """Keep the current session's row up to date: last activity every few minutes, and the session
    key at once when Django changed it (password change). Costs no query in between."""
    row_id = request.session.get(SESSION_ID_KEY)
    if row_id is None:
        record_sign_in(request, request.user)
        return
    key = request.session.session_key or ""
    now = timezone.now()
    seen = request.session.get(SEEN_KEY, 0)
    if key == request.session.get(KEY_KEY) and now.timestamp() - seen < TOUCH_EVERY.total_seconds():
        return
    updated = SignInSession.objects.filter(pk=row_id, user_id=request.user.pk).update(
        last_seen_at=now, session_key=key
    )
    if not updated:
        record_sign_in(request, request.user)
    request.session[SEEN_KEY] = now.timestamp()
    request.session[KEY_KEY] = request.session.session_key or ""


def active_sessions(user: AbstractBaseUser) -> list[SignInSession]:
    """Return USER's sessions that can still be used, newest activity first."""
    rows = list(SignInSession.objects.filter(user=user))
    live = set(
        Session.objects.filter(
            session_key__in=[row.session_key for row in rows], expire_date__gt=timezone.now()
        ).values_list("session_key", flat=True)
    )
    stale = [row.pk for row in rows if row.session_key not in live]
    if stale:
        SignInSession.objects.filter(pk__in=stale).delete()
    return [row for row in rows if row.session_key in live]


def sign_out_others(user: AbstractBaseUser, current_key: str | None) -> int:
    """End every session of USER except CURRENT_KEY; return how many ended."""
    rows = SignInSession.objects.filter(user=user).exclude(session_key=current_key or "")
    keys = list(rows.values_list("session_key", flat=True))
    end_sessions(keys)
    rows.delete()
    return len(keys)


def sign_out_everywhere(user: AbstractBaseUser) -> None:
    """End every session of USER (password change, deletion): the current one is re-created by
    Django's update_session_auth_hash when the person changed their own password."""
    rows = SignInSession.objects.filter(user=user)
    end_sessions(list(rows.values_list("session_key", flat=True)))
    rows.delete()
