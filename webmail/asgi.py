"""One ASGI application for HTTP (Django) and WebSocket (Channels)."""

from __future__ import annotations

import gc
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webmail.settings")
# Web processes pool their PostgreSQL connections: one per request they may run at once, and a few
# for WebSocket sign-ins (read by the settings during setup, then taken back so that no process
# started from here inherits it).
_pool_default = "DATABASE_POOL_SIZE" not in os.environ
if _pool_default:
    _requests = os.environ.get("WEBMAIL_WEB_CONCURRENCY", "16")
    os.environ["DATABASE_POOL_SIZE"] = str(int(_requests) + 4 if _requests.isdigit() else 20)
try:
    django.setup(set_prefix=False)
finally:
    if _pool_default:
        del os.environ["DATABASE_POOL_SIZE"]

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from webmail.mail.routing import websocket_urlpatterns  # noqa: E402
from webmail.ops.concurrency import ConcurrencyLimit  # noqa: E402
from webmail.ops.handler import SyncChainASGIHandler  # noqa: E402

django_asgi_app = SyncChainASGIHandler()

# Everything imported so far lives as long as the server process: move it out of the collector's
# reach, so a full collection scans only what requests and sockets made since. Measured under
# bench/load.py: full-collection pauses in a web process 150-175 ms at most (635-735 ms in 50 s)
# before, 90-95 ms (about 230 ms in 50 s) after. The tests, which import this module into a
# long-lived pytest process, turn it off (WEBMAIL_GC_FREEZE=0).
if os.environ.get("WEBMAIL_GC_FREEZE", "1") != "0":
    gc.collect()
    gc.freeze()

application = ProtocolTypeRouter(
    {
        "http": ConcurrencyLimit(django_asgi_app),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
