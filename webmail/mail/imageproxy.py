"""Fetch a remote image for a message shown with remote content allowed (the image proxy's protocol work).

The person's browser never talks to the sender's server: the app fetches the image itself, to an
address checked by NetGuard after DNS resolution (no loopback, private or link-local targets unless
the operator allow-lists a host), without cookies or referrer, with a size cap and a timeout, and
passes on only raster images whose bytes match their type.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from webmail.mailcore.errors import MailError
from webmail.mailcore.netguard import NetGuard

MAX_BYTES = 5 * 1024 * 1024
TIMEOUT = 5.0
MAX_REDIRECTS = 3
USER_AGENT = "Webmail-ImageProxy/1"


class ProxyError(Exception):
    """The image cannot be served (refused address, not an image, too big, network failure)."""


@dataclass(frozen=True)
class Image:
    content_type: str
    data: bytes


def sniff_image(data: bytes) -> str | None:
    """Return the MIME type of a PNG, JPEG, GIF or WebP by its magic bytes, else None (never SVG)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a checked IP, with SNI and certificate checks for the host name in the URL."""

    def __init__(self, host: str, ip: str, port: int, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._ip = ip
        self._ssl_context = context

    def connect(self) -> None:
        sock = socket.create_connection((self._ip, self.port), self.timeout)
        self.sock = self._ssl_context.wrap_socket(sock, server_hostname=self.host)


def fetch_image(url: str, guard: NetGuard, *, max_bytes: int = MAX_BYTES, timeout: float = TIMEOUT) -> Image:
    """Return the image at URL (http or https), following at most MAX_REDIRECTS redirects."""
    for _hop in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise ProxyError("not an http(s) URL")
        port = parts.port or (443 if scheme == "https" else 80)
        try:
            ip = guard.resolve(parts.hostname, port)
        except MailError as exc:
            raise ProxyError(str(exc))
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        if scheme == "https":
            conn: http.client.HTTPConnection = _PinnedHTTPSConnection(
                parts.hostname, ip, port, timeout, ssl.create_default_context()
            )
        else:
            conn = http.client.HTTPConnection(ip, port, timeout=timeout)
        host_header = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
        try:
            conn.request(
                "GET",
                path,
                headers={"Host": host_header, "User-Agent": USER_AGENT, "Accept": "image/*"},
            )
            response = conn.getresponse()
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise ProxyError("redirect without a location")
                url = urljoin(url, location)
                continue
            if response.status != 200:
                raise ProxyError(f"HTTP {response.status}")
            length = response.getheader("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise ProxyError("image too large")
            data = response.read(max_bytes + 1)
        except (OSError, http.client.HTTPException) as exc:
            raise ProxyError(f"fetch failed: {type(exc).__name__}")
        finally:
            conn.close()
        if len(data) > max_bytes:
            raise ProxyError("image too large")
        kind = sniff_image(data)
        if kind is None:
            raise ProxyError("not a raster image")
        return Image(kind, data)
    raise ProxyError("too many redirects")
