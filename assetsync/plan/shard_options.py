"""The `[shard]` config section and the service naming scheme: options, group globs, unique names,
and where the last sync placed each file.

Pure. `assetsync.plan.shard` places files using these options (and re-exports them); a plan
whose placement is memoized needs only this module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from itertools import compress, repeat
from operator import attrgetter, ne, not_
from typing import TYPE_CHECKING

from assetsync.errors import ConfigError
from assetsync.frozen import frozen
from assetsync.limits import DEFAULT_BUILD_LIMITS, SERVICES_PER_ACCOUNT, BuildLimits

if TYPE_CHECKING:
    from assetsync.models import PublishedFile
    from assetsync.plan.assets import RecordedService

__all__ = [
    "MAX_SERVICE_NAME_LENGTH",
    "ShardGroup",
    "ShardOptions",
    "changed_paths",
    "compile_glob",
    "parse_shard_section",
    "previous_placement",
    "service_name",
    "service_names",
]

# CreateServiceRequest.UniqueName in twilio_serverless_v1.yaml: "This value must be 50 characters
# or less in length and be unique." The spec names no character set, but the unique name becomes
# the start of every environment's domain (`domain_base`, api-contract.md §3.1), so derived names
# only ever append `-<digits>`, which keeps a DNS-label-friendly name DNS-label-friendly.
MAX_SERVICE_NAME_LENGTH = 50

_PATH = attrgetter("path")
# A StrEnum member hashes and compares as its value: no `.value` per file.
_VERSION_KEY = attrgetter("digest", "path", "visibility")


@frozen
class ShardGroup:
    """Files whose published path matches any of `globs` must share one service (one domain)."""

    name: str
    globs: tuple[str, ...]


@frozen
class ShardOptions:
    """The `[shard]` section: limits per build, the account's service limit, groups.

    `first_service` globs pin files to the configured (first) service, where the site's Functions
    live: a Function reads private assets (`Runtime.getAssets()`) of its own service only. The URL
    map file is `[sync] urls_file`, for single and sharded sites alike.
    """

    limits: BuildLimits = DEFAULT_BUILD_LIMITS
    max_services: int = SERVICES_PER_ACCOUNT
    groups: tuple[ShardGroup, ...] = ()
    first_service: tuple[str, ...] = ()


_INT_KEYS: dict[str, int] = {
    # key -> smallest allowed value
    "max_services": 1,
    "public_protected_per_build": 1,
    "private_per_build": 1,
    "functions_per_build": 0,
}
_KNOWN_KEYS = (*_INT_KEYS, "groups", "first_service")


def _config_error(file: str, key: str, problem: str) -> ConfigError:
    return ConfigError(f"{file}: [shard] {key}: {problem}", key=f"shard.{key}", file=file)


def parse_shard_section(table: Mapping[str, object], *, file: str) -> ShardOptions:
    """Build `ShardOptions` from the parsed `[shard]` TOML table.

    Args:
        table: the `[shard]` table (empty when the section is absent).
        file: the config file's name, used in error messages.

    Raises:
        ConfigError: an unknown key, a value of the wrong type, or an invalid glob.
    """
    for key in table:
        if key == "urls_file":  # its home was [shard] before the URL map covered every site
            raise _config_error(file, key, "moved to [sync] urls_file, which applies to single "
                                "and sharded sites; move the line to the [sync] section")
        if key not in _KNOWN_KEYS:
            raise _config_error(
                file, key, f"unknown key; expected one of: {', '.join(_KNOWN_KEYS)}"
            )
    ints: dict[str, int] = {}
    for key, minimum in _INT_KEYS.items():
        value = table.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise _config_error(file, key, f"must be an integer >= {minimum} (got {value!r})")
        ints[key] = value
    defaults = DEFAULT_BUILD_LIMITS
    limits = BuildLimits(
        public_protected=ints.get("public_protected_per_build", defaults.public_protected),
        private=ints.get("private_per_build", defaults.private),
        functions=ints.get("functions_per_build", defaults.functions),
    )
    return ShardOptions(
        limits=limits,
        max_services=ints.get("max_services", SERVICES_PER_ACCOUNT),
        groups=_parse_groups(table.get("groups"), file),
        first_service=_parse_globs(table.get("first_service", []), file, "first_service", True),
    )


def _parse_groups(value: object, file: str) -> tuple[ShardGroup, ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise _config_error(
            file,
            "groups",
            'must be a table of name = ["/glob/**", ...] (e.g. voice = ["/voice/**"])',
        )
    return tuple(
        ShardGroup(name=str(name), globs=_parse_globs(globs, file, f"groups.{name}", False))
        for name, globs in value.items()
    )


def _parse_globs(value: object, file: str, key: str, may_be_empty: bool) -> tuple[str, ...]:
    globs = [value] if isinstance(value, str) else value
    if (
        not isinstance(globs, list)
        or not (globs or may_be_empty)
        or not all(isinstance(g, str) for g in globs)
    ):
        kind = "list" if may_be_empty else "non-empty list"
        raise _config_error(file, key, f"must be a {kind} of globs (got {value!r})")
    for glob in globs:
        try:
            compile_glob(glob)
        except ValueError as exc:
            raise _config_error(file, key, f"has an invalid glob {glob!r}: {exc}") from None
    return tuple(globs)


def compile_glob(pattern: str) -> re.Pattern[str]:
    """Compile a group glob over published paths.

    `**` matches anything including `/` (`/a/**/x` also matches `/a/x`), `*` and `?` stay within
    one path segment, `[abc]`/`[!abc]` are character classes. A missing leading `/` is implied and
    a trailing `/` means "everything below".

    Raises:
        ValueError: the pattern is empty or malformed (says why).
    """
    if not pattern or not pattern.strip():
        raise ValueError("a glob cannot be empty")
    p = pattern if pattern.startswith("/") else "/" + pattern
    if p.endswith("/"):
        p += "**"
    out: list[str] = []
    i = 0
    while i < len(p):
        if p.startswith("**/", i) and p[i - 1] == "/":
            out.append("(?:.*/)?")
            i += 3
        elif p.startswith("**", i):
            out.append(".*")
            i += 2
        elif p[i] == "*":
            out.append("[^/]*")
            i += 1
        elif p[i] == "?":
            out.append("[^/]")
            i += 1
        elif p[i] == "[":
            end = p.find("]", i + 2)  # a `]` right after `[` is a literal member
            if end == -1:
                raise ValueError("'[' is never closed with ']'")
            body = p[i + 1 : end]
            negate = body.startswith("!")
            body = re.escape(body[1:] if negate else body).replace("\\-", "-")
            out.append(f"[{'^' if negate else ''}{body}]")
            i = end + 1
        else:
            out.append(re.escape(p[i]))
            i += 1
    try:
        return re.compile("".join(out) + r"\Z")
    except re.error as exc:
        raise ValueError(str(exc)) from None


def service_name(base: str, index: int) -> str:
    """The unique name of the `index`-th service (from 1) of a site configured as `base`.

    The first service keeps `base`; the next ones are `base-2`, `base-3`, ... . When that would pass
    Twilio's 50-character limit, `base` is shortened just enough to make room for the suffix.
    """
    if index < 1:
        raise ValueError(f"service index starts at 1 (got {index})")
    if index == 1:
        return base
    suffix = f"-{index}"
    return base[: MAX_SERVICE_NAME_LENGTH - len(suffix)].rstrip("-") + suffix


def service_names(service: str, shard_options: object) -> list[str]:
    """Every name a service of the site may have: `service`, `service-2`, ... (`max_services`)."""
    most = shard_options.max_services if isinstance(shard_options, ShardOptions) else 1
    return [service_name(service, i) for i in range(1, most + 1)]


def previous_placement(
    files: Sequence[PublishedFile], recorded: Mapping[str, RecordedService]
) -> dict[str, str]:
    """Each file's service from the last sync: where it is deployed, else where its exact
    version was uploaded (a run interrupted before that service built), so a rerun keeps the
    placement the interrupted run had chosen and uploads nothing twice."""
    previous: dict[str, str] = {}
    for name, rec in recorded.items():
        previous.update(dict.fromkeys(rec.owned_paths, name))
    # Only the files no build holds (in C: on a synced site that is none of 10,000).
    unplaced = compress(files, map(not_, map(previous.__contains__, map(_PATH, files))))
    for f in unplaced if recorded else ():
        key = (f.digest, f.path, f.visibility)  # a StrEnum member hashes as its value
        home = next((n for n, rec in recorded.items() if key in rec.versions), None)
        if home is not None:
            previous[f.path] = home
    return previous


def changed_paths(files: Sequence[PublishedFile], recorded: Mapping[str, RecordedService],
                   previous: Mapping[str, str]) -> list[str]:
    """The paths of the files whose exact version (content, path, visibility) is not recorded
    in the service the last sync placed them in, in the files' order.

    `shard`'s `changed`. In C (maps, `compress`): a synced 10,000-file site asks this on every
    plan, and a Python loop over the files took ~10 ms of it (measured). Each key is looked up
    once in all services' versions together; a key recorded in two services (a file that
    moved) would make that ambiguous, and then each file is looked up in its own service."""
    keys = list(map(_VERSION_KEY, files))
    homes = map(previous.get, map(_PATH, files), repeat(""))
    owner: dict[tuple[str, str, str], str] = {}
    total = 0
    for name, rec in recorded.items():
        owner.update(zip(rec.versions.keys(), repeat(name)))
        total += len(rec.versions)
    if len(owner) == total:  # no key in two services: its one owner says it all
        found = map(owner.get, keys)
        return list(compress(map(_PATH, files), map(ne, homes, found)))
    return [f.path for f, key, home in zip(files, keys, homes)
            if home not in recorded or key not in recorded[home].versions]
