"""Fault switches and the request log: what the emulator does wrong on purpose, and what it saw.

Pure bookkeeping (no I/O): the ASGI layer asks `FaultSwitches.take(method, path)` before handling
each request and appends a `RequestLogEntry` after it. A rule fires for its next COUNT matching
requests, or, with a rate, for each matching request with that probability, drawn from its own
seeded generator (so a seed replays the same sequence of decisions).
"""

from __future__ import annotations

import fnmatch
import random
import re
import threading
from typing import Literal, get_args

from assetsync.frozen import frozen, replace

__all__ = [
    "ANSWER_LOST_ACTIONS",
    "FAULT_ACTIONS",
    "WRONG_CONTENT_TYPE",
    "FaultAction",
    "FaultRule",
    "FaultSwitches",
    "HostKind",
    "RequestLog",
    "RequestLogEntry",
    "parse_fault_spec",
]

FaultAction = Literal[
    "429", "429-retry-after", "500", "503", "drop", "drop-after", "reset-after", "timeout-after",
    "delay", "wrong-type",
]
FAULT_ACTIONS: tuple[str, ...] = get_args(FaultAction)
# The request is processed, then its answer is lost: a FIN, a RST, or silence until the client
# gives up (api-contract.md says nothing of these; they are what any network does).
ANSWER_LOST_ACTIONS = frozenset({"drop-after", "reset-after", "timeout-after"})
HostKind = Literal["api", "upload", "serve"]
# `wrong-type` answers as usual but with this Content-Type: an MP3 served so is refused by
# <Play> (serverless-api #22); `check --live` must catch it.
WRONG_CONTENT_TYPE = "application/octet-stream"
# `timeout-after` with no SECONDS hangs this long: past the client's 60 s read timeout.
DEFAULT_HANG_S = 90.0


@frozen
class FaultRule:
    """Answer matching requests (`method`, `path_pattern`) with `action`.

    `method` is an HTTP method or `*`; `path_pattern` is an fnmatch glob on the URL path
    (`*` also matches `/`). `count`: how many more times it fires (None: no end). `rate`: the
    probability it fires for a matching request (1: always), drawn from a generator seeded with
    `seed`. `delay_s` is the wait for `delay`, the `Retry-After` value (whole seconds, rounded
    up) for `429-retry-after`, and the longest hang for `timeout-after`. `jitter_s`: a `delay`
    waits a uniform 0..jitter_s more (the emulator's `--latency 80ms:20ms`).
    """

    method: str
    path_pattern: str
    action: FaultAction
    count: int | None
    delay_s: float = 0.0
    rate: float = 1.0
    seed: int | None = None
    jitter_s: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        """Whether this rule applies to a request."""
        return (self.method in ("*", method.upper())) and fnmatch.fnmatchcase(
            path, self.path_pattern
        )


class FaultSwitches:
    """The active fault rules; thread-safe, since tests set them while the server runs."""

    def __init__(self) -> None:
        self._rules: list[tuple[FaultRule, random.Random]] = []
        self._lock = threading.Lock()

    def add(
        self,
        method: str,
        path_pattern: str,
        action: str,
        count: int | None = 1,
        delay_s: float = 0.0,
        rate: float = 1.0,
        seed: int | None = None,
        jitter_s: float = 0.0,
    ) -> FaultRule:
        """Arm a rule; returns it. `count` None fires without end (with a `rate`, the usual).

        Raises:
            ValueError: unknown action, a count below 1, or a rate outside (0, 1].
        """
        if action not in FAULT_ACTIONS:
            raise ValueError(
                f"unknown fault action {action!r}; use one of {', '.join(FAULT_ACTIONS)}"
            )
        if count is not None and count < 1:
            raise ValueError(f"fault count must be at least 1, got {count}")
        if not 0.0 < rate <= 1.0:
            raise ValueError(f"fault rate must be above 0 and at most 1, got {rate}")
        rule = FaultRule(method.upper(), path_pattern, action, count, float(delay_s),  # type: ignore[arg-type]
                         float(rate), seed, float(jitter_s))
        with self._lock:
            self._rules.append((rule, random.Random(seed)))
        return rule

    def take(self, method: str, path: str) -> FaultRule | None:
        """The first armed rule that fires for this request, using up one of its count."""
        with self._lock:
            for i, (rule, rng) in enumerate(self._rules):
                if not rule.matches(method, path):
                    continue
                if rule.rate < 1.0 and rng.random() >= rule.rate:
                    continue
                if rule.count is None:
                    return rule
                if rule.count <= 1:
                    del self._rules[i]
                else:
                    self._rules[i] = (replace(rule, count=rule.count - 1), rng)
                return rule
        return None

    @property
    def pending(self) -> list[FaultRule]:
        """The rules still armed, in order."""
        with self._lock:
            return [rule for rule, _ in self._rules]

    def clear(self) -> None:
        """Disarm every rule."""
        with self._lock:
            self._rules.clear()


_SPEC = re.compile(
    r"^\s*(?P<method>[A-Za-z*]+)\s+(?P<path>\S+)\s+(?P<action>\S+)"
    r"(?P<options>(?:\s+(?:x\d+|\d+(?:\.\d+)?s|rate=\d*\.?\d+|seed=\d+))*)\s*$"
)
_SPEC_HELP = (
    "expected 'METHOD PATH-GLOB ACTION [xCOUNT] [SECONDSs] [rate=R] [seed=N]' with ACTION one "
    f"of {', '.join(FAULT_ACTIONS)}, e.g. 'POST /v1/Services/*/Builds 429 x3' or "
    "'POST /v1/* drop-after rate=0.2 seed=1'"
)


def parse_fault_spec(
    spec: str,
) -> tuple[str, str, str, int | None, float, float, int | None]:
    """Parse `METHOD PATH-GLOB ACTION [xCOUNT] [SECONDSs] [rate=R] [seed=N]` into
    `FaultSwitches.add` arguments. Without a count a rule fires once, or, with a rate, without
    end.

    Examples: `POST /v1/Services/*/Builds 429 x3`, `GET /v1/* delay x2 1.5s`,
    `POST /v1/* reset-after rate=0.2 seed=7`.

    Raises:
        ValueError: with a message saying what a valid spec looks like.
    """
    match = _SPEC.match(spec)
    if not match or match["action"] not in FAULT_ACTIONS:
        raise ValueError(f"bad fault {spec!r}: {_SPEC_HELP}")
    count: int | None = None
    delay, rate, seed = 0.0, 1.0, None
    for option in match["options"].split():
        if option.startswith("x"):
            count = int(option[1:])
        elif option.startswith("rate="):
            rate = float(option[5:])
        elif option.startswith("seed="):
            seed = int(option[5:])
        else:
            delay = float(option[:-1])
    if count is not None and count < 1:
        raise ValueError(f"bad fault {spec!r}: the count must be at least x1")
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"bad fault {spec!r}: the rate must be above 0 and at most 1")
    if count is None and rate == 1.0:
        count = 1
    return match["method"].upper(), match["path"], match["action"], count, delay, rate, seed


@frozen
class RequestLogEntry:
    """One request the emulator answered (status 0: the connection was dropped); `time` when
    it was answered, `started` when it arrived (the emulator's clock), so a request log shows
    how many requests a client kept in flight."""

    method: str
    kind: HostKind
    path: str
    status: int
    bytes_in: int
    time: float
    started: float = 0.0


class RequestLog(list[RequestLogEntry]):
    """Every request since the last `clear()`, oldest first (a list, with filters)."""

    def matching(
        self, method: str | None = None, kind: HostKind | None = None, path_glob: str | None = None
    ) -> list[RequestLogEntry]:
        """Entries with this method, host kind and path glob (each optional)."""
        return [
            e
            for e in list(self)
            if (method is None or e.method == method.upper())
            and (kind is None or e.kind == kind)
            and (path_glob is None or fnmatch.fnmatchcase(e.path, path_glob))
        ]

    @property
    def writes(self) -> list[RequestLogEntry]:
        """Requests that could change state (POST and DELETE) to the API and upload hosts."""
        return [e for e in list(self) if e.method in ("POST", "DELETE") and e.kind != "serve"]
