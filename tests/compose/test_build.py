"""Building outgoing messages: headers, encodings, attachments, threading and header injection."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime

import pytest

from webmail.compose.build import (
    AttachmentData,
    HeaderInjection,
    OutgoingDraft,
    build_message,
    forward_subject,
    guess_content_type,
    make_message_id,
    reply_subject,
)
from webmail.mailcore.addresses import Address

ALICE = Address("Alice Example", "alice@example.test")
BOB = Address("Bob", "bob@example.test")
CAROL = Address("", "carol@example.test")


def draft(**kw) -> OutgoingDraft:
    values = dict(
        from_=ALICE,
        to=(BOB,),
        subject="Hello",
        text="Hi Bob.\n",
        message_id="abc@example.test",
        date=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
    )
    values.update(kw)
    return OutgoingDraft(**values)


def parse(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def header_block(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0]


def test_it_writes_the_mandatory_headers_and_a_blank_line():
    raw = build_message(draft())
    head, _, body = raw.partition(b"\r\n\r\n")
    msg = parse(raw)
    assert msg["From"] == "Alice Example <alice@example.test>"
    assert msg["To"] == "Bob <bob@example.test>"
    assert msg["Subject"] == "Hello"
    assert msg["Date"] == "Wed, 01 May 2024 12:00:00 +0000"
    assert msg["Message-ID"] == "<abc@example.test>"
    assert body == b"Hi Bob.\r\n"


def test_every_line_ends_in_crlf_and_fits_the_limits():
    long_text = "word " * 400 + "\n" + "x" * 5000 + "\nü" * 10
    raw = build_message(draft(subject="Sübject " + "long " * 60, text=long_text))
    assert b"\n" not in raw.replace(b"\r\n", b"")
    for line in raw.split(b"\r\n"):
        assert len(line) <= 998
    for line in header_block(raw).split(b"\r\n"):
        assert len(line) <= 78
    assert parse(raw).get_content().replace("\r\n", "\n").startswith("word word")


def test_bcc_is_in_the_envelope_but_in_no_header():
    d = draft(bcc=(CAROL,))
    raw = build_message(d)
    assert b"carol" not in raw
    assert b"Bcc" not in raw
    assert d.envelope_recipients == ["bob@example.test", "carol@example.test"]


def test_bcc_alone_is_enough_but_no_recipient_is_refused():
    build_message(draft(to=(), bcc=(CAROL,)))
    with pytest.raises(ValueError, match="recipient"):
        build_message(draft(to=()))


def test_from_is_mandatory():
    with pytest.raises(ValueError, match="From"):
        build_message(draft(from_=Address("", "")))


def test_envelope_recipients_are_unique():
    d = draft(to=(BOB,), cc=(Address("B", "BOB@example.test"), CAROL), bcc=(CAROL,))
    assert d.envelope_recipients == ["bob@example.test", "carol@example.test"]


def test_non_ascii_names_are_rfc2047_encoded_and_headers_stay_ascii():
    raw = build_message(
        draft(from_=Address("Zoë Ünal", "zoe@example.test"), to=(Address("山田 太郎", "taro@example.test"),))
    )
    assert header_block(raw).isascii()
    assert b"=?utf-8?" in header_block(raw)
    msg = parse(raw)
    assert msg["From"].addresses[0].display_name == "Zoë Ünal"
    assert msg["To"].addresses[0].display_name == "山田 太郎"


def test_names_with_specials_are_quoted():
    raw = build_message(draft(to=(Address("Doe, Jane", "jane@example.test"),)))
    assert b'"Doe, Jane" <jane@example.test>' in raw


def test_a_non_ascii_local_part_makes_utf8_headers():
    raw = build_message(draft(to=(Address("", "jörg@example.test"),)))
    assert "jörg@example.test".encode() in header_block(raw)


@pytest.mark.parametrize(
    "field",
    ["subject", "to_name", "to_email", "from_name", "bcc_email", "filename", "in_reply_to"],
)
@pytest.mark.parametrize("bad", ["\r\nBcc: victim@example.org", "\nX: y", "a\rb", "nul\x00"])
def test_header_injection_is_refused(field, bad):
    kw: dict = {}
    if field == "subject":
        kw["subject"] = "Hi" + bad
    elif field == "to_name":
        kw["to"] = (Address("Bob" + bad, "bob@example.test"),)
    elif field == "to_email":
        kw["to"] = (Address("", "bob@example.test" + bad),)
    elif field == "from_name":
        kw["from_"] = Address("A" + bad, "alice@example.test")
    elif field == "bcc_email":
        kw["bcc"] = (Address("", "c@example.test" + bad),)
    elif field == "filename":
        kw["attachments"] = (AttachmentData("a" + bad + ".txt", "text/plain", b"x"),)
    elif field == "in_reply_to":
        kw["in_reply_to"] = "x@y" + bad
    with pytest.raises(HeaderInjection):
        build_message(draft(**kw))


def test_html_mode_is_multipart_alternative_with_the_text_first():
    raw = build_message(draft(text="Bold text\n", html="<p><b>Bold</b> text</p>"))
    msg = parse(raw)
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert "<b>Bold</b>" in parts[1].get_content()


def test_attachments_have_types_rfc2231_names_and_exact_bytes():
    data = bytes(range(256)) * 40
    raw = build_message(
        draft(
            html="<p>x</p>",
            attachments=(
                AttachmentData("résumé 2024.pdf", "", data),
                AttachmentData("notes.txt", "text/plain", b"line1\nline2\r\nno newline at end"),
                AttachmentData("weird", "application/x-thing", b"\x00\xff"),
            ),
        )
    )
    assert b"filename*=utf-8''r%C3%A9sum%C3%A9%202024.pdf" in raw
    msg = parse(raw)
    assert msg.get_content_type() == "multipart/mixed"
    atts = list(msg.iter_attachments())
    assert [a.get_filename() for a in atts] == ["résumé 2024.pdf", "notes.txt", "weird"]
    assert [a.get_content_type() for a in atts] == ["application/pdf", "text/plain", "application/x-thing"]
    assert atts[0].get_payload(decode=True) == data
    assert atts[1].get_payload(decode=True) == b"line1\nline2\r\nno newline at end"
    assert atts[2].get_payload(decode=True) == b"\x00\xff"


def test_forward_as_attachment_is_message_rfc822():
    original = b"From: x@example.org\r\nSubject: Orig\r\nMessage-ID: <o@x>\r\n\r\nOriginal body\r\n"
    msg = parse(build_message(draft(forwarded=original, forwarded_name="Orig.eml")))
    (att,) = list(msg.iter_attachments())
    assert att.get_content_type() == "message/rfc822"
    assert att.get_filename() == "Orig.eml"
    assert att.get_content()["Subject"] == "Orig"


def test_reply_headers_thread_the_message():
    raw = build_message(draft(in_reply_to="p@x", references=("root@x", "p@x")))
    msg = parse(raw)
    assert msg["In-Reply-To"] == "<p@x>"
    assert msg["References"] == "<root@x> <p@x>"


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Hello", "Re: Hello"),
        ("Re: Hello", "Re: Hello"),
        ("RE: re: Re[2]: Hello", "Re: Hello"),
        ("AW: Hello", "Re: Hello"),
        ("Fwd: Hello", "Re: Fwd: Hello"),
        ("", "Re: "),
    ],
)
def test_reply_subject_has_one_re(subject, expected):
    assert reply_subject(subject) == expected


@pytest.mark.parametrize(
    ("subject", "expected"),
    [("Hello", "Fwd: Hello"), ("Fwd: Hello", "Fwd: Hello"), ("FW: fwd: Hello", "Fwd: Hello")],
)
def test_forward_subject_has_one_fwd(subject, expected):
    assert forward_subject(subject) == expected


def test_message_ids_are_unique_and_use_the_domain():
    a, b = make_message_id("Example.TEST"), make_message_id("example.test")
    assert a != b
    assert a.endswith("@example.test")
    assert make_message_id("bücher.example").endswith("@xn--bcher-kva.example")


def test_content_types_are_guessed_from_the_name():
    assert guess_content_type("a.png") == "image/png"
    assert guess_content_type("a.png", "application/octet-stream") == "image/png"
    assert guess_content_type("a.unknownext") == "application/octet-stream"
    assert guess_content_type("a.bin", "bad type\r\n") == "application/octet-stream"
