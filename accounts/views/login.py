"""Two-step sign-in: the password, then (for people with 2FA) an authenticator or recovery code.

No session is signed in until both steps pass; the first step only remembers who is pending.
"""

from __future__ import annotations

import time

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import login as auth_login
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django_otp import login as otp_login
from django_otp import match_token
from django_otp.plugins.otp_static.models import StaticDevice

from accounts import signals
from accounts.forms import CodeForm
from accounts.middleware import CHECKED_KEY, TIME_ZONE_KEY
from accounts.models import AuditEvent, Profile
from accounts.two_factor import has_two_factor

PENDING_KEY = "_webmail_pending_login"
PENDING_SECONDS = 300
MAX_CODE_TRIES = 5


def _safe_next(request: HttpRequest, candidate: str | None) -> str:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def finish_login(request: HttpRequest, user, device=None) -> None:  # noqa: ANN001
    """Sign USER in (after every step passed) and remember per-session settings."""
    auth_login(request, user)
    if device is not None:
        otp_login(request, device)
    request.session[CHECKED_KEY] = True
    tz = Profile.objects.filter(user=user).values_list("time_zone", flat=True).first()
    if tz:
        request.session[TIME_ZONE_KEY] = tz


@sensitive_post_parameters("password")
@csrf_protect
@never_cache
def login(request: HttpRequest) -> HttpResponse:
    """First step: user name and password."""
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if request.user.is_authenticated and request.method == "GET":
        return redirect(_safe_next(request, next_url))
    form = AuthenticationForm(request, data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.get_user()
        if has_two_factor(user):
            request.session.cycle_key()
            request.session[PENDING_KEY] = {
                "user": user.pk,
                "backend": user.backend,
                "at": time.time(),
                "next": _safe_next(request, next_url),
                "tries": 0,
            }
            return redirect("login_code")
        finish_login(request, user)
        return redirect(_safe_next(request, next_url))
    return render(request, "registration/login.html", {"form": form, "next": next_url})


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
def login_code(request: HttpRequest) -> HttpResponse:
    """Second step: a code from the authenticator app, or one recovery code."""
    pending = request.session.get(PENDING_KEY)
    if not pending or time.time() - pending["at"] > PENDING_SECONDS:
        request.session.pop(PENDING_KEY, None)
        messages.error(request, _("Please sign in again."))
        return redirect("login")
    user = get_user_model().objects.filter(pk=pending["user"], is_active=True).first()
    if user is None:
        request.session.pop(PENDING_KEY, None)
        return redirect("login")
    credentials = {"username": user.get_username()}
    if AxesProxyHandler.is_locked(request, credentials):
        request.session.pop(PENDING_KEY, None)
        return lockout_response(request, None, credentials)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = match_token(user, form.cleaned_data["code"])
        if device is not None:
            request.session.pop(PENDING_KEY)
            user.backend = pending["backend"]
            finish_login(request, user, device)
            if isinstance(device, StaticDevice):
                signals.record(AuditEvent.Kind.RECOVERY_CODE_USED, user, request)
            return redirect(pending["next"])
        pending["tries"] += 1
        request.session[PENDING_KEY] = pending
        signals.record(AuditEvent.Kind.TWO_FACTOR_FAILED, user, request)
        user_login_failed.send(sender=__name__, credentials=credentials, request=request)
        if pending["tries"] >= MAX_CODE_TRIES or getattr(request, "axes_locked_out", False):
            request.session.pop(PENDING_KEY, None)
            messages.error(request, _("Too many wrong codes. Please sign in again."))
            return redirect("login")
        form.add_error("code", _("That code is not right. Check the time on your phone and try again."))
    return render(request, "registration/login_code.html", {"form": form})


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None, credentials: dict | None
) -> HttpResponse:
    """The page django-axes shows while a user name is locked for this address (HTTP 429)."""
    minutes = max(1, round(settings.AXES_COOLOFF_TIME * 60))
    return render(
        request,
        "registration/locked_out.html",
        {"failure_limit": settings.AXES_FAILURE_LIMIT, "cooloff_minutes": minutes},
        status=429,
    )
