"""Tests for webmail.mailcore.trace: Received chains and Authentication-Results."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from webmail.mailcore.trace import (
    AuthenticationResults,
    AuthResult,
    Hop,
    parse_authentication_results,
    parse_received_chain,
)

CORPUS = Path(__file__).resolve().parents[1] / "corpus"

# In message order: the newest hop (added by the final server) first.
CHAIN = [
    "from mx2.example.test (mx2.example.test [192.0.2.2]) by inbox.example.test (Postfix) "
    "with ESMTPS id 4F1 for <bob@example.test>; Tue, 14 May 2024 10:00:09 +0200",
    "from mail.sender.test (unknown [IPv6:2001:db8::1])\r\n\tby mx2.example.test with ESMTP id X;\r\n"
    "\tTue, 14 May 2024 08:00:04 +0000",
    "by mail.sender.test (Postfix, from userid 1000) id 1234; Tue, 14 May 2024 10:00:00 +0200",
]


def test_chain_is_returned_oldest_first_with_delays():
    hops = parse_received_chain(CHAIN)
    assert [h.by_host for h in hops] == ["mail.sender.test", "mx2.example.test", "inbox.example.test"]
    assert [h.delay_seconds for h in hops] == [None, 4, 5]
    assert hops[0].time == datetime(2024, 5, 14, 8, 0, tzinfo=UTC)


def test_hop_fields():
    newest = parse_received_chain(CHAIN)[-1]
    assert newest == Hop(
        from_host="mx2.example.test",
        from_ip="192.0.2.2",
        by_host="inbox.example.test",
        with_proto="ESMTPS",
        time=datetime(2024, 5, 14, 10, 0, 9, tzinfo=timezone(timedelta(hours=2))),
        delay_seconds=5,
    )


def test_ipv6_address_literals_are_read():
    assert parse_received_chain([CHAIN[1]])[0].from_ip == "2001:db8::1"


def test_from_clause_that_is_an_address_literal():
    hop = parse_received_chain(
        ["from [198.51.100.7] (helo=laptop) by mail.example.test; Mon, 13 May 2024 11:14:58 +0200"]
    )[0]
    assert hop.from_host == "[198.51.100.7]"
    assert hop.from_ip == "198.51.100.7"


def test_words_inside_comments_are_not_clauses():
    hop = parse_received_chain(
        ["by mail.sender.test (Postfix, from userid 1000) id 1; Tue, 14 May 2024 10:00:00 +0200"]
    )[0]
    assert hop.from_host is None
    assert hop.by_host == "mail.sender.test"


def test_nested_comments_and_escapes():
    value = "from a.example.test (x (nested (deep)) \\) [192.0.2.9]) by b.example.test; Tue, 14 May 2024 10:00:00 +0000"
    hop = parse_received_chain([value])[0]
    assert (hop.from_host, hop.from_ip, hop.by_host) == ("a.example.test", "192.0.2.9", "b.example.test")


def test_clock_skew_gives_negative_delays():
    hops = parse_received_chain(
        [
            "by b.example.test; Tue, 14 May 2024 10:00:00 +0000",
            "by a.example.test; Tue, 14 May 2024 10:05:00 +0000",
        ]
    )
    assert hops[1].delay_seconds == -300


def test_missing_dates_skip_to_the_last_known_time():
    hops = parse_received_chain(
        [
            "by c.example.test; Tue, 14 May 2024 10:00:10 +0000",
            "by b.example.test",
            "by a.example.test; Tue, 14 May 2024 10:00:00 +0000",
        ]
    )
    assert [h.time is None for h in hops] == [False, True, False]
    assert [h.delay_seconds for h in hops] == [None, None, 10]


@pytest.mark.parametrize(
    "value",
    [
        "",
        ";",
        "garbage",
        "from",
        "by ;",
        "((((",
        "from x (unterminated by y; bad date",
        "\x00",
        "from " * 5000,
    ],
)
def test_garbage_headers_never_raise(value: str):
    hops = parse_received_chain([value])
    assert len(hops) == 1


@pytest.mark.timeout(30)  # an uncapped chain would take far longer
def test_huge_chains_are_capped():
    hops = parse_received_chain(["from a (b [192.0.2.1]) by c; Tue, 14 May 2024 10:00:00 +0000"] * 10_000)
    assert len(hops) == 100


def test_chain_from_a_corpus_message():
    msg = email.message_from_bytes((CORPUS / "plain_ascii.eml").read_bytes(), policy=email.policy.compat32)
    hops = parse_received_chain([str(v) for v in msg.get_all("Received")])
    assert [(h.from_host, h.from_ip, h.by_host) for h in hops] == [
        ("[198.51.100.7]", "198.51.100.7", "mail.example.test"),
        ("mail.example.test", "192.0.2.10", "mx.example.test"),
    ]
    assert hops[1].delay_seconds == 4


# --- Authentication-Results ---------------------------------------------------------------


def test_authentication_results_are_parsed():
    results = parse_authentication_results(
        "mx.example.test 1; spf=pass (sender SPF authorized) smtp.mailfrom=sender.test;\r\n"
        '\tdkim/1=pass header.d=sender.test header.s="s1"; dmarc=FAIL reason="policy; p=reject" header.from=sender.test'
    )
    assert results == AuthenticationResults(
        authserv_id="mx.example.test",
        results=(
            AuthResult("spf", "pass", None, (("smtp.mailfrom", "sender.test"),)),
            AuthResult("dkim", "pass", None, (("header.d", "sender.test"), ("header.s", "s1"))),
            AuthResult("dmarc", "fail", "policy; p=reject", (("header.from", "sender.test"),)),
        ),
    )
    assert results.result_for("DMARC") == "fail"
    assert results.result_for("arc") is None


def test_authentication_results_none():
    assert parse_authentication_results("mx.example.test; none") == AuthenticationResults(
        "mx.example.test", ()
    )


def test_authentication_results_from_a_corpus_message():
    msg = email.message_from_bytes((CORPUS / "plain_ascii.eml").read_bytes(), policy=email.policy.compat32)
    results = parse_authentication_results(str(msg["Authentication-Results"]))
    assert results.authserv_id == "mx.example.test"
    assert [(r.method, r.result) for r in results.results] == [
        ("spf", "pass"),
        ("dkim", "pass"),
        ("dmarc", "pass"),
    ]


def test_comments_with_semicolons_do_not_split_results():
    results = parse_authentication_results(
        "mx.example.test; dkim=pass (good; really) header.d=a.test; spf=none"
    )
    assert [(r.method, r.result) for r in results.results] == [("dkim", "pass"), ("spf", "none")]


@pytest.mark.parametrize(
    "value", ["", ";", ";;;", "=", "x; =pass", 'x; dkim="unterminated', "(((", "a" * 20_000]
)
@pytest.mark.timeout(30)
def test_authentication_results_garbage_never_raises(value: str):
    assert isinstance(parse_authentication_results(value), AuthenticationResults)
