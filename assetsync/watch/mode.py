"""Watch mode's observer choice: inotify, or polling for network/FUSE mounts and exhausted watches.

inotify never reports changes made by other hosts on NFS/SMB, through 9p (WSL2) or most FUSE
filesystems (watch-hash-manifest.md §3.3: "Applications must fall back to polling"), and it needs
one watch per folder from a per-user pool (`fs.inotify.max_user_watches`) that every program of the
user shares. This module picks the mode, starts the observer and falls back to polling when
inotify refuses.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal, Protocol

from watchdog.observers import Observer

from assetsync.frozen import frozen, replace
from assetsync.watch.events import EVENT_FILTER, Change, Ignored, QueueHandler, WatchTarget
from assetsync.watch.options import PollingMode
from assetsync.watch.poll import TreePoller

__all__ = [
    "ObserverChoice",
    "Watcher",
    "choose_mode",
    "filesystem_type",
    "inotify_watch_limit",
    "start_observer",
    "sysctl_advice",
]

log = logging.getLogger(__name__)

WatchMode = Literal["inotify", "polling"]

# Filesystems whose changes inotify misses (other hosts' writes, host-side writes into a VM).
# Every "fuse.*" type (sshfs, rclone, s3fs, ...) and "nfs*" counts too; see _remote().
_REMOTE_FS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ceph", "glusterfs", "lustre", "gpfs",
     "davfs", "vboxsf", "vmhgfs", "virtiofs", "drvfs", "fuseblk", "fuse"}
)
_WATCHES_PATH = Path("/proc/sys/fs/inotify/max_user_watches")
# Leave room for the user's other watchers (editors, IDEs, dev servers share the same pool).
_WATCH_SHARE = 0.5
# A limit that fits most trees and costs about 1 KiB of kernel memory per watch used.
_ADVISED_WATCHES = 524_288


class Watcher(Protocol):
    """A running source of `Change`s: watchdog's observer or the `TreePoller`."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def join(self, timeout: float | None = None) -> None: ...


@frozen
class ObserverChoice:
    """How the source folder is watched, and why (for the status line and the log)."""

    mode: WatchMode
    reason: str
    advice: str | None = None


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal (proc(5)).
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


def filesystem_type(path: Path, mountinfo: str) -> str | None:
    """The type of the filesystem holding absolute `path`, from /proc/self/mountinfo's text."""
    best: tuple[int, str] | None = None
    target = str(path)
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or not tail:
            continue
        mount_point = _unescape(fields[4])
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        # Later lines win ties: a mount stacked on the same point hides the earlier one.
        if inside and (best is None or len(mount_point) >= best[0]):
            best = (len(mount_point), tail[0])
    return best[1] if best else None


def _remote(fs_type: str) -> bool:
    return fs_type in _REMOTE_FS or fs_type.startswith(("fuse.", "nfs"))


def inotify_watch_limit(path: Path = _WATCHES_PATH) -> int | None:
    """`fs.inotify.max_user_watches`, or None where it cannot be read (not Linux)."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def sysctl_advice(current: int | None, key: str = "max_user_watches") -> str:
    """What to run to raise an inotify limit (the user decides; assetsync never does)."""
    now = f" (now {current})" if current is not None else ""
    value = _ADVISED_WATCHES if key == "max_user_watches" else 1024
    return (
        f"the inotify limit fs.inotify.{key}{now} is too low to watch this folder, so assetsync "
        f"polls instead. To use inotify, run: sudo sysctl fs.inotify.{key}={value} "
        "(and add it to /etc/sysctl.d/ to keep it after a reboot)"
    )


def _count_dirs(root: Path, stop_after: int) -> int:
    count = 1
    for _dirpath, dirnames, _files in os.walk(root):
        count += len(dirnames)
        if count > stop_after:
            break
    return count


def choose_mode(
    root: Path,
    polling: PollingMode,
    *,
    mountinfo: str | None = None,
    watch_limit: int | None = None,
) -> ObserverChoice:
    """Pick inotify or polling for `root` (`mountinfo`/`watch_limit` default to the live system)."""
    if polling == "on":
        return ObserverChoice("polling", "polling = \"on\" in [watch]")
    if polling == "off":
        return ObserverChoice("inotify", "polling = \"off\" in [watch]")
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError:
            mountinfo = ""
    fs_type = filesystem_type(root.resolve(), mountinfo)
    if fs_type is not None and _remote(fs_type):
        return ObserverChoice(
            "polling", f"{root} is on a {fs_type} mount, which inotify cannot watch"
        )
    limit = watch_limit if watch_limit is not None else inotify_watch_limit()
    if limit is not None:
        dirs = _count_dirs(root, int(limit * _WATCH_SHARE))
        if dirs > limit * _WATCH_SHARE:
            return ObserverChoice(
                "polling", f"{root} has more than {dirs - 1} folders", advice=sysctl_advice(limit)
            )
    return ObserverChoice("inotify", "inotify")


def start_observer(
    choice: ObserverChoice,
    sink: Callable[[Change], None],
    root: Path,
    *,
    ignored: Ignored,
    poll_interval_s: float,
    clock: Callable[[], float] = time.monotonic,
    extra: Sequence[WatchTarget] = (),
) -> tuple[Watcher, ObserverChoice]:
    """Start reporting changes under `root` (and in the `extra` targets whose folder exists) to
    `sink`, in the chosen mode for all of them; inotify refusing (ENOSPC/EMFILE) falls back to
    polling, with the sysctl advice in the returned choice."""
    extra = [t for t in extra if t.folder.is_dir()]
    if choice.mode == "inotify":
        observer = Observer()
        handler = QueueHandler(sink, clock)
        observer.schedule(handler, str(root), recursive=True, event_filter=EVENT_FILTER)
        for target in extra:
            # A non-recursive watch of a single file's folder reports its direct entries only;
            # the dirty set keeps that file's events and drops the others.
            observer.schedule(handler, str(target.folder), recursive=target.recursive,
                              event_filter=EVENT_FILTER)
        try:
            observer.start()
            return observer, choice
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EMFILE):
                raise
            observer.stop()  # the watches that did start, or they would report beside the poller
            log.debug("inotify refused (%s); falling back to polling", exc)
            choice = replace(
                choice,
                mode="polling",
                reason=f"inotify refused: {exc.strerror}",
                advice=(
                    sysctl_advice(inotify_watch_limit())
                    if exc.errno == errno.ENOSPC
                    else sysctl_advice(None, "max_user_instances")
                ),
            )
    poller = TreePoller(
        root, sink, ignored=ignored, interval_s=poll_interval_s, clock=clock, extra=extra
    )
    poller.start()
    return poller, choice
