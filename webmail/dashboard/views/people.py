"""People: the list, one person's page, their limits, and lifting a sign-in lockout."""

from __future__ import annotations

from axes.models import AccessAttempt
from axes.utils import reset as axes_reset
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import signals, two_factor
from accounts.limits import effective_limits
from accounts.models import AuditEvent, Limits
from accounts.sessions import active_sessions
from webmail.dashboard.forms import LimitsForm
from webmail.dashboard.permissions import staff_required


@staff_required
def person_list(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    people = get_user_model().objects.annotate(account_count=Count("mail_accounts")).order_by("username")
    if query:
        people = people.filter(Q(username__icontains=query) | Q(email__icontains=query))
    page = Paginator(people, 50).get_page(request.GET.get("page"))
    return render(request, "dashboard/person_list.html", {"page": page, "query": query})


@staff_required
def person_detail(request: HttpRequest, user_id: int) -> HttpResponse:
    person = get_object_or_404(get_user_model(), pk=user_id)
    own = Limits.objects.filter(user=person).first() or Limits(user=person)
    form = LimitsForm(request.POST or None, instance=own)
    if request.method == "POST" and form.is_valid():
        form.save()
        signals.record(
            AuditEvent.Kind.OPERATOR_ACTION,
            person,
            request,
            action="limits",
            operator=request.user.get_username(),
        )
        messages.success(request, _("Limits saved."))
        return redirect("dashboard:person", user_id=person.pk)
    context = {
        "person": person,
        "accounts": person.mail_accounts.select_related("sync").all(),
        "has_2fa": two_factor.has_two_factor(person),
        "sessions": active_sessions(person),
        "limits": effective_limits(person),
        "form": form,
        "lockouts": AccessAttempt.objects.filter(username=person.get_username()),
        "events": AuditEvent.objects.filter(user=person)[:20],
        "now": timezone.now(),
    }
    return render(request, "dashboard/person_detail.html", context)


@staff_required
@require_POST
def unlock(request: HttpRequest) -> HttpResponse:
    """Lift the sign-in lockout of one user name (from every address)."""
    username = request.POST.get("username", "")[:150]
    removed = axes_reset(username=username) if username else 0
    person = get_user_model().objects.filter(username=username).first()
    signals.record(
        AuditEvent.Kind.UNLOCKED, person, request, username=username, operator=request.user.get_username()
    )
    messages.success(
        request,
        _("Sign-in unlocked for %(name)s (%(n)d record(s) cleared).") % {"name": username, "n": removed},
    )
    if request.POST.get("back") == "person" and person is not None:
        return redirect("dashboard:person", user_id=person.pk)
    return redirect("dashboard:lockouts")


@staff_required
def lockouts(request: HttpRequest) -> HttpResponse:
    attempts = AccessAttempt.objects.order_by("-attempt_time")[:200]
    return render(request, "dashboard/lockouts.html", {"attempts": attempts})
