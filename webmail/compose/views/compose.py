"""The compose page: new message, reply, reply all, forward, reopened draft; save and send."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from webmail.compose.access import access_outgoing, identities_of
from webmail.compose.actions import drafts, outbox
from webmail.compose.forms import ComposeForm
from webmail.compose.models import Kind, OutgoingMessage, State
from webmail.mail.access import access_message


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _page(request: HttpRequest, form: ComposeForm, outgoing: OutgoingMessage | None, init=None, status=200):  # type: ignore[no-untyped-def]
    identities = list(identities_of(request.user))
    return render(
        request,
        "compose/compose.html",
        {
            "form": form,
            "outgoing": outgoing,
            "attachments": list(outgoing.attachments.all()) if outgoing else [],
            "pending_attachments": init.attachment_names if init else [],
            "identities": identities,
            "max_attachment_bytes": settings.WEBMAIL_MAX_ATTACHMENT_BYTES,
            "max_message_bytes": settings.WEBMAIL_MAX_MESSAGE_BYTES,
            "undo_seconds": settings.WEBMAIL_UNDO_SEND_SECONDS,
        },
        status=status,
    )


def _start(request: HttpRequest, kind: str, message_id: int | None) -> HttpResponse:
    source = access_message(request.user, message_id) if message_id else None
    init = drafts.initial_for(request.user, kind, source)
    if init.identity is None:
        return redirect("mail_account_add")
    form = ComposeForm(
        user=request.user,
        initial={
            "kind": kind,
            "source": source.pk if source else None,
            "identity": init.identity.pk,
            "to": request.GET.get("to", "") if kind == Kind.NEW else init.to,
            "cc": init.cc,
            "subject": request.GET.get("subject", "") if kind == Kind.NEW else init.subject,
            "body_text": init.body_text,
        },
    )
    return _page(request, form, None, init)


@login_required
@require_GET
def compose_new(request: HttpRequest) -> HttpResponse:
    return _start(request, Kind.NEW, None)


@login_required
@require_GET
def compose_reply(request: HttpRequest, message_id: int) -> HttpResponse:
    return _start(request, Kind.REPLY, message_id)


@login_required
@require_GET
def compose_reply_all(request: HttpRequest, message_id: int) -> HttpResponse:
    return _start(request, Kind.REPLY_ALL, message_id)


@login_required
@require_GET
def compose_forward(request: HttpRequest, message_id: int) -> HttpResponse:
    kind = Kind.FORWARD_ATTACHED if request.GET.get("as") == "attachment" else Kind.FORWARD
    return _start(request, kind, message_id)


@login_required
@require_GET
def compose_forward_attached(request: HttpRequest, message_id: int) -> HttpResponse:
    return _start(request, Kind.FORWARD_ATTACHED, message_id)


@login_required
@require_GET
def compose_open_draft(request: HttpRequest, message_id: int) -> HttpResponse:
    """Open a message of the Drafts folder: its outbox row when it has one, else a copy of it."""
    message = access_message(request.user, message_id)
    existing = OutgoingMessage.objects.filter(user=request.user, draft_message=message).first()
    if existing is not None:
        return redirect("compose_edit", pk=existing.pk)
    return _start(request, Kind.DRAFT, message.pk)


@login_required
@require_GET
def compose_edit(request: HttpRequest, pk: int) -> HttpResponse:
    outgoing = access_outgoing(request.user, pk)
    if outgoing.state != State.DRAFT:
        return redirect("compose_status", pk=outgoing.pk)
    form = ComposeForm(
        user=request.user,
        initial={
            "draft": outgoing.pk,
            "kind": outgoing.kind,
            "identity": outgoing.identity_id,
            "to": outgoing.to,
            "cc": outgoing.cc,
            "bcc": outgoing.bcc,
            "subject": outgoing.subject,
            "body_text": outgoing.body_text,
            "body_html": outgoing.body_html,
            "html_mode": outgoing.html_mode,
            "send_at": timezone.localtime(outgoing.send_at) if outgoing.send_at else None,
        },
    )
    return _page(request, form, outgoing)


def _save(request: HttpRequest, form: ComposeForm) -> tuple[OutgoingMessage | None, list[str]]:
    """Create or update the draft from FORM (valid or not: a draft keeps what was typed)."""
    form.is_valid()
    identity = form.cleaned_data.get("identity")
    if identity is None:
        return None, [_("Pick a From address.")]
    draft_id = form.cleaned_data.get("draft")
    if draft_id:
        outgoing = access_outgoing(request.user, draft_id)
    else:
        source_id = form.cleaned_data.get("source")
        source = access_message(request.user, source_id) if source_id else None
        kind = form.cleaned_data.get("kind") or Kind.NEW
        outgoing = drafts.do_create(request.user, identity, kind=kind, source=source)
    data = form.data
    values = {
        "to": data.get("to", ""),
        "cc": data.get("cc", ""),
        "bcc": data.get("bcc", ""),
        "subject": data.get("subject", "")[:998],
        "body_text": data.get("body_text", ""),
        "body_html": data.get("body_html", ""),
        "html_mode": bool(form.cleaned_data.get("html_mode")),
    }
    errors: list[str] = []
    try:
        drafts.do_update_draft(outgoing, identity, values)
    except drafts.ComposeRefused as exc:
        return outgoing, [str(exc)]
    for upload in request.FILES.getlist("files"):
        try:
            drafts.do_add_attachment(
                outgoing,
                upload.name or "attachment",
                upload.content_type or "",
                upload.read(),
                per_file=settings.WEBMAIL_MAX_ATTACHMENT_BYTES,
                total=settings.WEBMAIL_MAX_MESSAGE_BYTES,
            )
        except drafts.ComposeRefused as exc:
            errors.append(str(exc))
    return outgoing, errors


def _urls(outgoing: OutgoingMessage) -> dict[str, str]:
    return {
        "edit": reverse("compose_edit", args=[outgoing.pk]),
        "attach": reverse("compose_attach", args=[outgoing.pk]),
        "discard": reverse("compose_discard", args=[outgoing.pk]),
    }


@login_required
@require_POST
def compose_save(request: HttpRequest) -> HttpResponse:
    """Save the draft (autosave and the Save button); store it in the Drafts folder when it changed."""
    form = ComposeForm(request.POST, request.FILES, user=request.user)
    outgoing, errors = _save(request, form)
    stored = False
    if outgoing is not None and outgoing.state == State.DRAFT:
        stored = drafts.do_store_draft(outgoing)
    if _wants_json(request):
        if outgoing is None:
            return JsonResponse({"errors": {"__all__": errors}}, status=400)
        field_errors = {
            k: [str(e) for e in v] for k, v in form.errors.items() if k in ("to", "cc", "bcc", "subject")
        }
        return JsonResponse(
            {
                "id": outgoing.pk,
                "urls": _urls(outgoing),
                "stored": stored,
                "saved_at": timezone.localtime().strftime("%H:%M:%S"),
                "errors": {"__all__": errors, **field_errors},
            }
        )
    if outgoing is None:
        return _page(request, form, None, status=400)
    if errors:
        return _page(request, form, outgoing, status=400)
    return redirect("compose_edit", pk=outgoing.pk)


@login_required
@require_POST
def compose_send(request: HttpRequest) -> HttpResponse:
    """Validate, save and put the message in the outbox; the page then shows its delivery state."""
    form = ComposeForm(request.POST, request.FILES, user=request.user)
    valid = form.check_for_sending()
    outgoing, errors = _save(request, form)
    if outgoing is not None:
        form.data = form.data.copy()
        form.data["draft"] = str(outgoing.pk)
    if not valid or errors or outgoing is None:
        for error in errors:
            form.add_error(None, error)
        return _page(request, form, outgoing, status=400)
    try:
        outbox.do_queue_send(
            outgoing, send_at=form.cleaned_data.get("send_at"), delay=undo_delay_for(request.user)
        )
    except (drafts.ComposeRefused, ValueError) as exc:
        form.add_error(None, str(exc))
        return _page(request, form, outgoing, status=400)
    return redirect("compose_status", pk=outgoing.pk)


def undo_delay_for(user) -> int | None:  # type: ignore[no-untyped-def]
    """The person's own undo-send delay (Settings), or None for the operator's default."""
    from accounts.models import Profile

    return Profile.objects.filter(user_id=user.pk).values_list("undo_send_seconds", flat=True).first()
