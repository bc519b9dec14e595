"""The URL map: every published public or protected path -> its full URL, as JSON or CSV.

Pure rendering, plus `write_url_map`, one small atomic writer. A sharded site spreads its files
over several services, each with its own environment domain; this map is how a static page or a
Function finds where a file went. Private assets have no URL (Twilio never serves them), so they
are left out.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from urllib.parse import quote

from assetsync.atomic import write_atomic
from assetsync.errors import ConfigError
from assetsync.frozen import frozen
from assetsync.models import Visibility

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_ORIGIN",
    "UrlEntry",
    "asset_url",
    "build_url_map",
    "render_csv",
    "render_json",
    "render_url_map",
    "url_entries",
    "url_map_format",
    "write_url_map",
]

logger = logging.getLogger(__name__)

# An environment serves its build at https://<domain_name><path> (api-contract.md §3.2:
# `domain_name` is `{service unique_name}-{random}-{suffix}.twil.io`).
DEFAULT_ORIGIN = "https://{domain}"
# What `quote(path, safe="/")` leaves as is (unreserved characters and `/`): such a path, the
# usual case, needs no quoting call (a sync maps every file: 1,000 calls showed in its time).
_PLAIN_PATH_RE = re.compile(r"[A-Za-z0-9/_.~-]*")

CSV_COLUMNS = ("path", "url", "visibility", "service", "environment_domain")


@frozen
class UrlEntry:
    """Where one published file can be fetched."""

    path: str
    service: str
    environment_domain: str
    url: str
    visibility: Visibility


def asset_url(domain: str, path: str, *, origin: str = DEFAULT_ORIGIN) -> str:
    """The URL of `path` (leading `/`) in the environment whose domain is `domain`.

    The path is percent-encoded (UTF-8) except for `/` and the unreserved characters.
    """
    plain = _PLAIN_PATH_RE.fullmatch(path) is not None
    return origin.format(domain=domain) + (path if plain else quote(path, safe="/"))


def build_url_map(
    files: Iterable[tuple[str, Visibility | str, str]],
    domains: Mapping[str, str],
    *,
    origin: str = DEFAULT_ORIGIN,
    exclude: Collection[str] = (),
) -> tuple[UrlEntry, ...]:
    """Build the URL map, sorted by path.

    Args:
        files: (published path, visibility, service unique name) for each published file;
            private files are skipped.
        domains: service unique name -> its environment's `domain_name`.
        origin: how a domain becomes an origin; `{domain}` is replaced (e.g. an emulator's
            `http://127.0.0.1:8080` can ignore it).
        exclude: paths to leave out (the URL map's own published path, so that publishing the
            map never changes the map).

    Raises:
        ValueError: a file's service has no domain in `domains`.
    """
    entries = []
    for path, visibility, service in files:
        vis = Visibility(visibility)
        if vis is Visibility.PRIVATE or path in exclude:
            continue
        domain = domains.get(service)
        if domain is None:
            raise ValueError(f"no environment domain for service {service!r} (file {path!r})")
        entries.append(UrlEntry(path, service, domain, asset_url(domain, path, origin=origin), vis))
    entries.sort(key=lambda e: e.path)
    return tuple(entries)


def url_entries(
    service: str, domain_name: str | None, files: Iterable[tuple[str, str]],
    *, exclude: Iterable[str] = (),
) -> tuple[UrlEntry, ...]:
    """The URL map of one service's (path, visibility) pairs; private files have no URL."""
    if not domain_name:
        return ()
    return build_url_map(((path, vis, service) for path, vis in files), {service: domain_name},
                         exclude=frozenset(exclude))


def render_json(entries: Iterable[UrlEntry], *, detailed: bool = False) -> str:
    """JSON text: `{"/path": "https://…", …}` sorted by path, ready for a lookup.

    With `detailed`, a list of objects with every `CSV_COLUMNS` field instead.
    """
    ordered = sorted(entries, key=lambda e: e.path)
    value: object
    if detailed:
        value = [dict(zip(CSV_COLUMNS, _row(e), strict=True)) for e in ordered]
    else:
        value = {e.path: e.url for e in ordered}
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def render_csv(entries: Iterable[UrlEntry]) -> str:
    """CSV text with a header row (`CSV_COLUMNS`), sorted by path, `\\n` line ends."""
    import csv  # only a CSV URL map needs it

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(_row(e) for e in sorted(entries, key=lambda e: e.path))
    return out.getvalue()


def _row(entry: UrlEntry) -> tuple[str, str, str, str, str]:
    return (entry.path, entry.url, str(entry.visibility), entry.service, entry.environment_domain)


def url_map_format(path: str | os.PathLike[str]) -> str:
    """`"csv"` for a `.csv` file name, else `"json"`."""
    return "csv" if os.fspath(path).lower().endswith(".csv") else "json"


def render_url_map(entries: Iterable[UrlEntry], fmt: str) -> str:
    """Render as `"json"` or `"csv"`.

    Raises:
        ValueError: an unknown format.
    """
    if fmt == "json":
        return render_json(entries)
    if fmt == "csv":
        return render_csv(entries)
    raise ValueError(f"unknown URL map format {fmt!r}; use json or csv")


def write_url_map(path: Path, entries: Iterable[UrlEntry], *, fmt: str | None = None) -> bool:
    """Write the map to `path` atomically (format from the suffix unless `fmt`).

    The file is replaced only when its content changes, so an unchanged map never wakes a watcher
    or re-publishes itself. Parent folders are created.

    Returns:
        True when the file was written, False when it already held this map.

    Raises:
        ConfigError: the file cannot be written (names it and `[sync] urls_file`).
    """
    data = render_url_map(entries, fmt or url_map_format(path)).encode("utf-8")
    mode = 0o644  # mkstemp makes 0600; the map is meant to be read (and published)
    try:
        if path.read_bytes() == data:
            return False
        mode = path.stat().st_mode & 0o777
    except OSError:
        pass  # absent or unreadable: write it
    try:
        write_atomic(path, data, mode=mode)
    except OSError as exc:
        raise ConfigError(
            f"cannot write the URL map {path}: {exc.strerror or exc}; fix [sync] urls_file "
            "or the folder's permissions",
            key="sync.urls_file",
        ) from None
    logger.info("wrote URL map %s (%d bytes)", path, len(data))
    return True
