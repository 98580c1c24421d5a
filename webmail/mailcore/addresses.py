"""Email addresses: parse tolerant address lists, validate typed input, normalise for matching."""

from __future__ import annotations

import codecs
import email.header
import email.policy
import email.utils
import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = [
    "UNSPECIFIED_CHARSETS",
    "Address",
    "decode_fallback",
    "decode_header_value",
    "normalize_email",
    "parse_address_list",
    "text_codec",
    "validate_address",
]

# Limits that keep a hostile header (a To: with 100,000 recipients) from stalling a sync.
MAX_ADDRESSES = 1000
MAX_ADDRESS_HEADER_CHARS = 64 * 1024

# RFC 5322 3.2.3: specials that force a display name into a quoted-string.
_SPECIALS_RE = re.compile(r'[()<>\[\]:;@\\,."]')
# C0 controls and DEL never belong in a display value; CR/LF come from folding (RFC 5322 2.2.3).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_WS_RE = re.compile(r"[ \t]+")
# RFC 1035 2.3.1 / RFC 5890: an LDH label after IDNA encoding.
_LDH_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# RFC 5322 3.2.3 atext, the characters a dot-atom local part may use.
_ATEXT_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+$")
# Fast path for the unambiguous common forms (bare addr-spec, atom-word or simple
# quoted name before <addr-spec>): these give exactly what email.utils.getaddresses
# gives (tested), in a fraction of the time. Anything else goes to getaddresses.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_SIMPLE_ADDR = rf"{_ATEXT}+(?:\.{_ATEXT}+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_SIMPLE_ITEM = (
    rf'(?:(?:(?P<plain>{_ATEXT}+(?:[ \t]+{_ATEXT}+)*)|"(?P<quoted>[^"\\]*)")[ \t]*)?'
    rf"<(?P<angle>{_SIMPLE_ADDR})>|(?P<bare>{_SIMPLE_ADDR})"
)
_GARBAGE_ADDR_RE = re.compile(r'[\s<>"]')
_ADDR_SEPARATORS_RE = re.compile(r'[\s<>,;:"()\[\]]+')
_SIMPLE_STEP_RE = re.compile(rf"[ \t]*(?:{_SIMPLE_ITEM})[ \t]*(?:,|$)")


def _simple_pairs(value: str) -> list[tuple[str, str]] | None:
    """Split a list made only of simple mailboxes, or return None."""
    pairs: list[tuple[str, str]] = []
    pos, end = 0, len(value)
    while pos < end:
        match = _SIMPLE_STEP_RE.match(value, pos)
        if match is None:
            return None
        plain = match["plain"]
        name = " ".join(plain.split()) if plain else match["quoted"] or ""
        pairs.append((name, match["angle"] or match["bare"]))
        pos = match.end()
    return pairs


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox: a display name (decoded, may be empty) and an addr-spec."""

    name: str
    email: str

    @property
    def formatted(self) -> str:
        """Return the mailbox for display, e.g. ``"Doe, Jane" <jane@example.test>``.

        The name is not RFC 2047 encoded; composing code encodes headers itself.
        """
        if not self.name:
            return self.email
        name = self.name
        if _SPECIALS_RE.search(name):
            # RFC 5322 3.2.4: quoted-string, with backslash and DQUOTE escaped.
            name = '"' + email.utils.quote(name) + '"'
        if not self.email:
            return name
        return f"{name} <{self.email}>"

    def __str__(self) -> str:
        return self.formatted


def _from_8bit(value: str) -> tuple[str, bool]:
    """Turn surrogate-escaped 8-bit header bytes into text.

    Return the text and whether the bytes were not UTF-8 (RFC 6532 allows UTF-8 headers,
    anything else is a problem worth reporting).
    """
    try:
        data = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value, False
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace"), True


# Charset labels seen in the wild mapped to the Python codec that decodes them best.
# WHATWG Encoding treats latin-1 and ASCII labels as windows-1252, and several legacy
# CJK labels as their Microsoft supersets; mail clients behave the same way.
_CHARSET_ALIASES = {
    # Undeclared 8-bit text labelled ASCII is nearly always UTF-8; decoders fall back from it.
    "us-ascii": "utf-8",
    "ascii": "utf-8",
    "ansi_x3.4-1968": "utf-8",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "windows-1252": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "euc-cn": "gb18030",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "iso-2022-jp": "iso2022_jp_ext",
    "tis-620": "cp874",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "unicode-1-1-utf-7": "utf-7",
    "utf8": "utf-8",
}
# Labels that mean "no idea": decode with the fallback chain, without reporting a problem.
UNSPECIFIED_CHARSETS = frozenset({"", "unknown-8bit", "x-unknown", "unknown", "default", "x-user-defined"})
# Codecs Python knows that are not character sets a message may declare.
_REFUSED_CODECS = frozenset(
    {"unicode_escape", "raw_unicode_escape", "punycode", "idna", "undefined", "mbcs", "oem"}
)


@lru_cache(maxsize=256)
def text_codec(charset: str | None) -> str | None:
    """Return the Python codec for a MIME charset label (RFC 2046 4.1.2), or None.

    None means the label is missing, unknown or not a text charset; callers then use
    ``decode_fallback`` and report an unknown charset unless the label is in
    ``UNSPECIFIED_CHARSETS``. Labels are case-insensitive and may be quoted. When a
    strict decode with "utf-8" fails, callers use ``decode_fallback``.
    """
    if charset is None:
        return None
    label = charset.strip().strip("\"'").strip().lower()
    if label in UNSPECIFIED_CHARSETS:
        return None
    label = _CHARSET_ALIASES.get(label, label)
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        return None
    # Refuse bytes-to-bytes codecs (base64, zlib...) and escape codecs.
    if not getattr(info, "_is_text_encoding", True) or info.name.replace("-", "_") in _REFUSED_CODECS:
        return None
    return info.name


def decode_fallback(data: bytes) -> str:
    """Decode bytes of unknown charset: UTF-8 if it is, else windows-1252 (never fails)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    # Mostly-UTF-8 text with a few broken sequences reads better as UTF-8 with U+FFFD.
    text = data.decode("utf-8", "replace")
    if text.count("\ufffd") * 50 <= len(text):
        return text
    return data.decode("cp1252", "replace")


def decode_header_value(value: str, problems: list[str] | None = None) -> str:
    """Decode one raw header value into display text.

    Undo surrogate-escaped 8-bit bytes, unfold (RFC 5322 2.2.3), decode RFC 2047
    encoded-words (RFC 2047 6.2: whitespace between adjacent encoded-words is dropped),
    and drop control characters. Append short problem strings to ``problems``.
    """
    if not value.isascii():
        value, bad = _from_8bit(value)
        if bad and problems is not None:
            problems.append("8-bit bytes in headers")
    if "=?" in value:
        try:
            chunks = email.header.decode_header(value)
        except Exception:  # HeaderParseError and friends: keep the raw text
            chunks = [(value, None)]
        out: list[str] = []
        for chunk, charset in chunks:
            if isinstance(chunk, str):
                out.append(chunk)
            elif charset is None:
                # decode_header returns the unencoded runs as raw-unicode-escape bytes.
                out.append(chunk.decode("raw-unicode-escape", "replace"))
            else:
                # RFC 2231 5: an encoded-word charset may carry "*language".
                label = charset.split("*", 1)[0].strip().lower()
                codec = text_codec(label)
                if codec is None:
                    if problems is not None and label not in UNSPECIFIED_CHARSETS:
                        problems.append(f"unknown charset {label[:40]}")
                    out.append(decode_fallback(chunk))
                else:
                    try:
                        out.append(chunk.decode(codec))
                    except (UnicodeDecodeError, LookupError):
                        if codec == "utf-8":
                            out.append(decode_fallback(chunk))
                        else:
                            out.append(chunk.decode(codec, "replace"))
        value = "".join(out)
    if not value.isprintable():
        value = _CONTROL_RE.sub("", value)
    return value.replace("\t", " ").strip()


def parse_address_list(value: str, problems: list[str] | None = None) -> tuple[Address, ...]:
    """Parse an address header value (To, Cc, From...) without ever raising.

    Groups are flattened (RFC 5322 3.4: a group's display name is dropped), entries
    without an addr-spec are skipped, display names are RFC 2047 decoded after the list
    is split so that a decoded comma cannot split a name. Email addresses are kept as
    written; use ``normalize_email`` to compare them.
    """
    if not value:
        return ()
    if len(value) > MAX_ADDRESS_HEADER_CHARS:
        value = value[:MAX_ADDRESS_HEADER_CHARS]
        if problems is not None:
            problems.append("oversized address header")
    if not value.isascii():
        value, bad = _from_8bit(value)
        if bad and problems is not None:
            problems.append("8-bit bytes in headers")
    if "\n" in value or "\r" in value:
        value = value.replace("\r", "").replace("\n", "")
    pairs = _simple_pairs(value)
    if pairs is None:
        try:
            pairs = email.utils.getaddresses([value])
        except Exception:  # getaddresses is tolerant; this guards against future regressions
            if problems is not None:
                problems.append("unparseable address header")
            return ()
    result: list[Address] = []
    for name, addr in pairs:
        addr = _CONTROL_RE.sub("", addr).strip()
        if not addr:
            continue
        if _GARBAGE_ADDR_RE.search(addr):
            # getaddresses swallowed part of the list (an unbalanced quote or bracket):
            # salvage the addr-specs in it rather than show the garbage.
            for token in _ADDR_SEPARATORS_RE.split(addr):
                local, at, domain = token.rpartition("@")
                if at and local and domain and "@" not in local:
                    result.append(Address("", token))
            continue
        if name:
            name = decode_header_value(name, problems)
            if name == addr:
                name = ""
        result.append(Address(name, addr))
        if len(result) >= MAX_ADDRESSES:
            if problems is not None:
                problems.append("too many addresses")
            break
    return tuple(result)


def normalize_email(addr: str) -> str:
    """Return ``addr`` in a form for comparing and storing identities.

    The domain is lowercased and IDNA encoded (RFC 5891, via the standard library's
    IDNA 2003 codec); the local part is kept as is because RFC 5321 2.4 makes it
    case-sensitive. Input without an ``@`` is only stripped.
    """
    addr = addr.strip()
    local, at, domain = addr.rpartition("@")
    if not at:
        return addr
    domain = domain.strip().rstrip(".").lower()
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii").lower()
        except UnicodeError:
            pass
    return f"{local}@{domain}"


def validate_address(s: str) -> Address:
    """Validate one typed address (for compose and settings forms).

    Accept ``jane@example.test``, ``Jane <jane@example.test>`` and ``"Doe, Jane" <...>``.
    Raise ``ValueError`` with a message fit to show to the person otherwise. The returned
    email has its domain normalised by ``normalize_email``.
    """
    s = (s or "").strip()
    if not s:
        raise ValueError("Enter an email address.")
    if "\r" in s or "\n" in s or "\x00" in s:
        raise ValueError("The address cannot contain line breaks.")
    if len(s) > 1000:
        raise ValueError("The address is too long.")
    try:
        header = email.policy.default.header_factory("to", s)
        addresses = header.addresses  # type: ignore[attr-defined]
    except Exception:
        raise ValueError(f"“{s}” is not a valid email address.")
    if len(addresses) > 1:
        raise ValueError("Enter only one email address.")
    if not addresses:
        raise ValueError(f"“{s}” is not a valid email address.")
    parsed = addresses[0]
    local, domain = parsed.username, parsed.domain
    if not domain or not local:
        raise ValueError(f"“{s}” needs a name, an @ and a domain, like jane@example.com.")
    if header.defects:  # type: ignore[attr-defined]
        non_ascii_only = all(
            type(d).__name__ == "NonASCIILocalPartDefect"
            for d in header.defects  # type: ignore[attr-defined]
        )
        if not non_ascii_only:  # RFC 6532 3.2 allows UTF-8 local parts
            raise ValueError(f"“{s}” is not a valid email address.")
    if domain.startswith("["):
        raise ValueError("Use a domain name after the @, not an IP address.")
    _check_local_part(local, s)
    ascii_domain = _check_domain(domain)
    addr = f"{local}@{ascii_domain}"
    # RFC 5321 4.5.3.1.3: a path is at most 256 octets including the angle brackets.
    if len(addr.encode("utf-8")) > 254:
        raise ValueError("The address is too long.")
    return Address(parsed.display_name or "", addr)


def _check_local_part(local: str, original: str) -> None:
    # RFC 5321 4.5.3.1.1: at most 64 octets.
    if len(local.encode("utf-8")) > 64:
        raise ValueError("The part before the @ is too long (64 characters at most).")
    if local.startswith('"'):
        return  # a quoted-string local part (RFC 5322 3.4.1) was accepted by the parser
    ascii_local = local if local.isascii() else "".join("a" if ord(c) > 127 else c for c in local)
    atoms = ascii_local.split(".")
    if any(not atom or not _ATEXT_RE.match(atom) for atom in atoms):
        raise ValueError(f"The part before the @ in “{original}” is not valid.")


def _check_domain(domain: str) -> str:
    domain = domain.rstrip(".").lower()
    try:
        ascii_domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError:
        raise ValueError(f"The domain “{domain}” is not valid.")
    labels = ascii_domain.split(".")
    if len(labels) < 2:
        raise ValueError(f"The domain “{domain}” needs a dot, like example.com.")
    if len(ascii_domain) > 253 or not all(_LDH_LABEL_RE.match(label) for label in labels):
        raise ValueError(f"The domain “{domain}” is not valid.")
    if labels[-1].isdigit():
        raise ValueError("Use a domain name after the @, not an IP address.")
    return ascii_domain
