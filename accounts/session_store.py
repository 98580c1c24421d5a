"""Sessions in the database with a Redis copy in front: a page view reads Redis, not PostgreSQL.

Django's cached_db engine, made to survive a Redis outage: a session that cannot be cached is
still loaded from and saved to the database (the page works, only slower). Ending a session
(sign out, "sign out other sessions", password change) removes both copies, through end_sessions().
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.contrib.sessions.backends.cached_db import SessionStore as CachedDBStore

log = logging.getLogger(__name__)


class SessionStore(CachedDBStore):
    def load(self) -> dict[str, Any]:
        try:
            data = self._cache.get(self.cache_key)
        except Exception:  # noqa: BLE001  Redis away: the database has every session
            log.warning("session cache unreachable; reading the session from the database")
            data = None
        if data is not None:
            return data
        row = self._get_session_from_db()
        if not row:
            return {}
        data = self.decode(row.session_data)
        try:
            self._cache.set(self.cache_key, data, self.get_expiry_age(expiry=row.expire_date))
        except Exception:  # noqa: BLE001
            log.warning("session cache unreachable; session not cached")
        return data


def end_sessions(keys: Iterable[str]) -> None:
    """End the sessions KEYS everywhere they are kept (the database row and the cached copy)."""
    for key in keys:
        if key:
            SessionStore(key).delete(key)
