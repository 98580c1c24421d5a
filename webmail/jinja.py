"""The Jinja2 environment of the mail pane's fragments (templates/**/*.jinja).

The folder tree, message list and message pane are rendered on nearly every request a person makes
(a folder click, a message, a search, each live refresh). Jinja compiles a template to Python code
once, where Django's template language walks its node tree and resolves every variable on every
render: measured in-process, these fragments took 1.5-3 ms of a 6-7 ms request in Django's language.
Everything else (pages, forms, settings, the dashboard) stays in Django's template language.

Views render these with `render(request, "mail/_x.jinja", context, using="jinja2")`; a Django page
embeds one with `{% jinja "mail/_x.jinja" %}` (webmail/mail/templatetags/jinja.py). Escaping
is on; Django's safe strings (`__html__`) pass through unescaped, as in Django's language. The i18n
extension takes Django's gettext and ngettext, so the msgids are those Django's blocktrans makes
(`%(n)s`); a translation is escaped as Django's {% trans %} escapes it (Jinja would trust it), and
the values put into it are escaped too. `makemessages` does not read .jinja files: extract them
with Babel's Jinja2 extractor.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.template.defaultfilters import date as date_filter
from django.template.defaultfilters import truncatechars
from django.urls import reverse
from django.utils import timezone, translation
from jinja2 import ChainableUndefined, Environment
from markupsafe import Markup, escape


def url(name: str, *args: Any) -> str:
    return reverse(name, args=args)


def isodate(value: datetime | None) -> str:
    """As Django's `date:'c'`: ISO 8601 in the person's time zone."""
    return date_filter(timezone.localtime(value), "c") if value else ""


def gettext(message: str) -> Markup:
    return escape(translation.gettext(message))


def ngettext(singular: str, plural: str, number: int) -> Markup:
    return escape(translation.ngettext(singular, plural, number))


def environment(**options: Any) -> Environment:
    from webmail.mail.templatetags import mail_tags

    # A missing attribute renders as nothing, at any depth, as in Django's language.
    options = {**options, "extensions": ["jinja2.ext.i18n"], "undefined": ChainableUndefined}
    options.pop("autoescape", None)
    env = Environment(autoescape=True, **options)
    env.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(
        url=url,
        message_rows=mail_tags.message_rows,
        unread_badge=mail_tags.unread_badge,
    )
    env.filters.update(
        addresses=mail_tags.addresses,
        filesize=mail_tags.filesize,
        folder_icon=mail_tags.folder_icon,
        full_date=mail_tags.full_date,
        isodate=isodate,
        plain_body=mail_tags.plain_body,
        sender_label=mail_tags.sender_label,
        truncatechars=truncatechars,
    )
    return env
