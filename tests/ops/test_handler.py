"""The ASGI handler (webmail/ops/handler.py) over real HTTP: pages, streaming answers, errors."""

from __future__ import annotations

import io
import urllib.error
import urllib.request
import zipfile
from http.cookiejar import Cookie, CookieJar

import pytest
from django.conf import settings
from django.test import Client

from tests.mail.factories_reading import make_mailbox, make_message

pytestmark = pytest.mark.django_db(transaction=True)


def signed_in_opener(user, base: str) -> tuple[urllib.request.OpenerDirector, CookieJar]:
    client = Client()
    client.force_login(user)
    jar = CookieJar()
    host = base.split("//", 1)[1].split(":", 1)[0]
    value = client.cookies[settings.SESSION_COOKIE_NAME].value
    jar.set_cookie(
        Cookie(
            0,
            settings.SESSION_COOKIE_NAME,
            value,
            None,
            False,
            host,
            False,
            False,
            "/",
            True,
            False,
            None,
            False,
            None,
            None,
            {},
        )  # fmt: skip
    )
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar)), jar


def test_pages_streams_and_errors_through_the_asgi_handler(live_asgi, alice):
    box = make_mailbox(alice)
    for n in range(3):
        make_message(box["inbox"], subject=f"Streamed {n}")
    opener, jar = signed_in_opener(alice, live_asgi)

    page = opener.open(live_asgi + "/settings/data/", timeout=10)
    assert page.status == 200 and "Content-Security-Policy" in page.headers
    token = next(c.value for c in jar if c.name == settings.CSRF_COOKIE_NAME)

    # A streaming answer (the mail export reads the database as it goes) arrives whole.
    request = urllib.request.Request(
        live_asgi + "/settings/data/export",
        data=b"",
        method="POST",
        headers={"X-CSRFToken": token, "Referer": live_asgi + "/settings/data/"},
    )
    export = opener.open(request, timeout=30)
    assert export.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(export.read())) as archive:
        text = b"".join(archive.read(name) for name in archive.namelist())
    assert all(f"Streamed {n}".encode() in text for n in range(3))

    # Errors keep their status; a missing CSRF token is refused, not served.
    with pytest.raises(urllib.error.HTTPError) as missing:
        opener.open(live_asgi + "/mail/message/999999/", timeout=10)
    assert missing.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as forged:
        opener.open(urllib.request.Request(live_asgi + "/settings/data/export", data=b"", method="POST"))
    assert forged.value.code == 403


def _scope(path: str) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }


def test_a_request_thread_is_kept_for_the_next_request_and_dropped_after_a_failure():
    import asyncio
    import concurrent.futures

    from webmail.ops.handler import SyncChainASGIHandler

    handler = SyncChainASGIHandler()
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    async def broken_receive():
        raise ConnectionResetError("the client went away")

    async def run():
        await handler(_scope("/accounts/login/"), receive, send)
        assert len(handler.idle_threads) == 1
        first = handler.idle_threads[0]
        await handler(_scope("/accounts/login/"), receive, send)
        assert handler.idle_threads == [first]  # the same thread served the second request
        with pytest.raises(ConnectionResetError):
            await handler(_scope("/accounts/login/"), broken_receive, send)
        assert handler.idle_threads == []  # given up, not handed to the next request
        await handler(_scope("/accounts/login/"), receive, send)
        assert len(handler.idle_threads) == 1 and handler.idle_threads[0] is not first

    # In a thread of its own: Playwright's tests leave an event loop running on the main thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result(timeout=60)
    statuses = [m["status"] for m in sent if m["type"] == "http.response.start"]
    assert statuses == [200, 200, 200]
