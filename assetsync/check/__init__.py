"""Check stage: every reference to a published path in the project, against the publish set and
the channel rules (`<Play>`, MMS, WhatsApp), before callers hear a dead prompt; and (`live`) every
URL the live environment should serve, probed (import `assetsync.check.live` for that: it loads
httpx, which the offline check, run before every sync, does not need)."""

from assetsync.check.project import CheckReport, check_project
from assetsync.check.references import Reference
from assetsync.check.verify import Finding, Target, verify
from assetsync.media.channels import CHANNELS, ChannelRule

__all__ = ["CHANNELS", "ChannelRule", "CheckReport", "Finding", "Reference", "Target",
           "check_project", "verify"]
