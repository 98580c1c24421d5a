"""`{% jinja "mail/_x.jinja" %}`: a Django page embeds one of the mail pane's Jinja fragments."""

from __future__ import annotations

from django import template
from django.template import engines
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.simple_tag(takes_context=True)
def jinja(context: template.Context, name: str) -> SafeString:
    """Render NAME with the page's context (and its request: CSRF input, language, time zone)."""
    engine = engines["jinja2"]
    # The page's context must not hide the functions the fragments call (url, _, message_rows...).
    values = {k: v for k, v in context.flatten().items() if k not in engine.env.globals}
    html = engine.get_template(name).render(values, context.get("request"))
    return mark_safe(html)  # noqa: S308 -- rendered by Jinja with escaping on
