"""Parse stored RFC 5322 / MIME messages into what the cache and the reading UI need.

The parse uses the standard library's email package with ``policy=compat32`` and
decodes headers with ``email.header`` / ``email.utils``. ``policy=email.policy.default``
was measured and rejected for this hot path: it reparses Content-Type through
``email.headerregistry`` on every lookup, which made the parse of a 25 KiB
multipart/alternative message with a PDF about 4x slower (5.0 ms vs 1.2 ms) and cost
another 0.1-0.6 ms per address header; it also raises on some inputs compat32 accepts
(a folded To: value passed to its header factory raised ValueError). Nothing here
raises on a malformed message: every function returns what could be parsed and
``problems`` lists what was wrong.

Speed (CPU time per call, best of 7 x 300 with time.process_time, on the shared
development container where ``python -m timeit "sum(range(1000))"`` gives 15 us idle
and 25-48 us under load; a current laptop gives about 7 us, so expect 2-3x less there):

* 32.8 KiB multipart/alternative + 14 KiB PDF, 12 header fields, 6 Received:
  parse_message 1.3-1.6 ms, of which ``BytesParser.parsebytes`` alone 0.8-0.9 ms.
* 31.5 KiB text/plain: parse_message 0.6-0.9 ms (parsebytes 0.27 ms).
* 34.1 KiB text/html only: 2-3.5 ms, mostly html_to_text (nh3 0.4 ms + tokenizer).

The feed parser is the floor: it is pure Python and costs ~2 us per line. The rest was
trimmed with profiles: a fast path for simple address lists, one parameter parse per
part, byte-level control-character checks.

Identifiers: ``message_id``, ``in_reply_to`` and ``references`` are stored WITHOUT
angle brackets (``abc@example.test``), cut to 250 characters so they fit a database
index; the same function normalises every id, so lookups stay consistent.
"""

from __future__ import annotations

import codecs
import email.utils
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy as email_policy
from email.message import Message
from email.parser import BytesHeaderParser, BytesParser

from webmail.mailcore.addresses import (
    UNSPECIFIED_CHARSETS,
    Address,
    decode_fallback,
    decode_header_value,
    parse_address_list,
    text_codec,
)
from webmail.mailcore.html import html_to_text
from webmail.mailcore.mimesplit import split_message

__all__ = [
    "AttachmentInfo",
    "ParsedMessage",
    "get_bodies",
    "get_part",
    "parse_message",
    "parse_message_ids",
    "sanitize_filename",
]

MAX_ID_CHARS = 250
MAX_REFERENCES = 50
MAX_SUBJECT_CHARS = 2000
MAX_HEADER_CHARS = 64 * 1024
MAX_DEPTH = 64
MAX_PARTS = 1000
# More multipart boundaries than this and the structure is not parsed: the feed parser
# checks every line against every open boundary, so deep nesting costs O(n^2).
MAX_MULTIPARTS = 256
BODY_LIMIT = 5_000_000

_PARSER = BytesParser(policy=email_policy.compat32)
_HEADER_PARSER = BytesHeaderParser(policy=email_policy.compat32)

_MSGID_RE = re.compile(r"<\s*([^<>\s]+?)\s*>")
_ID_SEPARATORS_RE = re.compile(r"[\s<>,;()\"]+")
_TEXT_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Every byte except the controls _TEXT_CONTROL_RE removes: bytes.translate(None, this) leaves
# only those controls.
_NON_CONTROL_BYTES = bytes(b for b in range(256) if not (b < 32 and b not in (9, 10, 13) or b == 127))
_WS_RE = re.compile(r"\s+")
# Characters that are not allowed in file names on common systems, plus controls.
_FILENAME_BAD_RE = re.compile(r'[\x00-\x1f\x7f<>:"|?*]')
# Bidirectional controls spoof extensions ("invoice\u202efdp.exe" shows as "invoiceexe.pdf").
_BIDI = dict.fromkeys(map(ord, "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"), None)
_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(1, 10)} | {f"lpt{i}" for i in range(1, 10)}
)
_EXTENSIONS = {
    "application/pdf": ".pdf",
    "application/zip": ".zip",
    "application/json": ".json",
    "application/msword": ".doc",
    "application/pgp-signature": ".asc",
    "application/pkcs7-signature": ".p7s",
    "application/ics": ".ics",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/gif": ".gif",
    "image/webp": ".webp",
    "text/plain": ".txt",
    "text/html": ".html",
    "text/calendar": ".ics",
    "text/csv": ".csv",
    "text/vcard": ".vcf",
    "message/rfc822": ".eml",
    "message/global": ".eml",
    "message/delivery-status": ".txt",
    "message/rfc822-headers": ".txt",
    "text/rfc822-headers": ".txt",
    "message/disposition-notification": ".txt",
}
# RFC 3676 4.3 signature separator, plus the bare "--" many clients send after trimming.
_SIGNATURE_LINES = frozenset({"-- ", "--", "__", "—"})
_ATTRIBUTION_RE = re.compile(
    r"(?:wrote|schrieb|a écrit|escribió|scrisse|skrev|schreef|napisał\(a\)|napisał|escreveu|"
    r"kirjoitti|написал\(а\)|написал|写道|寫道|yazdı)\s*[:：]$",
    re.IGNORECASE,
)
_ATTRIBUTION_START_RE = re.compile(r"^(?:On|Am|Le|El|Il|Op|Den|W dniu|Em)\b", re.IGNORECASE)
_ORIGINAL_MARKER_RE = re.compile(
    r"^(?:-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Message d'origine|Mensaje original)"
    r"\s*-{2,}|_{10,})$",
    re.IGNORECASE,
)
_FORWARD_MARKER_RE = re.compile(
    r"^-{2,}\s*(?:Forwarded message|Weitergeleitete Nachricht|Message transféré)", re.IGNORECASE
)
_HEADERISH_RE = re.compile(r"^(?:From|Date|Sent|Subject|To|Cc|Von|Gesendet|Datum|An|Betreff):", re.IGNORECASE)

_DEFECT_PROBLEMS = {
    "NoBoundaryInMultipartDefect": "missing MIME boundary",
    "StartBoundaryNotFoundDefect": "MIME boundary not found",
    "CloseBoundaryNotFoundDefect": "truncated",
    "FirstHeaderLineIsContinuationDefect": "header starts with a continuation line",
    "MisplacedEnvelopeHeaderDefect": "misplaced envelope header",
    "MissingHeaderBodySeparatorDefect": "missing blank line after headers",
    "MalformedHeaderDefect": "malformed header",
    "MultipartInvariantViolationDefect": "multipart without parts",
    "InvalidMultipartContentTransferEncodingDefect": "invalid transfer encoding on multipart",
    "InvalidBase64PaddingDefect": "invalid base64",
    "InvalidBase64CharactersDefect": "invalid base64",
    "InvalidBase64LengthDefect": "invalid base64",
    "UndecodableBytesDefect": "8-bit bytes in headers",
}


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    """A part shown as an attachment or an inline image.

    ``part_id`` is the IMAP section number (RFC 3501 6.4.5: "1", "2.1"...).
    ``disposition`` is "inline" for images a body refers to by Content-ID (and inline
    images with a name), otherwise "attachment". ``content_id`` has no angle brackets.
    ``size`` is the decoded size in bytes.
    """

    part_id: str
    filename: str
    content_type: str
    size: int
    content_id: str | None
    disposition: str


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """What the cache stores for a message; see ``parse_message``."""

    subject: str
    from_: tuple[Address, ...]
    sender: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]
    date: datetime | None
    message_id: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    text: str
    snippet: str
    has_attachments: bool
    attachments: tuple[AttachmentInfo, ...]
    has_text_body: bool
    has_html_body: bool
    size: int
    problems: tuple[str, ...]


# --- Identifiers, dates, names ----------------------------------------------------------


def parse_message_ids(value: str | None) -> tuple[str, ...]:
    """Return the msg-ids in a Message-ID / In-Reply-To / References value, in order.

    RFC 5322 3.6.4: msg-id is "<" id-left "@" id-right ">". Real headers also carry
    comments, commas, phrases and ids without brackets; bracketed ids win, else
    whitespace-separated tokens with an "@" are taken. Angle brackets are stripped,
    duplicates dropped, each id cut to MAX_ID_CHARS.
    """
    if not value:
        return ()
    if "\n" in value or "\r" in value:
        value = value.replace("\r", "").replace("\n", "")
    ids = _MSGID_RE.findall(value)
    if not ids:
        # Splitting (linear) rather than a findall that would backtrack on long tokens.
        ids = [t for t in _ID_SEPARATORS_RE.split(value) if "@" in t.strip("@")]
        if not ids:
            token = value.strip().strip("<>").strip()
            ids = [token] if token and " " not in token else []
    seen: set[str] = set()
    result: list[str] = []
    for msgid in ids:
        if not msgid.isascii() or not msgid.isprintable():
            msgid, _ = _clean_8bit(msgid)
            msgid = _TEXT_CONTROL_RE.sub("", msgid)
        msgid = msgid[:MAX_ID_CHARS]
        if msgid and msgid not in seen:
            seen.add(msgid)
            result.append(msgid)
    return tuple(result)


def _clean_8bit(value: str) -> tuple[str, bool]:
    try:
        data = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value, False
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace"), True


def _parse_date(value: str | None, problems: list[str]) -> datetime | None:
    if not value:
        return None
    value = decode_header_value(value[:200])
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except Exception:  # ValueError, TypeError, OverflowError on hostile dates
        parsed = None
    if parsed is None:
        problems.append("unparseable Date")
        return None
    if parsed.tzinfo is None:
        # RFC 5322 3.3: "-0000" means the local offset is unknown; read it as UTC.
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def sanitize_filename(name: str | None, fallback: str = "attachment") -> str:
    """Make an attachment name safe to offer for download.

    Keep only the last path component, drop controls and bidi overrides, replace
    characters Windows refuses, refuse dot-files and reserved device names, and keep the
    name under 200 characters with its extension.
    """
    name = (name or "").translate(_BIDI)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _FILENAME_BAD_RE.sub("_", name)
    name = _WS_RE.sub(" ", name).strip().lstrip(".").strip()
    if not name or set(name) <= {".", "_", " "}:
        return fallback
    if name.split(".", 1)[0].lower() in _WINDOWS_RESERVED:
        name = "_" + name
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            name = stem[: 200 - len(ext) - 1] + "." + ext
        else:
            name = name[:200]
    return name


# --- Part helpers -----------------------------------------------------------------------


def _fix_8bit_headers(node: Message, problems: list[str]) -> None:
    """Replace surrogate-escaped 8-bit MIME header values with decoded text.

    compat32 turns such values into Header objects that get_param reads as U+FFFD;
    RFC 6532 makes UTF-8 legal there, so decode UTF-8 (else windows-1252) first.
    """
    for name, value in node.raw_items():
        if not value.isascii() and name.lower().startswith("content-"):
            fixed, bad = _clean_8bit(value)
            if bad:
                problems.append("8-bit bytes in headers")
            node.replace_header(name, fixed)


def _params(node: Message, header: str) -> dict[str, object]:
    """Return a header's parameters, lowercased names, first occurrence wins.

    get_params joins RFC 2231 continuations (RFC 2231 3) and returns extended values
    (RFC 2231 4) as (charset, language, text) tuples.
    """
    try:
        items = node.get_params(header=header)
    except Exception:
        return {}
    params: dict[str, object] = {}
    for name, value in (items or [])[1:]:
        params.setdefault(name.strip().lower(), value)
    return params


def _param_text(value: object, problems: list[str]) -> str | None:
    if isinstance(value, tuple):
        # RFC 2231 4: charset'language'percent-encoded, unquoted into latin-1 code points.
        charset, _language, text = value
        data = str(text).encode("raw-unicode-escape")
        label = str(charset or "").lower()
        codec = text_codec(label)
        if codec is None:
            if label not in UNSPECIFIED_CHARSETS:
                problems.append(f"unknown charset {label[:40]}")
            value = decode_fallback(data)
        else:
            try:
                value = data.decode(codec)
            except UnicodeDecodeError:
                value = decode_fallback(data) if codec == "utf-8" else data.decode(codec, "replace")
    if not isinstance(value, str):
        return None
    if "=?" in value:
        # Not allowed by RFC 2047 5 in a quoted-string, but Outlook and others do it.
        value = decode_header_value(value, problems)
    return value


def _filename(node: Message, ct_params: dict[str, object], problems: list[str]) -> str | None:
    disposition_params = _params(node, "content-disposition")
    return _param_text(disposition_params.get("filename"), problems) or _param_text(
        ct_params.get("name"), problems
    )


def _raw_get(node: Message, name: str) -> str:
    """Return the first raw value of a header ("" if absent), bypassing compat32's Header objects."""
    for key, value in node.raw_items():
        if key.lower() == name:
            return value if isinstance(value, str) else str(value)
    return ""


def _message_filename(inner: Message) -> str:
    subject = decode_header_value(_raw_get(inner, "subject")[:200])
    return sanitize_filename(subject, "message")[:80] + ".eml"


def _content_id(node: Message) -> str | None:
    # RFC 2045 7: Content-ID is a msg-id; cid: URLs (RFC 2392) name it without brackets.
    ids = parse_message_ids(_raw_get(node, "content-id"))
    return ids[0] if ids else None


def _disposition(node: Message) -> str | None:
    value = node.get("content-disposition")
    if not isinstance(value, str):
        return None
    return value.split(";", 1)[0].strip().lower() or None


def _collect_defects(node: Message, problems: list[str]) -> None:
    for defect in node.defects:
        problems.append(_DEFECT_PROBLEMS.get(type(defect).__name__, "malformed MIME structure"))


def _payload_bytes(node: Message) -> bytes:
    """Return the transfer-decoded body of a leaf part (RFC 2045 6)."""
    try:
        data = node.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    payload = node.get_payload()
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogateescape")
    return _serialize(node, body_only=True)


def _serialize(node: Message, *, body_only: bool = False) -> bytes:
    try:
        data = node.as_bytes(policy=email_policy.compat32.clone(max_line_length=0))
    except Exception:
        return b""
    if body_only:
        for sep in (b"\r\n\r\n", b"\n\n"):
            index = data.find(sep)
            if index >= 0:
                return data[index + len(sep) :]
        return b""
    return data


def _decode_text(data: bytes, charset: str | None, problems: list[str], limit: int) -> str:
    """Decode a text part (RFC 2046 4.1.2) with the fallbacks described in addresses.py."""
    truncated = len(data) > limit * 4
    if truncated:
        data = data[: limit * 4]
    codec = text_codec(charset)
    if codec is None:
        if charset and charset not in UNSPECIFIED_CHARSETS:
            problems.append(f"unknown charset {charset[:40]}")
        text = decode_fallback(data)
    else:
        try:
            if truncated:
                # An incremental decoder keeps a cut multibyte sequence instead of failing.
                text = codecs.getincrementaldecoder(codec)().decode(data, final=False)
            else:
                text = data.decode(codec)
        except UnicodeDecodeError:
            if codec == "utf-8":
                text = decode_fallback(data)
                if charset and charset not in ("us-ascii", "ascii"):
                    problems.append(f"invalid bytes for charset {charset[:40]}")
            else:
                text = data.decode(codec, "replace")
                problems.append(f"invalid bytes for charset {charset[:40] if charset else codec}")
        except Exception:  # a codec that misbehaves on hostile input
            text = decode_fallback(data)
            problems.append(f"invalid bytes for charset {charset[:40] if charset else codec}")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    # Scanning decoded text costs ~100 us per 30 KiB; in ASCII-compatible charsets a
    # control character can only come from a control byte, which bytes.translate finds
    # ten times faster. UTF-7/16/32 can encode controls in other bytes: always scan.
    if data.translate(None, _NON_CONTROL_BYTES) or (codec or "").startswith(("utf-7", "utf-16", "utf-32")):
        text = _TEXT_CONTROL_RE.sub("", text)
    return text[:limit]


def _unflow(text: str, delsp: bool) -> str:
    """Join format=flowed soft line breaks (RFC 3676 4.1-4.5)."""
    out: list[str] = []
    buffer = ""
    buffer_depth = -1
    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]  # RFC 3676 4.4: remove space-stuffing
        if buffer_depth >= 0 and depth != buffer_depth:
            out.append(">" * buffer_depth + (" " if buffer_depth else "") + buffer)
            buffer, buffer_depth = "", -1
        flowed = content.endswith(" ") and content != "-- "
        if flowed and delsp:
            content = content[:-1]
        buffer += content
        buffer_depth = depth
        if not flowed:
            out.append(">" * depth + (" " if depth else "") + buffer)
            buffer, buffer_depth = "", -1
    if buffer_depth >= 0:
        out.append(">" * buffer_depth + (" " if buffer_depth else "") + buffer)
    return "\n".join(out)


def _leaf_text(node: Message, problems: list[str], limit: int) -> str:
    params = _params(node, "content-type")
    charset = params.get("charset")
    label = charset.strip().lower() if isinstance(charset, str) else None
    text = _decode_text(_payload_bytes(node), label, problems, limit)
    if node.defects:
        _collect_defects(node, problems)
    # RFC 3676 4.1-4.2: format and delsp are Content-Type parameters of text/plain.
    text_format = params.get("format")
    if isinstance(text_format, str) and text_format.lower() == "flowed":
        delsp = params.get("delsp")
        text = _unflow(text, isinstance(delsp, str) and delsp.lower() == "yes")
    return text


# --- The part walk ----------------------------------------------------------------------


class _Walk:
    """State of one walk over the MIME tree, in IMAP section order."""

    __slots__ = ("problems", "text_parts", "html_parts", "attachments", "cid_map", "count")

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        self.text_parts: list[Message] = []
        self.html_parts: list[Message] = []
        self.attachments: list[AttachmentInfo] = []
        self.cid_map: dict[str, str] = {}
        self.count = 0


def _top_parts(msg: Message) -> list[Message]:
    # RFC 3501 6.4.5: a non-multipart message has exactly one part, "1".
    payload = msg.get_payload()
    if isinstance(payload, list) and msg.get_content_maintype() == "multipart":
        return payload
    return [msg]


def _children(node: Message) -> list[Message]:
    payload = node.get_payload()
    if not isinstance(payload, list):
        return []
    ctype = node.get_content_type()
    if ctype in ("message/rfc822", "message/global"):
        # RFC 3501 6.4.5: an encapsulated message's parts are numbered below its own.
        return _top_parts(payload[0]) if payload and isinstance(payload[0], Message) else []
    if ctype.startswith("multipart/"):
        return payload
    return []


def _walk(msg: Message, walk: _Walk) -> None:
    for index, part in enumerate(_top_parts(msg), 1):
        if part is msg:
            _visit_leaf(part, "1", None, walk)
        else:
            _visit(part, str(index), 1, msg.get_content_subtype(), walk)


def _visit(node: Message, part_id: str, depth: int, parent_subtype: str | None, walk: _Walk) -> None:
    walk.count += 1
    if walk.count > MAX_PARTS:
        if walk.count == MAX_PARTS + 1:
            walk.problems.append("too many MIME parts")
        return
    if depth > MAX_DEPTH:
        walk.problems.append("MIME nesting too deep")
        return
    if node.defects:
        _collect_defects(node, walk.problems)
    payload = node.get_payload()
    if isinstance(payload, list) and node.get_content_maintype() == "multipart":
        subtype = node.get_content_subtype()
        for index, child in enumerate(payload, 1):
            _visit(child, f"{part_id}.{index}", depth + 1, subtype, walk)
        return
    _visit_leaf(node, part_id, parent_subtype, walk)


def _visit_leaf(node: Message, part_id: str, parent_subtype: str | None, walk: _Walk) -> None:
    problems = walk.problems
    _fix_8bit_headers(node, problems)
    ctype = node.get_content_type()
    maintype = ctype.partition("/")[0]
    disposition = _disposition(node)
    filename = _filename(node, _params(node, "content-type"), problems)
    content_id = _content_id(node)
    if maintype == "multipart":
        # A multipart without a usable boundary: show its raw text rather than nothing.
        walk.text_parts.append(node)
        return
    if disposition != "attachment" and (filename is None or disposition == "inline"):
        if ctype == "text/plain":
            walk.text_parts.append(node)
            return
        if ctype == "text/html":
            walk.html_parts.append(node)
            return
    is_message = ctype in ("message/rfc822", "message/global")
    if is_message:
        inner = node.get_payload(0) if isinstance(node.get_payload(), list) else None
        fallback = _message_filename(inner) if inner is not None else "message.eml"
        size = len(_serialize(inner)) if inner is not None else len(_payload_bytes(node))
    else:
        fallback = f"attachment-{part_id}{_EXTENSIONS.get(ctype, '')}"
        size = len(_payload_bytes(node))
        if node.defects:
            _collect_defects(node, problems)
    inline = disposition != "attachment" and (
        (content_id is not None and (parent_subtype == "related" or disposition == "inline"))
        or (disposition == "inline" and maintype == "image")
    )
    if content_id is not None:
        walk.cid_map.setdefault(content_id, part_id)
    walk.attachments.append(
        AttachmentInfo(
            part_id=part_id,
            filename=sanitize_filename(filename, fallback) if filename else fallback,
            content_type=ctype,
            size=size,
            content_id=content_id,
            disposition="inline" if inline else "attachment",
        )
    )


# --- Snippets ---------------------------------------------------------------------------


def _snippet(text: str, length: int) -> str:
    """First words of the new text: quotes, attributions and signatures skipped."""
    if length <= 0 or not text:
        return ""
    kept: list[str] = []
    size = 0
    in_forward_headers = False
    for line in text[: length * 40].split("\n"):
        stripped = line.strip()
        if line.rstrip("\r") in _SIGNATURE_LINES or _ORIGINAL_MARKER_RE.match(stripped):
            break
        if not stripped:
            in_forward_headers = False
            continue
        if stripped.startswith(">"):
            continue
        if _FORWARD_MARKER_RE.match(stripped):
            in_forward_headers = True
            continue
        if in_forward_headers and _HEADERISH_RE.match(stripped):
            continue
        if stripped[-1] in ":：" and _ATTRIBUTION_RE.search(stripped):
            # An attribution wrapped over two lines: drop its first half as well.
            if kept and _ATTRIBUTION_START_RE.match(kept[-1]) and not _ATTRIBUTION_START_RE.match(stripped):
                size -= len(kept.pop()) + 1
            continue
        kept.append(stripped)
        size += len(stripped) + 1
        if size > length:
            break
    snippet = _WS_RE.sub(" ", " ".join(kept)).strip()
    if not snippet:
        snippet = _WS_RE.sub(" ", text[: length * 4]).strip()
    if len(snippet) > length:
        cut = snippet.rfind(" ", 0, length)
        snippet = snippet[: cut if cut > length * 0.6 else length].rstrip() + "…"
    return snippet


# --- Public API -------------------------------------------------------------------------


def _parse_structure(raw: bytes, problems: list[str]) -> Message:
    if raw.count(b"oundary=") > MAX_MULTIPARTS:
        problems.append("too many MIME parts")
        try:
            return _HEADER_PARSER.parsebytes(raw)
        except Exception:
            problems.append("unparseable message")
            return Message()
    try:
        # Most mail has a plain structure that is found without the line-by-line feed parser.
        msg = split_message(raw)
    except Exception:  # a bug there must not lose the message: the feed parser decides
        msg = None
    if msg is not None:
        return msg
    try:
        return _PARSER.parsebytes(raw)
    except Exception:  # RecursionError on absurd nesting, MemoryError, parser bugs
        problems.append("unparseable MIME structure")
    try:
        return _HEADER_PARSER.parsebytes(raw)
    except Exception:
        problems.append("unparseable message")
        return Message()


def _dedupe(problems: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(problems))[:30]


def _envelope_headers(msg: Message, problems: list[str]) -> dict[str, list[str]]:
    wanted = {
        "subject",
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "bcc",
        "date",
        "message-id",
        "in-reply-to",
        "references",
    }
    headers: dict[str, list[str]] = {}
    oversized = False
    for name, value in msg.raw_items():
        if not isinstance(value, str):
            value = str(value)
        key = name.lower()
        if len(value) > MAX_HEADER_CHARS:
            oversized = True
            if key == "references":
                # Keep the root and the nearest ancestors, which sit at both ends.
                value = value[:1024] + " " + value[-(MAX_HEADER_CHARS - 1024) :]
            else:
                value = value[:MAX_HEADER_CHARS]
        if key in wanted:
            headers.setdefault(key, []).append(value)
    if oversized:
        problems.append("oversized header")
    return headers


def parse_message(raw: bytes, *, snippet_len: int = 200, text_limit: int = 200_000) -> ParsedMessage:
    """Parse raw message bytes for the cache; never raises on malformed input.

    ``text`` is the readable text: the text/plain body parts joined, else the text/html
    parts converted to text, capped at ``text_limit`` characters. ``snippet`` is about
    ``snippet_len`` characters of it with whitespace collapsed and quotes, attributions
    and signatures skipped. Attachments are listed in IMAP section order; an attached
    message (message/rfc822) is one attachment and is not descended into.

    ``problems`` holds short strings, each once: "empty message", "no headers",
    "NUL bytes", "8-bit bytes in headers", "oversized header", "unparseable Date",
    "unknown charset <label>", "invalid bytes for charset <label>", "missing MIME
    boundary", "MIME boundary not found", "truncated", "invalid base64", "missing blank
    line after headers", "malformed header", "too many MIME parts", "MIME nesting too
    deep", "unparseable MIME structure", "internal error: <exception>".
    """
    problems: list[str] = []
    raw = bytes(raw)
    if not raw.strip():
        problems.append("empty message")
    if b"\x00" in raw:
        problems.append("NUL bytes")
    msg = _parse_structure(raw, problems)
    if not msg.keys() and raw.strip():
        problems.append("no headers")
    try:
        return _build(msg, raw, problems, snippet_len, text_limit)
    except Exception as exc:  # a parser bug must not stop a sync: keep what is known
        problems.append(f"internal error: {type(exc).__name__}")
        return ParsedMessage(
            subject="",
            from_=(),
            sender=(),
            reply_to=(),
            to=(),
            cc=(),
            bcc=(),
            date=None,
            message_id=None,
            in_reply_to=None,
            references=(),
            text="",
            snippet="",
            has_attachments=False,
            attachments=(),
            has_text_body=False,
            has_html_body=False,
            size=len(raw),
            problems=_dedupe(problems),
        )


def _build(msg: Message, raw: bytes, problems: list[str], snippet_len: int, text_limit: int) -> ParsedMessage:
    headers = _envelope_headers(msg, problems)

    def first(name: str) -> str | None:
        values = headers.get(name)
        return values[0] if values else None

    def addresses(name: str) -> tuple[Address, ...]:
        values = headers.get(name)
        if not values:
            return ()
        return parse_address_list(", ".join(values), problems)

    subject = decode_header_value(first("subject") or "", problems)[:MAX_SUBJECT_CHARS]
    message_ids = parse_message_ids(first("message-id"))
    in_reply_to = parse_message_ids(first("in-reply-to"))
    references = parse_message_ids(" ".join(headers.get("references", ())))
    if len(references) > MAX_REFERENCES:
        # Keep the root (threading) and the nearest ancestors (RFC 5322 3.6.4).
        references = references[:1] + references[-(MAX_REFERENCES - 1) :]

    if msg.defects:
        _collect_defects(msg, problems)
    walk = _Walk(problems)
    _walk(msg, walk)

    text = ""
    if walk.text_parts:
        chunks: list[str] = []
        remaining = text_limit
        for part in walk.text_parts:
            if remaining <= 0:
                break
            chunk = _leaf_text(part, problems, remaining)
            if chunk.strip():
                chunks.append(chunk)
                remaining -= len(chunk)
        text = "\n\n".join(chunks)
    elif walk.html_parts:
        chunks = []
        remaining = text_limit
        for part in walk.html_parts:
            if remaining <= 0:
                break
            chunk = html_to_text(_leaf_text(part, problems, remaining * 4), limit=remaining)
            chunks.append(chunk)
            remaining -= len(chunk)
        text = "\n\n".join(chunks)
    text = text[:text_limit]

    attachments = tuple(walk.attachments)
    return ParsedMessage(
        subject=subject,
        from_=addresses("from"),
        sender=addresses("sender"),
        reply_to=addresses("reply-to"),
        to=addresses("to"),
        cc=addresses("cc"),
        bcc=addresses("bcc"),
        date=_parse_date(first("date"), problems),
        message_id=message_ids[0] if message_ids else None,
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=references,
        text=text,
        snippet=_snippet(text, snippet_len),
        has_attachments=any(a.disposition == "attachment" for a in attachments),
        attachments=attachments,
        has_text_body=bool(walk.text_parts),
        has_html_body=bool(walk.html_parts),
        size=len(raw),
        problems=_dedupe(problems),
    )


def get_bodies(raw: bytes, *, limit: int = BODY_LIMIT) -> tuple[str | None, str | None, dict[str, str]]:
    """Return (text, html, cid_map) for the reading view.

    ``text`` joins the text/plain body parts (format=flowed unwrapped), ``html`` joins
    the text/html body parts, unsanitised: pass it to ``html.sanitize_html`` with a
    ``cid_url`` built from ``cid_map`` (Content-ID without brackets -> IMAP part id).
    Either is None when the message has no such part. Never raises.
    """
    problems: list[str] = []
    try:
        msg = _parse_structure(bytes(raw), problems)
        walk = _Walk(problems)
        _walk(msg, walk)
        text = html = None
        if walk.text_parts:
            text = "\n\n".join(_leaf_text(part, problems, limit) for part in walk.text_parts)
        if walk.html_parts:
            html = "\n".join(_leaf_text(part, problems, limit) for part in walk.html_parts)
        return text, html, walk.cid_map
    except Exception:
        return None, None, {}


def get_part(raw: bytes, part_id: str) -> tuple[str, str, bytes]:
    """Return (content_type, filename, payload) of the part at IMAP section ``part_id``.

    The payload is transfer-decoded (base64, quoted-printable). An attached message
    (message/rfc822) is returned whole; a multipart as its serialised body. The filename
    is sanitised, with a generated fallback. Raise ``KeyError`` if there is no such part.
    """
    try:
        numbers = [int(n) for n in part_id.split(".")]
    except ValueError:
        raise KeyError(part_id)
    if not numbers or any(n < 1 for n in numbers) or len(numbers) > MAX_DEPTH:
        raise KeyError(part_id)
    problems: list[str] = []
    msg = _parse_structure(bytes(raw), problems)
    candidates = _top_parts(msg)
    node: Message | None = None
    for number in numbers:
        if number > len(candidates):
            raise KeyError(part_id)
        node = candidates[number - 1]
        candidates = _children(node) if node is not msg else []
    assert node is not None  # noqa: S101 -- numbers is not empty
    _fix_8bit_headers(node, problems)
    ctype = node.get_content_type()
    filename = _filename(node, _params(node, "content-type"), problems)
    if ctype in ("message/rfc822", "message/global") and isinstance(node.get_payload(), list):
        inner = node.get_payload(0)
        payload = _serialize(inner)
        fallback = _message_filename(inner)
    elif ctype.startswith("multipart/") and isinstance(node.get_payload(), list):
        payload = _serialize(node, body_only=True)
        fallback = f"part-{part_id}"
    else:
        payload = _payload_bytes(node)
        fallback = f"attachment-{part_id}{_EXTENSIONS.get(ctype, '')}"
    return ctype, sanitize_filename(filename, fallback) if filename else fallback, payload
