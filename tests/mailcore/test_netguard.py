"""NetGuard refuses internal addresses unless allowed, and resolves once to a checked IP."""

from __future__ import annotations

import pytest

from webmail.mailcore.errors import MailError
from webmail.mailcore.netguard import NetGuard


def blocked(host: str, guard: NetGuard | None = None) -> MailError:
    with pytest.raises(MailError) as info:
        (guard or NetGuard()).resolve(host, 993)
    assert info.value.kind == "blocked_address"
    return info.value


def test_it_blocks_a_name_that_resolves_to_loopback():
    err = blocked("localhost")
    assert "localhost:993" in str(err)
    assert "loopback" in str(err)


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.1.2.3", "loopback"),
        ("::1", "loopback"),
        ("[::1]", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata service
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not publicly routable"),  # RFC 6598 shared address space
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:10.0.0.1", "private"),
        ("2002:7f00:1::1", "loopback"),  # 6to4 around 127.0.0.1
        ("64:ff9b::a00:1", "private"),  # NAT64 around 10.0.0.1
    ],
)
def test_it_blocks_internal_addresses(host, reason):
    err = blocked(host)
    assert reason in str(err)
    assert "993" in str(err)


def test_it_lets_public_addresses_through_unchanged():
    guard = NetGuard()
    assert guard.resolve("93.184.215.14", 993) == "93.184.215.14"
    assert guard.resolve("2606:4700:4700::1111", 993) == "2606:4700:4700::1111"


def test_it_allows_a_listed_host_and_returns_its_address():
    assert NetGuard(allowed_hosts={"localhost"}).resolve("localhost", 143) in ("127.0.0.1", "::1")
    assert NetGuard(allowed_hosts={"LocalHost."}).resolve("localhost", 143) in ("127.0.0.1", "::1")


def test_it_allows_a_listed_network():
    guard = NetGuard(allowed_networks=["10.0.0.0/8", "fd00::/8"])
    assert guard.resolve("10.1.2.3", 993) == "10.1.2.3"
    assert guard.resolve("fd00::5", 993) == "fd00::5"
    blocked("192.168.0.1", guard)


def test_a_mapped_address_is_checked_and_returned_as_ipv4():
    assert NetGuard(allowed_networks=["127.0.0.0/8"]).resolve("::ffff:127.0.0.1", 993) == "127.0.0.1"


def test_it_blocks_the_machines_own_addresses():
    guard = NetGuard()
    own = guard.own_addresses()
    assert any(ip.is_loopback for ip in own)
    for ip in own:
        assert guard.blocked_reason(ip) is not None


def test_pinned_names_skip_dns_and_are_still_checked():
    assert NetGuard(hosts={"mail.example.test": "8.8.8.8"}).resolve("mail.example.test", 25) == "8.8.8.8"
    err = blocked("mail.example.test", NetGuard(hosts={"mail.example.test": "192.168.0.10"}))
    assert "192.168.0.10 is a private address" in str(err)


def test_an_unknown_host_is_reported_as_such():
    with pytest.raises(MailError) as info:
        NetGuard().resolve("no-such-host.invalid", 993)
    assert info.value.kind == "unknown_host"
    assert "no-such-host.invalid" in str(info.value)
