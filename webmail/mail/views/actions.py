"""Changes from the list, the message and the keyboard: read, flag, move, archive, delete, spam."""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from webmail.mail.access import access_folder, access_message, access_messages
from webmail.mail.models import SpecialUse
from webmail.mail.views.message import message_context
from webmail.mail.views.shell import folder_tree, listing_for_url, with_person_time

ACTIONS = ("read", "unread", "flag", "unflag", "move", "archive", "delete", "delete-forever", "spam")


def _status(action: str, count: int, target_name: str = "") -> str:
    texts = {
        "read": ngettext("Marked %(n)d message read.", "Marked %(n)d messages read.", count),
        "unread": ngettext("Marked %(n)d message unread.", "Marked %(n)d messages unread.", count),
        "flag": ngettext("Flagged %(n)d message.", "Flagged %(n)d messages.", count),
        "unflag": ngettext("Unflagged %(n)d message.", "Unflagged %(n)d messages.", count),
        "move": ngettext("Moved %(n)d message to %(f)s.", "Moved %(n)d messages to %(f)s.", count),
        "archive": ngettext("Archived %(n)d message.", "Archived %(n)d messages.", count),
        "delete": ngettext("Deleted %(n)d message.", "Deleted %(n)d messages.", count),
        "delete-forever": ngettext(
            "Deleted %(n)d message for good.", "Deleted %(n)d messages for good.", count
        ),
        "spam": ngettext("Marked %(n)d message as spam.", "Marked %(n)d messages as spam.", count),
    }
    return texts[action] % {"n": count, "f": target_name}


def _error(request: HttpRequest, text: str, status: int = 400) -> HttpResponse:
    response = HttpResponse(text, status=status, content_type="text/plain; charset=utf-8")
    # On <body>, like mail-status below: the form that sent the action may be gone by now.
    response.headers["HX-Trigger"] = json.dumps({"mail-error": {"value": text, "target": "body"}})
    return response


def _next_url(request: HttpRequest) -> str:
    url = request.POST.get("next", "")
    return url if url_has_allowed_host_and_scheme(url, allowed_hosts=None) and url.startswith("/") else "/"


@login_required
@require_POST
@with_person_time
def act(request: HttpRequest) -> HttpResponse:
    """Apply one action to the selected messages, then show the list as it now is."""
    from webmail.mail.actions import changes

    action = request.POST.get("action", "")
    if action not in ACTIONS:
        return _error(request, _("Unknown action."))
    ids = request.POST.getlist("ids")
    if not ids:
        return _error(request, _("Select one or more messages first."))
    messages = access_messages(request.user, ids)
    in_trash = [m for m in messages if m.folder.special_use == SpecialUse.TRASH]
    if action == "delete" and in_trash:
        if getattr(request, "htmx", None):
            return _error(request, _("Messages in Trash are deleted for good: confirm first."), 409)
        return render(
            request, "mail/confirm_delete.html", {"messages_": messages, "next": _next_url(request)}
        )
    target_name = ""
    try:
        if action in ("read", "unread"):
            count = changes.do_set_flags(messages, seen=action == "read")
        elif action in ("flag", "unflag"):
            count = changes.do_set_flags(messages, flagged=action == "flag")
        elif action == "move":
            target = access_folder(request.user, request.POST.get("target"))
            target_name = target.display_name
            count = changes.do_move(messages, target)
        elif action == "archive":
            count = changes.do_archive(messages)
        elif action == "spam":
            count = changes.do_mark_spam(messages)
        else:
            count = changes.do_delete(messages)
    except changes.ChangeRefused as exc:
        return _error(request, str(exc))
    status = _status(action, len(messages), target_name)
    if not getattr(request, "htmx", None):
        return redirect(_next_url(request))
    listing = listing_for_url(request, _next_url(request))
    context = {"trees": folder_tree(request.user), "listing": listing, "status": status, "count": count}
    open_id = request.POST.get("open")
    if open_id:
        try:
            context.update(message_context(request, access_message(request.user, open_id)))
            context["show_message"] = action in ("read", "unread", "flag", "unflag")
        except Http404:  # the open message is gone (deleted for good): show the empty pane
            context["show_message"] = False
        context["open_id"] = open_id
    response = render(request, "mail/_action_swap.jinja", context, using="jinja2")
    # Raised on <body>, not on the form that sent the action: a live redraw of the list (another
    # change arriving meanwhile) may have removed that form, and an event on a detached element
    # reaches no listener, so the person would never hear that the action was done.
    response.headers["HX-Trigger"] = json.dumps({"mail-status": {"value": status, "target": "body"}})
    return response


@login_required
@require_POST
@with_person_time
def mark_read(request: HttpRequest, message_id: int) -> HttpResponse:
    """Mark an opened message read (posted by the message pane as it loads)."""
    from webmail.mail.actions import changes

    message = access_message(request.user, message_id)
    if not message.seen:
        changes.do_set_flags([message], seen=True)
    return render(request, "mail/_folders_oob.jinja", {"trees": folder_tree(request.user)}, using="jinja2")
