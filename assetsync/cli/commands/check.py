"""`assetsync check [--json]`: every reference to a published path, checked offline."""

from __future__ import annotations

import argparse
import sys

from assetsync.cli._common import add_json_flag, config_from_args, print_json

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
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Run `assetsync check`."""
    from assetsync.check import check_project

    config = config_from_args(args, {"project.environment": args.env})
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
