"""HTML mail: the sanitising policy (nh3) and HTML-to-text conversion."""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

import nh3

__all__ = ["SanitizedHtml", "html_to_text", "sanitize_html"]

# Policy, decided here and tested in tests/mailcore/test_html.py:
#
# * Elements: a small allow-list of text, list, table and image elements. Everything that
#   runs code, loads documents or changes the page (script, style, svg, math, iframe,
#   object, embed, form controls, base, meta, link, template, noscript...) is removed with
#   its content. <style> sheets are dropped rather than parsed: a CSS sheet can load
#   remote resources (@import, url(), @font-face) and the allow-list below cannot follow
#   it into selectors. Newsletters render plainer; the output stays safe.
# * Attributes: no event handlers (on*), no id/class (nothing can target them), a short
#   list per element. style attributes keep only a conservative property list, and a
#   declaration is dropped if its value has a backslash (CSS escapes, CSS 2.1 4.1.3),
#   a comment, url(), image-set(), expression() or any function but rgb/rgba/hsl/hsla.
# * URLs: links allow http, https, mailto and tel; relative and protocol-relative URLs
#   are removed (there is no base a mail can rely on), except that a protocol-relative
#   image ("//host/x.png") is read as https. Images allow http(s) (blocked or
#   proxied, see below), cid: (RFC 2392, rewritten through ``cid_url``) and data: URLs
#   of raster types only (png, gif, jpeg, webp, bmp): data:image/svg+xml can carry
#   script and is refused. Links open in a new browsing context with
#   rel="noopener noreferrer".
# * Images: a remote image is blocked by default (src removed, alt kept,
#   data-blocked="remote" added, counted); when allowed it goes through ``proxy_url`` if
#   one is given. Tracking pixels (width or height <= 1, the hidden attribute, or a
#   style of display:none, visibility:hidden, opacity:0, max-width/max-height:0) are
#   always removed, whatever their source; the count reports those with a remote src.
#   An image whose src was refused and that has no alt text is removed too.
# * The output is meant for a sandboxed iframe (no scripts) under a strict CSP; this
#   sanitiser is one layer, not the only one.

_TAGS = frozenset(
    {
        "a", "abbr", "address", "b", "bdi", "bdo", "big", "blockquote", "br", "caption",
        "center", "cite", "code", "col", "colgroup", "dd", "del", "dfn", "div", "dl", "dt",
        "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd",
        "li", "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span", "strike",
        "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt",
        "u", "ul", "var", "wbr",
    }
)  # fmt: skip
# Removed together with their content (nh3 keeps the text of other unknown elements).
_CLEAN_CONTENT_TAGS = frozenset(
    {
        "applet", "audio", "canvas", "embed", "frame", "frameset", "head", "iframe", "math",
        "noembed", "noframes", "noscript", "object", "option", "plaintext", "script",
        "select", "style", "svg", "template", "textarea", "title", "video", "xmp",
    }
)  # fmt: skip
_CELL_ATTRS = {"align", "valign", "width", "height", "bgcolor", "colspan", "rowspan", "nowrap"}
_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"style", "title", "dir", "lang", "align"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height", "border", "hspace", "vspace", "hidden"},
    "font": {"color", "face", "size"},
    "table": {"width", "height", "border", "cellpadding", "cellspacing", "bgcolor"},
    "td": _CELL_ATTRS,
    "th": _CELL_ATTRS,
    "tr": {"valign", "bgcolor", "height"},
    "col": {"span", "width"},
    "colgroup": {"span", "width"},
    "ol": {"start", "type"},
    "ul": {"type"},
    "li": {"value"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "hr": {"size", "width", "noshade"},
    "bdo": {"dir"},
    "del": {"datetime"},
    "ins": {"datetime"},
}
_STYLE_PROPERTIES = frozenset(
    {
        "background-color", "border", "border-bottom", "border-bottom-color",
        "border-bottom-style", "border-bottom-width", "border-collapse", "border-color",
        "border-left", "border-left-color", "border-left-style", "border-left-width",
        "border-radius", "border-right", "border-right-color", "border-right-style",
        "border-right-width", "border-spacing", "border-style", "border-top",
        "border-top-color", "border-top-style", "border-top-width", "border-width", "clear",
        "color", "direction", "display", "float", "font", "font-family", "font-size",
        "font-style", "font-variant", "font-weight", "height", "letter-spacing",
        "line-height", "list-style-type", "margin", "margin-bottom", "margin-left",
        "margin-right", "margin-top", "max-height", "max-width", "min-height", "min-width",
        "opacity", "padding", "padding-bottom", "padding-left", "padding-right",
        "padding-top", "table-layout", "text-align", "text-decoration", "text-indent",
        "text-transform", "vertical-align", "visibility", "white-space", "width",
        "word-break", "word-spacing", "word-wrap",
    }
)  # fmt: skip
_URL_SCHEMES = frozenset({"http", "https", "mailto", "tel", "cid", "data"})
_LINK_SCHEMES = ("http:", "https:", "mailto:", "tel:")
_REMOTE_SCHEMES = ("http:", "https:")
# Raster images only: an SVG document can carry script (Roundcube CVE-2023-5631 and kin).
_DATA_IMAGE_RE = re.compile(r"^data:image/(?:png|gif|jpe?g|webp|bmp);base64,[a-z0-9+/=\s]*$", re.IGNORECASE)
# Anything that can load a resource, run code or hide a payload in a CSS value.
_BAD_CSS_RE = re.compile(
    r"[\\<>{}@&]|/\*|\*/|url|image|expression|javascript|vbscript|behavior|binding|attr\(",
    re.IGNORECASE,
)
# The lookbehind keeps findall linear on long runs of letters.
_CSS_FUNCTION_RE = re.compile(r"(?<![a-z-])([a-z-]*)[ \t]*\(", re.IGNORECASE)
_MAX_STYLE_CHARS = 4096
_CSS_FUNCTIONS = frozenset({"rgb", "rgba", "hsl", "hsla"})
_CONTROL_WS_RE = re.compile(r"[\x00-\x20\x7f]+")

# nh3 serialises attribute values double-quoted with <, >, & and " escaped, so a tag
# ends at the first ">" and an attribute value at the next quote.
_IMG_TAG_RE = re.compile(r"<img\b([^>]*)>")
_ATTR_RE = re.compile(r'([^\s="]+)(?:="([^"]*)")?')
_CSS_LENGTH_RE = re.compile(r"^(\d*\.?\d+)(?:px)?$")
_DIMENSION_RE = re.compile(r"^\s*(\d+)")


@dataclass(frozen=True, slots=True)
class SanitizedHtml:
    """The result of ``sanitize_html``: safe markup plus what was taken out."""

    html: str
    remote_blocked_count: int
    tracking_pixels: int


def _filter_style(value: str) -> str | None:
    if len(value) > _MAX_STYLE_CHARS:
        return None
    kept: list[str] = []
    for declaration in value.split(";"):
        prop, sep, val = declaration.partition(":")
        prop = prop.strip().lower()
        val = val.strip()
        if not sep or not val or prop not in _STYLE_PROPERTIES:
            continue
        if _BAD_CSS_RE.search(val):
            continue
        if "(" in val and any(name.lower() not in _CSS_FUNCTIONS for name in _CSS_FUNCTION_RE.findall(val)):
            continue
        kept.append(f"{prop}:{val}")
    return ";".join(kept) or None


def _attribute_filter(tag: str, attr: str, value: str) -> str | None:
    if attr == "style":
        return _filter_style(value)
    if attr == "href" or attr == "src":
        # WHATWG URL: leading/trailing C0 controls and spaces are stripped and tabs or
        # newlines inside are removed before the scheme is read ("java\tscript:").
        url = _CONTROL_WS_RE.sub("", value)
        lowered = url[:16].lower()
        if url.startswith("//"):
            return url  # protocol-relative: _relative_url decides next
        if tag == "img" and attr == "src":
            if lowered.startswith("data:"):
                return url if _DATA_IMAGE_RE.match(url) else None
            if lowered.startswith(("cid:", *_REMOTE_SCHEMES)):
                return url
            return None
        if tag == "a" and attr == "href":
            return url if lowered.startswith(_LINK_SCHEMES) else None
        return None
    return value


def _relative_url(url: str) -> str | None:
    # nh3 asks here after the attribute filter. A protocol-relative URL ("//host/x")
    # is remote: make it https so images are blocked and counted, or proxied, like the
    # others. Other relative URLs have no base in a mail and are dropped.
    url = _CONTROL_WS_RE.sub("", url)
    if url.startswith("//") and len(url) > 2 and url[2] not in "/\\":
        return "https:" + url
    return None


_CLEANER = nh3.Cleaner(
    tags=set(_TAGS),
    clean_content_tags=set(_CLEAN_CONTENT_TAGS),
    attributes={tag: set(attrs) for tag, attrs in _ATTRIBUTES.items()},
    attribute_filter=_attribute_filter,
    strip_comments=True,
    link_rel="noopener noreferrer",
    url_schemes=set(_URL_SCHEMES),
    filter_style_properties=set(_STYLE_PROPERTIES),
    set_tag_attribute_values={"a": {"target": "_blank"}},
    url_relative=_relative_url,
)


def _is_hidden_style(style: str) -> bool:
    for declaration in style.split(";"):
        prop, _, val = declaration.partition(":")
        prop = prop.strip().lower()
        val = val.lower().split("!", 1)[0].strip()  # nh3 writes "none ! important"
        if prop == "display" and val == "none":
            return True
        if prop == "visibility" and val in ("hidden", "collapse"):
            return True
        if prop in ("opacity", "width", "height", "max-width", "max-height"):
            match = _CSS_LENGTH_RE.match(val)
            if match and float(match.group(1)) <= (0 if prop == "opacity" else 1):
                return True
    return False


def _dimension(value: str | None) -> int | None:
    if value is None:
        return None
    match = _DIMENSION_RE.match(value)
    return int(match.group(1)) if match else None


def sanitize_html(
    html: str,
    *,
    allow_remote: bool = False,
    proxy_url: Callable[[str], str] | None = None,
    cid_url: Callable[[str], str] | None = None,
) -> SanitizedHtml:
    """Sanitise an HTML mail body for display (policy in the comment above).

    ``proxy_url(url)`` returns the URL to load an allowed remote image through;
    ``cid_url(content_id)`` returns the URL of the inline part with that Content-ID
    (RFC 2392, given without angle brackets). Without ``cid_url`` cid: images are dropped.
    """
    cleaned = _CLEANER.clean(html.replace("\x00", ""))
    remote_blocked = 0
    tracking = 0

    def rewrite(match: re.Match[str]) -> str:
        nonlocal remote_blocked, tracking
        attrs = {name.lower(): html_lib.unescape(val or "") for name, val in _ATTR_RE.findall(match.group(1))}
        src = attrs.get("src", "")
        is_remote = src[:8].lower().startswith(_REMOTE_SCHEMES)
        width, height = _dimension(attrs.get("width")), _dimension(attrs.get("height"))
        style = attrs.get("style", "")
        if (
            "hidden" in attrs
            or (width is not None and width <= 1)
            or (height is not None and height <= 1)
            or (style and _is_hidden_style(style))
        ):
            if is_remote:
                tracking += 1
            return ""
        attrs.pop("hidden", None)
        if not src and not attrs.get("alt"):
            return ""  # its src was refused and nothing is left to show
        if is_remote:
            if not allow_remote:
                remote_blocked += 1
                del attrs["src"]
                attrs["data-blocked"] = "remote"
            elif proxy_url is not None:
                attrs["src"] = proxy_url(src)
        elif src[:4].lower() == "cid:":
            if cid_url is None:
                del attrs["src"]
                attrs["data-blocked"] = "cid"
            else:
                attrs["src"] = cid_url(unquote(src[4:]).strip().strip("<>"))
        parts = [f' {name}="{html_lib.escape(val, quote=True)}"' for name, val in attrs.items()]
        return "<img" + "".join(parts) + ">"

    if "<img" in cleaned:
        cleaned = _IMG_TAG_RE.sub(rewrite, cleaned)
    return SanitizedHtml(cleaned, remote_blocked, tracking)


# --- HTML to text -----------------------------------------------------------------------
#
# nh3 (html5ever, linear on any input) first reduces the markup to the few elements that
# shape text, dropping script/style/head content and comments. Its output is
# well-formed and normalised (lowercase tags, quoted attributes, "<" and ">" escaped in
# text and attribute values), so a regex tokenizer reads it exactly. html.parser was
# measured and rejected: it is quadratic on unclosed tags ("<img " * 12,000 took 25 s)
# and spent ~10 ms on a 30 KiB newsletter where this takes a fraction of that.

_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "caption", "center", "dd", "div",
        "dl", "dt", "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3",
        "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section",
        "table", "tr", "ul",
    }
)  # fmt: skip
_PARAGRAPH_TAGS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "pre", "hr"})
# Content never shown as text.
_SKIP_TAGS = frozenset(
    {
        "script", "style", "title", "head", "template", "svg", "math", "noscript", "object",
        "iframe", "textarea", "select", "option", "xmp", "noembed", "noframes",
    }
)  # fmt: skip
_TEXT_CLEANER = nh3.Cleaner(
    tags=set(_BLOCK_TAGS | {"img", "td", "th"}),
    clean_content_tags=set(_SKIP_TAGS),
    attributes={"img": {"alt"}},
    strip_comments=True,
    link_rel=None,
)
_TOKEN_RE = re.compile(r"<(/?)([a-z0-9]+)([^>]*)>|[^<]+")
_ALT_RE = re.compile(r'\balt="([^"]*)"')
# Invisible fillers that newsletters put in preheaders: zero-width chars, CGJ, BOM, soft hyphen.
_INVISIBLE_RE = re.compile("[\u200b\u200c\u200d\u034f\ufeff\u00ad\u2060]")
_BLANK_LINES_RE = re.compile(r"\n{3,}")


def html_to_text(html: str, *, limit: int = 1_000_000) -> str:
    """Return the readable text of an HTML document, for search and snippets.

    Script, style and head content are dropped, entities decoded, block elements end
    lines, paragraphs are separated by a blank line, table cells are joined with spaces,
    list items start with "- ", images give their alt text, and blockquote lines are
    prefixed with "> " (as RFC 3676 4.5 quotes) so snippet code can skip them. Stops
    collecting after about ``limit`` characters. Never raises on malformed markup.
    """
    try:
        cleaned = _TEXT_CLEANER.clean(html.replace("\x00", ""))
    except Exception:  # nh3 takes any str; this guards against a binding bug
        return ""
    if not cleaned.isascii():
        cleaned = _INVISIBLE_RE.sub("", cleaned)
    lines: list[str] = []
    current: list[str] = []
    quote_depth = pre_depth = size = 0

    def flush(blank: bool) -> None:
        nonlocal current, size
        line = "".join(current).strip(" ")
        current = []
        if line:
            prefix = "> " * quote_depth
            for sub in line.split("\n"):
                lines.append(prefix + sub.rstrip())
                size += len(sub) + 1
        if blank and lines and lines[-1] != "":
            lines.append("")
            size += 1

    for match in _TOKEN_RE.finditer(cleaned):
        tag = match.group(2)
        if tag is None:
            if size > limit:
                break
            data = html_lib.unescape(match.group(0))
            if pre_depth:
                current.append(data)
            else:
                # HTML whitespace collapses to one space (split/join is several times
                # faster than a regex here); edges keep one space to separate words.
                words = " ".join(data.split())
                if data[:1].isspace() and current and not current[-1].endswith(" "):
                    words = " " + words
                if words and data[-1:].isspace() and not words.endswith(" "):
                    words += " "
                if words:
                    current.append(words)
        elif match.group(1):  # an end tag
            if tag in _BLOCK_TAGS:
                flush(tag in _PARAGRAPH_TAGS or tag == "blockquote")
                if tag == "blockquote" and quote_depth:
                    quote_depth -= 1
                elif tag == "pre" and pre_depth:
                    pre_depth -= 1
            elif tag in ("td", "th"):
                current.append(" ")
        elif tag in _BLOCK_TAGS:
            flush(tag in _PARAGRAPH_TAGS)
            if tag == "blockquote":
                quote_depth += 1
            elif tag == "pre":
                pre_depth += 1
            elif tag == "li":
                current.append("- ")
        elif tag == "img":
            alt = _ALT_RE.search(match.group(3))
            if alt and alt.group(1).strip():
                if current and not current[-1].endswith(" "):
                    current.append(" ")
                current.append(" ".join(html_lib.unescape(alt.group(1)).split()) + " ")
    flush(False)
    text = "\n".join(lines).replace("\xa0", " ")
    return _BLANK_LINES_RE.sub("\n\n", text).strip()
