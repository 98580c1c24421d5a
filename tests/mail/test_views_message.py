"""Reading a message: conversation, headers, safe bodies, remote content, attachments, source, corpus."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from tests.mail.factories_reading import build_raw, make_mailbox, make_message, store_raw
from webmail.mail.models import Message

pytestmark = pytest.mark.django_db
CORPUS = sorted((Path(__file__).resolve().parent.parent / "corpus").glob("*.eml"))


@pytest.fixture
def box(alice):
    return make_mailbox(alice)


def srcdoc(page: str) -> str:
    match = re.search(r'srcdoc="([^"]*)"', page)
    assert match, "no srcdoc iframe"
    return html.unescape(match.group(1))


def test_message_shows_header_table(client, alice, box):
    m = make_message(
        box["inbox"],
        subject="Minutes",
        sender="Carol <carol@example.test>",
        to="Alice <alice@example.test>",
        cc="Dan <dan@example.test>",
        reply_to="list@example.test",
        message_id="minutes@example.test",
    )
    client.force_login(alice)
    page = client.get(f"/mail/message/{m.pk}/").content.decode()
    for text in (
        "Carol &lt;carol@example.test&gt;",
        "Alice &lt;alice@example.test&gt;",
        "Dan &lt;dan@example.test&gt;",
        "list@example.test",
        "&lt;minutes@example.test&gt;",
        ">Reply-To<",
        ">Cc<",
        ">Message-ID<",
        ">Date<",
    ):
        assert text in page, text


def test_plain_text_is_escaped_with_links_and_quotes(client, alice, box):
    text = "Hi <b>there</b>\nSee https://example.test/a?b=1&c=2.\n> quoted line\n>> deeper\nback\n"
    m = make_message(box["inbox"], text=text)
    client.force_login(alice)
    page = client.get(f"/mail/message/{m.pk}/").content.decode()
    assert "Hi &lt;b&gt;there&lt;/b&gt;" in page
    assert '<a href="https://example.test/a?b=1&amp;c=2" target="_blank" rel="noopener noreferrer">' in page
    assert (
        '<blockquote class="quote">quoted line\n<blockquote class="quote">deeper\n</blockquote></blockquote>back'
        in page
    )


def test_html_goes_into_a_sandboxed_iframe_with_its_own_csp(client, alice, box):
    m = make_message(
        box["inbox"],
        text=None,
        html='<p onclick="alert(1)">Hello<script>alert(2)</script> <b style="color:red">bold</b></p>',
    )
    client.force_login(alice)
    page = client.get(f"/mail/message/{m.pk}/").content.decode()
    iframe = re.search(r"<iframe[^>]*>", page).group(0)
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in iframe
    assert "allow-scripts" not in iframe and "allow-same-origin" not in iframe
    doc = srcdoc(page)
    assert "Content-Security-Policy" in doc and "default-src 'none'" in doc and "script-src 'none'" in doc
    assert "<script" not in doc and "onclick" not in doc and "alert(2)" not in doc
    assert "color:red" in doc
    assert "<script" not in page.split("<iframe")[1].split("</iframe>")[0].replace("&lt;script", "")


def test_remote_images_are_blocked_until_allowed_for_the_message(client, alice, box):
    m = make_message(
        box["inbox"],
        text=None,
        sender="News <news@example.test>",
        html='<p>Hi</p><img src="https://images.example.test/a.png" alt="logo">'
        '<img src="https://t.example.test/p.gif" width="1" height="1">',
    )
    client.force_login(alice)
    page = client.get(f"/mail/message/{m.pk}/").content.decode()
    assert "1 remote image was blocked" in page and "1 tracking pixel removed" in page
    assert "images.example.test" not in srcdoc(page)
    response = client.post(f"/mail/message/{m.pk}/remote/")
    assert response.status_code == 302
    doc = srcdoc(client.get(f"/mail/message/{m.pk}/").content.decode())
    assert "/mail/image/?s=" in doc and "https://images.example.test" not in doc
    assert "t.example.test" not in doc  # tracking pixels never load
    other = make_message(
        box["inbox"],
        text=None,
        sender="News <news@example.test>",
        html='<img src="https://images.example.test/b.png" alt="b">',
    )
    assert "/mail/image/?s=" not in srcdoc(client.get(f"/mail/message/{other.pk}/").content.decode())


def test_remote_content_always_for_a_sender(client, alice, box):
    m = make_message(
        box["inbox"],
        text=None,
        sender="News <News@example.test>",
        html='<img src="https://images.example.test/a.png" alt="a">',
    )
    other = make_message(
        box["inbox"],
        text=None,
        sender="news@example.test",
        html='<img src="https://images.example.test/b.png" alt="b">',
    )
    client.force_login(alice)
    response = client.post(f"/mail/message/{m.pk}/remote/", {"always": "1"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and b"/mail/image/?s=" in response.content
    assert "/mail/image/?s=" in srcdoc(client.get(f"/mail/message/{other.pk}/").content.decode())
    # Remembered with the person's settings, not the browser session: a new sign-in still shows it.
    client.logout()
    client.force_login(alice)
    assert "/mail/image/?s=" in srcdoc(client.get(f"/mail/message/{other.pk}/").content.decode())
    # Listed on the settings page, where it can be taken back.
    settings_page = client.get("/settings/")
    assert b"news@example.test" in settings_page.content
    sender = alice.trusted_senders.get()
    client.post("/settings/", {"forget_sender": sender.pk})
    assert not alice.trusted_senders.exists()
    assert "/mail/image/?s=" not in srcdoc(client.get(f"/mail/message/{other.pk}/").content.decode())


def test_a_trusted_sender_is_one_persons_choice(client, alice, bob, box):
    from accounts.models import TrustedSender

    m = make_message(
        box["inbox"], text=None, sender="news@example.test", html='<img src="https://i.example.test/a.png">'
    )
    TrustedSender.objects.create(user=bob, email="news@example.test")
    client.force_login(bob)
    client.post("/settings/", {"forget_sender": TrustedSender.objects.get().pk + 1000})
    assert client.post("/settings/", {"forget_sender": "not a number"}).status_code == 302
    client.force_login(alice)
    assert "/mail/image/?s=" not in srcdoc(client.get(f"/mail/message/{m.pk}/").content.decode())
    client.post(
        "/settings/", {"forget_sender": TrustedSender.objects.get().pk}
    )  # bob's: not alice's to remove
    assert TrustedSender.objects.filter(user=bob).exists()


def test_allowing_remote_content_needs_post_and_ownership(client, alice, bob, box):
    m = make_message(box["inbox"])
    client.force_login(alice)
    assert client.get(f"/mail/message/{m.pk}/remote/").status_code == 405
    client.force_login(bob)
    assert client.post(f"/mail/message/{m.pk}/remote/").status_code == 404


def test_inline_cid_images_get_signed_urls(client, alice, box):
    raw = (
        b"From: a@example.test\r\nTo: b@example.test\r\nSubject: cid\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/related; boundary="b"\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n'
        b'<p>Logo: <img src="cid:logo@x" alt="logo"></p>\r\n--b\r\nContent-Type: image/png\r\n'
        b"Content-ID: <logo@x>\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\r\n"
        b"--b--\r\n"
    )
    m = store_raw(box["inbox"], raw)
    client.force_login(alice)
    doc = srcdoc(client.get(f"/mail/message/{m.pk}/").content.decode())
    url = re.search(r'src="(/mail/inline/\?s=[^"]+)"', doc).group(1)
    client.logout()  # the sandboxed iframe sends no session cookie: the signature is enough
    response = client.get(html.unescape(url))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert client.get("/mail/inline/?s=forged").status_code == 404


def test_conversation_shows_the_thread_with_older_messages_collapsed(client, alice, box):
    a = make_message(
        box["inbox"],
        subject="Trip",
        message_id="t1@example.test",
        flags=("\\Seen",),
        text="First message body\n",
        date=datetime(2024, 1, 1, tzinfo=UTC),
    )
    b = make_message(
        box["sent"],
        subject="Re: Trip",
        message_id="t2@example.test",
        in_reply_to="t1@example.test",
        flags=("\\Seen",),
        text="Second message body\n",
        date=datetime(2024, 1, 2, tzinfo=UTC),
    )
    c = make_message(
        box["inbox"],
        subject="Re: Trip",
        message_id="t3@example.test",
        in_reply_to="t2@example.test",
        text="Third message body\n",
        date=datetime(2024, 1, 3, tzinfo=UTC),
    )
    client.force_login(alice)
    page = client.get(
        f"/mail/message/{c.pk}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="message-pane"
    ).content.decode()
    assert "3 messages in this conversation" in page
    assert page.index(f'id="msg-{a.pk}"') < page.index(f'id="msg-{b.pk}"') < page.index(f'id="msg-{c.pk}"')
    assert "Third message body" in page
    assert "First message body" not in page.split('<div class="msg-body">')[1]  # collapsed: loaded on demand
    assert f'hx-get="/mail/message/{a.pk}/body/"' in page
    body = client.get(f"/mail/message/{a.pk}/body/").content.decode()
    assert "First message body" in body


def test_opening_an_unread_message_posts_mark_read(client, alice, box):
    m = make_message(box["inbox"])
    client.force_login(alice)
    page = client.get(f"/mail/message/{m.pk}/").content.decode()
    assert f'hx-post="/mail/message/{m.pk}/read/" hx-trigger="load"' in page
    assert client.get(f"/mail/message/{m.pk}/read/").status_code == 405
    response = client.post(f"/mail/message/{m.pk}/read/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and b'hx-swap-oob="true"' in response.content
    m.refresh_from_db()
    assert m.seen


def test_htmx_message_request_returns_only_the_pane(client, alice, box):
    m = make_message(box["inbox"], subject="Pane only")
    client.force_login(alice)
    response = client.get(f"/mail/message/{m.pk}/", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="message-pane")
    assert b"<html" not in response.content and b"Pane only" in response.content
    assert b'<option value="' in response.content  # the move menu lists the folders


@pytest.mark.parametrize("path", ["", "body/", "original/", "original.eml", "part/1/"])
def test_every_message_page_is_404_for_another_person(client, bob, box, path):
    m = make_message(box["inbox"])
    client.force_login(bob)
    assert client.get(f"/mail/message/{m.pk}/{path}").status_code == 404


def test_attachment_download_is_safe(client, alice, box):
    m = make_message(
        box["inbox"],
        attachments=[
            ("../../etc/pass\u202ewd.txt", "text/plain", b"secret"),
            ("page.html", "text/html", b"<script>alert(1)</script>"),
            ("pic.png", "image/png", b"\x89PNG\r\n\x1a\n" + b"0" * 20),
            ("fake.png", "image/png", b"<svg onload=alert(1)>"),
        ],
    )
    client.force_login(alice)
    page = client.get(f"/mail/message/{m.pk}/").content.decode()
    assert "4 attachments" in page
    first = client.get(f"/mail/message/{m.pk}/part/2/")
    assert first.status_code == 200
    assert first["Content-Disposition"].startswith("attachment;")
    assert "/" not in first["Content-Disposition"].split("filename", 1)[1]
    assert first["X-Content-Type-Options"] == "nosniff"
    assert (
        first["Content-Security-Policy"] == "default-src 'none'"
    )  # no sandbox: Chromium refuses such downloads
    assert first["Content-Type"] == "application/octet-stream"
    html_part = client.get(f"/mail/message/{m.pk}/part/3/?inline=1")
    assert html_part["Content-Disposition"].startswith("attachment;")
    png = client.get(f"/mail/message/{m.pk}/part/4/?inline=1")
    assert png["Content-Type"] == "image/png" and png["Content-Disposition"].startswith("inline;")
    assert png["Content-Security-Policy"].startswith("sandbox;")
    fake = client.get(f"/mail/message/{m.pk}/part/5/?inline=1")
    assert fake["Content-Disposition"].startswith("attachment;")
    assert client.get(f"/mail/message/{m.pk}/part/9/").status_code == 404
    assert client.get(f"/mail/message/{m.pk}/part/x.1/").status_code == 404


def test_original_shows_source_trace_and_authentication(client, alice, box):
    raw = (Path(__file__).resolve().parent.parent / "corpus" / "plain_ascii.eml").read_bytes()
    m = store_raw(box["inbox"], raw)
    client.force_login(alice)
    page = client.get(f"/mail/message/{m.pk}/original/").content.decode()
    assert "mail.example.test" in page and "198.51.100.7" in page
    assert "SPF" in page and "DKIM" in page and "DMARC" in page and "auth-pass" in page
    assert "Return-Path:" in page and "Lunch on Thursday" in page
    eml = client.get(f"/mail/message/{m.pk}/original.eml")
    assert eml["Content-Type"] == "message/rfc822" and eml.content == raw
    assert eml["Content-Disposition"].startswith("attachment;")


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_every_corpus_message_renders(client, alice, box, path):
    m = store_raw(box["inbox"], path.read_bytes())
    client.force_login(alice)
    response = client.get(f"/mail/message/{m.pk}/")
    assert response.status_code == 200
    page = response.content.decode()
    outside_iframes = re.sub(r"<iframe[^>]*>", "", page)
    assert "<script" not in outside_iframes.replace('<script src="/static/', "").replace(
        '<script src="/static/django_htmx', ""
    )
    assert client.get(f"/mail/message/{m.pk}/original/").status_code == 200
    if Message.objects.get(pk=m.pk).parse_problems:
        assert "shown as far as it could be read" in page


class _Elements(HTMLParser):
    """Collect the element names and attributes a browser would see."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, attrs))


def test_hostile_html_leaves_nothing_active_in_the_iframe(client, alice, box):
    client.force_login(alice)
    for name in ("hostile_script.eml", "hostile_svg.eml", "hostile_css.eml", "hostile_mxss.eml"):
        m = store_raw(box["inbox"], (Path(__file__).resolve().parent.parent / "corpus" / name).read_bytes())
        doc = srcdoc(client.get(f"/mail/message/{m.pk}/").content.decode())
        parser = _Elements()
        parser.feed(doc.split("<body", 1)[1])
        for tag, attrs in parser.found:
            assert tag not in (
                "script",
                "svg",
                "math",
                "iframe",
                "meta",
                "base",
                "form",
                "object",
                "embed",
                "style",
                "link",
            ), (name, tag)
            for attr, value in attrs:
                value = (value or "").lower().replace(" ", "")
                assert not attr.startswith("on"), (name, tag, attr)
                assert "javascript:" not in value and "expression(" not in value and "url(" not in value, (
                    name,
                    tag,
                    attr,
                    value,
                )
                if attr in ("src", "href"):
                    assert value.startswith(
                        ("https:", "http:", "mailto:", "tel:", "data:image/", "/mail/")
                    ), (name, value)
                    if attr == "src":
                        assert not value.startswith("http"), (name, value)  # remote is blocked


def test_message_without_body_row_shows_a_note(client, alice, box):
    m = make_message(box["inbox"])
    m.body.delete()
    client.force_login(alice)
    assert b"has not been downloaded yet" in client.get(f"/mail/message/{m.pk}/").content


def test_message_with_only_attachments_lists_them(client, alice, box):
    raw = build_raw(text=None, attachments=[("data.bin", "application/octet-stream", b"\x00\x01")])
    m = store_raw(box["inbox"], raw)
    client.force_login(alice)
    page = client.get(f"/mail/message/{m.pk}/").content.decode()
    assert "data.bin" in page


def test_the_persons_always_show_setting_shows_remote_content_but_never_tracking_pixels(client, alice, box):
    from accounts.models import Profile

    m = make_message(
        box["inbox"],
        text=None,
        sender="News <news@example.test>",
        html='<img src="https://images.example.test/a.png" alt="logo">'
        '<img src="https://t.example.test/p.gif" width="1" height="1">',
    )
    Profile.objects.update_or_create(user=alice, defaults={"remote_content": "allow"})
    client.force_login(alice)
    doc = srcdoc(client.get(f"/mail/message/{m.pk}/").content.decode())
    assert "/mail/image/?s=" in doc and "https://images.example.test" not in doc
    assert "t.example.test" not in doc
