"""Reading one message: the conversation, the safe rendering of its body, attachments and its source."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from webmail.mail import blobs
from webmail.mail.access import access_message
from webmail.mail.imageproxy import sniff_image
from webmail.mail.models import Message, MessageBody
from webmail.mail.prepared import PreparedQuery
from webmail.mail.views.shell import folder_listing, folder_tree, with_person_time
from webmail.mailcore.addresses import decode_header_value
from webmail.mailcore.html import sanitize_html
from webmail.mailcore.mime import AttachmentInfo, get_bodies, get_part, parse_message, sanitize_filename
from webmail.mailcore.trace import parse_authentication_results, parse_received_chain

IMAGE_SALT = "webmail.mail.image-proxy"
INLINE_SALT = "webmail.mail.inline-part"
REMOTE_MESSAGES = "mail_remote_messages"
INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"}
ATTACHMENT_CSP = "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'"
_HEADER_PARSER = BytesHeaderParser(policy=compat32)


@dataclass
class RenderedBody:
    """What the page shows of one message's body."""

    text: str | None = None
    srcdoc: str | None = None
    remote_blocked: int = 0
    tracking_pixels: int = 0
    remote_allowed: bool = False
    attachments: list[AttachmentInfo] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    missing: bool = False


_stored_raw: PreparedQuery[bytes] = PreparedQuery(
    lambda message_id: MessageBody.objects.filter(message_id=message_id).values_list(
        "raw_compressed", flat=True
    )[:1]
)


def raw_of(message: Message) -> bytes | None:
    stored = _stored_raw(message.pk)
    return blobs.unpack(stored[0]) if stored else None


def proxy_url(user_id: int, url: str) -> str:
    token = signing.dumps([user_id, url], salt=IMAGE_SALT, compress=True)
    return reverse("mail_image_proxy") + "?s=" + token


def inline_url(user_id: int, message_id: int, part_id: str) -> str:
    """Return a signed URL for an inline (cid:) image: a sandboxed iframe sends no session cookie."""
    token = signing.dumps([user_id, message_id, part_id], salt=INLINE_SALT)
    return reverse("mail_inline_part") + "?s=" + token


def remote_allowed(request: HttpRequest, message: Message) -> bool:
    """Remote content shows when the person chose "Always show", or allowed this message or sender.

    Tracking pixels are removed by the sanitiser either way, and loads go through the signed proxy.
    """
    from accounts.models import Profile, RemoteContent, TrustedSender

    choice = Profile.objects.filter(user_id=request.user.pk).values_list("remote_content", flat=True).first()
    if choice == RemoteContent.ALLOW:
        return True
    if message.pk in request.session.get(REMOTE_MESSAGES, []):
        return True
    return (
        bool(message.from_email)
        and TrustedSender.objects.filter(user_id=request.user.pk, email=message.from_email.lower()).exists()
    )


def srcdoc_for(request: HttpRequest, html: str) -> str:
    """Wrap sanitised HTML in a document with its own CSP: nothing loads but the app's own images."""
    origin = f"{request.scheme}://{request.get_host()}"
    policy = (
        f"default-src 'none'; img-src {origin} data:; style-src 'unsafe-inline'; "
        "form-action 'none'; base-uri 'none'; frame-src 'none'; script-src 'none'"
    )
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
        '<meta name="referrer" content="no-referrer"><base target="_blank"></head>'
        '<body style="margin:0;padding:12px 16px;font:15px/1.5 system-ui,sans-serif;color:#1b1f24;'
        'background:#fff;overflow-wrap:anywhere">' + html + "</body></html>"
    )


def render_body(request: HttpRequest, message: Message) -> RenderedBody:
    """Decode and sanitise MESSAGE's body for display; never raises on a malformed message."""
    result = RenderedBody(problems=list(message.parse_problems or []))
    raw = raw_of(message)
    if raw is None:
        result.missing = True
        return result
    try:
        parsed = parse_message(raw)
        result.attachments = [
            a for a in parsed.attachments if a.disposition == "attachment" or not a.content_id
        ]
        for problem in parsed.problems:
            if problem not in result.problems:
                result.problems.append(problem)
    except Exception:  # mailcore promises not to raise; a view must not 500 if it ever does
        result.problems.append("unparseable MIME structure")
    text, html, cid_map = get_bodies(raw)
    if html:
        allowed = remote_allowed(request, message)

        def cid_url(cid: str) -> str:
            part = cid_map.get(cid)
            return inline_url(request.user.pk, message.pk, part) if part else ""

        clean = sanitize_html(
            html,
            allow_remote=allowed,
            proxy_url=lambda url: proxy_url(request.user.pk, url),
            cid_url=cid_url,
        )
        result.srcdoc = srcdoc_for(request, clean.html)
        result.remote_blocked = clean.remote_blocked_count
        result.tracking_pixels = clean.tracking_pixels
        result.remote_allowed = allowed
    elif text is not None:
        result.text = text
    return result


_thread_messages: PreparedQuery[Message] = PreparedQuery(
    lambda thread_id, account_id: (
        Message.objects.filter(thread_id=thread_id, account_id=account_id, deleted=False)
        .select_related("folder")
        .order_by("date", "id")[:200]
    ),
    arity=2,
)


def conversation(message: Message) -> list[Message]:
    """Return the messages of MESSAGE's thread (same account), oldest first; at least MESSAGE."""
    if message.thread_id is None:
        return [message]
    rows = _thread_messages(message.thread_id, message.account_id)
    return rows if any(m.pk == message.pk for m in rows) else [*rows, message]


def message_context(request: HttpRequest, message: Message) -> dict[str, Any]:
    items = []
    for m in conversation(message):
        is_open = m.pk == message.pk or not m.seen
        items.append({"message": m, "open": is_open, "body": render_body(request, m) if is_open else None})
    return {"message": message, "items": items, "thread_size": len(items)}


@login_required
@require_GET
@with_person_time
def message_view(request: HttpRequest, message_id: int) -> HttpResponse:
    message = access_message(request.user, message_id)
    context = message_context(request, message)
    htmx = getattr(request, "htmx", None)
    if htmx and not htmx.history_restore_request and htmx.target == "message-pane":
        return render(
            request,
            "mail/_message_swap.jinja",
            {**context, "trees": folder_tree(request.user)},
            using="jinja2",
        )
    listing = folder_listing(message.folder, request.GET)
    return render(
        request, "mail/mailbox.html", {**context, "listing": listing, "trees": folder_tree(request.user)}
    )


@login_required
@require_GET
@with_person_time
def message_body(request: HttpRequest, message_id: int) -> HttpResponse:
    """The body of a collapsed message of a conversation, loaded when it is expanded."""
    message = access_message(request.user, message_id)
    return render(
        request, "mail/_body.jinja", {"m": message, "body": render_body(request, message)}, using="jinja2"
    )


@login_required
@require_POST
def allow_remote(request: HttpRequest, message_id: int) -> HttpResponse:
    """Show remote content of this message (for this session), or of every message from its sender
    ("always": kept with the person's settings, where they can take it back)."""
    from accounts.models import TrustedSender

    message = access_message(request.user, message_id)
    if request.POST.get("always") == "1" and message.from_email:
        TrustedSender.objects.get_or_create(user=request.user, email=message.from_email.lower()[:320])
    else:
        remembered = [v for v in request.session.get(REMOTE_MESSAGES, []) if v != message.pk][-499:]
        request.session[REMOTE_MESSAGES] = [*remembered, message.pk]
    if getattr(request, "htmx", None):
        return with_person_time(
            lambda r: render(
                r, "mail/_body.jinja", {"m": message, "body": render_body(r, message)}, using="jinja2"
            )
        )(request)
    return redirect("mail_message", message.pk)


def _attachment_response(data: bytes, content_type: str, filename: str, *, inline: bool) -> HttpResponse:
    response = HttpResponse(data, content_type=content_type)
    response.headers["Content-Disposition"] = content_disposition_header(not inline, filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    # A download must not carry "sandbox" (Chromium refuses downloads from sandboxed documents);
    # it is never rendered: attachment disposition, octet-stream and nosniff.
    response.headers["Content-Security-Policy"] = ATTACHMENT_CSP if inline else "default-src 'none'"
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _sniff_inline(data: bytes) -> str | None:
    kind = sniff_image(data)
    if kind is None and data.startswith(b"%PDF-"):
        kind = "application/pdf"
    return kind if kind in INLINE_TYPES else None


@login_required
@require_GET
def part(request: HttpRequest, message_id: int, part_id: str) -> HttpResponse:
    """Download one part (Content-Disposition attachment); raster images and PDFs may show inline."""
    message = access_message(request.user, message_id)
    raw = raw_of(message)
    if raw is None:
        raise Http404("No such part")
    try:
        _ctype, filename, payload = get_part(raw, part_id)
    except KeyError:
        raise Http404("No such part")
    name = sanitize_filename(filename)
    inline_type = _sniff_inline(payload) if request.GET.get("inline") == "1" else None
    if inline_type:
        return _attachment_response(payload, inline_type, name, inline=True)
    return _attachment_response(payload, "application/octet-stream", name, inline=False)


@login_required
@require_GET
@with_person_time
def original(request: HttpRequest, message_id: int) -> HttpResponse:
    """The raw source as text, with a download link and the delivery trace."""
    message = access_message(request.user, message_id)
    raw = raw_of(message) or b""
    headers = _HEADER_PARSER.parsebytes(raw)
    hops = parse_received_chain([str(v) for v in headers.get_all("Received", [])])
    auth = [parse_authentication_results(str(v)) for v in headers.get_all("Authentication-Results", [])]
    return render(
        request,
        "mail/original.html",
        {
            "message": message,
            "source": raw[:2_000_000].decode("utf-8", "replace"),
            "truncated": len(raw) > 2_000_000,
            "hops": hops,
            "auth": auth,
            "return_path": decode_header_value(str(headers.get("Return-Path", "")))[:500],
            "back": _safe_back(request, reverse("mail_message", args=[message.pk])),
        },
    )


@login_required
@require_GET
def original_download(request: HttpRequest, message_id: int) -> HttpResponse:
    message = access_message(request.user, message_id)
    raw = raw_of(message)
    if raw is None:
        raise Http404("No source")
    name = sanitize_filename((message.subject or "message")[:80], "message") + ".eml"
    return _attachment_response(raw, "message/rfc822", name, inline=False)


def _safe_back(request: HttpRequest, default: str) -> str:
    back = request.GET.get("back", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts=None):
        return back
    return default
