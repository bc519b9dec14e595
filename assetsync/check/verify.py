"""References against the publish set: one finding per reference that would fail its use.

Pure. `Target` is what a sync would publish at a path (visibility, content type, size; a
function has no content type to check); `verify` applies the visibility rules and the channel
table (`assetsync.media.channels`) to each reference.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from assetsync.check.references import Reference
from assetsync.frozen import frozen
from assetsync.media.channels import MMS_TRANSCODED, WHATSAPP_IMAGE_MAX, rule_for

__all__ = ["Finding", "Target", "verify"]


@frozen
class Target:
    """A published path as `check` needs it."""

    visibility: str
    content_type: str | None  # None for a function
    size: int


@frozen
class Finding:
    """One problem: where (file, line), which published path, what is wrong."""

    file: str
    line: int
    path: str
    message: str
    severity: str  # "error" or "warning"

    def line_text(self) -> str:
        """The one line `check` prints for it."""
        return f"{self.file}:{self.line}: {self.path}: {self.message}"


_SERVED_USES = ("play", "media", "browser", "link", "url")


def verify(references: Iterable[Reference], targets: Mapping[str, Target]) -> list[Finding]:
    """Every finding of `references` against what the sync publishes (`targets` by path)."""
    found: list[Finding] = []
    for ref in references:
        found.extend(_check(ref, targets))
    return sorted(found, key=lambda f: (f.severity != "error", f.file, f.line, f.path))


def _check(ref: Reference, targets: Mapping[str, Target]) -> list[Finding]:
    def finding(message: str, severity: str = "error") -> Finding:
        return Finding(ref.file, ref.line, ref.target, message, severity)

    target = targets.get(ref.target)
    if target is None:
        what = "function" if ref.use == "functions" else "file"
        return [finding(f"no {what} is published at this path")]
    if ref.use == "functions" and target.content_type is not None:
        return [finding("Runtime.getFunctions() names an asset, not a function")]
    if ref.use == "assets" and target.content_type is None:
        return [finding("Runtime.getAssets() names a function, not an asset")]
    if ref.use in _SERVED_USES and target.visibility == "private":
        return [finding("private: never served over HTTP; read it in a function with "
                        "Runtime.getAssets()[path].open(), or make it public")]
    if ref.use in ("browser", "link") and target.visibility == "protected":
        return [finding("protected: a browser gets 403, only Twilio's signed requests fetch it",
                        "warning")]
    if target.content_type is None:
        return []
    if ref.use == "play":
        return [finding(m) for m in _play_problems(target)]
    if ref.use == "media":
        return [finding(m, s) for m, s in _media_problems(target, whatsapp=ref.whatsapp)]
    return []


def _play_problems(target: Target) -> list[str]:
    rule = rule_for("play")
    if target.content_type is not None and rule.accepts(target.content_type):
        return []
    return [(f"served as {target.content_type}; <Play> plays only "
            f"{', '.join(sorted(rule.types))} (Twilio error 13420)")]


def _media_problems(target: Target, *, whatsapp: bool) -> list[tuple[str, str]]:
    kind = (target.content_type or "").split(";")[0].strip().lower()
    problems: list[tuple[str, str]] = []
    mms = rule_for("mms")
    if not mms.accepts(kind):
        problems.append((f"served as {kind}, which MMS does not accept", "error"))
    elif mms.max_bytes is not None and target.size > mms.max_bytes:
        problems.append((f"{target.size:,} bytes: over MMS's 5 MB per message", "error"))
    elif mms.soft_bytes is not None and kind not in MMS_TRANSCODED \
            and target.size > mms.soft_bytes:
        problems.append(((f"{target.size:,} bytes: carriers may refuse {kind} over 600 KB "
                         "(Twilio transcodes only JPEG, PNG and GIF)"), "warning"))
    if whatsapp:
        problems.extend(_whatsapp_problems(kind, target.size))
    return problems


def _whatsapp_problems(kind: str, size: int) -> list[tuple[str, str]]:
    rule = rule_for("whatsapp")
    if not rule.accepts(kind):
        return [(f"served as {kind}, which WhatsApp does not accept", "error")]
    cap = WHATSAPP_IMAGE_MAX if kind.startswith("image/") else rule.max_bytes
    if cap is not None and size > cap:
        return [(f"{size:,} bytes: over WhatsApp's {cap // (1024 * 1024)} MB for {kind}",
                 "error")]
    return []
