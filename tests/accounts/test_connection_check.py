""" "Test connection" logs in for real to the test stack and names each kind of failure."""

from __future__ import annotations

import socket
import threading

import pytest

from accounts.actions import do_request_connection_check, do_run_connection_check
from accounts.models import AccountState
from tests.accounts.factories import make_account

pytestmark = [pytest.mark.django_db, pytest.mark.mailstack]


@pytest.fixture
def stack_account(alice, mailstack, mail_user, mail_settings):
    """Alice's account pointed at a fresh mailbox on the real Dovecot/Postfix stack."""
    box = mail_user()

    def make(**overrides):
        password = overrides.pop("password", box.password)
        fields = dict(
            email=box.address,
            incoming_host="localhost",
            incoming_port=mailstack.imap_port,
            incoming_security="starttls",
            incoming_username=box.address,
            smtp_host="localhost",
            smtp_port=mailstack.submission_port,
            smtp_security="starttls",
            smtp_username=box.address,
        )
        fields.update(overrides)
        return make_account(alice, password=password, **fields)

    return make


def run_check(account):
    check = do_request_connection_check(account)
    return do_run_connection_check(check.pk)


def test_imap_and_smtp_with_starttls_succeed(stack_account):
    account = stack_account()
    check = run_check(account)
    assert check.ok, (check.incoming, check.smtp)
    account.refresh_from_db()
    assert account.state == AccountState.OK


@pytest.mark.parametrize(
    ("protocol", "security", "port_name"),
    [("imap", "tls", "imaps"), ("pop3", "starttls", "pop3"), ("pop3", "tls", "pop3s")],
)
def test_other_protocols_and_implicit_tls_succeed(stack_account, mailstack, protocol, security, port_name):
    account = stack_account(
        incoming_protocol=protocol,
        incoming_security=security,
        incoming_port=getattr(mailstack, f"{port_name}_port"),
        smtp_security="tls",
        smtp_port=mailstack.smtps_port,
    )
    check = run_check(account)
    assert check.ok, (check.incoming, check.smtp)


def test_wrong_password_is_an_authentication_failure(stack_account):
    account = stack_account(password="not-the-password")
    check = run_check(account)
    assert check.incoming["kind"] == "auth"
    assert check.smtp["kind"] == "auth"
    assert "not-the-password" not in repr(check.incoming) + repr(check.smtp)
    account.refresh_from_db()
    assert account.state == AccountState.AUTH_FAILED


def test_unknown_host(stack_account, settings):
    settings.WEBMAIL_ALLOWED_MAIL_HOSTS = ["localhost", "no-such-host.invalid"]
    check = run_check(stack_account(incoming_host="no-such-host.invalid"))
    assert check.incoming["kind"] == "unknown_host"
    assert "no-such-host.invalid" in check.incoming["message"]


def test_connection_refused(stack_account):
    with socket.socket() as s:  # a port that was free a moment ago and has no listener
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    check = run_check(stack_account(incoming_port=port))
    assert check.incoming["kind"] == "refused"
    account = check.account
    account.refresh_from_db()
    assert account.state == AccountState.CONNECTION_FAILING


def test_timeout_when_the_server_never_answers(stack_account, settings):
    settings.WEBMAIL_CONNECT_TIMEOUT = 1
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts TCP connections (backlog) but never sends a greeting
    try:
        check = run_check(stack_account(incoming_port=silent.getsockname()[1]))
    finally:
        silent.close()
    assert check.incoming["kind"] == "timeout"


def test_untrusted_certificate_is_a_tls_problem(stack_account, settings):
    settings.WEBMAIL_EXTRA_CA_FILE = None  # the stack's self-signed certificate is no longer trusted
    check = run_check(stack_account())
    assert check.incoming["kind"] == "tls"
    assert check.smtp["kind"] == "tls"


def test_smtp_without_auth_is_a_missing_capability(stack_account, mailstack):
    # The stack's MX port (like any port-25 server) offers no AUTH.
    check = run_check(stack_account(smtp_port=mailstack.mx_port))
    assert check.incoming["ok"]
    assert check.smtp["kind"] == "capability"


def test_internal_addresses_are_refused_unless_allowed(stack_account, settings):
    settings.WEBMAIL_ALLOWED_MAIL_HOSTS = []
    check = run_check(stack_account())
    assert check.incoming["kind"] == "blocked_address"
    assert check.smtp["kind"] == "blocked_address"


def test_a_finished_check_is_not_run_again(stack_account):
    account = stack_account()
    check = run_check(account)
    finished_at = check.finished_at
    assert do_run_connection_check(check.pk).finished_at == finished_at
    assert do_run_connection_check(999999) is None


def test_the_task_runs_on_a_real_worker(stack_account, celery_worker_thread):
    account = stack_account()
    check = do_request_connection_check(account)  # enqueued after commit (autocommit here)
    for _ in range(200):
        check.refresh_from_db()
        if check.done:
            break
        threading.Event().wait(0.05)
    assert check.ok, (check.incoming, check.smtp)
