"""Shared fixtures: personas, the real mail stack, Redis, a Celery worker and the browser."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from webmail import instance
from webmail.ops import embedded_redis

pytest_plugins = ["tests.mailstack.fixtures"]

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session", autouse=True)
def redis_server() -> Iterator[str]:
    """Use the REDIS_URL Redis, or start the private one the embedded mode uses."""
    proc = None
    if settings.EMBEDDED_REDIS:
        proc = embedded_redis.start(instance.embedded_redis_socket())
    yield settings.REDIS_URL
    embedded_redis.stop(proc)
    if os.environ.get("WEBMAIL_TEST_OWNS_VAR_DIR"):
        shutil.rmtree(os.environ["WEBMAIL_VAR_DIR"], ignore_errors=True)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Hash test passwords cheaply; production keeps Django's default PBKDF2."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", "alice@example.test", PASSWORD)


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", "bob@example.test", PASSWORD)


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_user("operator", "ops@example.test", PASSWORD, is_staff=True)


@pytest.fixture
def mail_settings(settings, mailstack):
    """Let people's accounts reach the loopback test stack and trust its certificate."""
    settings.WEBMAIL_ALLOWED_MAIL_HOSTS = ["localhost", "127.0.0.1"]
    settings.WEBMAIL_EXTRA_CA_FILE = str(mailstack.ca_file)
    settings.WEBMAIL_CONNECT_TIMEOUT = 5
    return settings


@pytest.fixture
def celery_worker_thread(transactional_db, redis_server):
    """Run a real Celery worker (in a thread, solo pool) against the real Redis broker."""
    from celery.contrib.testing.worker import start_worker

    from webmail.celery import app

    app.control.purge()
    with start_worker(
        app, pool="solo", concurrency=1, perform_ping_check=False, loglevel="WARNING"
    ) as worker:
        yield worker


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# --- Playwright: Debian's Chromium, never a downloaded browser --------------------------------------
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": os.environ.get("CHROMIUM", "/usr/bin/chromium"),
        "args": CHROMIUM_ARGS,
    }


def pytest_collection_modifyitems(config, items):
    """Let Playwright's sync API (which runs an event loop) coexist with Django's async-unsafe checks."""
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def live_asgi(transactional_db):
    """Serve the real ASGI application (HTTP and WebSocket) with uvicorn in a thread; yield its URL."""
    import socket
    import threading
    import time

    import uvicorn

    from webmail.asgi import application

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        application, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
