"""Write audit events for Django's authentication signals."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest

from accounts.models import AuditEvent


def client_ip(request: HttpRequest | None) -> str | None:
    """Return the peer address Django saw (a proxy in front must set REMOTE_ADDR itself)."""
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def record(kind: str, user: Any = None, request: HttpRequest | None = None, **detail: Any) -> AuditEvent:
    """Store one audit event."""
    return AuditEvent.objects.create(kind=kind, user=user, ip=client_ip(request), detail=detail)


@receiver(user_logged_in)
def on_login(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    record(AuditEvent.Kind.LOGIN, user, request)


@receiver(user_logged_out)
def on_logout(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    if user is not None:
        record(AuditEvent.Kind.LOGOUT, user, request)


@receiver(user_login_failed)
def on_login_failed(
    sender: Any, credentials: dict, request: HttpRequest | None = None, **kwargs: Any
) -> None:
    # Only the user name is kept: never the password that was tried.
    record(AuditEvent.Kind.LOGIN_FAILED, None, request, username=str(credentials.get("username", ""))[:150])
