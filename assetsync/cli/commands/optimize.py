"""`assetsync optimize`: run the transform stage alone and show what it saves; uploads nothing."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from assetsync.cli import EXIT_ERROR, EXIT_OK
from assetsync.cli._common import config_from_args
from assetsync.errors import ConfigError
from assetsync.media.options import OptimizeOptions
from assetsync.media.sniff import channel_warnings
from assetsync.media.stage import FileReport, TransformResult, transform_files
from assetsync.models import PublishedFile
from assetsync.prepare.classify import VisibilityRules, classify
from assetsync.results import SyncEvent
from assetsync.scan.rules import IgnoreRules, scan_tree


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `assetsync optimize`."""
    parser = subparsers.add_parser(
        "optimize",
        help="optimize images and build channel variants without uploading; show the savings",
        description=(
            "Run the transform stage ([optimize] in the config) over the source folder, or over "
            "the given files and folders, and show bytes before and after. Results are cached "
            "in the state folder, so the next sync reuses them. Nothing is uploaded."
        ),
    )
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="files or folders inside the source folder (default: all of it)")
    parser.add_argument("--report", action="store_true",
                        help="one line per file: before, after, saving, time")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--source", metavar="DIR",
                        help="source folder (overrides the config; without a config the "
                             "defaults apply and nothing is cached)")
    parser.add_argument("--prune", action="store_true",
                        help="afterwards, delete cached results this run did not use")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="encoder processes (default: one per core)")
    parser.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    """Run `assetsync optimize`."""
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: use 1 or more (default: one per core)")
    source, options, cache_dir, rules, visibility = _settings(args)
    if args.prune and args.paths:
        raise ConfigError("--prune needs the whole source folder: drop the PATH arguments")
    snapshot = scan_tree(source, rules=rules, cache=None)
    files = _selected(classify(snapshot.files.values(), visibility, source=source).files,
                      args.paths, source)
    progress = _Progress(sys.stderr) if sys.stderr.isatty() and not args.json else None
    if cache_dir is None:
        with tempfile.TemporaryDirectory(prefix="assetsync-optimize-") as tmp:
            result = transform_files(files, options, source=source, cache_dir=Path(tmp),
                                     workers=args.workers, on_event=progress)
            _show(args, result, options, sys.stdout)
    else:
        result = transform_files(files, options, source=source, cache_dir=cache_dir,
                                 workers=args.workers, on_event=progress, prune=args.prune)
        _show(args, result, options, sys.stdout)
    return EXIT_ERROR if any(i.severity == "error" for i in result.issues) else EXIT_OK


def _settings(
    args: argparse.Namespace,
) -> tuple[Path, OptimizeOptions, Path | None, IgnoreRules, VisibilityRules]:
    config_path = Path(args.config) if args.config else None
    try:
        config = config_from_args(args)  # its warnings printed, like every command's
    except ConfigError:
        if args.source is None or config_path is not None:
            raise
        return Path(args.source).resolve(), OptimizeOptions(), None, IgnoreRules(), \
            VisibilityRules()
    options = config.optimize
    source = Path(args.source).resolve() if args.source else config.source
    return (source, options, config.state_dir / "transform", IgnoreRules.for_config(config),
            config.visibility)


def _selected(files: Sequence[PublishedFile], paths: Sequence[str],
              source: Path) -> tuple[PublishedFile, ...]:
    if not paths:
        return tuple(files)
    wanted = []
    for raw in paths:
        path = Path(raw).resolve()
        try:
            wanted.append(path.relative_to(source).as_posix())
        except ValueError:
            raise ConfigError(f"{raw}: not inside the source folder {source}; give a path "
                              "under it") from None
    chosen = tuple(f for f in files if any(w in (".", f.source) or f.source.startswith(w + "/")
                                           for w in wanted))
    if not chosen:
        raise ConfigError(f"no publishable file matches {' '.join(paths)} (ignored, or not "
                          "under the source folder)")
    return chosen


class _Progress:
    """A one-line progress bar on a terminal; cleared when the run ends."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def __call__(self, event: SyncEvent) -> None:
        if event.kind != "transformed" or not event.total:
            return
        width = 30
        filled = width * event.files // event.total
        name = (event.path or "")[-40:]
        self.out.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {event.files}/{event.total}"
                       f" {name:<40}")
        if event.files == event.total:
            self.out.write("\r" + " " * (width + 60) + "\r")
        self.out.flush()


def _saving(report: FileReport) -> float:
    return 100.0 * (report.before - report.after) / report.before if report.before else 0.0


def _show(args: argparse.Namespace, result: TransformResult, options: OptimizeOptions,
          out: TextIO) -> None:
    issues = sorted({*result.issues, *channel_warnings(result.files, options)},
                    key=lambda i: (i.path, i.message))
    stats = result.stats
    saved = stats.bytes_before - stats.bytes_after
    if args.json:
        payload = {
            "files": [{"path": r.path, "source": r.source, "variant": r.variant,
                       "outcome": r.outcome, "before": r.before, "after": r.after,
                       "saving_pct": round(_saving(r), 2), "seconds": r.seconds,
                       "cached": r.cached, "note": r.note} for r in result.reports],
            "totals": {"images": stats.images, "optimized": stats.optimized,
                       "variants": stats.variants, "encoded": stats.encoded,
                       "cache_hits": stats.cache_hits, "bytes_before": stats.bytes_before,
                       "bytes_after": stats.bytes_after, "bytes_saved": saved,
                       "pruned_bytes": stats.pruned_bytes},
            "issues": [{"path": i.path, "severity": i.severity, "message": i.message}
                       for i in issues],
            "audio": [r.to_json() for r in result.audio],
            "audio_totals": {"files": result.audio_stats.files,
                             "converted": result.audio_stats.converted,
                             "variants": result.audio_stats.variants,
                             "cache_hits": result.audio_stats.cache_hits,
                             "bytes_before": result.audio_stats.bytes_before,
                             "bytes_after": result.audio_stats.bytes_after},
        }
        out.write(json.dumps(payload, indent=2) + "\n")
        return
    if args.report and result.reports:
        width = max(len(r.path) for r in result.reports)
        out.write(f"{'file':<{width}}  {'before':>10}  {'after':>10}  {'saving':>7}  "
                  f"{'time':>8}  note\n")
        for r in result.reports:
            time_text = "cached" if r.cached else f"{r.seconds * 1000:.0f} ms"
            out.write(f"{r.path:<{width}}  {r.before:>10,}  {r.after:>10,}  "
                      f"{_saving(r):>6.1f}%  {time_text:>8}  {r.outcome}: {r.note}\n")
    percent = 100.0 * saved / stats.bytes_before if stats.bytes_before else 0.0
    if stats.images or not result.audio_stats.files:
        out.write(f"{stats.images} image(s): {stats.bytes_before:,} -> {stats.bytes_after:,} "
                  f"bytes ({percent:.1f}% saved), {stats.optimized} optimized, "
                  f"{stats.variants} variant(s), {stats.encoded} encoded, {stats.cache_hits} "
                  "from cache\n")
    if args.report and result.audio:
        out.writelines(f"{r.describe()}{' (cached)' if r.cached else ''}\n"
                       for r in result.audio)
    audio = result.audio_stats
    if audio.files:
        out.write(f"{audio.files} audio file(s): {audio.bytes_before:,} -> "
                  f"{audio.bytes_after:,} bytes in place, {audio.converted} converted, "
                  f"{audio.variants} variant(s), {audio.cache_hits} from cache\n")
    if args.prune:
        out.write(f"pruned {stats.pruned_bytes:,} bytes of unused cache\n")
    out.writelines(f"{i.severity}: {i.path}: {i.message}\n" for i in issues)
