"""Reading mail in a real Chromium: inbox, safe HTML, remote content, threads, downloads, search, keys, phone."""

from __future__ import annotations

import json
import re
import shutil
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone
from playwright.sync_api import Page, expect

from tests.mail.factories_reading import Canary, make_mailbox, make_message
from webmail.mail.models import Message

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
# The tests whose screenshots go to the README run on the real ASGI app (live_asgi), so that the
# page's live connection is up in the pictures; Django's live server speaks no WebSocket.
DOCS = Path(__file__).resolve().parent.parent.parent / "docs" / "screenshots"


@pytest.fixture
def canary():
    c = Canary()
    yield c
    c.server.shutdown()


@pytest.fixture
def mail(alice, canary, settings):
    """Alice's mailbox with a realistic inbox; the image proxy may reach the canary on 127.0.0.1."""
    settings.WEBMAIL_IMAGE_PROXY_ALLOWED_HOSTS = ["127.0.0.1"]
    box = make_mailbox(alice, name="Work", email="alice@example.test")
    now = timezone.now()
    people = [
        "Carol Example <carol@example.test>",
        "Dan Builder <dan@example.test>",
        "Émilie Durand <emilie@example.test>",
        "Frank <frank@example.test>",
    ]
    for i in range(8):
        make_message(
            box["inbox"],
            subject=f"Budget review {i}" if i % 3 == 0 else f"Weekly notes {i}",
            sender=people[i % 4],
            date=now - timedelta(hours=5 * i + 1),
            text=f"Here are the notes for week {i}.\n> quoted from last week\nSee https://example.test/w{i}\n",
            flags=("\\Seen",) if i % 2 else (),
        )
    make_message(
        box["inbox"],
        subject="Contract with attachment",
        sender=people[1],
        date=now - timedelta(days=3),
        attachments=[("contract.pdf", "application/pdf", b"%PDF-1.4 test contract")],
        text="The contract is attached.\n",
    )
    t1 = make_message(
        box["inbox"],
        subject="Trip to Lisbon",
        message_id="trip1@example.test",
        sender=people[0],
        date=now - timedelta(days=2),
        text="Shall we book the hotel?\n",
        flags=("\\Seen",),
    )
    make_message(
        box["sent"],
        subject="Re: Trip to Lisbon",
        message_id="trip2@example.test",
        in_reply_to="trip1@example.test",
        sender="Alice <alice@example.test>",
        date=now - timedelta(days=1, hours=20),
        text="Yes, the one near the river.\n> Shall we book the hotel?\n",
        flags=("\\Seen",),
    )
    make_message(
        box["inbox"],
        subject="Re: Trip to Lisbon",
        message_id="trip3@example.test",
        in_reply_to="trip2@example.test",
        sender=people[0],
        date=now - timedelta(days=1, hours=18),
        text="Booked! Confirmation below.\n",
    )
    newsletter = make_message(
        box["inbox"],
        subject="Spring newsletter",
        sender="News <news@example.test>",
        date=now - timedelta(minutes=30),
        text=None,
        html=(
            f'<h1 style="color:#2457d6">Spring news</h1><p>Our <b style="color:rgb(200,0,0)">new</b> products.</p>'
            f'<img src="{canary.url}/banner.png" alt="banner" width="120" height="40">'
            f'<img src="{canary.url}/pixel.gif" width="1" height="1">'
            f'<p><a href="https://example.test/shop">Visit the shop</a></p>'
        ),
    )
    hostile = make_message(
        box["inbox"],
        subject="Hostile test",
        sender="Mallory <mallory@example.test>",
        date=now - timedelta(days=5),
        text=None,
        html=(
            f'<script>alert("script")</script><img src=x onerror="alert(1)">'
            f'<svg><script>alert(2)</script><image href="{canary.url}/svg.png"/></svg>'
            f'<iframe src="{canary.url}/iframe"></iframe><object data="{canary.url}/object"></object>'
            f'<link rel="stylesheet" href="{canary.url}/sheet.css"><style>@import url({canary.url}/import.css);'
            f"body{{background:url({canary.url}/bg.png)}}</style>"
            f'<meta http-equiv="refresh" content="0;url={canary.url}/refresh"><base href="{canary.url}/">'
            f'<div style="background-image:url({canary.url}/style.png)">styled</div>'
            f'<a href="javascript:alert(3)">js link</a><form action="{canary.url}/form"><input name=x></form>'
            f'<table background="{canary.url}/table.png"><tr><td>cell</td></tr></table>'
            f'<img src="{canary.url}/remote.png" alt="remote"><noscript><p title="</noscript><img src=x onerror=alert(4)>">'
            f"</p></noscript><p>Visible text survives.</p>"
        ),
    )
    return {"box": box, "thread": t1, "newsletter": newsletter, "hostile": hostile}


def sign_in(page: Page, live_server, user) -> None:
    """Give the browser a session for USER on LIVE_SERVER (Django's live server, or live_asgi's URL)."""
    url = getattr(live_server, "url", live_server)
    client = Client()
    client.force_login(user)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME].value
    page.context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME, "value": cookie, "url": url}])


def shot(page: Page, artifacts_dir: Path, name: str, docs: bool = False) -> None:
    path = artifacts_dir / name
    page.screenshot(path=path)
    if docs:
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS / name)


def watch_script(page: Page) -> list[str]:
    seen: list[str] = []
    page.on("dialog", lambda d: (seen.append(f"dialog {d.message}"), d.dismiss()))
    page.on("pageerror", lambda e: seen.append(f"pageerror {e}"))
    return seen


def test_open_inbox_and_read_an_html_mail_with_remote_content(
    page: Page, live_asgi, alice, mail, canary, artifacts_dir
):
    page.set_viewport_size({"width": 1366, "height": 860})
    script = watch_script(page)
    sign_in(page, live_asgi, alice)
    page.goto(live_asgi + "/")
    expect(page.get_by_role("heading", name="All inboxes")).to_be_visible()
    expect(page.locator(".msg-row")).to_have_count(13)
    expect(page.locator(".msg-row.unread").first).to_be_visible()
    shot(page, artifacts_dir, "inbox.png", docs=True)

    page.get_by_role("link", name=re.compile("Spring newsletter")).click()
    expect(page).to_have_url(re.compile(rf"/mail/message/{mail['newsletter'].pk}/$"))
    expect(page.get_by_text("1 remote image was blocked")).to_be_visible()
    frame = page.frame_locator("iframe.html-body")
    expect(frame.get_by_role("heading", name="Spring news")).to_be_visible()
    time.sleep(0.5)
    assert canary.hits == [], "nothing remote loads before consent"
    # Opening marked it read (the row lost its bold).
    expect(page.locator(f"#row-{mail['newsletter'].pk}")).not_to_have_class(re.compile("unread"))
    assert Message.objects.get(pk=mail["newsletter"].pk).seen
    shot(page, artifacts_dir, "blocked-remote.png", docs=True)

    page.get_by_role("button", name="Show remote content").click()
    expect(page.get_by_text("1 remote image was blocked")).to_have_count(0)
    banner = page.frame_locator("iframe.html-body").get_by_role("img", name="banner")
    expect(banner).to_be_visible()
    deadline = time.time() + 5
    while "/banner.png" not in canary.hits and time.time() < deadline:
        time.sleep(0.1)
    assert canary.hits == ["/banner.png"], "only the allowed image, through the proxy; never the pixel"
    assert "Cookie" not in canary.headers and "Referer" not in canary.headers
    width = (
        page.frame_locator("iframe.html-body")
        .get_by_role("img", name="banner")
        .evaluate("i => i.naturalWidth")
    )
    assert width == 1  # the canary's 1x1 PNG really rendered
    color = page.frame_locator("iframe.html-body").locator("b").evaluate("b => getComputedStyle(b).color")
    assert color == "rgb(200, 0, 0)"  # the mail's own inline styles apply inside the iframe
    assert script == []


def test_hostile_mail_runs_no_script_and_fetches_nothing(
    page: Page, live_server, alice, mail, canary, artifacts_dir
):
    page.set_viewport_size({"width": 1366, "height": 860})
    script = watch_script(page)
    sign_in(page, live_server, alice)
    page.goto(f"{live_server.url}/mail/message/{mail['hostile'].pk}/")
    expect(page.frame_locator("iframe.html-body").get_by_text("Visible text survives.")).to_be_visible()
    page.frame_locator("iframe.html-body").get_by_text("js link").click()
    time.sleep(1.0)
    assert script == []
    assert canary.hits == []
    shot(page, artifacts_dir, "hostile.png")


def test_open_a_conversation(page: Page, live_asgi, alice, mail, artifacts_dir):
    page.set_viewport_size({"width": 1366, "height": 860})
    sign_in(page, live_asgi, alice)
    page.goto(live_asgi + "/")
    page.locator(".msg-link", has_text="Re: Trip to Lisbon").click()
    expect(page.get_by_text("3 messages in this conversation")).to_be_visible()
    expect(page.locator("#message-pane .plain", has_text="Booked! Confirmation below.")).to_be_visible()
    first = page.locator("details.msg").first
    expect(first).not_to_have_attribute("open", "")
    first.locator("summary").click()
    expect(first.locator(".plain", has_text="Shall we book the hotel?")).to_be_visible()
    expect(page.locator("details.msg").nth(1).locator(".quote")).to_have_count(0)  # still collapsed
    shot(page, artifacts_dir, "conversation.png", docs=True)
    page.go_back()
    expect(page).to_have_url(live_asgi + "/")


def test_download_an_attachment(page: Page, live_server, alice, mail):
    sign_in(page, live_server, alice)
    page.goto(live_server.url + "/")
    page.locator(".msg-link", has_text="Contract with attachment").click()
    with page.expect_download() as info:
        page.get_by_role("link", name=re.compile("contract.pdf")).click()
    download = info.value
    assert download.failure() is None, download.failure()
    assert download.suggested_filename == "contract.pdf"
    assert Path(download.path()).read_bytes() == b"%PDF-1.4 test contract"


def test_search(page: Page, live_server, alice, mail):
    sign_in(page, live_server, alice)
    page.goto(live_server.url + "/")
    page.keyboard.press("/")
    expect(page.get_by_label("Search mail")).to_be_focused()
    page.keyboard.type("budget is:unread")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=re.compile("Search: budget"))).to_be_visible()
    expect(page).to_have_url(re.compile(r"/mail/search/\?q=budget"))
    subjects = page.locator(".msg-row .subject").all_inner_texts()
    assert subjects and all(s.startswith("Budget review") for s in subjects)
    page.reload()
    expect(page.locator(".msg-row")).to_have_count(len(subjects))


def test_keyboard_navigation(page: Page, live_server, alice, mail):
    page.set_viewport_size({"width": 1366, "height": 860})
    sign_in(page, live_server, alice)
    page.goto(live_server.url + "/")
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_hidden()
    page.keyboard.press("j")
    page.keyboard.press("j")
    second = page.locator(".msg-row").nth(1)
    expect(second).to_have_class(re.compile("cursor"))
    subject = second.locator(".subject").inner_text()
    page.keyboard.press("o")
    expect(page.locator(".conv-subject")).to_have_text(subject)
    expect(page.locator(".msg-row").nth(1)).not_to_have_class(re.compile("unread"))  # marked read on open
    page.locator(".msg-row").nth(1).locator(".msg-link").focus()
    page.keyboard.press("s")
    expect(page.locator("#toast")).to_contain_text("Flagged 1 message.")
    expect(page.locator(".msg-row").nth(1)).to_have_class(re.compile("flagged"))
    page.keyboard.press("j")
    page.keyboard.press("e")
    expect(page.locator("#toast")).to_contain_text("Archived 1 message.")
    assert Message.objects.filter(folder__special_use="archive").count() == 1
    page.keyboard.press("g")
    page.keyboard.press("i")
    expect(page).to_have_url(re.compile(r"/mail/inboxes/$"))


def test_an_action_is_confirmed_even_when_a_live_redraw_replaced_its_form(
    page: Page, live_server, alice, mail
):
    """A live redraw of the list (another change) that lands while an action from the list is on its
    way removes the form that sent it: the action's answer must still be heard."""
    page.set_viewport_size({"width": 1366, "height": 860})
    sign_in(page, live_server, alice)
    page.goto(f"{live_server.url}/mail/folder/{mail['box']['inbox'].pk}/")
    rows = page.locator(".msg-row")
    before = rows.count()
    # Hold answers in the page so the order is certain: the redraw's answer (asked for first) lands
    # 0.4 s late, the action's 1.2 s late, i.e. after the redraw has replaced the list and its form.
    page.evaluate(
        """() => {
          const open = XMLHttpRequest.prototype.open, send = XMLHttpRequest.prototype.send;
          XMLHttpRequest.prototype.open = function (method, url) {
            this.__late = String(url).includes("live=1") ? 400 : method.toUpperCase() === "POST" ? 1200 : 0;
            return open.apply(this, arguments);
          };
          XMLHttpRequest.prototype.send = function () {
            if (this.__late) {
              const xhr = this, onload = this.onload, late = this.__late;
              this.onload = function (e) { setTimeout(() => onload.call(xhr, e), late); };
            }
            return send.apply(this, arguments);
          };
          window.__form = document.getElementById("bulk");
          document.body.dispatchEvent(new Event("mail-changed"));
        }"""
    )
    page.wait_for_timeout(60)  # the redraw is asked for 25 ms after the change
    page.keyboard.press("j")
    page.keyboard.press("e")
    expect(page.locator("#toast")).to_contain_text("Archived 1 message.", timeout=10_000)
    assert page.evaluate("() => !window.__form.isConnected")
    expect(rows).to_have_count(before - 1)
    assert Message.objects.filter(folder__special_use="archive").count() == 1

    # A refusal is heard the same way (its text, shown as an error).
    refusal = json.dumps({"mail-error": {"value": "Refused on purpose.", "target": "body"}})
    page.route(
        "**/mail/actions/",
        lambda route: route.fulfill(
            status=409,
            body="Refused on purpose.",
            headers={"HX-Trigger": refusal, "Content-Type": "text/plain"},
        ),
    )
    page.evaluate("() => { document.body.dispatchEvent(new Event('mail-changed')); }")
    page.wait_for_timeout(60)
    page.keyboard.press("j")
    page.keyboard.press("e")
    expect(page.locator("#toast")).to_contain_text("Refused on purpose.", timeout=10_000)
    expect(page.locator("#toast")).to_have_class(re.compile("error"))


def test_act_on_several_messages(page: Page, live_server, alice, mail):
    page.set_viewport_size({"width": 1366, "height": 860})
    sign_in(page, live_server, alice)
    page.goto(f"{live_server.url}/mail/folder/{mail['box']['inbox'].pk}/")
    rows = page.locator(".msg-row")
    before = rows.count()
    ids = [int(rows.nth(i).get_attribute("data-id")) for i in range(3)]
    for i in range(3):
        rows.nth(i).locator(".select").check()
    page.locator("#bulk").get_by_role("button", name="Archive").click()
    expect(page.locator("#toast")).to_contain_text("Archived 3 messages.")
    expect(rows).to_have_count(before - 3)
    assert set(Message.objects.filter(pk__in=ids).values_list("folder__special_use", flat=True)) == {
        "archive"
    }
    unread = Message.objects.filter(pk__in=ids, seen=False).count()
    archive_count = page.locator(f"#count-{mail['box']['archive'].pk} [aria-hidden]")
    expect(archive_count).to_have_text(str(unread))  # the folder tree updated in the same swap
    # A failing POST shows an error and changes nothing.
    page.locator(".msg-row").nth(0).locator(".select").check()
    page.route("**/mail/actions/", lambda route: route.fulfill(status=500, body="boom"))
    page.locator("#bulk").get_by_role("button", name="Delete").click()
    expect(page.locator("#toast")).to_have_class(re.compile("error"))
    expect(rows).to_have_count(before - 3)


def test_phone_width_single_pane(page: Page, live_asgi, alice, mail, artifacts_dir):
    page.set_viewport_size({"width": 360, "height": 740})
    sign_in(page, live_asgi, alice)
    page.goto(live_asgi + "/")
    expect(page.locator(".msg-row").first).to_be_visible()
    expect(page.locator("#message-pane")).to_be_hidden()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    shot(page, artifacts_dir, "phone.png", docs=True)
    page.locator(".msg-link", has_text="Weekly notes 1").click()
    expect(page.locator(".conv-subject")).to_have_text("Weekly notes 1")
    expect(page.locator("#list-pane")).to_be_hidden()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    shot(page, artifacts_dir, "phone-message.png")
    page.get_by_role("link", name="Back to list").click()
    expect(page.locator("#list-pane")).to_be_visible()


def test_the_chosen_dark_theme_applies_whatever_the_system_says(
    page: Page, live_server, alice, mail, artifacts_dir
):
    from accounts.models import Profile

    Profile.objects.update_or_create(user=alice, defaults={"theme": "dark"})
    page.emulate_media(color_scheme="light")
    sign_in(page, live_server, alice)
    page.goto(f"{live_server.url}/mail/folder/{mail['box']['inbox'].pk}/")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(18, 20, 23)"
    shot(page, artifacts_dir, "inbox-dark.png")
