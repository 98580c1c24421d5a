"""The outbox: delivery state of one message (polled), undo, edit again, discard, and the list."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from webmail.compose.access import access_outgoing
from webmail.compose.actions import drafts, outbox
from webmail.compose.models import OutgoingMessage, State


@login_required
@require_GET
def compose_status(request: HttpRequest, pk: int) -> HttpResponse:
    outgoing = access_outgoing(request.user, pk)
    template = "compose/_state.html" if request.htmx else "compose/status.html"
    return render(request, template, {"outgoing": outgoing})


@login_required
@require_POST
def compose_undo(request: HttpRequest, pk: int) -> HttpResponse:
    outgoing = access_outgoing(request.user, pk)
    if outbox.do_cancel_send(outgoing):
        messages.success(request, _("Sending cancelled. The message is a draft again."))
        return redirect("compose_edit", pk=outgoing.pk)
    messages.error(request, _("Too late to undo: the message is already on its way."))
    return redirect("compose_status", pk=outgoing.pk)


@login_required
@require_POST
def compose_edit_again(request: HttpRequest, pk: int) -> HttpResponse:
    outgoing = access_outgoing(request.user, pk)
    outbox.do_edit_again(outgoing)
    return redirect("compose_edit", pk=outgoing.pk)


@login_required
@require_POST
def compose_discard(request: HttpRequest, pk: int) -> HttpResponse:
    outgoing = access_outgoing(request.user, pk)
    try:
        drafts.do_discard(outgoing)
    except drafts.ComposeRefused as exc:
        messages.error(request, str(exc))
        return redirect("compose_status", pk=outgoing.pk)
    messages.success(request, _("Draft discarded."))
    return redirect("compose_outbox")


@login_required
@require_GET
def compose_outbox(request: HttpRequest) -> HttpResponse:
    rows = OutgoingMessage.objects.filter(user=request.user).select_related("account").defer("raw")
    return render(
        request,
        "compose/outbox.html",
        {
            "drafts": rows.filter(state=State.DRAFT)[:200],
            "outgoing": rows.exclude(state=State.DRAFT)[:200],
        },
    )
