"""`assetsync plan`: what a sync would upload, reuse and drop, without touching the network.

Exit 0 when every file can be published, 1 when any cannot (each named on its own line),
2 for config errors.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass

from assetsync.classify import Issue, duplicate_paths, published_name
from assetsync.cli._common import (
    add_json_flag,
    config_from_args,
    event_printer,
    format_bytes,
    print_issues,
    print_json,
)
from assetsync.config import Config, target_key
from assetsync.errors import LockHeldError
from assetsync.plan import Plan, RecordedService, build_plan
from assetsync.scan import Snapshot
from assetsync.state import State
from assetsync.sync_types import SyncEvent

__all__ = ["LocalPlan", "handler", "plan_locally", "register"]


@dataclass(frozen=True, slots=True)
class LocalPlan:
    """The plan plus what led to it: the scan and every issue found on the way."""

    snapshot: Snapshot
    plan: Plan
    issues: tuple[Issue, ...]

    @property
    def valid(self) -> bool:
        """No file that cannot be published."""
        return not any(i.severity == "error" for i in self.issues)


def _open_state(config: Config, on_event: Callable[[SyncEvent], None]) -> State:
    """The state, or a read-only view of it while another assetsync (say `watch`) holds it."""
    try:
        return State.open(config.state_dir)
    except LockHeldError as exc:
        on_event(SyncEvent("note", message=f"{exc}; planning from a read-only view"))
        return State.open(config.state_dir, readonly=True)


def plan_locally(config: Config, *, full: bool = False, verbose: int = 0) -> LocalPlan:
    """Scan, classify, optimize and check exactly as `sync` does, then plan against the
    recorded state (no live build: offline). A file the scan could not take is an error here:
    it cannot be published."""
    from assetsync.engine import prepare_files  # the sync pipeline, so plan never disagrees

    on_event = event_printer(verbose)
    with _open_state(config, on_event) as state:
        prepared = prepare_files(config, state, on_event=on_event)
        key = target_key(config)
        service = state.get_service(key, config.service)
        recorded = (
            state.recorded_service(key, service.service_sid, config.environment)
            if service is not None
            else RecordedService()
        )
    snapshot = prepared.snapshot
    scan_issues = {(i.path, i.message) for i in snapshot.issues}
    # Collisions are judged on the source names too, so that no later stage can hide one.
    names = [(published_name(rel)[0], rel) for rel in snapshot.files]
    collisions = [i for i in duplicate_paths(names) if i not in prepared.errors]
    colliding = {i.path for i in collisions}
    clashing = {path for path, rel in names if rel in colliding}
    desired = [f for f in prepared.files if f.path not in clashing]
    plan = build_plan(desired, recorded, None, full=full)
    issues = (
        [Issue(path, message) for path, message in sorted(scan_issues)]
        + [i for i in prepared.warnings if (i.path, i.message) not in scan_issues]
        + list(prepared.errors)
        + collisions
        + list(plan.issues)
    )
    issues.sort(key=lambda i: (i.severity != "error", i.path, i.message))
    return LocalPlan(snapshot=snapshot, plan=plan, issues=tuple(issues))


def _human(config: Config, result: LocalPlan) -> None:
    plan, snap = result.plan, result.snapshot
    out = sys.stdout
    out.write(
        f"service {config.service}, environment {config.environment}, target {config.target.api}\n"
        f"source {config.source}: {len(snap.files)} files ({snap.hashed} hashed, "
        f"{snap.reused} unchanged since last scan)\n"
    )
    rows = [("upload", f.visibility.value, f.path, format_bytes(f.size)) for f in plan.uploads]
    rows += [("reuse", f.visibility.value, f.path, "") for f, _sid in plan.reuses]
    rows += [("drop", "", p, "") for p in plan.drops]
    rows.sort(key=lambda r: (r[2], r[0]))
    width = max((len(r[2]) for r in rows), default=0)
    for action, vis, path, size in rows:
        out.write(f"  {action:<6} {vis:<9} {path:<{width}}  {size}".rstrip() + "\n")
    c = plan.counts
    out.write(
        f"{len(plan.create_assets)} new assets, {len(plan.uploads)} uploads "
        f"({format_bytes(plan.upload_bytes)}), {len(plan.reuses)} reused, "
        f"{len(plan.drops)} dropped\n"
        f"next build: {c.public} public + {c.protected} protected = {c.public_protected} of "
        f"{c.limits.public_protected}, {c.private} private of {c.limits.private}\n"
    )
    if plan.is_noop:
        out.write("nothing to do: everything is published\n")
    print_issues(result.issues)
    errors = sum(1 for i in result.issues if i.severity == "error")
    if errors:
        sys.stderr.write(
            f"{errors} file(s) cannot be published; fix them or add them to [ignore]\n"
        )


def handler(args: argparse.Namespace) -> int:
    """Run `assetsync plan`."""
    config = config_from_args(args, {"project.environment": args.environment})
    result = plan_locally(config, full=args.full, verbose=args.verbose)
    if args.json:
        data = {
            "service": config.service,
            "environment": config.environment,
            "target": config.target.api,
            "source": str(config.source),
            "valid": result.valid,
            "scan": {
                "files": len(result.snapshot.files),
                "hashed": result.snapshot.hashed,
                "reused": result.snapshot.reused,
            },
            **result.plan.to_json(),
            "issues": [
                {"path": i.path, "message": i.message, "severity": i.severity}
                for i in result.issues
            ],
        }
        print_json(data)
    else:
        _human(config, result)
    return 0 if result.valid else 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `assetsync plan`."""
    parser = subparsers.add_parser(
        "plan",
        help="show what a sync would upload, reuse and drop (offline)",
        description="Scan the source folder and show the plan against the recorded state. "
        "Exit 0 when every file can be published, 1 when any cannot, 2 for config errors.",
    )
    add_json_flag(parser)
    parser.add_argument("--full", action="store_true", help="plan to upload every file again")
    parser.add_argument("-e", "--environment", help="environment unique name (overrides config)")
    parser.set_defaults(func=handler)
