"""`assetsync check [--json]`: every reference to a published path, checked offline;
`assetsync check --live`: every URL the live environment should serve, probed."""

from __future__ import annotations

import argparse
import sys

from assetsync.cli._common import add_json_flag, config_from_args, print_json
from assetsync.config import Config

__all__ = ["handler", "register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `assetsync check`."""
    parser = subparsers.add_parser(
        "check",
        help="find references to published paths (<Play>, media, getAssets) that would fail",
        description=(
            "Read the functions folder, the TwiML and HTML files of the source folder and any "
            "Studio flow export, and check every path they name against what a sync publishes: "
            "it exists, its visibility fits the use, its content type fits the channel. "
            "Offline. Exit 0 when nothing (or only warnings) is found, 1 on errors."
        ),
    )
    add_json_flag(parser)
    parser.add_argument("--env", metavar="NAME", help="environment (default from the config)")
    parser.add_argument(
        "--live", action="store_true",
        help="probe every URL the environment should serve (status, Content-Type, size; "
             "protected ones signed, private ones must be refused)")
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Run `assetsync check`."""
    from assetsync.check import check_project

    config = config_from_args(args, {"project.environment": args.env})
    if args.live:
        return _live(config, as_json=args.json)
    report = check_project(config)
    errors = len(report.errors)
    warnings = len(report.findings) - errors
    if args.json:
        print_json({
            "ok": errors == 0, "references": report.references, "files_read": report.files_read,
            "errors": errors, "warnings": warnings,
            "findings": [{"file": f.file, "line": f.line, "path": f.path,
                          "severity": f.severity, "message": f.message}
                         for f in report.findings],
        })
        return 1 if errors else 0
    for finding in report.findings:
        stream = sys.stdout
        print(f"{finding.severity}: {finding.line_text()}", file=stream)
    print(f"checked {report.references} reference(s) in {report.files_read} file(s): "
          f"{errors} error(s), {warnings} warning(s)")
    return 1 if errors else 0


def _live(config: Config, *, as_json: bool) -> int:
    """`check --live`: one line per problem, a summary; exit 1 on any problem."""
    from assetsync.check.live import ProbeResult, check_live, summary

    progress = sys.stderr.isatty() and not as_json

    def on_result(result: ProbeResult, done: int, total: int) -> None:
        if progress:
            print(f"\rprobing {done}/{total} ...", end="", file=sys.stderr, flush=True)

    report = check_live(config, on_result=on_result)
    if progress:
        print("\r\033[K", end="", file=sys.stderr, flush=True)
    problems = report.problems
    if as_json:
        print_json({
            "ok": not problems, "probed": len(report.results), "problems": len(problems),
            "notes": list(report.notes),
            "results": [{"path": r.probe.path, "url": r.probe.url,
                         "visibility": r.probe.visibility, "status": r.status,
                         "content_type": r.content_type, "size": r.size,
                         "expected_content_type": r.probe.content_type,
                         "expected_size": r.probe.size, "problem": r.problem}
                        for r in report.results],
        })
        return 1 if problems else 0
    for result in problems:
        print(f"error: {result.line_text()}")
    for note in report.notes:
        print(f"note: {note}")
    if not report.results:
        print(f"nothing deployed by assetsync to {config.service}/{config.environment} yet: "
              "run `assetsync sync`")
        return 0
    kinds = ", ".join(summary(report))
    print(f"probed {len(report.results)} URL(s) ({kinds}): {len(problems)} wrong")
    return 1 if problems else 0
