"""Tests for webmail.mailcore.addresses: tolerant lists, strict validation, normalisation."""

from __future__ import annotations

import email.utils

import pytest

from webmail.mailcore.addresses import (
    Address,
    decode_header_value,
    normalize_email,
    parse_address_list,
    text_codec,
    validate_address,
)


def emails(value: str) -> list[str]:
    return [a.email for a in parse_address_list(value)]


def test_it_parses_a_simple_list():
    assert parse_address_list(
        'Jane Doe <jane@example.test>, "Doe, John" <john@example.test>, x@example.test'
    ) == (
        Address("Jane Doe", "jane@example.test"),
        Address("Doe, John", "john@example.test"),
        Address("", "x@example.test"),
    )


def test_it_decodes_rfc2047_names_after_splitting():
    # The decoded name contains a comma; it must not split the list.
    value = "=?utf-8?q?M=C3=BCller=2C_J=C3=B6rg?= <j@example.test>, b@example.test"
    assert parse_address_list(value) == (
        Address("Müller, Jörg", "j@example.test"),
        Address("", "b@example.test"),
    )


def test_it_decodes_encoded_words_inside_quotes():
    assert parse_address_list('"=?utf-8?b?5bGx55Sw?=" <y@example.test>') == (
        Address("山田", "y@example.test"),
    )


def test_it_reads_raw_utf8_names():
    assert parse_address_list("Zoë <zoe@example.test>") == (Address("Zoë", "zoe@example.test"),)


def test_it_flattens_groups_and_skips_empty_groups():
    assert emails("undisclosed-recipients:;") == []
    assert emails("Team: a@example.test, b@example.test;, c@example.test") == [
        "a@example.test",
        "b@example.test",
        "c@example.test",
    ]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "<>",
        ",,,",
        "@@@",
        '"unterminated',
        "<<<>>>",
        "\x00\x01",
        "a" * 100_000,
        "=?utf-8?b?!!!?= <x@y>",
        "(",
        ")",
    ],
)
def test_it_never_raises_on_garbage(value: str):
    result = parse_address_list(value)
    assert isinstance(result, tuple)
    assert all(isinstance(a, Address) for a in result)


def test_it_salvages_addresses_after_an_unbalanced_quote():
    assert emails('"Broken <cc@example.test>, @@@, <>, plain-name') == ["cc@example.test"]


def test_it_drops_a_name_equal_to_the_address():
    assert parse_address_list('"a@example.test" <a@example.test>') == (Address("", "a@example.test"),)


def test_it_caps_the_number_of_addresses():
    problems: list[str] = []
    result = parse_address_list(", ".join(f"u{i}@example.test" for i in range(3000)), problems)
    assert len(result) <= 1000
    assert problems


def test_it_reports_non_utf8_8bit_names():
    problems: list[str] = []
    raw = b"Fran\xe7ois <f@example.test>".decode("ascii", "surrogateescape")
    assert parse_address_list(raw, problems) == (Address("François", "f@example.test"),)
    assert problems == ["8-bit bytes in headers"]


# The fast path must give what email.utils.getaddresses gives for the forms it accepts.
FAST_PATH_SAMPLES = [
    "a@example.test",
    "Jane Doe <jane@example.test>",
    '"Doe, Jane" <j@example.test>, b@example.test',
    "A  B <a@b.test>,C<c@d.test>",
    '"" <a@b.test>',
    "a.b+tag@sub.example.test",
    "<a@b.test>",
    " a@b.test , c@d.test ",
    "x@y.test,",
    '"a@b.test" <c@d.test>',
    "Jane<j@x.test>",
    "O'Brien <ob@example.test>",
    '"Quoted \\"escaped\\"" <q@example.test>',
    "Jane Q. Public <j@example.test>",
    "a..b@example.test",
    "Group: a@example.test;",
    "a@b.test c@d.test",
    "a@b.test (comment)",
]


@pytest.mark.parametrize("value", FAST_PATH_SAMPLES)
def test_fast_path_matches_getaddresses(value: str):
    reference = [(name, addr) for name, addr in email.utils.getaddresses([value]) if addr]
    got = [(a.name, a.email) for a in parse_address_list(value)]
    if reference and all(" " not in addr and "<" not in addr for _, addr in reference):
        assert got == reference


def test_formatted_quotes_names_with_specials():
    assert Address("Doe, Jane", "j@example.test").formatted == '"Doe, Jane" <j@example.test>'
    assert Address('Say "hi"', "h@example.test").formatted == '"Say \\"hi\\"" <h@example.test>'
    assert Address("Jörg", "j@example.test").formatted == "Jörg <j@example.test>"
    assert Address("", "j@example.test").formatted == "j@example.test"
    assert str(Address("A", "a@example.test")) == "A <a@example.test>"


def test_addresses_are_frozen():
    address = Address("A", "a@example.test")
    with pytest.raises(AttributeError):
        address.email = "b@example.test"  # type: ignore[misc]


# --- validate_address ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("jane@example.test", Address("", "jane@example.test")),
        ("  jane@Example.TEST  ", Address("", "jane@example.test")),
        ("Jane <jane@example.test>", Address("Jane", "jane@example.test")),
        ('"Doe, Jane" <jane@example.test>', Address("Doe, Jane", "jane@example.test")),
        ("jane@bücher.example", Address("", "jane@xn--bcher-kva.example")),
        ("jörg@example.test", Address("", "jörg@example.test")),
        ("first.last+tag@sub.example.test", Address("", "first.last+tag@sub.example.test")),
    ],
)
def test_validate_address_accepts(value: str, expected: Address):
    assert validate_address(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "Enter an email address."),
        ("   ", "Enter an email address."),
        ("a@example.test, b@example.test", "Enter only one email address."),
        ("jane", "needs a name, an @ and a domain"),
        ("jane@", "not a valid email address"),
        ("@example.test", "needs a name, an @ and a domain"),
        ("jane@localhost", "needs a dot"),
        ("jane@[192.0.2.1]", "not an IP address"),
        ("jane@192.0.2.1", "not an IP address"),
        ("ja ne@example.test", "not a valid email address"),
        ("jane..doe@example.test", "not a valid email address"),
        ("jane@-example.test", "is not valid"),
        ("jane@exa_mple.test", "is not valid"),
        ("jane@example.test\r\nBcc: x@example.test", "line breaks"),
        ("x" * 65 + "@example.test", "too long"),
        ("a@" + "b" * 64 + ".test", "is not valid"),
    ],
)
def test_validate_address_rejects_with_a_human_message(value: str, message: str):
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        validate_address(value)


# --- normalize_email and header decoding --------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Jane@Example.TEST", "Jane@example.test"),
        ("jane@bücher.example", "jane@xn--bcher-kva.example"),
        ("jane@XN--BCHER-KVA.example", "jane@xn--bcher-kva.example"),
        (" jane@example.test. ", "jane@example.test"),
        ("no-at-sign", "no-at-sign"),
        ('"a@b"@example.test', '"a@b"@example.test'),
    ],
)
def test_normalize_email(value: str, expected: str):
    assert normalize_email(value) == expected


def test_decode_header_value_handles_rfc2047_whitespace_rules():
    # RFC 2047 6.2: whitespace between adjacent encoded-words is not displayed.
    assert decode_header_value("=?utf-8?q?a?= =?utf-8?q?b?= c") == "ab c"
    assert decode_header_value("Re: =?ISO-8859-1?Q?Caf=E9?=") == "Re: Café"
    assert decode_header_value("=?utf-8*en?q?lang?=") == "lang"


def test_decode_header_value_reports_unknown_charsets():
    problems: list[str] = []
    assert decode_header_value("=?x-nope?q?abc?=", problems) == "abc"
    assert problems == ["unknown charset x-nope"]


def test_decode_header_value_strips_controls_and_unfolds():
    assert decode_header_value("a\r\n b\x00c\x1b") == "a bc"


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("utf-8", "utf-8"),
        ('"UTF-8"', "utf-8"),
        ("us-ascii", "utf-8"),
        ("iso-8859-1", "cp1252"),
        ("gb2312", "gb18030"),
        ("ks_c_5601-1987", "cp949"),
        ("x-unknown", None),
        ("x-foo", None),
        ("base64", None),
        ("rot13", None),
        ("unicode_escape", None),
        (None, None),
    ],
)
def test_text_codec(label: str | None, codec: str | None):
    assert text_codec(label) == codec
