"""`assetsync plan`: what a sync would upload, reuse and drop, without touching the network
(the planning is the library's, `assetsync.sync.offline_plan`; this module parses and prints).

A Toolkit project's functions, Dependencies and Variables are planned too, against what the
last sync recorded: its build's kept manifest stands in for the live build, and keyed digests
for the live Variables (keys are shown, never a value).

Exit 0 when every file can be published, 1 when any cannot (each named on its own line),
2 for config errors.
"""

from __future__ import annotations

import argparse
import heapq
import sys
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

from assetsync.cli._common import (
    add_json_flag,
    config_from_args,
    event_printer,
    format_bytes,
    print_issues,
    print_json,
)

if TYPE_CHECKING:  # `assetsync --help` registers this command without loading the planner
    from assetsync.config import Config
    from assetsync.functions.plan import FunctionPlan
    from assetsync.plan.assets import Plan
    from assetsync.prepare.classify import Issue
    from assetsync.sync.offline_plan import LocalPlan
    from assetsync.sync.plan_inputs import PlanInputs
    from assetsync.sync.plan_memo import PlanOutputs

__all__ = ["PRELOAD", "handler", "plan_locally", "print_blocking", "register"]

# What the handler imports on its first call (`assetsync.cli.run` loads them first, with the
# collector off, as it loads the command modules; `--help` loads neither): what a plan printed
# again from its output memo needs. The planner loads only when it plans.
PRELOAD = ("assetsync.sync.plan_memo", "assetsync.functions.local")


def plan_locally(config: Config, *, full: bool = False, verbose: int = 0,
                 prune_variables: bool = False) -> LocalPlan:
    """`assetsync.sync.offline_plan.plan_offline` with progress printed (`-v`)."""
    from assetsync.sync.offline_plan import plan_offline

    return plan_offline(config, full=full, prune_variables=prune_variables,
                        on_event=event_printer(verbose))


def print_blocking(issues: Sequence[Issue]) -> None:
    """The problems that stop a sync, one line each on stderr, and how many files they name
    (`plan` and `sync` print the very same lines)."""
    print_issues(issues)
    errors = sum(1 for i in issues if i.severity == "error" and i.path != "/")
    if errors:
        sys.stderr.write(
            f"{errors} file(s) cannot be published; fix them or add them to [ignore]\n"
        )


# Without -v, the human listing shows at most this many uploads and drops, and no reused file:
# on 10,000 unchanged files one line each was 580 KB of output nobody reads (issue 26).
SHOWN_CHANGES = 50


def _human(config: Config, result: LocalPlan, verbose: int = 0) -> None:
    plan, snap = result.plan, result.snapshot
    out = sys.stdout
    out.write(
        f"service {config.service}, environment {config.environment}, target {config.target.api}\n"
        f"source {config.source}: {len(snap.files)} files ({snap.hashed} hashed, "
        f"{snap.reused} unchanged since last scan)\n"
    )
    _human_rows(result, verbose > 0)
    out.write(
        f"{len(plan.create_assets)} new assets, {len(plan.uploads)} uploads "
        f"({format_bytes(plan.upload_bytes)}), {len(plan.reuses)} reused, "
        f"{len(plan.drops)} dropped\n"
    )
    _human_builds(result)
    if result.audio:
        out.write("audio:\n")
        out.writelines(f"  {report.describe()}\n" for report in result.audio)
    out.writelines(f"{line}\n" for line in _project_lines(result))
    if result.valid and _nothing_to_do(result):
        out.write("nothing to do: everything is published\n")
    print_blocking(result.issues)


def _nothing_to_do(result: LocalPlan) -> bool:
    fplan, variables = result.functions, result.variables
    return (result.plan.is_noop and not (fplan is not None and fplan.needs_build)
            and not (variables is not None and variables.changed))


def _human_rows(result: LocalPlan, every: bool) -> None:
    """One row per file (and function): action, visibility, path, size, service. Unless
    `every` (-v), reused files are counted, not listed, and at most `SHOWN_CHANGES` files are."""
    # Spread over services: each row says which service it belongs to. Rows are made in
    # their sort order (path, action, service) so that they sort with no key function.
    plans = [(s.service, s.plan) for s in result.services] or [("", result.plan)]
    hidden = 0
    if every:
        found = sorted(row for service, plan in plans for row in _rows(plan, service))
    else:
        # The first rows of the sorted listing, without making (or sorting) the thousands
        # hidden: each plan's uploads and drops are sorted by path already, so merging them
        # gives exactly `sorted(...)[:n]`.
        found = list(islice(heapq.merge(*(_changes(plan, service) for service, plan in plans)),
                            SHOWN_CHANGES))
        hidden = sum(len(plan.uploads) + len(plan.drops) for _s, plan in plans) - len(found)
    rows = [(action, vis, path, format_bytes(size) if size is not None else "", service)
            for path, action, service, vis, size in found]
    fplan = result.functions
    # The functions after the files, each row marked as one (`sync` deploys them together).
    rows += [(*row, "function") for row in _function_rows(fplan)] if fplan is not None else []
    width = max((len(r[2]) for r in rows), default=0)
    lines = [f"  {action:<6} {vis:<9} {path:<{width}}  {size:>9}  {service}".rstrip() + "\n"
             for action, vis, path, size, service in rows]
    if hidden:
        lines.append(f"  ... and {hidden} more upload(s) and drop(s) (-v lists every file)\n")
    reused = sum(len(s.plan.reuses) for s in result.services) or len(result.plan.reuses)
    if not every and reused:
        lines.append(f"  {reused} file(s) reused as published (-v lists them)\n")
    sys.stdout.writelines(lines)


def _human_builds(result: LocalPlan) -> None:
    """The next build's counts against the limits, or each service's for a spread site."""
    out, c, shard = sys.stdout, result.plan.counts, result.shard
    if shard is None:
        out.write(
            f"next build: {c.public} public + {c.protected} protected = {c.public_protected} of "
            f"{c.limits.public_protected}, {c.private} private of {c.limits.private}\n"
        )
        return
    out.write(f"{len(shard.services)} services, next builds (offline: content "
              "assetsync does not own is not counted):\n")
    out.writelines(f"  {line}\n" for line in shard.usage_lines())
    out.writelines(f"  {name}: holds no file now; sync deletes its environments (or the "
                   "service, when assetsync created it for the site)\n"
                   for name in shard.retired)
    if result.new_services:
        out.write(f"  sync creates {', '.join(result.new_services)} before uploading "
                  "anything: an account that cannot hold them fails it with nothing "
                  "published\n")
    if shard.moves:
        out.write(f"{len(shard.moves)} file(s) move to another service:\n")
        out.writelines(f"  {move.describe()}\n" for move in shard.moves)


def _function_rows(fplan: FunctionPlan) -> list[tuple[str, str, str, str]]:
    rows = [("upload", f.visibility.value, f.path, format_bytes(f.size)) for f in fplan.uploads]
    rows += [("reuse", f.visibility.value, f.path, "") for f, _sid in fplan.reuses]
    rows += [("drop", "", p, "") for p in fplan.drops]
    return sorted(rows, key=lambda r: (r[2], r[0]))


def _project_lines(result: LocalPlan) -> list[str]:
    """The functions' totals, the Dependencies and the Variables (keys only, never a value)."""
    lines: list[str] = []
    fplan, v = result.functions, result.variables
    if fplan is not None:
        lines.append(
            f"functions: {len(fplan.uploads)} uploads ({format_bytes(fplan.upload_bytes)}), "
            f"{len(fplan.reuses)} reused, {len(fplan.drops)} dropped; next build: "
            f"{fplan.count} of {result.plan.counts.limits.functions}")
        deps = ", ".join(f"{name}@{version}" for name, version in fplan.dependencies) or "none"
        lines.append(f"dependencies {'changed' if fplan.dependencies_changed else 'unchanged'}: "
                     f"{deps}")
    if v is not None:
        if not result.variables_recorded:
            # Nothing to compare with offline: no sync recorded this environment's Variables.
            keys = " ".join((*v.create, *v.update, *v.unchanged)) or "-"
            lines.append(f"variables: {len(v.create) + len(v.update) + len(v.unchanged)} to set "
                         f"({keys}); no sync has recorded this environment's variables yet")
        else:
            parts = [f"{len(keys)} {what} ({' '.join(keys)})" for what, keys in (
                ("new", v.create), ("changed", v.update), ("to delete", v.delete)) if keys]
            parts.append(f"{len(v.unchanged)} unchanged")
            if v.kept:
                parts.append(f"{len(v.kept)} kept ({' '.join(v.kept)}: not in the .env; "
                             "--prune-variables deletes them)")
            lines.append(f"variables since the last sync: {', '.join(parts)}")
    return lines


# A listing row in its sort order: path, action, service, visibility, size (None: not shown).
_Row = tuple[str, str, str, str, int | None]


def _rows(plan: Plan, service: str) -> list[_Row]:
    """Each file of the plan (of `service`, "" for the one service) as a listing row."""
    rows: list[_Row] = [(f.path, "upload", service, f.visibility.value, f.size)
                        for f in plan.uploads]
    rows += [(f.path, "reuse", service, f.visibility.value, None) for f, _sid in plan.reuses]
    rows += [(p, "drop", service, "", None) for p in plan.drops]
    return rows


def _changes(plan: Plan, service: str) -> Iterator[_Row]:
    """The plan's uploads and drops as listing rows, in their order (a `Plan`'s tuples are
    sorted by path), made one by one as they are asked for."""
    return heapq.merge(((f.path, "upload", service, f.visibility.value, f.size)
                        for f in plan.uploads),
                       ((p, "drop", service, "", None) for p in plan.drops))


def _json(config: Config, result: LocalPlan) -> dict[str, object]:
    data: dict[str, object] = {
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
        "shard": None,
        "audio": [report.to_json() for report in result.audio],
    }
    # As `sync --json` names them: present when the project deploys functions (`variables`
    # also needs a .env); keys and paths only.
    if result.functions is not None:
        data["functions"] = result.functions.to_json()
    if result.variables is not None:
        data["variables"] = result.variables.to_json()
    if result.shard is not None:
        where = result.shard.assignment
        for key in ("uploads", "reuses"):
            for entry in data[key]:  # type: ignore[attr-defined]
                entry["service"] = where[entry["path"]]
        shard_json = result.shard.to_json()
        plans = {s.service: s.plan for s in result.services}
        for entry in shard_json["services"]:  # type: ignore[attr-defined]
            plan = plans[entry["service"]]
            entry.update(uploads=len(plan.uploads), reuses=len(plan.reuses),
                         drops=len(plan.drops), needs_build=plan.needs_build)
        shard_json["new_services"] = list(result.new_services)
        data["shard"] = shard_json
    return data


def handler(args: argparse.Namespace) -> int:
    """Run `assetsync plan`: printed again from the output memo when the inputs are those of a
    kept plan (`assetsync.sync.plan_memo`), else planned and printed (and kept)."""
    config = config_from_args(args, {
        "project.environment": args.env,
        "project.env_file": str(Path(args.env_file).resolve()) if args.env_file else None})
    if args.verbose:  # progress lines: planned every time, never kept
        return _print(config, args, plan_locally(config, full=args.full, verbose=args.verbose,
                                                 prune_variables=args.prune_variables))
    from assetsync.collector import fewer_collections
    from assetsync.sync.plan_inputs import open_inputs
    from assetsync.sync.plan_memo import PlanOutputs, output_key

    with fewer_collections(), open_inputs(config, event_printer()) as inputs:
        mode = "json" if args.json else "human"
        memo = None if inputs.state.readonly else PlanOutputs(config.state_dir, mode)
        key = output_key(config, inputs, mode=mode,
                         flags=(args.full, args.prune_variables)) if memo is not None else None
        kept = memo.find(key) if memo is not None and key is not None else None
        if kept is not None:
            return kept.replay()
        return _plan_and_keep(config, args, inputs, memo, key)


def _plan_and_keep(config: Config, args: argparse.Namespace, inputs: PlanInputs,
                   memo: PlanOutputs | None, key: bytes | None) -> int:
    """Plan from `inputs`, print it, and keep what was printed under `key` when it can be
    printed again as it is (see `assetsync.sync.plan_memo`)."""
    from assetsync.cli._recording import recording
    from assetsync.prepare.memo import kept_encoders
    from assetsync.sync.offline_plan import plan_offline
    from assetsync.sync.plan_memo import PlanOutput

    with recording() as printed:
        result = plan_offline(config, full=args.full, prune_variables=args.prune_variables,
                              on_event=event_printer(), inputs=inputs)
        status = _print(config, args, result)
    encoders = kept_encoders(images=result.images, audio=bool(result.audio))
    if memo is not None and key is not None and printed.replayable and encoders is not None:
        memo.keep(key, PlanOutput(tuple(printed.chunks), status, encoders))
    return status


def _print(config: Config, args: argparse.Namespace, result: LocalPlan) -> int:
    """Print the plan as asked; the exit status (1: some file cannot be published)."""
    if args.json:
        print_json(_json(config, result))
    else:
        _human(config, result, args.verbose)
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
    parser.add_argument("--env", metavar="NAME", help="environment (default from the config)")
    # The spelling plan had before `--env` (sync's, status's, urls'): kept working, not shown.
    parser.add_argument("-e", "--environment", dest="env", help=argparse.SUPPRESS)
    parser.add_argument("--env-file", metavar="PATH",
                        help="the .env whose variables to plan (as `sync --env-file`)")
    parser.add_argument("--prune-variables", action="store_true",
                        help="plan the recorded variables the .env no longer has as deleted, as "
                        "`sync --prune-variables` deletes them (kept by default)")
    parser.set_defaults(func=handler)
