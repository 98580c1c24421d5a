"""Write audit events for Django's authentication signals, and follow password changes."""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import post_save, pre_save
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
    from accounts.sessions import record_sign_in

    record(AuditEvent.Kind.LOGIN, user, request)
    if request is not None and hasattr(request, "session"):
        record_sign_in(request, user)


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


@receiver(user_locked_out)
def on_locked_out(sender: Any, request: HttpRequest | None = None, username: str = "", **kwargs: Any) -> None:
    user = get_user_model().objects.filter(username=username).first() if username else None
    record(AuditEvent.Kind.LOCKED_OUT, user, request, username=str(username or "")[:150])


@receiver(pre_save, sender=settings.AUTH_USER_MODEL)
def note_password_change(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    """Mark INSTANCE when its password differs from the stored one."""
    instance._webmail_password_changed = False
    if instance.pk is None or (update_fields is not None and "password" not in update_fields):
        return
    stored = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    instance._webmail_password_changed = stored is not None and stored != instance.password


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def on_password_changed(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    """A new password signs the person out everywhere; Django's password change view then keeps
    the browser that changed it signed in (update_session_auth_hash)."""
    if created or not getattr(instance, "_webmail_password_changed", False):
        return
    from accounts.sessions import sign_out_everywhere

    instance._webmail_password_changed = False
    sign_out_everywhere(instance)
    record(AuditEvent.Kind.PASSWORD_CHANGED, instance)
