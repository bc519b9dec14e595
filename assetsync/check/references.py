"""Finding references to published paths in a project's text: functions, TwiML, HTML, Studio.

Pure: text in, `Reference` values out. A reference names the published path it points at and
how it is used (`play`, `media`, `assets`, `functions`, `browser`, `link`, `url`), which decides
the rules `check` applies to it. Heuristics stay conservative: a literal counts only when it is a
URL on a twil.io domain (or `${context.DOMAIN_NAME}`), a root path with a file extension, or the
key of a `Runtime.getAssets()` / `Runtime.getFunctions()` lookup.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

from assetsync.frozen import frozen

__all__ = ["Reference", "html_references", "js_references", "studio_references",
           "twiml_references"]


@frozen
class Reference:
    """One mention of a published path: where it is (file, 1-based line) and how it is used."""

    file: str
    line: int
    target: str  # the published path, "/..."
    use: str
    whatsapp: bool = False  # the file sends WhatsApp messages: WhatsApp's media rules apply too


_STRING = re.compile(r"""(['"`])((?:\\.|(?!\1).)*)\1""")
_LOOKUP = re.compile(r"""(\w+(?:\(\))?)\s*\[\s*(['"`])([^'"`]+)\2\s*\]""")
_ALIAS = re.compile(r"""(?:const|let|var)\s+(\w+)\s*=\s*Runtime\.(getAssets|getFunctions)\(\)""")
_DOMAIN_TEMPLATE = re.compile(r"^(?:https?://)?\$\{\s*(?:context\.)?DOMAIN_NAME\s*\}(/[^`'\"\s]*)")
_EXTENSION = re.compile(r"/[^/]*\.[A-Za-z0-9]{1,5}$")
_SKIP_SCHEMES = ("mailto:", "tel:", "data:", "javascript:", "sms:", "#")


def _use_on_line(line: str) -> str:
    """How a URL on this line of code is used: `<Play>`, messaging media, or just named."""
    lowered = line.lower()
    if ".play(" in lowered or "<play" in lowered:
        return "play"
    if "mediaurl" in lowered or ".media(" in lowered or "<media" in lowered:
        return "media"
    return "url"


def url_path(url: str) -> str | None:
    """The published path a same-site URL names (None for another site or a non-path)."""
    url = url.strip()
    if not url or url.startswith(_SKIP_SCHEMES):
        return None
    templated = _DOMAIN_TEMPLATE.match(url)
    if templated:
        return _clean(templated.group(1))
    if "${" in url:
        return None  # a computed URL: nothing to check statically
    if url.startswith("//"):
        url = "https:" + url
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        host = parts.hostname or ""
        if host.endswith(".twil.io"):
            return _clean(parts.path or "/")
        if "/_serve/" in parts.path and host in ("127.0.0.1", "localhost"):
            rest = parts.path.split("/_serve/", 1)[1]
            return _clean("/" + rest.split("/", 1)[1]) if "/" in rest else None
        return None
    if parts.scheme:
        return None
    return _clean(parts.path) if parts.path.startswith("/") else None


def _clean(path: str) -> str:
    return unquote(posixpath.normpath(path)) if path not in ("", "/") else "/"


def js_references(file: str, text: str) -> list[Reference]:
    """References in one function's code."""
    whatsapp = "whatsapp:" in text
    aliases = {m.group(1): m.group(2) for m in _ALIAS.finditer(text)}
    found: list[Reference] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.lstrip()
        if stripped.startswith(("//", "*", "/*")):
            continue
        found.extend(_lookups(file, number, line, aliases, whatsapp))
        looked_up = {m.group(3) for m in _LOOKUP.finditer(line)}
        use = _use_on_line(line)
        for m in _STRING.finditer(line):
            value = m.group(2)
            if value in looked_up:
                continue
            path = url_path(value)
            if path is None or path == "/":
                continue
            literal_path = value.startswith("/") and not value.startswith("//")
            if literal_path and not _EXTENSION.search(path) and use == "url":
                continue  # "/api", "/" : a route or a prefix, not evidently a published file
            found.append(Reference(file, number, path, use, whatsapp))
    return found


def _lookups(file: str, number: int, line: str, aliases: dict[str, str],
             whatsapp: bool) -> Iterator[Reference]:
    for m in _LOOKUP.finditer(line):
        owner, key = m.group(1), m.group(3)
        kind = ("assets" if owner.endswith("getAssets()") or aliases.get(owner) == "getAssets"
                else "functions" if (owner.endswith("getFunctions()")
                                     or aliases.get(owner) == "getFunctions") else None)
        if kind is None:
            continue
        target = key if key.startswith("/") else "/" + key
        yield Reference(file, number, _clean(target), kind, whatsapp)


_TWIML_TAG = re.compile(r"<(Play|Media)\b[^>]*>\s*([^<\s]+)\s*</\1>", re.IGNORECASE)
_HTML_ATTR = re.compile(r"""\b(src|href)\s*=\s*(['"])([^'"]+)\2""", re.IGNORECASE)


def _resolve(url: str, published: str) -> str | None:
    """A URL in a published file, resolved against that file's own published path."""
    path = url_path(url)
    if path is not None or url.startswith(_SKIP_SCHEMES) or "://" in url or ":" in url[:8]:
        return path
    relative = url.split("#", 1)[0].split("?", 1)[0]
    if not relative:
        return None
    return _clean(posixpath.join(posixpath.dirname(published), relative))


def twiml_references(file: str, text: str, published: str) -> list[Reference]:
    """`<Play>` and `<Media>` URLs in a TwiML document the site publishes."""
    found = []
    for m in _TWIML_TAG.finditer(text):
        target = _resolve(m.group(2), published)
        if target is not None:
            line = text.count("\n", 0, m.start(2)) + 1
            found.append(Reference(file, line, target,
                                   "play" if m.group(1).lower() == "play" else "media"))
    return found


def html_references(file: str, text: str, published: str) -> list[Reference]:
    """`src` and `href` URLs in an HTML page the site publishes (same-site ones only)."""
    found = []
    for m in _HTML_ATTR.finditer(text):
        target = _resolve(m.group(3), published)
        if target is None or target == "/":
            continue
        if m.group(1).lower() == "href" and not _EXTENSION.search(target):
            continue  # a link to a folder or a route: Twilio serves files only, nothing to check
        line = text.count("\n", 0, m.start(3)) + 1
        found.append(Reference(file, line, target,
                               "browser" if m.group(1).lower() == "src" else "link"))
    return found


def studio_references(file: str, text: str) -> list[Reference]:
    """URLs in a Studio flow export (`{"states": [...]}`): `play` and `media_url` properties."""
    try:
        flow = json.loads(text)
    except ValueError:
        return []
    if not isinstance(flow, dict) or not isinstance(flow.get("states"), list):
        return []
    found = []
    for state in flow["states"]:
        properties = state.get("properties") if isinstance(state, dict) else None
        if not isinstance(properties, dict):
            continue
        for key, value in properties.items():
            path = url_path(value) if isinstance(value, str) else None
            if path is None or path == "/":
                continue
            use = "play" if key == "play" else "media" if key == "media_url" else "url"
            found.append(Reference(file, _line_of(text, value), path, use))
    return found


def _line_of(text: str, value: str) -> int:
    at = text.find(json.dumps(value)[1:-1])
    return text.count("\n", 0, at) + 1 if at >= 0 else 1
