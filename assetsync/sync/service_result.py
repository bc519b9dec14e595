"""The record phase's answer: one service's `SyncResult` (its functions' outcome included) from
what was assessed and applied, and the request counters, notes and URL map around the sync.
"""

from __future__ import annotations

from assetsync.frozen import frozen
from assetsync.functions.plan import FunctionPlan
from assetsync.functions.variables import VariablePlan
from assetsync.plan.assess import Assessment
from assetsync.prepare.stage import issue_line
from assetsync.remote.http import ClientStats as RequestStats
from assetsync.results import FunctionsOutcome, SyncResult
from assetsync.sync.phase_values import Applied, Request, Target
from assetsync.sync.urlmap import UrlEntry

__all__ = [
    "Tally",
    "result",
]


@frozen
class Tally:
    """The request counters around a sync, its notes and its URL map."""

    before: RequestStats
    after: RequestStats
    notes: tuple[str, ...]
    urls: tuple[UrlEntry, ...]


def result(req: Request, at: Target, found: Assessment, applied: Applied,
            variables: VariablePlan | None, tally: Tally) -> SyncResult:
    """The record phase's answer: what was (or, in a dry run, would be) done."""
    dry_run, plan, live, env = req.flags.dry_run, found.plan, at.live, at.env
    before, after = tally.before, tally.after
    return SyncResult(
        service=at.service,
        environment=at.environment,
        service_sid=at.service_sid,
        environment_sid=env.sid if env else None,
        domain_name=env.domain_name if env else None,
        build_sid=applied.build_sid or (live.sid if live is not None
                                        and not found.needs_build else None),
        deployment_sid=applied.deployment_sid,
        uploaded=tuple(f.path for f in plan.uploads) if dry_run else applied.uploaded,
        reused=len(plan.reuses),
        created_assets=plan.create_assets if dry_run else applied.created,
        dropped=plan.drops,
        kept_foreign=tuple(v.path for v in plan.kept_foreign),
        function_versions=found.function_count,
        upload_bytes=found.upload_bytes,
        bytes_sent=after.bytes_sent - before.bytes_sent,
        requests=after.requests - before.requests,
        write_requests=after.write_requests - before.write_requests,
        retries=after.retries - before.retries,
        dry_run=dry_run,
        noop=not found.needs_build and applied.build_sid is None,
        urls=tally.urls,
        warnings=tuple(issue_line(i) for i in found.warnings),
        notes=tally.notes,
        functions=(_functions_outcome(found.functions, applied.functions_uploaded, dry_run)
                   if found.functions is not None else None),
        variables=variables,
    )


def _functions_outcome(
    fplan: FunctionPlan, uploaded: tuple[str, ...], dry_run: bool
) -> FunctionsOutcome:
    return FunctionsOutcome(
        uploaded=tuple(f.path for f in fplan.uploads) if dry_run else uploaded,
        reused=len(fplan.reuses),
        dropped=fplan.drops,
        dependencies=fplan.dependencies,
        dependencies_changed=fplan.dependencies_changed,
        paths=tuple(sorted((f.path, f.visibility.value)
                           for f in (*fplan.uploads, *(f for f, _s in fplan.reuses)))),
    )
