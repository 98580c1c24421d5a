"""The mail pane's Jinja fragments (webmail/jinja.py) escape what mail and people put in them."""

from __future__ import annotations

import pytest
from django.template import engines

from accounts.models import MailAccount
from tests.mail.factories_reading import make_mailbox, make_message
from webmail.mail.models import Folder

pytestmark = pytest.mark.django_db

EVIL = '<img src=x onerror="alert(1)">'


def hx(client, url: str, target: str):
    response = client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET=target)
    assert response.status_code == 200
    return response.content.decode()


def test_the_environment_escapes_and_keeps_djangos_safe_strings():
    from django.utils.safestring import mark_safe

    template = engines["jinja2"].from_string("{{ a }}|{{ b }}|{{ _('Search: %(q)s', q=a) }}|{{ c.d.e }}")
    html = template.render({"a": EVIL, "b": mark_safe("<b>kept</b>")})
    assert EVIL not in html and "&lt;img" in html
    assert "<b>kept</b>" in html
    assert html.endswith("|")  # a missing attribute at any depth renders as nothing


def test_mail_and_names_are_escaped_in_the_list_tree_and_message_pane(client, alice):
    box = make_mailbox(alice)
    MailAccount.objects.filter(user=alice).update(name=EVIL)
    evil_folder = Folder.objects.create(account=box["inbox"].account, name=EVIL, delimiter="/")
    message = make_message(
        box["inbox"],
        subject=EVIL,
        sender=f'"{EVIL}" <carol@example.test>',
        text=f"Body {EVIL}\n",
        attachments=[(EVIL + ".txt", "text/plain", b"x")],
    )
    client.force_login(alice)
    pages = [
        hx(client, f"/mail/folder/{box['inbox'].pk}/", "mail"),
        hx(client, f"/mail/folder/{evil_folder.pk}/", "mail"),
        hx(client, f"/mail/message/{message.pk}/", "message-pane"),
        hx(client, f"/mail/message/{message.pk}/body/", "x"),
        hx(client, f"/mail/search/?q={EVIL}", "list-pane"),
        client.get(f"/mail/message/{message.pk}/").content.decode(),  # the whole page embeds them
    ]
    for html in pages:
        assert "<img src=x" not in html
        assert 'onerror="alert' not in html
    assert "&lt;img src=x" in pages[0] and "&lt;img src=x" in pages[2] and "&lt;img src=x" in pages[4]


def test_translations_are_escaped_as_djangos_trans_escapes_them():
    template = engines["jinja2"].from_string(
        "{{ _('a < b') }}|{{ _('%(q)s!', q='<i>') }}|{% trans n=2 %}{{ n }} <x>{% pluralize n %}{{ n }} <y>{% endtrans %}"
    )
    assert template.render({}) == "a &lt; b|&lt;i&gt;!|2 &lt;y&gt;"


def test_a_django_pages_context_cannot_hide_the_fragments_functions(rf):
    from django.template import Context

    page = engines["django"].from_string('{% load jinja %}{% jinja "mail/_folders.jinja" %}')
    request = rf.get("/mail/")
    html = page.template.render(Context({"request": request, "url": "oops", "_": "oops", "trees": []}))
    assert 'href="/mail/inboxes/"' in html and "All inboxes" in html and "oops" not in html
