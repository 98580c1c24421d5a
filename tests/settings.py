"""Test settings: the project's settings, with a private instance directory per test session.

Without REDIS_URL, every session gets its own var/ (SQLite files, generated keys, and the socket of
the private Redis), so that test runs side by side never share or stop each other's Redis.
"""

import os
import tempfile

# webmail/asgi.py freezes what a server process imported; in pytest's process that would keep
# whatever is alive at that moment out of the collector for the rest of the run.
os.environ.setdefault("WEBMAIL_GC_FREEZE", "0")

if not os.environ.get("REDIS_URL") and not os.environ.get("WEBMAIL_VAR_DIR"):
    os.environ["WEBMAIL_VAR_DIR"] = tempfile.mkdtemp(prefix="webmail-test-")
    os.environ["WEBMAIL_TEST_OWNS_VAR_DIR"] = "1"

from webmail.settings import *  # noqa: E402,F403

# The browser and push tests run the app, a Celery worker and watchers in threads of one process.
# SQLite's shared-cache in-memory test database locks whole tables ("database table is locked",
# which busy_timeout does not cover); a test database file in WAL mode waits instead.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    from webmail import instance

    DATABASES["default"]["TEST"] = {"NAME": str(instance.var_dir() / "test.sqlite3")}  # noqa: F405
