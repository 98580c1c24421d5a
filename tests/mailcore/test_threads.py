"""Tests for webmail.mailcore.threads: subject keys, candidates and the in-memory Threader."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from webmail.mailcore.threads import (
    Threader,
    ThreadMessage,
    is_reply_subject,
    normalize_subject,
    strip_subject_prefixes,
    thread_candidates,
)

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def msg(
    key: str,
    *,
    refs: tuple[str, ...] = (),
    irt: str | None = None,
    subject: str = "Topic",
    days: float = 0,
    message_id: str | None = "",
) -> ThreadMessage:
    return ThreadMessage(
        key=key,
        message_id=f"{key}@example.test" if message_id == "" else message_id,
        in_reply_to=irt,
        references=refs,
        subject=subject,
        date=T0 + timedelta(days=days),
    )


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Hello", "hello"),
        ("Re: Hello", "hello"),
        ("RE: re: Re:Hello", "hello"),
        ("Re[2]: Hello", "hello"),
        ("Re(3): Hello", "hello"),
        ("Re^2: Hello", "hello"),
        ("RE : Hello", "hello"),
        ("Fwd: Re: Hello", "hello"),
        ("Fw: Hello", "hello"),
        ("AW: WG: Hello", "hello"),
        ("SV: VS: Hello", "hello"),
        ("Antw: Doorst: Hello", "hello"),
        ("TR: RE: Hello", "hello"),
        ("RV: RES: ENC: Hello", "hello"),
        ("Odp: PD: Hello", "hello"),
        ("回复：Hello", "hello"),
        ("转发: Hello", "hello"),
        ("[dev-list] Re: [dev-list] Hello", "hello"),
        ("Re: [PATCH v2] Hello", "hello"),
        ("Hello (fwd)", "hello"),
        ("  Hello   World  ", "hello world"),
        ("HELLO", "hello"),
        ("Straße", "strasse"),
        ("", ""),
        ("Re:", ""),
        ("[only-a-tag]", "[only-a-tag]"),
        ("Reply needed", "reply needed"),
        ("Ref: 12345", "ref: 12345"),
        ("Regarding: Hello", "regarding: hello"),
        ("Fwdx: Hello", "fwdx: hello"),
    ],
)
def test_normalize_subject(subject: str, expected: str):
    assert normalize_subject(subject) == expected


def test_normalize_subject_is_idempotent_and_bounded():
    hostile = "Re: " * 10_000 + "x"
    assert normalize_subject(hostile) == normalize_subject(normalize_subject(hostile))


def test_strip_subject_prefixes_keeps_case_for_display():
    assert strip_subject_prefixes("Re: AW: Quarterly Report") == "Quarterly Report"


@pytest.mark.parametrize(
    ("subject", "reply"),
    [
        ("Re: x", True),
        ("AW: x", True),
        ("[list] Re: x", True),
        ("Fwd: x", False),
        ("x", False),
        ("Re x", False),
    ],
)
def test_is_reply_subject(subject: str, reply: bool):
    assert is_reply_subject(subject) is reply


def test_thread_candidates_are_root_first_with_own_id_last():
    assert thread_candidates("m3", "m2", ("m1", "m2")) == ["m1", "m2", "m3"]


def test_thread_candidates_add_in_reply_to_missing_from_references():
    assert thread_candidates("m4", "m3", ("m1", "m2")) == ["m1", "m2", "m3", "m4"]


def test_thread_candidates_drop_blanks_duplicates_and_brackets():
    assert thread_candidates("<m3>", "", ("m1", "", "<m1>", " m2 ")) == ["m1", "m2", "m3"]
    assert thread_candidates(None, None, ()) == []


def test_thread_candidates_put_own_id_last_even_if_referenced():
    assert thread_candidates("m2", None, ("m2", "m1")) == ["m1", "m2"]


def test_thread_candidates_are_capped_keeping_the_root():
    refs = tuple(f"r{i}" for i in range(500))
    result = thread_candidates("own", None, refs)
    assert result[0] == "r0"
    assert result[-2:] == ["r499", "own"]
    assert len(result) <= 61


# --- Threader -----------------------------------------------------------------------------


def test_replies_join_by_references():
    threader = Threader()
    a = threader.add(msg("a"))
    b = threader.add(msg("b", irt="a@example.test", refs=("a@example.test",), subject="Re: Topic"))
    c = threader.add(msg("c", refs=("a@example.test", "b@example.test"), subject="Re: Topic"))
    assert a == b == c
    assert threader.threads() == {a: ["a", "b", "c"]}


def test_reply_arriving_before_its_parent_is_joined_by_the_parent():
    threader = Threader()
    child = threader.add(msg("child", irt="parent@example.test", subject="Re: Topic"))
    parent = threader.add(msg("parent", subject="Topic"))
    assert child == parent


def test_siblings_that_reference_a_missing_parent_share_a_thread():
    threader = Threader()
    first = threader.add(msg("s1", refs=("gone@example.test",), subject="Re: x"))
    second = threader.add(msg("s2", refs=("gone@example.test",), subject="Re: y"))
    assert first == second


def test_a_later_message_merges_two_threads_into_the_oldest():
    threader = Threader()
    left = threader.add(msg("left", subject="One"))
    right = threader.add(msg("right", subject="Two"))
    assert left != right
    bridge = threader.add(msg("bridge", refs=("left@example.test", "right@example.test"), subject="Re: One"))
    assert bridge == left == min(left, right)
    assert threader.thread_of("right") == left
    assert threader.threads() == {left: ["left", "right", "bridge"]}


def test_chains_of_merges_resolve_to_one_thread():
    threader = Threader()
    ids = [threader.add(msg(f"m{i}", subject=f"S{i}")) for i in range(5)]
    assert len(set(ids)) == 5
    for i in range(4):
        threader.add(msg(f"link{i}", refs=(f"m{i}@example.test", f"m{i + 1}@example.test"), subject="Re: S"))
    assert len(threader.threads()) == 1


def test_reply_without_references_joins_by_subject_within_the_window():
    threader = Threader()
    original = threader.add(msg("orig", subject="Budget 2024"))
    reply = threader.add(msg("reply", subject="RE: Budget 2024", days=3, message_id=None))
    assert reply == original


def test_reply_by_subject_outside_the_window_starts_a_new_thread():
    threader = Threader(subject_window=timedelta(days=30))
    original = threader.add(msg("orig", subject="Budget"))
    late = threader.add(msg("late", subject="Re: Budget", days=45))
    assert late != original


def test_non_replies_with_the_same_subject_stay_apart():
    threader = Threader()
    may = threader.add(msg("may", subject="Invoice"))
    june = threader.add(msg("june", subject="Invoice", days=1))
    assert may != june


def test_forward_is_not_a_reply_for_subject_matching():
    threader = Threader()
    original = threader.add(msg("orig", subject="Plans"))
    forward = threader.add(msg("fwd", subject="Fwd: Plans", days=1))
    assert forward != original


def test_subject_match_prefers_the_most_recent_thread():
    threader = Threader(subject_window=timedelta(days=30))
    old = threader.add(msg("old", subject="Status"))
    new = threader.add(msg("new", subject="Status", days=20))
    reply = threader.add(msg("reply", subject="Re: Status", days=25))
    assert old != new
    assert reply == new


def test_subject_match_needs_a_date():
    threader = Threader()
    threader.add(msg("orig", subject="Dateless"))
    reply = ThreadMessage(key="r", message_id=None, subject="Re: Dateless", date=None)
    assert threader.add(reply) != threader.thread_of("orig")


def test_references_win_over_subject():
    threader = Threader()
    first = threader.add(msg("first", subject="Alpha"))
    threader.add(msg("second", subject="Beta"))
    reply = threader.add(msg("reply", refs=("first@example.test",), subject="Re: Beta"))
    assert reply == first


def test_messages_without_ids_get_their_own_threads():
    threader = Threader()
    a = threader.add(msg("a", message_id=None, subject="x"))
    b = threader.add(msg("b", message_id=None, subject="y"))
    assert a != b


def test_the_same_message_id_in_two_folders_is_one_thread():
    threader = Threader()
    inbox = threader.add(msg("inbox-copy", message_id="same@example.test"))
    sent = threader.add(msg("sent-copy", message_id="same@example.test"))
    assert inbox == sent


def test_adding_the_same_key_twice_is_a_no_op():
    threader = Threader()
    first = threader.add(msg("a"))
    assert threader.add(msg("a", subject="changed")) == first
    assert threader.threads() == {first: ["a"]}


def test_thread_of_an_unknown_key_raises():
    with pytest.raises(KeyError):
        Threader().thread_of("nope")


def test_naive_and_aware_dates_do_not_crash():
    threader = Threader()
    threader.add(msg("aware", subject="Mixed"))
    naive = ThreadMessage(key="naive", message_id=None, subject="Re: Mixed", date=datetime(2024, 5, 2))
    assert isinstance(threader.add(naive), int)


def test_grouping_does_not_depend_on_arrival_order():
    # A conversation tree plus an unrelated thread, added in every kind of order.
    conversation = [
        msg("r", subject="Plan"),
        msg("c1", irt="r@example.test", refs=("r@example.test",), subject="Re: Plan", days=1),
        msg("c2", irt="r@example.test", refs=("r@example.test",), subject="Re: Plan", days=1),
        msg("g1", refs=("r@example.test", "c1@example.test"), subject="Re: Plan", days=2),
        msg("g2", refs=("r@example.test", "c2@example.test"), subject="Re: Plan", days=2),
        msg("other", subject="Different"),
        msg("other-re", irt="other@example.test", subject="Re: Different", days=1),
    ]
    expected = {frozenset({"r", "c1", "c2", "g1", "g2"}), frozenset({"other", "other-re"})}
    rng = random.Random(7)
    for _ in range(50):
        order = conversation[:]
        rng.shuffle(order)
        threader = Threader()
        for message in order:
            threader.add(message)
        assert {frozenset(keys) for keys in threader.threads().values()} == expected
