"""One mail account seen by the operator: sync state per folder, outbox, and a few actions.

Operators see state and errors, never message contents, and cannot act as the person.
"""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import actions, signals
from accounts.models import AuditEvent, MailAccount
from webmail.dashboard import figures
from webmail.dashboard.permissions import staff_required


def _account(account_id: int) -> MailAccount:
    return get_object_or_404(MailAccount.objects.select_related("user", "sync"), pk=account_id)


@staff_required
def account_detail(request: HttpRequest, account_id: int) -> HttpResponse:
    account = _account(account_id)
    model = figures.outbox_model()
    outbox = None
    if model is not None:
        outbox = {
            "states": dict(
                model.objects.filter(account=account)
                .exclude(state="draft")
                .values_list("state")
                .annotate(n=Count("pk"))
            ),
            "recent": model.objects.filter(account=account)
            .exclude(state="draft")
            .order_by("-updated_at")[:20],
        }
    context = {
        "account": account,
        "sync": getattr(account, "sync", None),
        "folders": account.folders.order_by("name"),
        "outbox": outbox,
        "redis": figures.account_leases(account.pk),
        "lagging": figures.is_lagging(account, timezone.now()),
    }
    return render(request, "dashboard/account_detail.html", context)


def _operator_event(request: HttpRequest, account: MailAccount, action: str) -> None:
    signals.record(
        AuditEvent.Kind.OPERATOR_ACTION,
        account.user,
        request,
        action=action,
        account_id=account.pk,
        operator=request.user.get_username(),
    )


@staff_required
@require_POST
def resync(request: HttpRequest, account_id: int) -> HttpResponse:
    from webmail.mail.actions.schedule import request_sync

    account = _account(account_id)
    request_sync(account.pk)
    _operator_event(request, account, "resync")
    messages.success(request, _("A sync of this account was requested."))
    return redirect("dashboard:account", account_id=account.pk)


@staff_required
@require_POST
def set_enabled(request: HttpRequest, account_id: int) -> HttpResponse:
    account = _account(account_id)
    enabled = request.POST.get("enabled") == "1"
    actions.do_set_account_enabled(account, enabled, request.user, request)
    messages.success(request, _("Account enabled.") if enabled else _("Account disabled."))
    return redirect("dashboard:account", account_id=account.pk)


@staff_required
@require_POST
def reset_lock(request: HttpRequest, account_id: int) -> HttpResponse:
    from webmail.mail.locks import break_lock

    account = _account(account_id)
    try:
        held = break_lock(account.pk)
    except Exception:  # noqa: BLE001
        messages.error(request, _("Redis cannot be reached; the lock was not reset."))
        return redirect("dashboard:account", account_id=account.pk)
    _operator_event(request, account, "reset_lock")
    messages.success(request, _("The sync lock was reset.") if held else _("No lock was held."))
    return redirect("dashboard:account", account_id=account.pk)
