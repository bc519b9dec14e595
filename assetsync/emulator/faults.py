"""Fault switches and the request log: what the emulator does wrong on purpose, and what it saw.

Pure bookkeeping (no I/O): the ASGI layer asks `FaultSwitches.take(method, path)` before handling
each request and appends a `RequestLogEntry` after it.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = [
    "FAULT_ACTIONS",
    "FaultAction",
    "FaultRule",
    "FaultSwitches",
    "HostKind",
    "RequestLog",
    "RequestLogEntry",
    "parse_fault_spec",
]

FaultAction = Literal["429", "429-retry-after", "500", "503", "drop", "drop-after", "delay"]
FAULT_ACTIONS: tuple[str, ...] = get_args(FaultAction)
HostKind = Literal["api", "upload", "serve"]


@dataclass(frozen=True, slots=True)
class FaultRule:
    """Answer the next `count` requests matching `method` and `path_pattern` with `action`.

    `method` is an HTTP method or `*`; `path_pattern` is an fnmatch glob on the URL path
    (`*` also matches `/`). `delay_s` is the wait for `delay` and the `Retry-After` value (whole
    seconds, rounded up) for `429-retry-after`.
    """

    method: str
    path_pattern: str
    action: FaultAction
    count: int
    delay_s: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        """Whether this rule applies to a request."""
        return (self.method in ("*", method.upper())) and fnmatch.fnmatchcase(
            path, self.path_pattern
        )


class FaultSwitches:
    """The active fault rules; thread-safe, since tests set them while the server runs."""

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def add(
        self, method: str, path_pattern: str, action: str, count: int = 1, delay_s: float = 0.0
    ) -> FaultRule:
        """Arm a rule for the next `count` matching requests; returns it.

        Raises:
            ValueError: unknown action, or a count below 1.
        """
        if action not in FAULT_ACTIONS:
            raise ValueError(
                f"unknown fault action {action!r}; use one of {', '.join(FAULT_ACTIONS)}"
            )
        if count < 1:
            raise ValueError(f"fault count must be at least 1, got {count}")
        rule = FaultRule(method.upper(), path_pattern, action, count, float(delay_s))  # type: ignore[arg-type]
        with self._lock:
            self._rules.append(rule)
        return rule

    def take(self, method: str, path: str) -> FaultRule | None:
        """The first armed rule matching this request, using up one of its count."""
        with self._lock:
            for i, rule in enumerate(self._rules):
                if rule.matches(method, path):
                    if rule.count <= 1:
                        del self._rules[i]
                    else:
                        self._rules[i] = FaultRule(
                            rule.method,
                            rule.path_pattern,
                            rule.action,
                            rule.count - 1,
                            rule.delay_s,
                        )
                    return rule
        return None

    @property
    def pending(self) -> list[FaultRule]:
        """The rules still armed, in order."""
        with self._lock:
            return list(self._rules)

    def clear(self) -> None:
        """Disarm every rule."""
        with self._lock:
            self._rules.clear()


_SPEC = re.compile(
    r"^\s*(?P<method>[A-Za-z*]+)\s+(?P<path>\S+)\s+(?P<action>\S+)"
    r"(?:\s+x(?P<count>\d+))?(?:\s+(?P<delay>\d+(?:\.\d+)?)s)?\s*$"
)


def parse_fault_spec(spec: str) -> tuple[str, str, str, int, float]:
    """Parse `METHOD PATH-GLOB ACTION [xCOUNT] [SECONDSs]` into `FaultSwitches.add` arguments.

    Example: `POST /v1/Services/*/Builds 429 x3`, `GET /v1/* delay x2 1.5s`.

    Raises:
        ValueError: with a message saying what a valid spec looks like.
    """
    match = _SPEC.match(spec)
    if not match or match["action"] not in FAULT_ACTIONS:
        raise ValueError(
            f"bad fault {spec!r}: expected 'METHOD PATH-GLOB ACTION [xCOUNT] [SECONDSs]' "
            "with ACTION one "
            f"of {', '.join(FAULT_ACTIONS)}, e.g. 'POST /v1/Services/*/Builds 429 x3'"
        )
    count = int(match["count"]) if match["count"] else 1
    if count < 1:
        raise ValueError(f"bad fault {spec!r}: the count must be at least x1")
    delay = float(match["delay"]) if match["delay"] else 0.0
    return match["method"].upper(), match["path"], match["action"], count, delay


@dataclass(frozen=True, slots=True)
class RequestLogEntry:
    """One request the emulator answered (status 0: the connection was dropped)."""

    method: str
    kind: HostKind
    path: str
    status: int
    bytes_in: int
    time: float


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
