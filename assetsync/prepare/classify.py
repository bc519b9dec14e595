"""Pure classification: visibility rules, Serverless Toolkit naming, content types, and the
Twilio path and size checks every published file must pass before anything is sent.
"""

from __future__ import annotations

import mimetypes
import posixpath
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import Literal

from assetsync.frozen import frozen
from assetsync.limits import MAX_PATH_LENGTH, MAX_PRIVATE_ASSET_BYTES, MAX_PUBLIC_ASSET_BYTES
from assetsync.models import PublishedFile, ScannedFile, Visibility
from assetsync.scan.globs import compile_glob_set

__all__ = [
    "Classified",
    "Issue",
    "VisibilityRules",
    "check_published",
    "classify",
    "content_type_for",
    "duplicate_paths",
    "published_name",
]

# Positional construction without NamedTuple.__new__'s keyword handling (per file, per sync).
_new_tuple = tuple.__new__

Severity = Literal["error", "warning"]


@frozen
class Issue:
    """One problem with one file; `error` means the file cannot be published."""

    path: str
    message: str
    severity: Severity = "error"


@frozen
class VisibilityRules:
    """How a file's visibility is chosen, from `[visibility]` in the config.

    Order: the file name's toolkit marker (`.private.` / `.protected.`) wins, then a
    `private` glob, then a `protected` glob, then `default`.
    """

    default: Visibility = Visibility.PUBLIC
    protected: tuple[str, ...] = ()
    private: tuple[str, ...] = ()


@frozen
class Classified:
    """What `classify` returns: files to publish, sorted by path, and issues found."""

    files: tuple[PublishedFile, ...]
    issues: tuple[Issue, ...]


# Types the stdlib table lacks or gets wrong for Twilio use (voice <Play>, MMS, web).
# Sources: IANA media types registry; RFC 4867 (AMR), RFC 7845 (Ogg Opus), RFC 8081 (fonts);
# Twilio's "Accepted content types for media" and <Play> supported audio pages.
_CONTENT_TYPES: dict[str, str] = {
    ".mp3": "audio/mpeg",
    ".wav": "audio/wav",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/opus",
    ".amr": "audio/amr",
    ".awb": "audio/amr-wb",
    ".m4a": "audio/mp4",
    ".aac": "audio/aac",
    ".flac": "audio/flac",
    ".ulaw": "audio/basic",
    ".au": "audio/basic",
    ".3gp": "video/3gpp",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".svg": "image/svg+xml",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".heic": "image/heic",
    ".ico": "image/vnd.microsoft.icon",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".html": "text/html",
    ".htm": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".xml": "application/xml",
    ".txt": "text/plain",
    ".csv": "text/csv",
    ".md": "text/markdown",
    ".pdf": "application/pdf",
    ".vcf": "text/vcard",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".wasm": "application/wasm",
}
_OCTET_STREAM = "application/octet-stream"

# Twilio's path rules, as the official toolkit checks them (serverless-api utils/fs.ts
# `checkForValidPath`; api-contract.md §7.3): leading '/', shorter than 256 characters, and
# none of these characters. Whitespace becomes '-' before the check, as the toolkit does.
_FORBIDDEN_PATH_CHARS = "#;,?:@+&$()'\" "
_FORBIDDEN_RE = re.compile("[" + re.escape(_FORBIDDEN_PATH_CHARS) + r"\x00-\x1f\x7f]")
_WHITESPACE_RE = re.compile(r"\s")

_MARKERS = (
    (".protected", Visibility.PROTECTED),
    (".private", Visibility.PRIVATE),
)


def content_type_for(name: str) -> str:
    """The MIME type for a file name, from its extension (case-insensitive)."""
    return _content_type_for_ext(posixpath.splitext(name)[1].lower())


@lru_cache(maxsize=512)
def _content_type_for_ext(ext: str) -> str:
    found = _CONTENT_TYPES.get(ext)
    if found is not None:
        return found
    guessed, _encoding = _stdlib_types().guess_type("x" + ext, strict=False)
    return guessed or _OCTET_STREAM


@lru_cache(maxsize=1)
def _stdlib_types() -> mimetypes.MimeTypes:
    """MimeTypes() without files reads only the built-in table: the same answer on every
    machine. Built on first use (~2 ms): most syncs find every extension in `_CONTENT_TYPES`
    or in the type cache."""
    return mimetypes.MimeTypes()


def published_name(rel_path: str) -> tuple[str, Visibility | None]:
    """The published path of a source file and the visibility its name asks for.

    Follows the Serverless Toolkit (serverless-api `getPathAndAccessFromFileInfo`): a
    `.protected` or `.private` marker right before the extension sets the visibility and is
    removed (`img/logo.private.png` -> `/img/logo.png`); every whitespace character becomes `-`.
    """
    path, marked, _ext = _name_parts(rel_path)
    return path, marked


def _name_parts(rel_path: str) -> tuple[str, Visibility | None, str]:
    if ".p" in rel_path:  # a `.protected` or `.private` marker may be in it
        return _marked_name_parts(rel_path)
    # The usual name (every sync classifies every file): `_marked_name_parts` without the
    # marker to strip, which a test holds equal to it.
    path = "/" + rel_path
    if _WHITESPACE_RE.search(path):
        path = _WHITESPACE_RE.sub("-", path)
    dot, slash = rel_path.rfind("."), rel_path.rfind("/")
    ext = rel_path[dot:] if dot > slash + 1 and rel_path[slash + 1 : dot].strip(".") else ""
    return path, None, ext


def _marked_name_parts(rel_path: str) -> tuple[str, Visibility | None, str]:
    slash = rel_path.rfind("/")
    base = rel_path[slash + 1 :]
    dot = base.rfind(".")
    if dot > 0 and base[:dot].strip("."):  # as posixpath.splitext: leading dots are no extension
        stem, ext = base[:dot], base[dot:]
    else:
        stem, ext = base, ""
    marked: Visibility | None = None
    for marker, visibility in _MARKERS:
        if stem.endswith(marker):
            stem = stem[: -len(marker)]
            marked = visibility
            break
    path = "/" + rel_path[: slash + 1] + stem + ext
    if _WHITESPACE_RE.search(path):
        path = _WHITESPACE_RE.sub("-", path)
    return path, marked, ext


def _visibility(rel_path: str, marked: Visibility | None, rules: VisibilityRules) -> Visibility:
    if marked is not None:
        return marked
    if rules.private and compile_glob_set(rules.private).match(rel_path):
        return Visibility.PRIVATE
    if rules.protected and compile_glob_set(rules.protected).match(rel_path):
        return Visibility.PROTECTED
    return rules.default


_BY_PATH_AND_SOURCE = itemgetter(0, 4)  # (path, source) of a PublishedFile, without a lambda


def classify(files: Iterable[ScannedFile], rules: VisibilityRules, *, source: Path) -> Classified:
    """Give each scanned file its published path, visibility and content type.

    Args:
        files: what the scan found.
        rules: `[visibility]` from the config.
        source: the source folder (each file's `content_path` is `source/rel_path`).

    Returns:
        Published files sorted by path. Path and size checks are `check_published`'s job,
        run on the final outputs (after any transform).
    """
    out: list[PublishedFile] = []
    issues: list[Issue] = []
    root = str(source).rstrip("/")  # "" for "/", so paths never start with "//"
    folders: dict[str, str] = {"": root + "/"}
    types: dict[str, str] = {}  # extension -> content type, for this call
    # Hoisted for the usual site (every sync classifies every file): no glob rules to test.
    globless = not rules.private and not rules.protected
    default = rules.default
    for rel, size, digest in files:  # a ScannedFile's fields, unpacked in one step
        path, marked, ext = _name_parts(rel)
        if marked is None:
            visibility = default if globless else _visibility(rel, None, rules)
        else:
            visibility = marked
            by_glob = _visibility(rel, None, rules)
            if by_glob is not marked and by_glob is not rules.default:
                issues.append(
                    Issue(
                        rel,
                        f"the name marks it {marked.value} but a [visibility] {by_glob.value} "
                        f"glob matches it too; the name wins",
                        "warning",
                    )
                )
        slash = rel.rfind("/")
        folder = rel[:slash] if slash > 0 else ""
        parent = folders.get(folder)
        if parent is None:
            parent = folders[folder] = f"{root}/{folder}/"
        content_type = types.get(ext)
        if content_type is None:
            content_type = types[ext] = _content_type_for_ext(ext.lower())
        out.append(
            _new_tuple(PublishedFile, (  # PublishedFile(...) without its keyword handling
                path,
                visibility,
                digest,
                size,
                rel,
                parent + rel[slash + 1 :],
                content_type,
                None,
            ))
        )
    out.sort(key=_BY_PATH_AND_SOURCE)
    return Classified(files=tuple(out), issues=tuple(issues))


def _path_problem(path: str) -> str | None:
    if not path.startswith("/"):
        return f"published path {path!r} must start with '/'"
    if len(path) > MAX_PATH_LENGTH:
        return (
            f"published path is {len(path)} characters; Twilio allows at most {MAX_PATH_LENGTH}: "
            "shorten the file or folder names"
        )
    bad = _FORBIDDEN_RE.search(path)
    if bad is not None:
        char = bad.group()
        shown = repr(char) if char.isprintable() else f"U+{ord(char):04X}"
        return (
            f"published path {path!r} contains {shown}, which Twilio does not allow "
            f"(none of {_FORBIDDEN_PATH_CHARS.strip()} or a space): rename the file"
        )
    if "//" in path or path.endswith("/"):
        return f"published path {path!r} has an empty segment: rename the file"
    return None


def _size_problem(file: PublishedFile) -> str | None:
    limit = (
        MAX_PRIVATE_ASSET_BYTES if file.visibility is Visibility.PRIVATE else MAX_PUBLIC_ASSET_BYTES
    )
    if file.size > limit:
        return (
            f"{file.size:,} bytes is over Twilio's {limit // 1_000_000} MB limit for "
            f"{file.visibility.value} assets: shrink it, split it, or ignore it"
        )
    return None


def duplicate_paths(pairs: Iterable[tuple[str, str]]) -> tuple[Issue, ...]:
    """One error per source whose published path an earlier source already has, naming both.

    Args:
        pairs: (published path, source rel_path) for each file.
    """
    issues: list[Issue] = []
    owners: dict[str, str] = {}
    for path, source in pairs:
        first = owners.setdefault(path, source)
        if first != source:
            issues.append(
                Issue(source, f"publishes to {path}, as {first} does: rename or ignore one of them")
            )
    return tuple(issues)


def check_published(files: Sequence[PublishedFile]) -> tuple[Issue, ...]:
    """Check final outputs against Twilio's rules before anything is sent.

    Each problem is one `Issue` naming the source file: path rules, size limits, and two
    files that would publish to the same path (naming both).
    """
    issues = [
        Issue(file.source, problem)
        for file in files
        if (problem := _path_problem(file.path) or _size_problem(file)) is not None
    ]
    issues.extend(duplicate_paths((f.path, f.source) for f in files))
    issues.sort(key=lambda i: (i.path, i.message))
    return tuple(issues)
