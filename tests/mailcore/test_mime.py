"""Tests for webmail.mailcore.mime: the corpus, IMAP part numbering, bodies, limits, fuzzing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from webmail.mailcore.html import sanitize_html
from webmail.mailcore.mime import (
    AttachmentInfo,
    ParsedMessage,
    get_bodies,
    get_part,
    parse_message,
    parse_message_ids,
    sanitize_filename,
)

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
CORPUS_FILES = sorted(CORPUS.glob("*.eml"))


def load(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


def _strings(parsed: ParsedMessage) -> list[str]:
    values = [parsed.subject, parsed.text, parsed.snippet, *parsed.references, *parsed.problems]
    values += [parsed.message_id or "", parsed.in_reply_to or ""]
    for group in (parsed.from_, parsed.sender, parsed.reply_to, parsed.to, parsed.cc, parsed.bcc):
        values += [a.name for a in group] + [a.email for a in group]
    values += [a.filename for a in parsed.attachments] + [a.content_id or "" for a in parsed.attachments]
    return values


def test_corpus_has_enough_messages():
    assert len(CORPUS_FILES) >= 25


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_every_corpus_message_parses_without_exceptions(path: Path):
    raw = path.read_bytes()
    parsed = parse_message(raw)
    assert isinstance(parsed, ParsedMessage)
    assert not any(p.startswith("internal error") for p in parsed.problems), parsed.problems
    assert len(parsed.problems) == len(set(parsed.problems))
    assert len(parsed.snippet) <= 201
    assert parsed.size == len(raw)
    assert parsed.date is None or parsed.date.tzinfo is not None
    # Every string is safe to store in PostgreSQL text columns.
    assert not any("\x00" in s for s in _strings(parsed))
    assert all(isinstance(a, AttachmentInfo) for a in parsed.attachments)
    assert all("/" not in a.filename and "\\" not in a.filename for a in parsed.attachments)


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_every_corpus_message_serves_bodies_and_parts(path: Path):
    raw = path.read_bytes()
    parsed = parse_message(raw)
    text, html, cid_map = get_bodies(raw)
    assert (text is not None) == parsed.has_text_body
    assert (html is not None) == parsed.has_html_body
    for attachment in parsed.attachments:
        content_type, filename, payload = get_part(raw, attachment.part_id)
        assert content_type == attachment.content_type
        assert filename == attachment.filename
        if not content_type.startswith("message/rfc822"):
            assert len(payload) == attachment.size
    for content_id, part_id in cid_map.items():
        assert any(a.part_id == part_id and a.content_id == content_id for a in parsed.attachments)
    if html is not None:
        sanitized = sanitize_html(html, cid_url=lambda cid: f"/cid/{cid}")
        assert "<script" not in sanitized.html.lower()


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_every_corpus_message_parses_the_same_with_crlf(path: Path):
    raw = path.read_bytes()
    lf = parse_message(raw.replace(b"\r\n", b"\n"))
    crlf = parse_message(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    assert crlf.subject == lf.subject
    assert crlf.from_ == lf.from_
    assert crlf.message_id == lf.message_id
    assert [a.part_id for a in crlf.attachments] == [a.part_id for a in lf.attachments]
    assert crlf.snippet == lf.snippet


# Expectations per corpus file. Keys: subject, from, to, cc, date, message_id,
# in_reply_to, references, text_has, text_lacks, snippet, snippet_has, snippet_lacks,
# problems (must all be present), no_problems, attachments (part_id, filename,
# content_type, disposition), has_attachments, has_text_body, has_html_body.
EXPECTED: dict[str, dict[str, object]] = {
    "plain_ascii.eml": {
        "subject": "Lunch on Thursday?",
        "from": ["alice@example.test"],
        "to": ["bob@example.test"],
        "date": datetime(2024, 5, 13, 9, 14, 57, tzinfo=UTC),
        "message_id": "lunch-1@example.test",
        "snippet": "Hi Bob, Are you free for lunch on Thursday? The new place on Main Street has a lunch menu.",
        "no_problems": True,
        "attachments": [],
        "has_attachments": False,
    },
    "alternative_html.eml": {
        "subject": "Your order has shipped",
        "from": ["news@shop.example.test"],
        "text_has": ["Your order #42 has shipped."],
        "text_lacks": ["<p>", "=20"],
        "has_text_body": True,
        "has_html_body": True,
        "no_problems": True,
    },
    "attachment_pdf.eml": {
        "cc": ["dave@example.test", "eve@example.test"],
        "attachments": [("2", "invoice-may.pdf", "application/pdf", "attachment")],
        "has_attachments": True,
        "snippet": "Please find the invoice attached.",
        "no_problems": True,
    },
    "rfc2231_filename.eml": {
        "attachments": [
            ("2", "€ Rechnung für März.pdf", "application/octet-stream", "attachment"),
            ("3", "Übersicht.csv", "text/csv", "attachment"),
        ],
        "no_problems": True,
    },
    "inline_cid_image.eml": {
        "attachments": [("2.2", "logo.png", "image/png", "inline")],
        "has_attachments": False,
        "has_text_body": True,
        "has_html_body": True,
    },
    "non_ascii_headers.eml": {
        "subject": "Grüße aus Köln — mit 🎂",
        "from_names": ["Jörg Müller"],
        "to_names": ["André Pirard", "山田"],
        "text_has": ["Schöne Grüße aus Köln!"],
        "no_problems": True,
    },
    "iso_2022_jp.eml": {
        "subject": "会議のお知らせ",
        "from_names": ["山田"],
        "text_has": ["明日の会議は十時からです。"],
        "no_problems": True,
    },
    "reply_with_references.eml": {
        "subject": "Re: Re: Lunch on Thursday?",
        "in_reply_to": "lunch-2@example.test",
        "references": ("lunch-1@example.test", "lunch-2@example.test"),
        "snippet": "Thursday works, see you at noon.",
        "text_has": ["> Great, Thursday then?"],
    },
    "forwarded_eml_attached.eml": {
        "attachments": [("2", "Contract draft.eml", "message/rfc822", "attachment")],
        "snippet": "See the message below.",
        "text_lacks": ["Draft attached."],
    },
    "format_flowed.eml": {
        "text_has": [
            "at a short width so that it travels safely; a reader joins the lines back into one paragraph.",
            ">> Quoted text can flow too.",
        ],
        "snippet_lacks": ["Quoted"],
    },
    "utf8_headers_rfc6532.eml": {
        "subject": "Café menu ☕",
        "from_names": ["Zoë Ünal"],
        "no_problems": True,
    },
    "windows1252_body.eml": {"text_has": ["“Smart quotes” and an en dash – cost 5 €."]},
    "newsletter_html_only.eml": {
        "has_text_body": False,
        "has_html_body": True,
        "text_has": ["Five things worth reading & one to skip.", "- First thing"],
        "text_lacks": ["background", "color: red", "Digest</title>", "\u200c"],
    },
    "bounce_dsn.eml": {
        "snippet_has": ["could not be delivered"],
        "attachments": [
            ("2", "attachment-2.txt", "message/delivery-status", "attachment"),
            ("3", "attachment-3.txt", "message/rfc822-headers", "attachment"),
        ],
    },
    "calendar_invite.eml": {
        "attachments": [("2", "attachment-2.ics", "text/calendar", "attachment")],
        "text_lacks": ["BEGIN:VCALENDAR"],
    },
    "signed_pgp.eml": {
        "attachments": [("2", "signature.asc", "application/pgp-signature", "attachment")],
        "snippet": "This note is signed.",
    },
    "truncated.eml": {
        "problems": ["truncated"],
        "attachments": [("2", "beach.jpg", "image/jpeg", "attachment")],
        "snippet": "Here are the photos.",
    },
    "eight_bit_headers.eml": {
        "problems": ["8-bit bytes in headers"],
        "subject": "Réunion demain à 10h",
        "from_names": ["François Dupré"],
        "text_has": ["La réunion est déplacée."],
    },
    "unknown_charset.eml": {
        "problems": ["unknown charset x-foo", "unknown charset x-bar"],
        "subject": "Strange charset ü",
        "text_has": ["Grüße, this body is UTF-8"],
    },
    "broken_boundary.eml": {
        "problems": ["MIME boundary not found"],
        "text_has": ["The parts use a different boundary"],
    },
    "missing_boundary_end.eml": {
        "problems": ["truncated"],
        "text_has": ["The closing delimiter never comes."],
        "has_html_body": True,
    },
    "missing_boundary_param.eml": {
        "problems": ["missing MIME boundary"],
        "text_has": ["Text that a reader should still see."],
    },
    "giant_header.eml": {
        "problems": ["oversized header"],
        "subject": "Giant header",
        "text_has": ["Small body after a 200 KiB header."],
    },
    "nul_bytes.eml": {
        "problems": ["NUL bytes"],
        "subject": "NUL bytes",
        "text_has": ["Beforeafter"],
    },
    "no_headers.eml": {
        "problems": ["no headers"],
        "subject": "",
        "text_has": ["this file has no header section at all"],
    },
    "header_without_blank_line.eml": {
        "problems": ["missing blank line after headers"],
        "subject": "No blank line",
        "text_has": ["This body line follows the headers"],
    },
    "empty.eml": {"problems": ["empty message"], "subject": "", "text": "", "attachments": []},
    "base64_garbage.eml": {
        "problems": ["invalid base64"],
        "attachments": [("2", "blob.bin", "application/octet-stream", "attachment")],
    },
    "nested_50_deep.eml": {"text_has": ["The innermost text."], "subject": "Nested 50 deep"},
    "bad_date_and_ids.eml": {
        "problems": ["unparseable Date"],
        "date": None,
        "message_id": "no-brackets@example.test",
        "in_reply_to": "parent@example.test",
        "references": ("a@example.test", "b@example.test"),
        "cc_contains": ["cc@example.test"],
    },
    "hostile_script.eml": {
        "has_html_body": True,
        "text_has": ["Click me", "Visible text"],
        "text_lacks": ["alert", "<script"],
    },
    "hostile_svg.eml": {"text_has": ["before", "after"], "text_lacks": ["alert"]},
    "hostile_css.eml": {"text_lacks": ["@import", "url("]},
    "hostile_mxss.eml": {"text_has": ["end"], "text_lacks": ["alert(4)", "alert(5)", "alert(7)"]},
    "hostile_tracking.eml": {"text_has": ["Hello Bob"]},
    "hostile_filename.eml": {
        "attachments": [
            ("2", "passwd", "application/octet-stream", "attachment"),
            ("3", "invoicefdp.exe", "application/octet-stream", "attachment"),
            ("4", "_CON.txt", "application/octet-stream", "attachment"),
            ("5", "statement.pdf.html", "text/html", "attachment"),
            ("6", "attachment-6", "application/octet-stream", "attachment"),
        ],
        "has_html_body": False,
    },
}


def test_every_corpus_file_has_expectations():
    assert {p.name for p in CORPUS_FILES} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_message_meets_expectations(name: str):
    parsed = parse_message(load(name))
    expected = EXPECTED[name]
    for key, value in expected.items():
        if key in ("subject", "date", "message_id", "in_reply_to", "references", "snippet", "text"):
            assert getattr(parsed, key) == value, key
        elif key in ("has_attachments", "has_text_body", "has_html_body"):
            assert getattr(parsed, key) is value, key
        elif key in ("from", "to", "cc"):
            assert [a.email for a in getattr(parsed, key if key != "from" else "from_")] == value
        elif key == "cc_contains":
            assert set(value) <= {a.email for a in parsed.cc}  # type: ignore[arg-type]
        elif key == "from_names":
            assert [a.name for a in parsed.from_] == value
        elif key == "to_names":
            assert [a.name for a in parsed.to] == value
        elif key == "text_has":
            for fragment in value:  # type: ignore[union-attr]
                assert fragment in parsed.text, fragment
        elif key == "text_lacks":
            for fragment in value:  # type: ignore[union-attr]
                assert fragment not in parsed.text, fragment
        elif key == "snippet_has":
            for fragment in value:  # type: ignore[union-attr]
                assert fragment in parsed.snippet, fragment
        elif key == "snippet_lacks":
            for fragment in value:  # type: ignore[union-attr]
                assert fragment not in parsed.snippet, fragment
        elif key == "problems":
            assert set(value) <= set(parsed.problems), parsed.problems  # type: ignore[arg-type]
        elif key == "no_problems":
            assert parsed.problems == ()
        elif key == "attachments":
            got = [(a.part_id, a.filename, a.content_type, a.disposition) for a in parsed.attachments]
            assert got == value
        else:  # pragma: no cover - a typo in EXPECTED
            raise AssertionError(f"unknown expectation {key}")


# --- Part numbering and retrieval ---------------------------------------------------------


def test_non_multipart_message_body_is_part_1():
    content_type, filename, payload = get_part(load("plain_ascii.eml"), "1")
    assert content_type == "text/plain"
    assert filename == "attachment-1.txt"
    assert payload.startswith(b"Hi Bob,")


def test_get_part_decodes_base64():
    _, filename, payload = get_part(load("inline_cid_image.eml"), "2.2")
    assert filename == "logo.png"
    assert payload.startswith(b"\x89PNG")


def test_get_part_returns_attached_message_whole():
    content_type, filename, payload = get_part(load("forwarded_eml_attached.eml"), "2")
    assert content_type == "message/rfc822"
    assert filename == "Contract draft.eml"
    inner = parse_message(payload)
    assert inner.subject == "Contract draft"
    assert [a.filename for a in inner.attachments] == ["draft.pdf"]


def test_get_part_numbers_parts_inside_an_attached_message():
    # RFC 3501 6.4.5: the encapsulated message's parts are 2.1, 2.2 ...
    raw = load("forwarded_eml_attached.eml")
    assert get_part(raw, "2.1")[2].strip() == b"Draft attached."
    content_type, filename, payload = get_part(raw, "2.2")
    assert (content_type, filename) == ("application/pdf", "draft.pdf")
    assert payload.startswith(b"%PDF")


def test_get_part_of_a_multipart_gives_its_body():
    content_type, _, payload = get_part(load("inline_cid_image.eml"), "2")
    assert content_type == "multipart/related"
    assert b"--rel" in payload


@pytest.mark.parametrize(
    "part_id", ["0", "9", "1.9", "2.2.2", "", "a", "1..2", "-1", "1." + "1." * 100 + "1"]
)
def test_get_part_raises_keyerror_for_missing_parts(part_id: str):
    with pytest.raises(KeyError):
        get_part(load("inline_cid_image.eml"), part_id)


def test_get_bodies_returns_text_html_and_cid_map():
    text, html, cid_map = get_bodies(load("inline_cid_image.eml"))
    assert text is not None and "new logo" in text
    assert html is not None and 'src="cid:logo.png@example.test"' in html
    assert cid_map == {"logo.png@example.test": "2.2"}


def test_get_bodies_of_html_only_message_has_no_text():
    text, html, _ = get_bodies(load("newsletter_html_only.eml"))
    assert text is None
    assert html is not None and "<h1>This week</h1>" in html


def test_get_bodies_never_raises_on_garbage():
    assert get_bodies(b"\x00\xff" * 100)[0] is not None


# --- Headers and identifiers --------------------------------------------------------------


def test_message_ids_are_stored_without_angle_brackets():
    assert parse_message_ids("<a@x.test>") == ("a@x.test",)
    assert parse_message_ids("  < a@x.test >  ") == ("a@x.test",)
    assert parse_message_ids("<a@x.test> <b@x.test>,<a@x.test>") == ("a@x.test", "b@x.test")
    assert parse_message_ids("a@x.test b@x.test") == ("a@x.test", "b@x.test")
    assert parse_message_ids("<a@x.test> (Jane's message of Monday)") == ("a@x.test",)
    assert parse_message_ids("") == ()
    assert parse_message_ids(None) == ()
    assert parse_message_ids("<" + "x" * 1000 + "@x.test>") == ("x" * 250,)


def test_references_keep_the_root_and_the_nearest_ancestors():
    parsed = parse_message(load("giant_header.eml"))
    assert len(parsed.references) == 50
    assert parsed.references[0] == "ref-0@example.test"
    assert parsed.references[-1] == "ref-2999@example.test"


def test_date_with_unknown_offset_is_utc():
    parsed = parse_message(b"Date: Mon, 13 May 2024 11:14:57 -0000\nSubject: x\n\nbody\n")
    assert parsed.date == datetime(2024, 5, 13, 11, 14, 57, tzinfo=UTC)


def test_date_keeps_its_offset():
    parsed = parse_message(b"Date: Mon, 13 May 2024 11:14:57 +0530\n\nbody\n")
    assert parsed.date is not None
    assert parsed.date.utcoffset() == timedelta(hours=5, minutes=30)
    assert parsed.date.tzinfo == timezone(timedelta(hours=5, minutes=30))


@pytest.mark.parametrize(
    "value", ["", "yesterday", "Mon, 99 Foo 2024 99:99:99 +9999", "Mon, 1 Jan 99999 00:00:00 +0000", "\x00"]
)
def test_broken_dates_give_none(value: str):
    parsed = parse_message(f"Date: {value}\n\nbody\n".encode())
    assert parsed.date is None


def test_folded_subject_is_unfolded():
    parsed = parse_message(b"Subject: a long\r\n subject\r\n\tline\r\n\r\nbody")
    assert parsed.subject == "a long subject\tline".replace("\t", " ")


def test_multiple_to_headers_are_merged():
    parsed = parse_message(b"To: a@x.test\nTo: b@x.test\n\nbody")
    assert [a.email for a in parsed.to] == ["a@x.test", "b@x.test"]


def test_8bit_utf8_filename_is_decoded():
    raw = (
        b'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nx\n--b\n'
        b'Content-Type: application/pdf; name="\xc3\x9cberweisung.pdf"\n'
        b'Content-Disposition: attachment; filename="\xc3\x9cberweisung.pdf"\n\nxx\n--b--\n'
    )
    parsed = parse_message(raw)
    assert [a.filename for a in parsed.attachments] == ["Überweisung.pdf"]
    assert "8-bit bytes in headers" not in parsed.problems  # RFC 6532 UTF-8 is fine


# --- Text, snippets, limits ---------------------------------------------------------------


def test_text_is_capped_at_text_limit():
    body = ("word " * 100_000).encode()
    parsed = parse_message(b"Content-Type: text/plain; charset=utf-8\n\n" + body, text_limit=1000)
    assert len(parsed.text) == 1000


def test_text_limit_does_not_break_multibyte_characters():
    body = ("ü" * 10_000).encode("utf-8")
    parsed = parse_message(b"Content-Type: text/plain; charset=utf-8\n\n" + body, text_limit=100)
    assert parsed.text == "ü" * 100
    assert parsed.problems == ()


def test_snippet_length_is_configurable():
    parsed = parse_message(b"\n" + b"alpha beta gamma " * 50, snippet_len=40)
    assert len(parsed.snippet) <= 41
    assert parsed.snippet.endswith("…")
    assert parse_message(b"\nabc", snippet_len=0).snippet == ""


def test_snippet_skips_quotes_attributions_and_signatures():
    body = (
        "Sounds good.\n\nOn Tue, Jane Doe <jane@example.test> wrote:\n> old text\n> more old\n\n"
        "-- \nJohn\nACME Corp\n"
    )
    parsed = parse_message(b"Content-Type: text/plain\n\n" + body.encode())
    assert parsed.snippet == "Sounds good."


def test_snippet_skips_outlook_original_message():
    body = "Yes.\n\n-----Original Message-----\nFrom: x\nSent: y\n\nold\n"
    assert parse_message(b"\n" + body.encode()).snippet == "Yes."


def test_snippet_skips_forward_headers():
    body = (
        "FYI\n\n---------- Forwarded message ---------\nFrom: A <a@example.test>\n"
        "Date: Mon\nSubject: Plans\nTo: b@example.test\n\nThe plans are ready.\n"
    )
    assert parse_message(b"\n" + body.encode()).snippet == "FYI The plans are ready."


def test_snippet_falls_back_to_quotes_when_nothing_else():
    assert parse_message(b"\n> only a quote\n").snippet == "> only a quote"


def test_snippet_of_html_only_message_skips_blockquotes():
    raw = b"Content-Type: text/html\n\n<p>New reply</p><blockquote><p>Old text</p></blockquote>"
    assert parse_message(raw).snippet == "New reply"


def test_undeclared_8bit_body_is_read_as_utf8_then_windows_1252():
    assert parse_message("\nGrüße".encode()).text == "Grüße"
    assert parse_message("\nGrüße".encode("cp1252")).text == "Grüße"


def test_invalid_bytes_for_declared_charset_are_reported():
    raw = b"Content-Type: text/plain; charset=utf-8\n\n" + "caf\xe9 ".encode("latin-1") * 3
    parsed = parse_message(raw)
    assert "invalid bytes for charset utf-8" in parsed.problems
    assert parsed.text.startswith("caf")


@pytest.mark.parametrize("charset", ["base64", "rot13", "unicode_escape", "idna", "zlib", '"utf-8"', "UTF8"])
def test_odd_charset_labels_are_safe(charset: str):
    parsed = parse_message(f"Content-Type: text/plain; charset={charset}\n\nhello \\u0041".encode())
    assert parsed.text == "hello \\u0041"


def test_control_characters_are_removed_from_text():
    parsed = parse_message(b"\nbell\x07 esc\x1b nul\x00 tab\tnewline\n")
    assert parsed.text == "bell esc nul tab\tnewline\n"


# --- Hostile structure and speed ----------------------------------------------------------


def _nested(depth: int) -> bytes:
    head = "".join(f'Content-Type: multipart/mixed; boundary="n{i}"\n\n--n{i}\n' for i in range(depth))
    tail = "".join(f"--n{i}--\n" for i in reversed(range(depth)))
    return f"Subject: deep\n{head}Content-Type: text/plain\n\ninner\n{tail}".encode()


@pytest.mark.timeout(30)
def test_absurd_nesting_is_refused():
    parsed = parse_message(_nested(3000))
    assert parsed.subject == "deep"
    assert "too many MIME parts" in parsed.problems


def test_nesting_deeper_than_max_depth_is_reported():
    parsed = parse_message(_nested(80))
    assert "MIME nesting too deep" in parsed.problems
    assert parsed.subject == "deep"


def test_thousands_of_parts_are_capped():
    parts = "".join(f"--b\nContent-Type: application/octet-stream; name=f{i}.bin\n\nx\n" for i in range(1500))
    raw = f'Content-Type: multipart/mixed; boundary="b"\n\n{parts}--b--\n'.encode()
    parsed = parse_message(raw)
    assert len(parsed.attachments) <= 1000
    assert "too many MIME parts" in parsed.problems


def test_giant_address_header_is_capped():
    to = ", ".join(f"user{i}@example.test" for i in range(20_000))
    parsed = parse_message(f"To: {to}\n\nbody".encode())
    assert 0 < len(parsed.to) <= 1000
    assert "oversized header" in parsed.problems


@pytest.mark.timeout(60)  # a guard against runaway parsing; speed itself is measured in bench/imap_sync.py
def test_parsing_a_typical_message_repeatedly_gives_the_same_result():
    raw = load("attachment_pdf.eml")
    first = parse_message(raw)
    for _ in range(50):
        assert parse_message(raw) == first


def _mutations(raw: bytes, rng: random.Random) -> list[bytes]:
    out = [raw[: rng.randrange(len(raw) + 1)] for _ in range(3)]
    for _ in range(5):
        data = bytearray(raw)
        for _ in range(rng.randrange(1, 20)):
            if data:
                data[rng.randrange(len(data))] = rng.choice(b'\x00\xff\r\n:;"<>=?-_ \t\x80abc')
        out.append(bytes(data))
    lines = raw.split(b"\n")
    rng.shuffle(lines)
    out.append(b"\n".join(lines))
    return out


@pytest.mark.parametrize("path", [p for p in CORPUS_FILES if p.stat().st_size < 20_000], ids=lambda p: p.name)
def test_mutated_corpus_messages_never_raise(path: Path):
    rng = random.Random(path.name)  # deterministic per file
    for raw in _mutations(path.read_bytes(), rng):
        parsed = parse_message(raw)
        assert not any(p.startswith("internal error") for p in parsed.problems), parsed.problems
        get_bodies(raw)
        for attachment in parsed.attachments:
            get_part(raw, attachment.part_id)


# --- File names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Windows\\evil.exe", "evil.exe"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        ("a\x00b\x1fc.txt", "a_b_c.txt"),
        ('what?*<>|:".txt', "what_______.txt"),
        (".htaccess", "htaccess"),
        ("...", "attachment"),
        ("", "attachment"),
        (None, "attachment"),
        ("  spaced   out  .txt ", "spaced out .txt"),
        ("nul.txt", "_nul.txt"),
        ("COM1", "_COM1"),
        ("x" * 300 + ".pdf", "x" * 196 + ".pdf"),
    ],
)
def test_sanitize_filename(name: str | None, expected: str):
    assert sanitize_filename(name) == expected
