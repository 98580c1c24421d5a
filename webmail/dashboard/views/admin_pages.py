"""Service-wide pages: global limits, invites and the audit log."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import people, signals
from accounts.limits import global_limits
from accounts.models import AuditEvent, Invite
from webmail.dashboard.forms import InviteForm, LimitsForm
from webmail.dashboard.permissions import staff_required


@staff_required
def limits(request: HttpRequest) -> HttpResponse:
    row = global_limits()
    form = LimitsForm(request.POST or None, instance=row)
    if request.method == "POST" and form.is_valid():
        form.save()
        signals.record(
            AuditEvent.Kind.OPERATOR_ACTION,
            None,
            request,
            action="global_limits",
            operator=request.user.get_username(),
        )
        messages.success(request, _("Limits saved."))
        return redirect("dashboard:limits")
    return render(request, "dashboard/limits.html", {"form": form})


@staff_required
def invites(request: HttpRequest) -> HttpResponse:
    form = InviteForm(request.POST or None)
    link = None
    if request.method == "POST" and form.is_valid():
        _invite, token = people.do_create_invite(
            request.user,
            email=form.cleaned_data["email"],
            note=form.cleaned_data["note"],
            days=form.cleaned_data["days"],
            request=request,
        )
        link = request.build_absolute_uri(reverse("signup_invite", args=[token]))
        form = InviteForm()
    context = {
        "form": form,
        "link": link,
        "invites": Invite.objects.select_related("created_by", "used_by")[:100],
        "policy": people.signup_policy(),
    }
    return render(request, "dashboard/invites.html", context)


@staff_required
@require_POST
def invite_revoke(request: HttpRequest, invite_id: int) -> HttpResponse:
    from django.utils import timezone

    Invite.objects.filter(pk=invite_id, used_at__isnull=True).update(expires_at=timezone.now())
    messages.success(request, _("The invite no longer works."))
    return redirect("dashboard:invites")


@staff_required
def audit_log(request: HttpRequest) -> HttpResponse:
    events = AuditEvent.objects.select_related("user")
    kind = request.GET.get("kind", "")
    username = request.GET.get("user", "").strip()
    if kind in AuditEvent.Kind.values:
        events = events.filter(kind=kind)
    if username:
        person = get_user_model().objects.filter(username=username).first()
        events = events.filter(user=person) if person else events.filter(detail__username=username)
    page = Paginator(events, 100).get_page(request.GET.get("page"))
    return render(
        request,
        "dashboard/audit_log.html",
        {"page": page, "kinds": AuditEvent.Kind.choices, "kind": kind, "username": username},
    )
