"""Preview environments: a throwaway Environment per pull request or branch, its expiry kept on
the environment itself, and the commands that list, delete and prune them.

A preview is an Environment whose unique name and domain suffix are its name and which holds
the Variable `ASSETSYNC_PREVIEW_EXPIRES` (an ISO 8601 UTC time): every machine that can read the
service sees which environments are previews and when they expire; no local state is needed.
Deploying one is a `sync` to that environment, so every version already uploaded to the service
is reused (versions are recorded per service, not per environment).

Name derivation (`preview_name`, `sanitize_name`, `branch_from_head`, `parse_ttl`) is pure: the
CLI reads the CI's variables and `.git/HEAD` and passes their values in.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from assetsync.config import Config, target_key
from assetsync.errors import AssetsyncError, ConfigError, LimitError, NotFoundError
from assetsync.frozen import frozen, replace
from assetsync.limits import ENVIRONMENTS_PER_SERVICE
from assetsync.remote.client import ServerlessClient
from assetsync.remote.resources import Environment
from assetsync.results import EventCallback, SyncResult
from assetsync.state.db import State
from assetsync.sync.locate import find_environment, find_service
from assetsync.sync.run import sync_async
from assetsync.sync.session import open_client, run_on_state, run_sync
from assetsync.sync.sharded import service_names

__all__ = [
    "EXPIRES_VARIABLE",
    "MAX_NAME_LENGTH",
    "PreviewEnvironment",
    "PreviewPrune",
    "PreviewResult",
    "branch_from_head",
    "check_name",
    "delete_preview",
    "deploy_preview",
    "format_expiry",
    "list_previews",
    "parse_ttl",
    "preview_name",
    "prune_previews",
    "sanitize_name",
]


# The Variable that marks an environment as a preview and says when it expires.
EXPIRES_VARIABLE = "ASSETSYNC_PREVIEW_EXPIRES"

# The name is both the environment's UniqueName (at most 100 characters) and its DomainSuffix
# (at most 16, "URL-friendly"): twilio_serverless_v1.yaml, CreateEnvironment; api-contract.md
# §3.2. The emulator, like Twilio's domains, takes letters, digits and '-'; lower case is kept
# because the domain is lower-cased anyway and two names must not differ only in case.
MAX_NAME_LENGTH = 16
_VALID_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*\Z")
_PULL_REF = re.compile(r"refs/pull/(\d+)/(?:merge|head)\Z")
_TTL = re.compile(r"(\d+)([smhdw])\Z")
_TTL_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_HASH_CHARS = 5  # of a truncated name: keeps two long branches with one prefix apart


# ------------------------------------------------------------------------------- names (pure)

def sanitize_name(raw: str) -> str:
    """`raw` (a branch, a ref) as a valid preview name: lower case, letters, digits and single
    dashes, at most 16 characters.

    A name that had to be shortened ends in 5 hex digits of the original's SHA-1, so two long
    branches that share a prefix still get two environments. Returns "" when nothing of `raw`
    is usable.
    """
    name = re.sub(r"[^a-z0-9]+", "-", raw.lower()).strip("-")
    if len(name) <= MAX_NAME_LENGTH:
        return name
    digest = hashlib.sha1(raw.encode("utf-8")).hexdigest()[:_HASH_CHARS]
    head = name[: MAX_NAME_LENGTH - _HASH_CHARS - 1].strip("-")
    return f"{head}-{digest}" if head else digest


def branch_from_head(head: str) -> str | None:
    """The branch named by the text of `.git/HEAD` (`ref: refs/heads/NAME`); None when
    detached (HEAD holds a commit)."""
    text = head.strip()
    prefix = "ref: refs/heads/"
    if not text.startswith(prefix):
        return None
    return text[len(prefix):] or None


def preview_name(
    *,
    github_ref: str | None = None,
    gitlab_mr_iid: str | None = None,
    ci_branch: str | None = None,
    git_branch: str | None = None,
) -> str | None:
    """The preview's name from the CI's values, most specific first.

    Args:
        github_ref: GitHub Actions' `GITHUB_REF`: `refs/pull/7/merge` gives `pr-7`,
            `refs/heads/NAME` the branch.
        gitlab_mr_iid: GitLab CI's `CI_MERGE_REQUEST_IID`: `7` gives `mr-7`.
        ci_branch: the CI's branch name (GitLab's `CI_COMMIT_BRANCH`).
        git_branch: the checkout's branch (`branch_from_head` of `.git/HEAD`).

    Returns:
        A valid name (`sanitize_name`), or None when no value names anything.
    """
    ref = (github_ref or "").strip()
    pull = _PULL_REF.match(ref)
    if pull:
        return sanitize_name(f"pr-{int(pull.group(1))}")
    iid = (gitlab_mr_iid or "").strip()
    if iid.isdigit():
        return sanitize_name(f"mr-{int(iid)}")
    branches = (ref[len("refs/heads/"):] if ref.startswith("refs/heads/") else "",
                ci_branch or "", git_branch or "")
    for branch in branches:
        name = sanitize_name(branch.strip())
        if name:
            return name
    return None


def check_name(name: str) -> str:
    """`name` if it is a valid preview name; else a ConfigError suggesting the valid form."""
    if _VALID_NAME.match(name) and len(name) <= MAX_NAME_LENGTH:
        return name
    hint = sanitize_name(name)
    suggestion = f" (for example {hint!r})" if hint else ""
    raise ConfigError(
        f"preview name {name!r}: use at most {MAX_NAME_LENGTH} lower-case letters, digits and "
        f"single dashes{suggestion}: it is the environment's domain suffix", key="NAME")


def parse_ttl(text: str) -> timedelta:
    """`7d`, `12h`, `30m`, `2w`, `90s` as a timedelta (more than zero)."""
    match = _TTL.match(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise ConfigError(f"--ttl {text}: expected a number and a unit, such as 7d, 12h or "
                          "30m (s, m, h, d, w), more than zero", key="--ttl")
    return timedelta(seconds=int(match.group(1)) * _TTL_UNITS[match.group(2)])


def format_expiry(when: datetime) -> str:
    """The Variable's value: ISO 8601 in UTC to the second (`2026-12-14T09:30:00Z`)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_expiry(value: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(value.strip())  # 3.11+ reads a trailing Z
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


# ------------------------------------------------------------------------------- results

@frozen
class PreviewEnvironment:
    """One preview environment of one service of the site."""

    name: str
    service: str
    service_sid: str
    environment_sid: str
    domain_name: str
    build_sid: str | None
    date_created: str
    expires: str  # the Variable's value as recorded
    expired: bool  # its expiry has passed (an unreadable expiry never counts as passed)

    @property
    def url(self) -> str:
        """`https://<domain>`."""
        return f"https://{self.domain_name}"

    def to_json(self) -> dict[str, object]:
        """The JSON form for `--json`."""
        return {"name": self.name, "service": self.service, "service_sid": self.service_sid,
                "environment_sid": self.environment_sid, "domain_name": self.domain_name,
                "url": self.url, "build_sid": self.build_sid,
                "date_created": self.date_created, "expires": self.expires,
                "expired": self.expired}


@frozen
class PreviewResult:
    """A deployed preview: the sync's own result, its URL and its expiry."""

    name: str
    url: str
    expires: str
    sync: SyncResult

    def to_json(self) -> dict[str, object]:
        """The sync document with the preview's name, URL and expiry added."""
        return {**self.sync.to_json(),
                "preview": {"name": self.name, "url": self.url, "expires": self.expires}}


@frozen
class PreviewPrune:
    """What `preview --prune` found: the expired previews (deleted unless a dry run)."""

    expired: tuple[PreviewEnvironment, ...]
    kept: tuple[PreviewEnvironment, ...]
    dry_run: bool

    def to_json(self) -> dict[str, object]:
        """The JSON form for `--json`."""
        return {"dry_run": self.dry_run, "expired": [p.to_json() for p in self.expired],
                "kept": [p.to_json() for p in self.kept]}


# ------------------------------------------------------------------------------- remote side

async def _site_service_sids(api: ServerlessClient, state: State, target: str,
                             config: Config) -> list[tuple[str, str]]:
    """(unique name, SID) of each existing service of the site: the configured one, then a
    sharded site's others that the state knows."""
    out = []
    for index, name in enumerate(service_names(config.service, config.shard)):
        rec = state.get_service(target, name)
        if index > 0 and rec is None:
            continue
        svc = await find_service(api, name, rec.service_sid if rec else None, create=False)
        if svc is not None:
            out.append((name, svc.sid))
    return out


async def _expiry_of(api: ServerlessClient, env: Environment) -> str | None:
    """The environment's recorded expiry, None when it is no preview."""
    for variable in await api.list_variables(env.service_sid, env.sid):
        if variable.key == EXPIRES_VARIABLE:
            return variable.value
    return None


async def _previews_of(api: ServerlessClient, service: str, service_sid: str,
                       now: datetime) -> tuple[list[PreviewEnvironment], list[Environment]]:
    """A service's previews, and all its environments."""
    envs = list(await api.list_environments(service_sid))
    found = []
    for env in envs:
        expires = await _expiry_of(api, env)
        if expires is None:
            continue
        when = _parse_expiry(expires)
        found.append(PreviewEnvironment(
            env.unique_name, service, service_sid, env.sid, env.domain_name, env.build_sid,
            env.date_created, expires, when is not None and when <= now))
    return found, envs


def _oldest_first(previews: Sequence[PreviewEnvironment]) -> list[PreviewEnvironment]:
    return sorted(previews, key=lambda p: (p.date_created, p.name))


def _cap_error(service: str, name: str, previews: Sequence[PreviewEnvironment],
               count: int) -> LimitError:
    """The one error at the environment cap, naming the oldest previews to delete."""
    oldest = _oldest_first(previews)[:3]
    if oldest:
        names = ", ".join(f"{p.name} (created {p.date_created or 'at an unknown time'}, "
                          f"expires {p.expires})" for p in oldest)
        what = (f"delete the oldest previews first, e.g. `assetsync preview --delete "
                f"{oldest[0].name}` (oldest: {names}), or `assetsync preview --prune --yes` "
                "for the expired ones")
    else:
        what = "none of them is a preview: delete an environment you no longer use"
    return LimitError(
        f"cannot create preview {name}: service {service} already has {count} environments "
        f"(Twilio allows {ENVIRONMENTS_PER_SERVICE} per service); {what}",
        limit="environments_per_service")


async def _prepare_environment(api: ServerlessClient, state: State, target: str,
                               service: str, service_sid: str, name: str,
                               expires: str, now: datetime) -> None:
    """The preview's environment in one service, marked with its expiry; refused at the cap
    (before any upload) and refused for an environment that is no preview."""
    previews, envs = await _previews_of(api, service, service_sid, now)
    env = next((e for e in envs if e.unique_name == name or e.domain_suffix == name), None)
    if env is None and len(envs) >= ENVIRONMENTS_PER_SERVICE:
        raise _cap_error(service, name, previews, len(envs))
    if env is not None and not any(p.environment_sid == env.sid for p in previews):
        raise ConfigError(
            f"environment {name} of service {service} exists and is not a preview (it has no "
            f"{EXPIRES_VARIABLE} variable): pick another preview name, or deploy to it with "
            f"`assetsync sync --env {name}`", key="NAME")
    if env is None:
        env = await find_environment(api, service_sid, name, None, create=True)
        assert env is not None  # create=True always returns one
        state.record_environment(target, service_sid, name, env.sid, env.domain_name)
    await _mark(api, env.service_sid, env.sid, expires)


async def _mark(api: ServerlessClient, service_sid: str, env_sid: str, expires: str) -> None:
    """Set the expiry Variable (created, or updated when it differs)."""
    for variable in await api.list_variables(service_sid, env_sid):
        if variable.key == EXPIRES_VARIABLE:
            if variable.value != expires:
                await api.update_variable(service_sid, env_sid, variable.sid, expires)
            return
    await api.create_variable(service_sid, env_sid, EXPIRES_VARIABLE, expires)


def deploy_preview(
    config: Config,
    name: str,
    *,
    ttl: timedelta,
    now: datetime | None = None,
    client: ServerlessClient | None = None,
    on_event: EventCallback | None = None,
) -> PreviewResult:
    """Publish the source folder to the preview environment `name`, expiring `ttl` from now.

    Before any upload, the environment is created (or found) in the configured service and
    marked with its expiry, so a failed deploy is still pruned in time; a service at Twilio's
    25-environment cap is refused with one error naming the oldest previews. Then it is a sync
    to that environment: versions already uploaded to the service are reused. Each further
    service of a sharded site gets its environment from the sync and its mark afterwards.

    Raises:
        ConfigError: `name` is not a valid preview name, or names an environment that is no
            preview (`dev`, `prod`).
        LimitError: the service has 25 environments already.
        AssetsyncError: as `sync` raises.
    """
    check_name(name)
    if name == config.environment:
        raise ConfigError(f"preview name {name} is the configured environment "
                          "([project] environment): pick another name", key="NAME")
    when = now or datetime.now(UTC)
    expires = format_expiry(when + ttl)
    # A preview does not rewrite the site's URL map ([sync] urls_file): that is the
    # configured environment's.
    quiet_config = replace(config, sync=replace(config.sync, urls_file=None))

    async def main() -> SyncResult:
        async with open_client(config, client, on_event) as api:
            with State.open(config.state_dir) as state:  # released before the sync takes it
                target = target_key(config)
                for service, sid in await _site_service_sids(api, state, target, config):
                    await _prepare_environment(api, state, target, service, sid, name,
                                               expires, when)
            result = await sync_async(quiet_config, client=api, environment=name,
                                      on_event=on_event)
            for part in result.services or (result,):
                if part.service_sid and part.environment_sid:
                    await _mark(api, part.service_sid, part.environment_sid, expires)
            return result

    result = run_sync(main)
    return PreviewResult(name, f"https://{result.domain_name}", expires, result)


def list_previews(
    config: Config, *, now: datetime | None = None, client: ServerlessClient | None = None,
) -> tuple[PreviewEnvironment, ...]:
    """Every preview environment of the site's services, oldest first."""
    when = now or datetime.now(UTC)

    async def work(api: ServerlessClient, state: State, target: str
                   ) -> tuple[PreviewEnvironment, ...]:
        found: list[PreviewEnvironment] = []
        for service, sid in await _site_service_sids(api, state, target, config):
            found += (await _previews_of(api, service, sid, when))[0]
        return tuple(_oldest_first(found))

    return run_on_state(config, client, None, work)


async def _delete(api: ServerlessClient, state: State, target: str,
                  previews: Sequence[PreviewEnvironment]) -> None:
    for p in previews:
        try:
            await api.delete_environment(p.service_sid, p.environment_sid)
        except NotFoundError:
            pass  # deleted in between (another runner's prune): the outcome wanted
        state.forget_environment(target, p.service_sid, p.environment_sid)


def delete_preview(
    config: Config, name: str, *, client: ServerlessClient | None = None,
) -> tuple[PreviewEnvironment, ...]:
    """Delete the preview `name` in every service of the site; returns what was deleted.

    Raises:
        AssetsyncError: no service of the site has a preview of that name (an environment
            without the expiry Variable is never deleted).
    """
    check_name(name)

    async def work(api: ServerlessClient, state: State, target: str
                   ) -> tuple[PreviewEnvironment, ...]:
        now = datetime.now(UTC)
        doomed = [p for service, sid in await _site_service_sids(api, state, target, config)
                  for p in (await _previews_of(api, service, sid, now))[0] if p.name == name]
        if not doomed:
            raise AssetsyncError(
                f"no preview named {name} in service {config.service}: `assetsync preview "
                "--list` shows the previews")
        await _delete(api, state, target, doomed)
        return tuple(doomed)

    return run_on_state(config, client, None, work)


def prune_previews(
    config: Config, *, yes: bool, now: datetime | None = None,
    client: ServerlessClient | None = None,
) -> PreviewPrune:
    """Find the previews whose expiry has passed; delete them only with `yes`."""
    when = now or datetime.now(UTC)

    async def work(api: ServerlessClient, state: State, target: str) -> PreviewPrune:
        found: list[PreviewEnvironment] = []
        for service, sid in await _site_service_sids(api, state, target, config):
            found += (await _previews_of(api, service, sid, when))[0]
        expired = tuple(p for p in _oldest_first(found) if p.expired)
        kept = tuple(p for p in _oldest_first(found) if not p.expired)
        if yes:
            await _delete(api, state, target, expired)
        return PreviewPrune(expired, kept, dry_run=not yes)

    return run_on_state(config, client, None, work)
