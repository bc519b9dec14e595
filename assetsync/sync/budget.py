"""The rolling-hour build budget, shared by every assetsync process of this user on the machine.

Twilio allows 100 builds per hour per account (limits.BUILDS_PER_HOUR); going past it earns a
429 on build creation. Every process that builds for an account records each build in one small
JSON ledger per account, read and rewritten under an `fcntl.flock` lock, so a watch, a cron sync
and a second watch on another folder of the same account all draw on one budget.

The ledger is keyed by a hash of the account SID and the API host, never by a credential. It lives
in `$ASSETSYNC_BUDGET_DIR`, else `$XDG_STATE_HOME/assetsync/budget`, else
`~/.local/state/assetsync/budget`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from assetsync.atomic import write_atomic
from assetsync.errors import AssetsyncError, BuildFailedError, SyncError
from assetsync.frozen import frozen
from assetsync.limits import BUILDS_PER_HOUR

if TYPE_CHECKING:
    from assetsync.config import Config
    from assetsync.results import EventCallback, SyncEvent

__all__ = [
    "BuildBudget",
    "BuildSlots",
    "Reservation",
    "account_key",
    "budget_for_config",
    "builds_made",
    "builds_on_error",
    "default_ledger_dir",
    "services_spanned",
]

log = logging.getLogger(__name__)

WINDOW_S = 3600.0
_UNKNOWN = object()
_LEDGER_VERSION = 1


def account_key(account_sid: str, api_host: str) -> str:
    """A stable, non-secret ledger key for one account on one API host."""
    digest = hashlib.sha256(f"{account_sid}\n{api_host.lower()}".encode()).hexdigest()
    return digest[:32]


def budget_for_config(
    config: Config,
    *,
    limit: int = BUILDS_PER_HOUR,
    ledger_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> BuildBudget:
    """The budget of the account `config` publishes to.

    The embedded emulator (`api = "local"`) gets one budget per state folder, since each is its
    own account; a real account's budget is shared by every project that publishes to it.

    Raises:
        ConfigError: a remote target without credentials.
    """
    env = os.environ if environ is None else environ
    if config.target.api == "local":
        from assetsync.emulator import LOCAL_ACCOUNT_SID

        key = account_key(LOCAL_ACCOUNT_SID, f"local:{config.state_dir}")
    else:
        from assetsync.remote.client import resolve_endpoints

        api_base, _upload = resolve_endpoints(config.target)
        key = account_key(config.require_credentials().account_sid, urlsplit(api_base).netloc)
    return BuildBudget(key, limit=limit, ledger_dir=ledger_dir or default_ledger_dir(env))


def default_ledger_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where ledgers live: `ASSETSYNC_BUDGET_DIR`, else the XDG state folder of this user."""
    env = os.environ if environ is None else environ
    if env.get("ASSETSYNC_BUDGET_DIR"):
        return Path(env["ASSETSYNC_BUDGET_DIR"])
    state_home = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "assetsync" / "budget"


def builds_made(result: object) -> int:
    """How many builds a sync result says it made; unknown shapes count as one (the safe side).

    Reads `SyncResult.noop` and `build_sid` (a no-op sync reports the live build it left alone),
    and for a sharded sync each service's result in `services`.
    """
    services = getattr(result, "services", None)
    if services:
        return sum(builds_made(r) for r in services)
    if getattr(result, "noop", False) is True:
        return 0
    sids = getattr(result, "build_sids", None)
    if sids is not None:
        return len(tuple(sids))
    sid = getattr(result, "build_sid", _UNKNOWN)
    return 1 if sid is _UNKNOWN else int(bool(sid))


def builds_on_error(exc: BaseException) -> int:
    """How many builds a sync that raised `exc` made."""
    if isinstance(exc, BuildFailedError):
        return 1  # a failed build still counted against the account's hourly limit
    if isinstance(exc, SyncError) and exc.result is not None:
        return builds_made(exc.result)
    return 0


def services_spanned(result: object, limit: int) -> int:
    """How many services a sync result covers (each may build once next time), 1..`limit`."""
    return max(1, min(limit, len(getattr(result, "services", None) or ()) or 1))


@frozen
class Reservation:
    """`slots` build slots taken from the budget at clock time `at`; settle it once the sync
    is done."""

    token: str
    at: float
    slots: int = 1


class BuildBudget:
    """A rolling-hour budget of builds for one account, shared through a locked ledger file.

    Args:
        key: the account's ledger key (`account_key(account_sid, api_host)`).
        limit: builds this process may count on per rolling hour (all processes' builds count
            against it), 1 to 100.
        ledger_dir: the ledger folder (default `default_ledger_dir()`); tests pass a tmp folder.
        clock: wall-clock seconds; the ledger is shared between processes, so the clock must be
            one they share too (not `time.monotonic`).
    """

    def __init__(
        self,
        key: str,
        *,
        limit: int = BUILDS_PER_HOUR,
        ledger_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 1 <= limit <= BUILDS_PER_HOUR:
            raise ValueError(f"limit must be 1..{BUILDS_PER_HOUR}, got {limit}")
        self.key = key
        self.limit = limit
        self.clock = clock
        self.ledger_dir = ledger_dir if ledger_dir is not None else default_ledger_dir()
        self.path = self.ledger_dir / f"{key}.json"
        self._lock_path = self.ledger_dir / f"{key}.lock"

    def remaining(self) -> int:
        """Builds still available in the current rolling hour."""
        with self._ledger() as entries:
            return max(0, self.limit - len(entries))

    def used(self) -> int:
        """Builds recorded by any process in the last hour."""
        with self._ledger() as entries:
            return len(entries)

    def next_available_at(self, slots: int = 1) -> float:
        """Clock time at which `slots` builds may start (now when they are available)."""
        with self._ledger() as entries:
            return self._next_at(entries, self._clamp(slots))

    def reserve(self, slots: int = 1) -> Reservation | None:
        """Atomically take `slots` build slots (all or none), or return None when fewer are left.

        A sharded sync builds once per service, so it reserves one slot per service; more
        slots than the limit are never available and count as the whole limit.
        """
        import uuid  # here: a sync that takes no slot (the emulator's) never loads it

        slots = self._clamp(slots)
        with self._ledger(write=True) as entries:
            if len(entries) + slots > self.limit:
                return None
            reservation = Reservation(token=uuid.uuid4().hex, at=self.clock(), slots=slots)
            entries.extend((reservation.at, f"{reservation.token}.r{i}") for i in range(slots))
            return reservation

    def settle(self, reservation: Reservation, builds: int) -> None:
        """Replace a reservation by the number of builds the sync really made (0 frees it).

        A multi-service sync may make more than one build; the extra ones are recorded even
        past the limit, because they happened.
        """
        with self._ledger(write=True) as entries:
            held = (reservation.token, f"{reservation.token}.r")
            entries[:] = [e for e in entries if e[1] != held[0] and not e[1].startswith(held[1])]
            entries.extend((reservation.at, f"{reservation.token}.{i}") for i in range(builds))
        if builds > 1:
            log.debug("recorded %d builds for one sync", builds)

    def record(self, builds: int = 1) -> None:
        """Record builds made without a reservation (e.g. by a one-off `assetsync sync`)."""
        import uuid

        now = self.clock()
        with self._ledger(write=True) as entries:
            entries.extend((now, uuid.uuid4().hex) for _ in range(builds))

    def _clamp(self, slots: int) -> int:
        return max(1, min(slots, self.limit))

    def _next_at(self, entries: list[tuple[float, str]], slots: int = 1) -> float:
        now = self.clock()
        if len(entries) + slots <= self.limit:
            return now
        # `slots` free up when the newest of the oldest builds that must leave the window does.
        times = sorted(t for t, _ in entries)
        return times[len(entries) + slots - self.limit - 1] + WINDOW_S

    @contextmanager
    def _ledger(self, *, write: bool = False) -> Iterator[list[tuple[float, str]]]:
        """Yield the live entries (last hour) under the lock; rewrite the file if `write`."""
        self.ledger_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self._lock_path, "a+b") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                now = self.clock()
                entries = self._read(now)
                before = list(entries)
                yield entries
                if write or entries != before:
                    self._write(entries)
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)

    def _read(self, now: float) -> list[tuple[float, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            raw = data["builds"] if data.get("version") == _LEDGER_VERSION else []
            entries = [(float(t), str(tok)) for t, tok in raw]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # A damaged ledger only costs pacing accuracy; never let it stop a deploy.
            log.warning(
                "build budget ledger %s is unreadable (%s); starting it afresh", self.path, exc
            )
            return []
        # An entry from the future means the wall clock went back: count it as made now,
        # so a clock change can neither free nor block the budget for longer than an hour.
        return [(min(t, now), tok) for t, tok in entries if now - t < WINDOW_S]

    def _write(self, entries: list[tuple[float, str]]) -> None:
        payload = {"version": _LEDGER_VERSION, "builds": [[t, tok] for t, tok in entries]}
        write_atomic(self.path, json.dumps(payload).encode("utf-8"))


class BuildSlots:
    """The account's hourly build budget as one sync spends it, so that no sync (a sharded
    one included) passes it: one slot per service of the site the state knows, taken before
    the first request; more before any write when the sync spreads the site over more
    services (its `sharded` event); settled with the builds made. A target other than Twilio
    has no shared budget, nor a dry run: nothing is taken.

    Raises:
        AssetsyncError: the budget has fewer slots left this hour.
    """

    def __init__(self, config: Config, dry_run: bool) -> None:
        self.budget: BuildBudget | None = None
        self.taken: list[Reservation] = []
        if config.target.api != "twilio" or dry_run:
            return
        from assetsync.sync.sharded import services_in_use

        try:
            self.budget = budget_for_config(config)
            slots = services_in_use(config)
        except OSError as exc:  # never stop a sync over bookkeeping
            log.warning("could not read the build budget: %s", exc)
            self.budget = None
            return
        self.take(slots)

    @property
    def slots(self) -> int:
        """Slots taken so far."""
        return sum(r.slots for r in self.taken)

    def take(self, slots: int) -> None:
        """Take `slots` more (all or none)."""
        if self.budget is None or slots <= 0:
            return
        reservation = self.budget.reserve(slots)
        if reservation is None:
            need = self.slots + slots
            at = time.strftime("%H:%M", time.localtime(self.budget.next_available_at(need)))
            raise AssetsyncError(
                f"build budget spent: a sync of this site may build {need} service(s), and "
                f"{self.budget.remaining() + self.slots} of the account's {self.budget.limit} "
                f"builds per hour are left (assetsync's ledger in {self.budget.ledger_dir}); "
                f"try again at {at}"
            )
        self.taken.append(reservation)

    def watching(self, on_event: EventCallback | None) -> EventCallback | None:
        """`on_event`, taking more slots when the sync says how many services it spans."""
        if self.budget is None:
            return on_event

        def wrapped(event: SyncEvent) -> None:
            if event.kind == "sharded":
                self.take(event.total - self.slots)
            if on_event is not None:
                on_event(event)

        return wrapped

    def settle(self, builds: int) -> None:
        """Replace what was taken by the builds the sync made."""
        if self.budget is None:
            return
        try:
            for i, reservation in enumerate(self.taken):
                self.budget.settle(reservation, builds if i == 0 else 0)
        except OSError as exc:
            log.warning("could not record %d build(s) in the budget: %s", builds, exc)
        self.taken = []

    def made(self, result: object) -> None:
        """`settle` with the builds `result` says the sync made."""
        self.settle(builds_made(result))

    @contextmanager
    def held(self) -> Iterator[None]:
        """While the sync runs: an error settles the builds it made; an interruption counts
        every slot taken (every service may have started a build)."""
        try:
            yield
        except AssetsyncError as exc:
            self.settle(builds_on_error(exc))
            raise
        except BaseException:
            self.settle(self.slots)
            raise
