"""Images inside mail HTML: remote images through the proxy, and inline (cid:) parts from the cache.

A sandboxed srcdoc iframe has an opaque origin, so its image requests carry no session cookie
(SameSite): these URLs are authorised by a signature only the app can make, bound to the person.
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from webmail.mail.imageproxy import ProxyError, fetch_image, sniff_image
from webmail.mail.models import Message
from webmail.mail.views.message import IMAGE_SALT, INLINE_SALT, raw_of
from webmail.mailcore.mime import get_part
from webmail.mailcore.netguard import NetGuard

MAX_AGE = 30 * 24 * 3600
IMAGE_CSP = "sandbox; default-src 'none'"


def _image_response(data: bytes, content_type: str) -> HttpResponse:
    response = HttpResponse(data, content_type=content_type)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = IMAGE_CSP
    response.headers["Cache-Control"] = "private, max-age=86400"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _unsign(request: HttpRequest, salt: str) -> list:
    try:
        value = signing.loads(request.GET.get("s", ""), salt=salt, max_age=MAX_AGE)
    except signing.BadSignature:
        raise Http404("Bad signature")
    if not isinstance(value, list) or not value:
        raise Http404("Bad signature")
    return value


@require_GET
def image_proxy(request: HttpRequest) -> HttpResponse:
    """Fetch a remote image for a message whose remote content the person allowed."""
    user_id, url = _unsign(request, IMAGE_SALT)
    if request.user.is_authenticated and request.user.pk != user_id:
        raise Http404("Bad signature")
    guard = NetGuard(allowed_hosts=getattr(settings, "WEBMAIL_IMAGE_PROXY_ALLOWED_HOSTS", []))
    try:
        image = fetch_image(str(url), guard)
    except ProxyError:
        raise Http404("Image unavailable")
    return _image_response(image.data, image.content_type)


@require_GET
def inline_part(request: HttpRequest) -> HttpResponse:
    """Serve an inline raster image of a message from the cache."""
    user_id, message_id, part_id = _unsign(request, INLINE_SALT)
    message = Message.objects.filter(pk=message_id, account__user_id=user_id).first()
    if message is None:
        raise Http404("No such part")
    raw = raw_of(message)
    if raw is None:
        raise Http404("No such part")
    try:
        _ctype, _name, payload = get_part(raw, str(part_id))
    except KeyError:
        raise Http404("No such part")
    kind = sniff_image(payload)
    if kind is None:
        raise Http404("Not an image")
    return _image_response(payload, kind)
