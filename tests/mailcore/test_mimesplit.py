"""The fast message splitter builds exactly the email package's tree, or steps aside."""

from __future__ import annotations

import random
from email import policy
from email.message import Message
from email.parser import BytesParser
from pathlib import Path

import pytest

from webmail.mailcore import mime
from webmail.mailcore.mimesplit import split_message

CORPUS_FILES = sorted((Path(__file__).resolve().parents[1] / "corpus").glob("*.eml"))
FEED_PARSER = BytesParser(policy=policy.compat32)


def tree(msg: Message) -> tuple:
    """Everything of a compat32 message the cache reads, recursively (payload, headers, defects...)."""
    payload = msg._payload
    parts = [tree(p) for p in payload] if isinstance(payload, list) else payload
    defects = [type(d).__name__ for d in msg.defects]
    return (msg._headers, msg.preamble, msg.epilogue, defects, msg._default_type, msg._unixfrom, parts)


def assert_same_or_declined(raw: bytes) -> bool:
    """Assert the splitter builds the feed parser's tree; return False when it declined."""
    fast = split_message(raw)
    if fast is None:
        return False
    assert tree(fast) == tree(FEED_PARSER.parsebytes(raw)), raw[:300]
    return True


def generated(n: int, rng: random.Random) -> bytes:
    """A message like real mail: text, alternatives, attachments, nesting, CRLF or LF."""
    text = "\r\n".join(
        " ".join(rng.choice(["mail", "café", "hello", "--", "--b1x"]) for _ in range(9)) for _ in range(5)
    )
    head = (
        f"From: A <a@example.test>\r\nSubject: Message {n}\r\n =?utf-8?q?folded?=\r\nMessage-ID: <g{n}@x>\r\n"
    )
    kind = n % 4
    if kind == 0:
        body = f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
    elif kind == 1:
        body = (
            'Content-Type: multipart/alternative; boundary="b1"\r\n\r\npreamble\r\n--b1\r\n'
            f"Content-Type: text/plain\r\n\r\n{text}\r\n--b1 \r\nContent-Type: text/html\r\n\r\n"
            f"<p>{text}</p>\r\n--b1--\r\nepilogue\r\n"
        )
    elif kind == 2:
        body = (
            'Content-Type: multipart/mixed; boundary="o"\r\n\r\n--o\r\n'
            'Content-Type: multipart/alternative; boundary="i"\r\n\r\n--i\r\n\r\n'
            f"{text}\r\n--i\r\nContent-Type: text/html\r\n\r\n<b>x</b>\r\n--i--\r\n\r\n--o\r\n"
            "Content-Type: application/pdf; name=r.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            "JVBERi0xLjQK\r\n--o--"
        )
    else:
        body = 'Content-Type: multipart/mixed; boundary="z"\r\n\r\n--z\r\n\r\nonly part\r\n--z--\r\n'
    raw = (head + "MIME-Version: 1.0\r\n" + body).encode()
    return raw.replace(b"\r\n", b"\n") if rng.random() < 0.3 else raw


def mutate(raw: bytes, rng: random.Random) -> bytes:
    """Damage RAW the ways real mail is damaged: cut, lines dropped or doubled, stray boundaries."""
    if not raw:
        return b"x"
    lines = raw.split(b"\n")
    i = rng.randrange(len(lines))
    op = rng.randrange(8)
    if op == 0:
        return raw[: rng.randrange(len(raw) + 1)]
    if op == 1:
        del lines[i]
    elif op == 2:
        lines.insert(i, lines[rng.randrange(len(lines))])
    elif op == 3:
        lines[i] = lines[i].rstrip(b"\r")
    elif op == 4:
        stray = [
            b"",
            b"\r",
            b" x\r",
            b"--b1\r",
            b"--b1--\r",
            b"--o \r",
            b"--i--x\r",
            b"From x\r",
            b":x\r",
            b"a b: c\r",
        ]
        lines.insert(i, rng.choice(stray))
    elif op == 5:
        data = bytearray(raw)
        data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    elif op == 6:
        lines[i] = (
            lines[i].replace(b"multipart/", b"multipart/digest; x=").replace(b"boundary=", b"boundary=q")
        )
    else:
        lines[i] = (
            b'Content-Type: multipart/mixed; boundary="' + rng.choice([b"b1", b"o", b"", b"i"]) + b'"\r'
        )
    return b"\n".join(lines)


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_corpus_messages_split_like_the_feed_parser(path):
    assert_same_or_declined(path.read_bytes())


def test_plain_messages_take_the_fast_path():
    rng = random.Random(1)
    assert all(assert_same_or_declined(generated(n, rng)) for n in range(40))


def test_damaged_messages_split_like_the_feed_parser_or_are_declined():
    rng = random.Random(7)
    seeds = [p.read_bytes() for p in CORPUS_FILES] + [generated(n, rng) for n in range(16)]
    taken = 0
    for _ in range(3000):
        raw = rng.choice(seeds)
        for _ in range(rng.randint(1, 3)):
            raw = mutate(raw, rng)
        taken += assert_same_or_declined(raw)
    assert taken > 500  # the comparison is not vacuous


@pytest.mark.parametrize(
    "raw",
    [
        b"Subject: a\rb\r\n\r\nlone CR\r\n",
        b"From someone Tue Jan  1 00:00:00 2024\r\nSubject: mbox\r\n\r\nx\r\n",
        b" continued\r\nSubject: x\r\n\r\nbody\r\n",
        b"Subject: x\r\nnot a header line\r\n\r\nbody\r\n",
        b"Subject: no blank line and no body\r\n",
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n\r\nno close\r\n',
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\nno boundary at all\r\n',
        b"Content-Type: multipart/mixed\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n",
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n--b\r\n\r\nx\r\n--b--\r\n',
        b'Content-Type: multipart/digest; boundary="b"\r\n\r\n--b\r\n\r\nSubject: in\r\n\r\nx\r\n--b--\r\n',
        b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nx\r\n",
        b'Content-Type: multipart/mixed; boundary="b"\r\nContent-Transfer-Encoding: base64\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n',
    ],
    ids=["lone-cr", "mbox-from", "continuation-first", "no-separator", "header-only", "no-close",
         "no-boundary-line", "no-boundary-param", "adjacent-boundaries", "digest", "rfc822", "multipart-cte"],
)  # fmt: skip
def test_what_the_feed_parser_treats_specially_is_left_to_it(raw):
    assert split_message(raw) is None


def test_parse_message_gives_the_same_result_with_or_without_the_fast_path(monkeypatch):
    rng = random.Random(3)
    raws = [p.read_bytes() for p in CORPUS_FILES] + [generated(n, rng) for n in range(12)]
    fast = [mime.parse_message(raw) for raw in raws]
    monkeypatch.setattr(mime, "split_message", lambda raw: None)
    assert [mime.parse_message(raw) for raw in raws] == fast


def test_a_failing_splitter_leaves_the_message_to_the_feed_parser(monkeypatch):
    def broken(raw):
        raise RuntimeError("bug")

    monkeypatch.setattr(mime, "split_message", broken)
    parsed = mime.parse_message(generated(1, random.Random(1)))
    assert parsed.subject.startswith("Message 1") and parsed.has_text_body and not parsed.problems
