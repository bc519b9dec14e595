"""`assetsync preview [NAME] [--ttl 7d] [--json]`: deploy the folder to a preview environment
and print its URL alone on stdout; `--list`, `--delete [NAME]`, `--prune [--yes]`.

NAME defaults to one derived from the CI (GitHub's `GITHUB_REF`, GitLab's merge request IID or
branch) or the checkout's branch (`.git/HEAD`, read without git): this module reads those, the
library (`assetsync.sync.preview`) takes the values.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from assetsync.cli._common import add_json_flag, config_from_args, print_json
from assetsync.cli._progress import Progress, kill_switch
from assetsync.cli.commands.urls import local_origin
from assetsync.config import Config
from assetsync.config.env import ci_values
from assetsync.errors import AssetsyncError, ConfigError

# The library (the HTTP client, the sync engine) is imported by the functions that run it:
# `assetsync --help` registers this command without loading it.
if TYPE_CHECKING:
    from assetsync.sync.preview import PreviewEnvironment

__all__ = ["git_branch", "handler", "register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `preview` to the CLI."""
    p = subparsers.add_parser(
        "preview", help="deploy the folder to a preview environment (one per pull request)",
        description="Deploy the source folder to the environment NAME (its domain suffix), "
        "reusing every version already uploaded, and print its URL. The expiry is kept on the "
        "environment (the ASSETSYNC_PREVIEW_EXPIRES variable), so any machine can prune it.",
    )
    p.add_argument("name", nargs="?", metavar="NAME",
                   help="the preview's name, at most 16 lower-case letters, digits and dashes "
                   "(default: pr-N from GITHUB_REF, mr-N from CI_MERGE_REQUEST_IID, else the "
                   "branch)")
    p.add_argument("--ttl", default="7d", metavar="DURATION",
                   help="how long until --prune may delete it: 7d (default), 12h, 2w, 30m")
    action = p.add_mutually_exclusive_group()
    action.add_argument("--list", action="store_true", help="list the previews and expiries")
    action.add_argument("--delete", action="store_true",
                        help="delete the preview NAME (default: the derived name)")
    action.add_argument("--prune", action="store_true",
                        help="delete the expired previews (dry run unless --yes)")
    p.add_argument("--yes", action="store_true", help="with --prune: really delete them")
    add_json_flag(p)
    p.set_defaults(func=handler)


def git_branch(start: Path) -> str | None:
    """The branch checked out in the repository at or above `start`, from `.git/HEAD`.

    `.git` may be a file (`gitdir: PATH`) in a worktree or submodule.
    """
    from assetsync.sync.preview import branch_from_head

    for folder in (start, *start.parents):
        dot_git = folder / ".git"
        try:
            if dot_git.is_file():
                pointer = dot_git.read_text(encoding="utf-8").strip()
                if not pointer.startswith("gitdir:"):
                    return None
                dot_git = (folder / pointer[len("gitdir:"):].strip()).resolve()
            if dot_git.is_dir():
                return branch_from_head((dot_git / "HEAD").read_text(encoding="utf-8"))
        except OSError:
            return None
    return None


def _name(args: argparse.Namespace, config: Config) -> str:
    """NAME as given, else derived from the CI's variables or the checkout's branch."""
    if args.name:
        return str(args.name)
    from assetsync.sync.preview import preview_name

    ci = ci_values(os.environ)
    derived = preview_name(
        github_ref=ci.get("GITHUB_REF"), gitlab_mr_iid=ci.get("CI_MERGE_REQUEST_IID"),
        ci_branch=ci.get("CI_COMMIT_BRANCH"), git_branch=git_branch(config.root))
    if derived is None:
        raise ConfigError("preview: no NAME given and none to derive (no GITHUB_REF pull "
                          "request, CI_MERGE_REQUEST_IID or git branch): name it, e.g. "
                          "`assetsync preview pr-7`", key="NAME")
    return derived


def _row(p: PreviewEnvironment) -> str:
    state = "expired" if p.expired else "expires"
    return f"{p.name}  {p.url}  {state} {p.expires}  ({p.service}, created {p.date_created})"


def _list(args: argparse.Namespace, config: Config) -> int:
    from assetsync.sync.preview import list_previews

    previews = list_previews(config)
    if args.json:
        print_json({"previews": [p.to_json() for p in previews]})
    elif not previews:
        print(f"no preview environments in {config.service}")
    for p in previews if not args.json else ():
        print(_row(p))
    return 0


def _delete(args: argparse.Namespace, config: Config) -> int:
    from assetsync.sync.preview import delete_preview

    deleted = delete_preview(config, _name(args, config))
    if args.json:
        print_json({"deleted": [p.to_json() for p in deleted]})
        return 0
    for p in deleted:
        print(f"deleted preview {p.name} ({p.service}, {p.domain_name})")
    return 0


def _prune(args: argparse.Namespace, config: Config) -> int:
    from assetsync.sync.preview import prune_previews

    result = prune_previews(config, yes=args.yes)
    if args.json:
        print_json(result.to_json())
        return 0
    if not result.expired:
        print(f"no expired previews ({len(result.kept)} not yet expired)")
        return 0
    verb = "would delete" if result.dry_run else "deleted"
    print(f"{verb} {len(result.expired)} expired preview(s):")
    for p in result.expired:
        print(f"  {_row(p)}")
    if result.dry_run:
        print("dry run: run `assetsync preview --prune --yes` to delete them")
    return 0


def _deploy(args: argparse.Namespace, config: Config) -> int:
    from assetsync.sync.preview import deploy_preview, parse_ttl

    name = _name(args, config)
    ttl = parse_ttl(args.ttl)  # before any request
    progress = Progress(quiet=args.json, verbose=args.verbose, dry_run=False)
    try:
        result = deploy_preview(config, name, ttl=ttl, on_event=kill_switch(progress))
    except AssetsyncError as exc:
        if args.json:  # a program reading stdout still gets one document
            print_json({"ok": False, "error": str(exc), "type": type(exc).__name__,
                        "exit_code": exc.exit_code})
        raise
    finally:
        progress.clear()
    if args.json:
        print_json({"ok": True, **result.to_json()})
        return 0
    for warning in result.sync.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"preview {name}: uploaded {len(result.sync.uploaded)} file(s), reused "
          f"{result.sync.reused}; expires {result.expires}", file=sys.stderr)
    origin = local_origin(config)
    if origin is not None:  # the embedded emulator: the https:// URL exists nowhere yet
        print(f"local: {origin}/_serve/{result.sync.domain_name}/ (run `assetsync emulator`)",
              file=sys.stderr)
    print(result.url)  # alone on stdout: `URL=$(assetsync preview)`
    return 0


def handler(args: argparse.Namespace) -> int:
    """Deploy, list, delete or prune previews."""
    config = config_from_args(args)
    if args.yes and not args.prune:
        raise ConfigError("--yes goes with --prune", key="--yes")
    if args.name and (args.list or args.prune):
        raise ConfigError("--list and --prune take no NAME: they cover every preview",
                          key="NAME")
    if args.list:
        return _list(args, config)
    if args.delete:
        return _delete(args, config)
    if args.prune:
        return _prune(args, config)
    return _deploy(args, config)
