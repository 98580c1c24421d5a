"""The image proxy: signed URLs only, no internal addresses, raster images only, size and time caps."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.mail.factories_reading import PNG, Canary
from webmail.mail import imageproxy
from webmail.mail.imageproxy import ProxyError, fetch_image, sniff_image
from webmail.mail.views.message import proxy_url
from webmail.mailcore.netguard import NetGuard

pytestmark = pytest.mark.django_db


@pytest.fixture
def canary() -> Iterator[Canary]:
    c = Canary()
    yield c
    c.server.shutdown()


def test_sniff_accepts_raster_images_only():
    assert sniff_image(PNG) == "image/png"
    assert sniff_image(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert sniff_image(b"GIF89a...") == "image/gif"
    assert sniff_image(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert sniff_image(b"<svg xmlns='http://www.w3.org/2000/svg'/>") is None


def test_fetch_refuses_loopback_unless_allowed(canary):
    with pytest.raises(ProxyError):
        fetch_image(canary.url + "/a.png", NetGuard())
    assert canary.hits == []
    image = fetch_image(canary.url + "/a.png", NetGuard(allowed_hosts=["127.0.0.1"]))
    assert image.content_type == "image/png" and canary.hits == ["/a.png"]
    assert "Cookie" not in canary.headers and "Referer" not in canary.headers


def test_fetch_refuses_non_images_oversized_and_redirects_to_private(canary):
    guard = NetGuard(allowed_hosts=["127.0.0.1"])
    for path in ("/page.html", "/svg", "/big.png", "/redirect"):
        with pytest.raises(ProxyError):
            fetch_image(canary.url + path, guard)


def test_fetch_refuses_other_schemes():
    for url in ("file:///etc/passwd", "ftp://example.test/x", "javascript:alert(1)", "http:///x"):
        with pytest.raises(ProxyError):
            fetch_image(url, NetGuard())


def test_proxy_view_serves_only_signed_urls_for_the_signer(client, alice, bob, canary, settings):
    settings.WEBMAIL_IMAGE_PROXY_ALLOWED_HOSTS = ["127.0.0.1"]
    url = proxy_url(alice.pk, canary.url + "/pic.png")
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert (
        response["X-Content-Type-Options"] == "nosniff" and "sandbox" in response["Content-Security-Policy"]
    )
    assert "Set-Cookie" not in response.headers or "tracker" not in response["Set-Cookie"]
    client.force_login(bob)
    assert client.get(url).status_code == 404
    unsigned = f"/mail/image/?s={canary.url}/x.png"
    assert client.get(unsigned).status_code == 404
    assert canary.hits == ["/pic.png"]


def test_proxy_view_refuses_internal_addresses_by_default(client, alice, canary, settings):
    settings.WEBMAIL_IMAGE_PROXY_ALLOWED_HOSTS = []
    client.force_login(alice)
    assert client.get(proxy_url(alice.pk, canary.url + "/pic.png")).status_code == 404
    assert canary.hits == []


def test_size_cap_and_timeout_are_small():
    assert imageproxy.MAX_BYTES == 5 * 1024 * 1024 and imageproxy.TIMEOUT == 5.0
