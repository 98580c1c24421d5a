"""Delivery trace: the Received chain (RFC 5321 4.4) and Authentication-Results (RFC 8601)."""

from __future__ import annotations

import email.utils
import re
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "AuthResult",
    "AuthenticationResults",
    "Hop",
    "parse_authentication_results",
    "parse_received_chain",
]

MAX_HEADER_CHARS = 8192
MAX_HOPS = 100

_KEYWORDS = frozenset({"from", "by", "via", "with", "id", "for"})
_IP_RE = re.compile(r"\[(?:IPv6:)?([0-9A-Fa-f:.]+)\]|\b((?:\d{1,3}\.){3}\d{1,3})\b")
# The lookbehind keeps findall linear on long runs of name characters.
_PROPERTY_RE = re.compile(r'(?<![A-Za-z0-9_./-])([A-Za-z0-9_./-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s;]*)')


@dataclass(frozen=True, slots=True)
class Hop:
    """One Received header, oldest first in a chain.

    ``delay_seconds`` is the time since the previous (older) hop, None when either time
    is unknown; it can be negative when clocks disagree.
    """

    from_host: str | None
    from_ip: str | None
    by_host: str | None
    with_proto: str | None
    time: datetime | None
    delay_seconds: int | None


@dataclass(frozen=True, slots=True)
class AuthResult:
    """One method's verdict, e.g. dkim=pass with header.d=example.test (RFC 8601 2.7)."""

    method: str
    result: str
    reason: str | None
    properties: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class AuthenticationResults:
    """One Authentication-Results header.

    Anyone can add this header before a message reaches the receiving server: trust it
    only when ``authserv_id`` names the server that delivered to the mailbox (RFC 8601 5).
    """

    authserv_id: str
    results: tuple[AuthResult, ...]

    def result_for(self, method: str) -> str | None:
        """Return the first result for ``method`` ("spf", "dkim", "dmarc"...), or None."""
        method = method.lower()
        for result in self.results:
            if result.method == method:
                return result.result
        return None


def _split_comments(value: str) -> tuple[str, list[tuple[int, str]]]:
    """Return the text outside CFWS comments (RFC 5322 3.2.2) and the comments.

    Each comment is given with the number of top-level words that preceded it, so a
    comment can be attached to the clause it follows. Nesting and quoted-pairs count.
    """
    outside: list[str] = []
    comments: list[tuple[int, str]] = []
    depth = 0
    current: list[str] = []
    escaped = False
    for char in value:
        if depth:
            if escaped:
                escaped = False
                current.append(char)
            elif char == "\\":
                escaped = True
            elif char == "(":
                depth += 1
                current.append(char)
            elif char == ")":
                depth -= 1
                if depth:
                    current.append(char)
                else:
                    words = len("".join(outside).split())
                    comments.append((words, "".join(current)))
                    current = []
                    outside.append(" ")
            else:
                current.append(char)
        elif char == "(":
            depth = 1
        else:
            outside.append(char)
    return "".join(outside), comments


def _parse_time(value: str) -> datetime | None:
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except Exception:  # ValueError, TypeError, OverflowError on broken stamps
        return None
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_received(value: str) -> Hop:
    value = " ".join(value[:MAX_HEADER_CHARS].split())
    # RFC 5322 3.6.7: received = "Received:" *received-token ";" date-time
    clauses, semicolon, stamp = value.rpartition(";")
    if not semicolon:
        clauses, stamp = value, ""
    text, comments = _split_comments(clauses)
    words = text.split()
    fields: dict[str, str] = {}
    positions: dict[str, int] = {}
    for index, word in enumerate(words[:-1]):
        key = word.lower()
        if key in _KEYWORDS and key not in fields:
            fields[key] = words[index + 1].strip("<>;")
            positions[key] = index
    from_ip = None
    if "from" in fields:
        # RFC 5321 4.4 TCP-info: the comment after the from clause, e.g.
        # "(mx.example.test [192.0.2.1])"; an address literal may be the domain itself.
        after_from = positions["from"] + 2
        candidates = [c for count, c in comments if count == after_from] + [fields["from"]]
        for candidate in candidates:
            match = _IP_RE.search(candidate)
            if match:
                from_ip = match.group(1) or match.group(2)
                break
    return Hop(
        from_host=fields.get("from") or None,
        from_ip=from_ip,
        by_host=fields.get("by") or None,
        with_proto=fields.get("with") or None,
        time=_parse_time(stamp) if stamp else None,
        delay_seconds=None,
    )


def parse_received_chain(headers: list[str]) -> list[Hop]:
    """Parse Received header values given in message order (newest first).

    Return the hops oldest first, each with the delay since the previous hop. Malformed
    headers give hops with None fields; nothing raises.
    """
    hops: list[Hop] = []
    previous: datetime | None = None
    for value in reversed(headers[:MAX_HOPS]):
        try:
            hop = _parse_received(str(value))
        except Exception:  # a parser bug must not hide the rest of the chain
            hop = Hop(None, None, None, None, None, None)
        delay = None
        if hop.time is not None and previous is not None:
            delay = int((hop.time - previous).total_seconds())
        hops.append(Hop(hop.from_host, hop.from_ip, hop.by_host, hop.with_proto, hop.time, delay))
        if hop.time is not None:
            previous = hop.time
    return hops


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _split_top_level(value: str) -> list[str]:
    """Split on ";" outside quoted strings (comments are already removed)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def parse_authentication_results(value: str) -> AuthenticationResults:
    """Parse one Authentication-Results header value (RFC 8601 2.2).

    ``authserv-id [version] ; method[/version]=result [reason=...] [ptype.prop=value ...]``
    separated by ";", or ``authserv-id; none``. Comments are dropped, names and results
    lowercased, property values unquoted. Malformed input gives what could be read.
    """
    text, _comments = _split_comments(" ".join(str(value)[:MAX_HEADER_CHARS].split()))
    segments = _split_top_level(text)
    head = segments[0].split()
    authserv_id = head[0] if head else ""
    results: list[AuthResult] = []
    for segment in segments[1:]:
        segment = segment.strip()
        if not segment or segment.lower() == "none":
            continue
        pairs = _PROPERTY_RE.findall(segment)
        if not pairs:
            continue
        method, result = pairs[0]
        method = method.split("/", 1)[0].lower()
        reason = None
        properties: list[tuple[str, str]] = []
        for name, raw in pairs[1:]:
            if name.lower() == "reason":
                reason = _unquote(raw)
            else:
                properties.append((name.lower(), _unquote(raw)))
        results.append(AuthResult(method, _unquote(result).lower(), reason, tuple(properties)))
    return AuthenticationResults(authserv_id, tuple(results))
