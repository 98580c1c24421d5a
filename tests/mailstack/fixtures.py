"""Pytest plugin: one real mail stack per test session and a factory of fresh mailboxes.

Load it once, from the top-level tests/conftest.py: ``pytest_plugins = ["tests.mailstack.fixtures"]``
(or ``-p tests.mailstack.fixtures``); pytest imports a plugin module only once, so both together are safe.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.mailstack.stack import DEFAULT_DOMAIN, MailStack, MailStackError, MailUser

_kept: list[Path] = []


@pytest.fixture(scope="session")
def mailstack(request: pytest.FixtureRequest) -> Iterator[MailStack]:
    """Start Dovecot and Postfix once for the session on free loopback ports.

    The state directory is removed afterwards unless a test failed or MAILSTACK_KEEP=1, in
    which case its path (logs under log/) is printed in the summary.
    """
    # /tmp, not pytest's basetemp: that one is 0700 and the daemons' users cannot traverse it.
    state_dir = Path(tempfile.mkdtemp(prefix="mailstack-", dir=os.environ.get("MAILSTACK_TMPDIR", "/tmp")))
    state_dir.chmod(0o755)
    stack = MailStack(state_dir)
    try:
        stack.start()
    except MailStackError as e:
        _kept.append(state_dir)
        pytest.fail(f"the test mail stack did not start: {e}", pytrace=False)
    try:
        yield stack
    finally:
        stack.stop()
        if request.session.testsfailed or os.environ.get("MAILSTACK_KEEP"):
            _kept.append(state_dir)
        else:
            shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture
def mail_user(mailstack: MailStack) -> Callable[..., MailUser]:
    """Return a factory: each call creates a new mailbox u-<hex>@example.test with a random password."""

    def make(prefix: str = "u", password: str | None = None) -> MailUser:
        address = f"{prefix}-{secrets.token_hex(6)}@{DEFAULT_DOMAIN}"
        return mailstack.add_user(address, password or secrets.token_urlsafe(12))

    return make


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for path in _kept:
        terminalreporter.write_line(f"mail stack state and logs kept in {path} (log/)")
