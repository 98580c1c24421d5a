"""The "Test connection" probes log in for real and classify every failure."""

from __future__ import annotations

import pytest
from aiosmtpd.controller import Controller

from tests.mailcore.conftest import free_port
from webmail.mailcore.errors import MailError
from webmail.mailcore.netguard import NetGuard
from webmail.mailcore.probe import probe_imap, probe_pop3, probe_smtp
from webmail.mailcore.types import Endpoint, TLSConfig

pytestmark = pytest.mark.mailstack

PROBES = {"imap": probe_imap, "pop3": probe_pop3, "smtp": probe_smtp}


def fails(service: str, ep: Endpoint, tls: TLSConfig, guard: NetGuard, kind: str) -> MailError:
    with pytest.raises(MailError) as info:
        PROBES[service](ep, tls=tls, guard=guard)
    err = info.value
    assert err.kind == kind, str(err)
    assert ep.password not in str(err)
    return err


@pytest.mark.parametrize("security", ["tls", "starttls", "none"])
def test_imap_probe_logs_in(user, endpoint, stack_tls, loopback_guard, security):
    result = probe_imap(endpoint(user, "imap", security), tls=stack_tls, guard=loopback_guard)
    assert result.ok
    assert "IMAP4REV1" in result.capabilities
    assert "QRESYNC" in result.capabilities  # post-login capabilities
    assert user.address in result.detail
    assert ("without encryption" in result.detail) == (security == "none")


@pytest.mark.parametrize("security", ["tls", "starttls", "none"])
def test_pop3_probe_logs_in(user, endpoint, stack_tls, loopback_guard, mailstack, security):
    mailstack.deliver_lmtp(user.address, b"Subject: one\r\n\r\nbody\r\n")
    result = probe_pop3(endpoint(user, "pop3", security), tls=stack_tls, guard=loopback_guard)
    assert result.ok
    assert "1 messages waiting" in result.detail
    assert any(c.startswith("UIDL") for c in result.capabilities)


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_smtp_probe_logs_in(user, endpoint, stack_tls, loopback_guard, security):
    result = probe_smtp(endpoint(user, "smtp", security), tls=stack_tls, guard=loopback_guard)
    assert result.ok
    assert any(c.startswith("AUTH") and "PLAIN" in c for c in result.capabilities)
    assert f"logged in as {user.address}" in result.detail


def test_smtp_probe_without_user_name_only_connects(user, endpoint, stack_tls, loopback_guard):
    result = probe_smtp(endpoint(user, "smtp", "starttls", username=""), tls=stack_tls, guard=loopback_guard)
    assert "connected without logging in" in result.detail


def test_probe_connects_to_the_checked_ip_and_verifies_the_name(user, endpoint, stack_tls):
    # The certificate names mail.example.test; no DNS knows it, the guard pins it to loopback.
    guard = NetGuard(allowed_hosts={"mail.example.test"}, hosts={"mail.example.test": "127.0.0.1"})
    for service in PROBES:
        result = PROBES[service](
            endpoint(user, service, "tls", host="mail.example.test"), tls=stack_tls, guard=guard
        )
        assert "mail.example.test" in result.detail


@pytest.mark.parametrize("service", PROBES)
def test_wrong_password_is_an_auth_error(user, endpoint, stack_tls, loopback_guard, service):
    ep = endpoint(user, service, "tls", password="wrong-" + user.password)
    err = fails(service, ep, stack_tls, loopback_guard, "auth")
    assert user.address in str(err)


@pytest.mark.parametrize("service", PROBES)
def test_unknown_host(user, endpoint, stack_tls, loopback_guard, service):
    ep = endpoint(user, service, "tls", host="no-such-host.invalid")
    err = fails(service, ep, stack_tls, loopback_guard, "unknown_host")
    assert "no-such-host.invalid" in str(err)


@pytest.mark.parametrize("service", PROBES)
def test_blocked_address_without_allow_list(user, endpoint, stack_tls, service):
    err = fails(service, endpoint(user, service, "tls"), stack_tls, NetGuard(), "blocked_address")
    assert "loopback" in str(err)


@pytest.mark.parametrize("service", PROBES)
def test_connection_refused(user, endpoint, stack_tls, loopback_guard, closed_port, service):
    err = fails(
        service, endpoint(user, service, "tls", port=closed_port), stack_tls, loopback_guard, "refused"
    )
    assert f"127.0.0.1:{closed_port}" in str(err)


@pytest.mark.parametrize("security", ["tls", "starttls"])
@pytest.mark.parametrize("service", PROBES)
def test_silent_server_times_out(user, endpoint, stack_tls, loopback_guard, silent_port, service, security):
    ep = endpoint(user, service, security, port=silent_port, timeout=0.3)
    err = fails(service, ep, stack_tls, loopback_guard, "timeout")
    assert "0.3 s" in str(err)


@pytest.mark.parametrize("security", ["tls", "starttls"])
@pytest.mark.parametrize("service", PROBES)
def test_certificate_from_an_untrusted_ca_is_a_tls_error(user, endpoint, loopback_guard, service, security):
    # The system store does not know the stack's self-signed certificate.
    err = fails(service, endpoint(user, service, security), TLSConfig(), loopback_guard, "tls")
    assert "self-signed" in str(err) or "self signed" in str(err)


@pytest.mark.parametrize("service", PROBES)
def test_certificate_for_another_name_is_a_tls_error(user, endpoint, stack_tls, service):
    guard = NetGuard(allowed_hosts={"other.example.test"}, hosts={"other.example.test": "127.0.0.1"})
    err = fails(service, endpoint(user, service, "tls", host="other.example.test"), stack_tls, guard, "tls")
    assert "other.example.test" in str(err)
    assert "mismatch" in str(err).lower()


@pytest.mark.parametrize("service", PROBES)
def test_tls_against_a_plain_port_is_a_tls_error(
    user, endpoint, mailstack, stack_tls, loopback_guard, service
):
    plain = {"imap": "imap", "pop3": "pop3", "smtp": "submission"}[service]
    ep = endpoint(user, service, "tls", port=mailstack.ports[plain])
    err = fails(service, ep, stack_tls, loopback_guard, "tls")
    assert "TLS" in str(err)


def test_imap_server_without_imap4rev1_is_a_capability_error(
    user, endpoint, stack_tls, loopback_guard, line_server
):
    def respond(line: bytes) -> bytes | None:
        tag, _, command = line.decode().strip().partition(" ")
        if command.upper().startswith("CAPABILITY"):
            return f"* CAPABILITY IMAP4 AUTH=PLAIN\r\n{tag} OK done\r\n".encode()
        if command.upper().startswith("LOGOUT"):
            return f"* BYE\r\n{tag} OK bye\r\n".encode()
        return f"{tag} BAD not here\r\n".encode()

    server = line_server(b"* OK [CAPABILITY IMAP4 AUTH=PLAIN] old server\r\n", respond)
    ep = endpoint(user, "imap", "none", port=server.port)
    err = fails("imap", ep, stack_tls, loopback_guard, "capability")
    assert "IMAP4rev1" in str(err)
    assert not any(b"LOGIN" in line for line in server.lines)  # never sent the password


def test_imap_starttls_missing_is_a_capability_error(user, endpoint, stack_tls, loopback_guard, line_server):
    def respond(line: bytes) -> bytes | None:
        tag = line.split(b" ", 1)[0].decode()
        return f"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK done\r\n".encode()

    server = line_server(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] no tls\r\n", respond)
    err = fails(
        "imap", endpoint(user, "imap", "starttls", port=server.port), stack_tls, loopback_guard, "capability"
    )
    assert "STARTTLS" in str(err)


def test_pop3_stls_missing_is_a_capability_error(user, endpoint, stack_tls, loopback_guard, line_server):
    def respond(line: bytes) -> bytes | None:
        if line.upper().startswith(b"CAPA"):
            return b"+OK\r\nUSER\r\nUIDL\r\n.\r\n"
        return b"-ERR no\r\n"

    server = line_server(b"+OK hello\r\n", respond)
    err = fails(
        "pop3", endpoint(user, "pop3", "starttls", port=server.port), stack_tls, loopback_guard, "capability"
    )
    assert "STLS" in str(err)


@pytest.fixture
def smtp_without_auth():
    class Accept:
        async def handle_DATA(self, server, session, envelope):
            return "250 OK"

    controller = Controller(Accept(), hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port
    controller.stop()


def test_smtp_server_without_auth_is_a_capability_error(
    user, endpoint, stack_tls, loopback_guard, smtp_without_auth
):
    ep = endpoint(user, "smtp", "none", port=smtp_without_auth)
    err = fails("smtp", ep, stack_tls, loopback_guard, "capability")
    assert "AUTH" in str(err)
    result = probe_smtp(
        endpoint(user, "smtp", "none", port=smtp_without_auth, username=""),
        tls=stack_tls,
        guard=loopback_guard,
    )
    assert result.ok


def test_smtp_starttls_missing_is_a_capability_error(
    user, endpoint, stack_tls, loopback_guard, smtp_without_auth
):
    ep = endpoint(user, "smtp", "starttls", port=smtp_without_auth)
    err = fails("smtp", ep, stack_tls, loopback_guard, "capability")
    assert "STARTTLS" in str(err)


def test_endpoint_repr_hides_the_password(user, endpoint):
    assert user.password not in repr(endpoint(user, "imap"))


@pytest.mark.parametrize("service", PROBES)
def test_a_non_ascii_password_logs_in(mail_user, endpoint, stack_tls, loopback_guard, service):
    user = mail_user(password="pässwörd-密码")
    assert PROBES[service](endpoint(user, service, "tls"), tls=stack_tls, guard=loopback_guard).ok
