"""Path globs as assetsync uses them for ignore, deny and visibility rules (pure).

The syntax is the familiar subset of gitignore:

- `*` matches within one path segment, `?` one character, `[abc]` / `[!abc]` a set;
  `**` matches any number of whole segments (`img/**/*.png`, `**/raw`).
- A pattern without a `/` matches a file or folder name at any depth (`*.psd`, `.DS_Store`).
- A pattern containing a `/` is anchored at the source folder (`raw/big.png`); a leading `/`
  just makes that explicit.
- A trailing `/` matches folders only (`.git/`); a matched folder covers everything inside it.

Negation (`!pattern`) is refused rather than half-supported: the deny list must never be
re-opened by a later pattern.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache

__all__ = ["GlobError", "GlobSet", "compile_glob_set", "validate_glob"]


class GlobError(ValueError):
    """A glob pattern that cannot be compiled; the message says why."""


# Inside a regex set these begin what Python's `re` reads (or will read, warning now) as a
# nested set or a set operation (`[[`, `&&`, `~~`, `||`, `--`: re's FutureWarning); in a glob
# they are plain characters.
_SET_LITERALS = str.maketrans({c: "\\" + c for c in "\\[&~|"})


def _set_items(inner: str) -> str:
    """A glob set's contents (after a leading '^', kept) as regex set items: ranges stay
    ranges, every other character stands for itself."""
    negate = "^" if inner.startswith("^") else ""
    items = inner[len(negate):].translate(_SET_LITERALS)
    while "--" in items:  # a second '-' in a row: a literal, not a set difference
        items = items.replace("--", "-\\-", 1)
    return negate + items


def _translate(body: str) -> str:
    """Regex source for one pattern body (no anchoring, no trailing slash)."""
    out: list[str] = []
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c == "*":
            if body.startswith("**", i):
                before_ok = i == 0 or body[i - 1] == "/"
                after = i + 2
                if not before_ok or (after < n and body[after] != "/"):
                    raise GlobError("'**' must be a whole path segment (like 'a/**/b')")
                if after < n:  # '**/' : zero or more leading segments
                    out.append("(?:[^/]+/)*")
                    i = after + 1
                else:  # trailing '**' : everything below
                    out.append(".*")
                    i = after
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            first = i + 2 if body.startswith(("[!", "[^"), i) else i + 1
            # A ']' first in the set (after any '!') is one of its characters, not its end.
            end = body.find("]", first + 1 if body.startswith("]", first) else first)
            if end < 0:
                raise GlobError("unclosed '[' character set")
            inner = body[i + 1 : end]
            if inner[:1] in ("!", "^"):
                inner = "^" + inner[1:]
            if not inner.strip("^"):
                raise GlobError("empty '[]' character set")
            out.append("[" + _set_items(inner) + "]")
            i = end + 1
            continue
        elif c == "\\":
            if i + 1 >= n:
                raise GlobError("pattern ends with a lone '\\'")
            out.append(re.escape(body[i + 1]))
            i += 2
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _parse(pattern: str) -> tuple[str, bool, bool]:
    """(regex body, anchored, dir_only) for one pattern, or GlobError."""
    if not isinstance(pattern, str):
        raise GlobError("a glob must be a string")
    p = pattern.strip()
    if not p:
        raise GlobError("empty pattern")
    if p.startswith("!"):
        raise GlobError("negation ('!') is not supported; narrow the other patterns instead")
    dir_only = p.endswith("/")
    p = p.rstrip("/")
    anchored = "/" in p
    p = p.lstrip("/")
    if not p:
        raise GlobError("pattern matches nothing")
    if any(seg in (".", "..") for seg in p.split("/")):
        raise GlobError("'.' and '..' segments are not allowed")
    regex = _translate(p)
    # Only a character set can make the translation an invalid regex (a range like `[z-a]`):
    # everything else is escaped text or fixed pieces. Compiling every pattern just to check
    # it cost each process ~2 ms for the ~40 default patterns.
    if "[" in p:
        try:
            re.compile(regex)
        except re.error as exc:
            raise GlobError(str(exc)) from None
    return regex, anchored, dir_only


def validate_glob(pattern: object) -> str | None:
    """Why `pattern` is not a valid glob, or None when it is."""
    try:
        _parse(pattern)  # type: ignore[arg-type]
    except GlobError as exc:
        return str(exc)
    return None


def _alternation(parts: list[str]) -> re.Pattern[str] | None:
    return re.compile("(?:" + "|".join(parts) + r")\Z") if parts else None


_META = frozenset("*?[\\")


def _name_test(patterns: list[str]) -> Callable[[str], bool] | None:
    """One test for name patterns; literal names, `*suffix` and `prefix*` skip the regex.

    The deny list is mostly such patterns, and `str.endswith(tuple)` is several times faster
    than a 30-way regex alternation on every file name a scan sees.
    """
    exact: set[str] = set()
    suffixes: list[str] = []
    prefixes: list[str] = []
    rest: list[str] = []
    for p in patterns:
        if not _META & set(p):
            exact.add(p)
        elif p.startswith("*") and not _META & set(p[1:]):
            suffixes.append(p[1:])
        elif p.endswith("*") and not p.endswith("**") and not _META & set(p[:-1]):
            prefixes.append(p[:-1])
        else:
            rest.append(_translate(p))
    if not (exact or suffixes or prefixes or rest):
        return None
    ends, starts = tuple(suffixes), tuple(prefixes)
    regex = _alternation(rest)
    rx = regex.match if regex is not None else None

    def test(name: str) -> bool:
        return (
            name in exact
            or (bool(ends) and name.endswith(ends))
            or (bool(starts) and name.startswith(starts))
            or (rx is not None and rx(name) is not None)
        )

    return test


class GlobSet:
    """A compiled set of globs; matching costs a few C-level checks per entry."""

    __slots__ = ("_name_any", "_name_dir", "_path_any", "_path_dir", "patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        name_any: list[str] = []
        name_dir: list[str] = []
        path_any: list[str] = []
        path_dir: list[str] = []
        for pattern in self.patterns:
            regex, anchored, dir_only = _parse(pattern)
            if anchored:
                (path_dir if dir_only else path_any).append(regex)
            else:
                body = pattern.strip().rstrip("/")
                (name_dir if dir_only else name_any).append(body)
        self._name_any = _name_test(name_any)
        self._name_dir = _name_test(name_dir)
        self._path_any = _alternation(path_any)
        self._path_dir = _alternation(path_dir)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def file_matchers(
        self,
    ) -> tuple[Callable[[str], object] | None, Callable[[str], object] | None]:
        """(by name, by relative path) tests for files, for inlined hot loops; None = no rule."""
        return self._name_any, self._path_any.match if self._path_any is not None else None

    def match_entry(self, rel_path: str, name: str, is_dir: bool) -> bool:
        """Whether this entry itself matches (its parent folders are not looked at).

        The walk calls this once per entry and never descends into a matched folder, so
        together that equals `match`.
        """
        if self._name_any is not None and self._name_any(name):
            return True
        if self._path_any is not None and self._path_any.match(rel_path):
            return True
        if is_dir:
            if self._name_dir is not None and self._name_dir(name):
                return True
            if self._path_dir is not None and self._path_dir.match(rel_path):
                return True
        return False

    def match(self, rel_path: str, is_dir: bool = False) -> bool:
        """Whether `rel_path` (POSIX, relative) or any folder above it matches."""
        parts = rel_path.split("/")
        for depth in range(1, len(parts)):
            if self.match_entry("/".join(parts[:depth]), parts[depth - 1], True):
                return True
        return self.match_entry(rel_path, parts[-1], is_dir)


@lru_cache(maxsize=64)
def compile_glob_set(patterns: tuple[str, ...]) -> GlobSet:
    """A cached `GlobSet` for a tuple of patterns (config values are immutable tuples)."""
    return GlobSet(patterns)
