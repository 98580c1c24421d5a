"""A person's security page: two-factor authentication, signed-in sessions and their activity."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp import login as otp_login

from accounts import sessions, signals, two_factor
from accounts.forms import CodeForm, PasswordConfirmForm
from accounts.models import AuditEvent


@login_required
def security(request: HttpRequest) -> HttpResponse:
    current = request.session.get(sessions.SESSION_ID_KEY)
    return render(
        request,
        "accounts/security.html",
        {
            "has_2fa": two_factor.has_two_factor(request.user),
            "codes_left": two_factor.recovery_codes_left(request.user),
            "require_2fa": settings.WEBMAIL_REQUIRE_2FA,
            "sessions": sessions.active_sessions(request.user),
            "current_session": current,
            "events": AuditEvent.objects.filter(user=request.user)[:10],
            "password_form": PasswordConfirmForm(request.user),
        },
    )


@login_required
@sensitive_post_parameters("code")
def two_factor_setup(request: HttpRequest) -> HttpResponse:
    """Show the secret and QR code of a new authenticator; turn it on once a code from it works."""
    if two_factor.has_two_factor(request.user):
        return redirect("security")
    device = two_factor.pending_device(request.user)
    form = CodeForm(request.POST or None)
    form.fields["code"].help_text = _("The 6-digit code the app shows now.")
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["code"]):
            codes = two_factor.confirm_device(device)
            otp_login(request, device)
            ended = sessions.sign_out_others(request.user, request.session.session_key)
            signals.record(
                AuditEvent.Kind.TWO_FACTOR_ENABLED, request.user, request, other_sessions_ended=ended
            )
            return render(request, "accounts/recovery_codes.html", {"codes": codes, "new_setup": True})
        form.add_error("code", _("That code is not right. Check the time on your phone and try again."))
    return render(
        request,
        "accounts/two_factor_setup.html",
        {
            "form": form,
            "secret": two_factor.secret_text(device),
            "qr": two_factor.qr_data_uri(device),
            "require_2fa": settings.WEBMAIL_REQUIRE_2FA,
        },
    )


@login_required
@require_POST
@sensitive_post_parameters("password")
def two_factor_disable(request: HttpRequest) -> HttpResponse:
    if settings.WEBMAIL_REQUIRE_2FA:
        messages.error(request, _("Two-factor authentication is required on this service."))
        return redirect("security")
    form = PasswordConfirmForm(request.user, request.POST)
    if not form.is_valid():
        messages.error(request, _("That is not your password. Nothing was changed."))
        return redirect("security")
    two_factor.remove_two_factor(request.user)
    signals.record(AuditEvent.Kind.TWO_FACTOR_DISABLED, request.user, request)
    messages.success(request, _("Two-factor authentication is off."))
    return redirect("security")


@login_required
@require_POST
@sensitive_post_parameters("password")
def recovery_codes(request: HttpRequest) -> HttpResponse:
    """Replace the recovery codes (after the password) and show the new ones once."""
    form = PasswordConfirmForm(request.user, request.POST)
    if not two_factor.has_two_factor(request.user) or not form.is_valid():
        messages.error(request, _("That is not your password. Nothing was changed."))
        return redirect("security")
    codes = two_factor.new_recovery_codes(request.user)
    signals.record(AuditEvent.Kind.RECOVERY_CODES_CREATED, request.user, request)
    return render(request, "accounts/recovery_codes.html", {"codes": codes, "new_setup": False})


@login_required
@require_POST
def sign_out_other_sessions(request: HttpRequest) -> HttpResponse:
    ended = sessions.sign_out_others(request.user, request.session.session_key)
    signals.record(AuditEvent.Kind.SESSIONS_REVOKED, request.user, request, count=ended)
    messages.success(request, _("Signed out %(count)d other session(s).") % {"count": ended})
    return redirect("security")


@login_required
def activity(request: HttpRequest) -> HttpResponse:
    """The person's own audit log."""
    page = Paginator(AuditEvent.objects.filter(user=request.user), 50).get_page(request.GET.get("page"))
    return render(request, "accounts/activity.html", {"page": page})
