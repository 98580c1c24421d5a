"""Build the email package's message tree for well-formed mail without its line-by-line feed parser.

``email.parser`` (compat32) reads a message one line at a time in pure Python: about half of the
time mime.parse_message spends on ordinary mail. For a message whose structure is plain (headers,
a blank line, leaves or multiparts with clean boundary lines), the same tree can be built by
finding the header ends and boundary lines with str.find: ``split_message`` returns Message objects
equal to what ``BytesParser(policy=compat32).parsebytes`` builds (headers, payloads, preambles,
epilogues; no defects), and None for anything the feed parser would treat specially (a defect to
record, an encapsulated message/*, multipart/digest, a lone CR line end, a Unix "From " line...),
which the caller then parses with the email package as before. The rules followed are those of
``email.feedparser.FeedParser._parsegen`` (Python 3.11-3.13), cited below; tests compare the two
trees on the corpus and on generated mail.
"""

from __future__ import annotations

import re
from email import policy as email_policy
from email.message import Message

_COMPAT32 = email_policy.compat32
# feedparser.headerRE: a field name is printable ASCII without ":" (RFC 5322 2.2).
_FIELD = re.compile(r"[\041-\071\073-\176]+:")
# feedparser's boundaryendRE after "--" boundary: an optional "--", blanks, the line end.
_BOUNDARY_END = re.compile(r"(--)?[ \t]*(?:\r\n|\n|\Z)")
_MAX_DEPTH = 20  # deeper nesting is left to the feed parser (and its own limits)


class _Unusual(Exception):
    """The message has something the feed parser handles specially: let it parse the message."""


def split_message(raw: bytes) -> Message | None:
    """Return the compat32 message tree of RAW, or None when the feed parser must build it."""
    # BytesParser.parsebytes: the bytes become str with 8-bit bytes as surrogates.
    text = raw.decode("ascii", "surrogateescape")
    if "\r" in text and text.count("\r") != text.count("\r\n"):
        return None  # a lone CR ends a line for the feed parser but not for the searches here
    if text.startswith("From "):
        return None  # a Unix mbox envelope line
    try:
        return _part(text, 0, len(text), 0, None)
    except _Unusual:
        return None


def _line_end(text: str, pos: int, end: int) -> int:
    nl = text.find("\n", pos, end)
    return end if nl < 0 else nl + 1


def _headers(msg: Message, text: str, start: int, end: int) -> int:
    """Store the header fields of TEXT[start:end] in MSG; return where the body starts.

    feedparser._parse_headers: a field starts with a name and a colon, continuation lines with
    a blank; the first empty line ends the header and is dropped. Anything else is unusual.
    """
    lines: list[str] = []
    pos = start
    while True:
        if pos >= end:
            raise _Unusual  # no empty line: the header runs to the end
        stop = _line_end(text, pos, end)
        line = text[pos:stop]
        if line in ("\r\n", "\n"):
            break
        first = line[0]
        if first in " \t":
            if not lines:
                raise _Unusual  # FirstHeaderLineIsContinuationDefect
            lines.append(line)
        elif line.startswith("From ") or not _FIELD.match(line):
            raise _Unusual  # MisplacedEnvelopeHeaderDefect, MissingHeaderBodySeparatorDefect
        else:
            if lines:
                msg.set_raw(*_COMPAT32.header_source_parse(lines))
            lines = [line]
        pos = stop
    if lines:
        msg.set_raw(*_COMPAT32.header_source_parse(lines))
    return stop


def _part(text: str, start: int, end: int, depth: int, parent: Message | None) -> Message:
    """Build the part in TEXT[start:end]; a part of PARENT loses its last line end (see _strip_eol)."""
    msg = Message(policy=_COMPAT32)
    if parent is not None and parent.get_content_type() == "multipart/digest":
        raise _Unusual  # its parts default to message/rfc822
    body = _headers(msg, text, start, end)
    maintype = msg.get_content_maintype()
    if maintype == "message":
        raise _Unusual  # the feed parser parses the encapsulated message (and delivery-status)
    if maintype != "multipart":
        payload = text[body:end]
        msg.set_payload(payload if parent is None else _strip_eol(payload))
        return msg
    if depth >= _MAX_DEPTH:
        raise _Unusual
    boundary = msg.get_boundary()
    if not boundary:
        raise _Unusual  # NoBoundaryInMultipartDefect
    if str(msg.get("content-transfer-encoding", "8bit")).lower() not in ("7bit", "8bit", "binary"):
        raise _Unusual  # InvalidMultipartContentTransferEncodingDefect
    _multipart(msg, text, body, end, "--" + boundary, depth)
    if parent is not None:
        msg.epilogue = None if msg.epilogue == "" else _strip_eol(msg.epilogue)
    return msg


def _boundaries(text: str, start: int, end: int, separator: str) -> list[tuple[int, int, bool]]:
    """Return (line start, line end, is the close delimiter) of every boundary line (RFC 2046 5.1.1)."""
    found = []
    pos = start
    while True:
        at = text.find(separator, pos, end)
        if at < 0:
            return found
        pos = at + len(separator)
        if at != start and text[at - 1] != "\n":
            continue  # not at the start of a line
        m = _BOUNDARY_END.match(text, pos, end)
        if m is None:
            continue  # "--boundary" followed by other text is body text
        found.append((at, m.end(), m.group(1) is not None))
        if m.group(1) is not None:
            return found  # the rest is the epilogue
        pos = m.end()


def _strip_eol(value: str) -> str:
    """Drop one line end: RFC 2046 5.1.1, the CRLF before a boundary belongs to the boundary."""
    if value.endswith("\r\n"):
        return value[:-2]
    if value.endswith("\n"):
        return value[:-1]
    return value


def _multipart(msg: Message, text: str, body: int, end: int, separator: str, depth: int) -> None:
    lines = _boundaries(text, body, end, separator)
    if not lines:
        raise _Unusual  # StartBoundaryNotFoundDefect
    if not lines[-1][2]:
        raise _Unusual  # CloseBoundaryNotFoundDefect
    if len(lines) < 2:
        raise _Unusual  # MultipartInvariantViolationDefect: no part at all
    if lines[0][0] > body:
        msg.preamble = _strip_eol(text[body : lines[0][0]])
    for (_, part_start, _), (next_line, _, _) in zip(lines, lines[1:], strict=False):
        if next_line == part_start:
            raise _Unusual  # adjacent boundary lines: the feed parser merges them
        msg.attach(_part(text, part_start, next_line, depth + 1, msg))
    close_end = lines[-1][1]
    msg.epilogue = text[close_end:end]
