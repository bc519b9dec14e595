"""Check stage: every reference to a published path in the project, against the publish set and
the channel rules (`<Play>`, MMS, WhatsApp), before callers hear a dead prompt."""

from assetsync.check.channels import CHANNELS, ChannelRule
from assetsync.check.project import CheckReport, check_project
from assetsync.check.references import Reference
from assetsync.check.verify import Finding, Target, verify

__all__ = ["CHANNELS", "ChannelRule", "CheckReport", "Finding", "Reference", "Target",
           "check_project", "verify"]
