"""Pop3Session against the real Dovecot POP3 server, plus a scripted server for a short transfer."""

from __future__ import annotations

import pytest

from webmail.mailcore.errors import MailError
from webmail.mailcore.pop3 import Pop3Refused, Pop3Session

pytestmark = pytest.mark.mailstack

LONG_LINE = b"x" * 5000


def message(n: int) -> bytes:
    return (
        f"From: sender@example.org\r\nSubject: pop {n}\r\nMessage-ID: <pop{n}@example.org>\r\n\r\n".encode()
        + b"Line one.\r\n.hidden line starts with a dot\r\n"
        + LONG_LINE
        + b"\r\nEnd.\r\n"
    )


@pytest.fixture
def pop_for(endpoint, stack_tls, loopback_guard):
    def make(user, security: str = "tls", **kwargs) -> Pop3Session:
        return Pop3Session(endpoint(user, "pop3", security), tls=stack_tls, guard=loopback_guard, **kwargs)

    return make


@pytest.fixture
def maildrop(mailstack, user):
    for n in (1, 2, 3):
        mailstack.deliver_lmtp(user.address, message(n))
    return user


@pytest.mark.parametrize("method", ["auto", "user", "apop"])
@pytest.mark.parametrize("security", ["tls", "starttls", "none"])
def test_it_logs_in_with_each_method(maildrop, pop_for, method, security):
    with pop_for(maildrop, security, method=method) as pop:
        assert pop.stat()[0] == 3
        assert "UIDL" in pop.capabilities


def test_a_non_ascii_password_works_through_sasl_plain(mail_user, pop_for):
    user = mail_user(password="pässwörd-密码")
    with pop_for(user) as pop:
        assert pop.stat() == (0, 0)


def test_uidl_maps_stable_ids_to_numbers(maildrop, pop_for):
    with pop_for(maildrop) as pop:
        first = pop.uidl()
        listing = pop.listing()
    with pop_for(maildrop) as pop:
        assert pop.uidl() == first
    assert sorted(first.values()) == [1, 2, 3]
    assert [item.number for item in listing] == [1, 2, 3]
    assert all(item.size > 5000 for item in listing)


def test_without_uidl_ids_are_header_hashes(maildrop, pop_for):
    with pop_for(maildrop, disabled_caps={"UIDL"}) as pop:
        ids = pop.uidl()
    with pop_for(maildrop, disabled_caps={"UIDL"}) as pop:
        assert pop.uidl() == ids
    assert len(ids) == 3 and all(k.startswith("sha256:") for k in ids)


def test_retr_returns_the_exact_message_unstuffed(maildrop, pop_for):
    with pop_for(maildrop) as pop:
        raw = pop.retr(2)
        assert len(raw) == pop.sizes()[2]
        assert pop.top(2, 0).endswith(b"\r\n\r\n")
    assert raw.endswith(message(2).split(b"\r\n\r\n", 1)[1])
    assert b"\r\n.hidden line" in raw and b"\r\n..hidden" not in raw
    assert b"Subject: pop 2" in raw


def test_deletions_happen_at_quit_only(maildrop, pop_for):
    with pytest.raises(RuntimeError), pop_for(maildrop) as pop:
        pop.dele(1)
        raise RuntimeError("leave without QUIT")
    with pop_for(maildrop) as pop:
        assert pop.stat()[0] == 3
        pop.dele(1)
        pop.dele(3)
    with pop_for(maildrop) as pop:
        assert pop.stat()[0] == 1
        assert b"Subject: pop 2" in pop.retr(1)


def test_rset_undoes_deletions(maildrop, pop_for):
    with pop_for(maildrop) as pop:
        pop.dele(1)
        pop.rset()
    with pop_for(maildrop) as pop:
        assert pop.stat()[0] == 3


def test_a_short_transfer_is_a_protocol_error(user, endpoint, stack_tls, loopback_guard, line_server):
    def respond(line: bytes) -> bytes | None:
        cmd = line.strip().upper()
        if cmd == b"CAPA":
            return b"+OK\r\nUSER\r\nUIDL\r\n.\r\n"
        if cmd.startswith((b"USER", b"PASS", b"QUIT")):
            return b"+OK\r\n"
        if cmd == b"LIST":
            return b"+OK 1 messages\r\n1 500\r\n.\r\n"
        if cmd == b"RETR 1":
            return b"+OK\r\nSubject: short\r\n\r\nonly this\r\n.\r\n"
        return b"-ERR unknown\r\n"

    server = line_server(b"+OK ready\r\n", respond)
    ep = endpoint(user, "pop3", "none", port=server.port)
    with pytest.raises(MailError) as info, Pop3Session(ep, tls=stack_tls, guard=loopback_guard) as pop:
        pop.retr(1)
    assert info.value.kind == "protocol"
    assert "listed 500" in str(info.value)


def test_uidl_fallback_is_reported_by_the_session(maildrop, pop_for):
    with pop_for(maildrop) as pop:
        pop.uidl()
        assert not pop.uidl_fallback
    with pop_for(maildrop, disabled_caps={"UIDL"}) as pop:
        pop.uidl()
        assert pop.uidl_fallback


def test_a_refused_command_leaves_the_session_usable(maildrop, pop_for):
    with pop_for(maildrop) as pop:
        with pytest.raises(Pop3Refused) as info:
            pop.retr(99)
        assert info.value.kind == "protocol"
        assert b"Subject: pop 1" in pop.retr(1)


def test_a_connection_closed_during_login_is_not_an_auth_failure(
    user, endpoint, stack_tls, loopback_guard, line_server
):
    def respond(line: bytes) -> bytes | None:
        cmd = line.strip().upper()
        if cmd == b"CAPA":
            return b"+OK\r\nUSER\r\n.\r\n"
        if cmd.startswith(b"USER"):
            return b"+OK\r\n"
        return None  # hang up on PASS

    server = line_server(b"+OK ready\r\n", respond)
    ep = endpoint(user, "pop3", "none", port=server.port)
    with pytest.raises(MailError) as info, Pop3Session(ep, tls=stack_tls, guard=loopback_guard):
        pass
    assert info.value.kind == "network"
    assert not isinstance(info.value, Pop3Refused)
    assert "closed the connection while logging in" in str(info.value)


def test_retr_many_pipelines_and_matches_retr(maildrop, pop_for):
    with pop_for(maildrop) as pop:
        assert "PIPELINING" in pop.capabilities
        one_by_one = {n: pop.retr(n) for n in (1, 2, 3)}
        assert dict(pop.retr_many([3, 1, 2], window=2)) == one_by_one
        assert dict(pop.retr_many([2], window=1)) == {2: one_by_one[2]}


def test_retr_many_drains_the_pipeline_after_a_refusal(maildrop, pop_for):
    with pop_for(maildrop) as pop:
        got = []
        with pytest.raises(Pop3Refused):
            for number, raw in pop.retr_many([1, 99, 2, 3]):
                got.append(number)
        assert got == [1]
        assert [n for n, _ in pop.retr_many([2, 3])] == [2, 3]
        pop.noop()
