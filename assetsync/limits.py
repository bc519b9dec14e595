"""Twilio Serverless's documented limits as named constants, each citing its source.

Pure: values only. Sharding (assigning files to services within these limits) is
`assetsync.plan.shard`.
"""

from __future__ import annotations

from assetsync.frozen import frozen

__all__ = [
    "BUILDS_PER_HOUR",
    "DEFAULT_BUILD_LIMITS",
    "DEFAULT_RUNTIME",
    "ENVIRONMENTS_PER_SERVICE",
    "FUNCTION_VERSIONS_PER_BUILD",
    "MAX_PATH_LENGTH",
    "MAX_PRIVATE_ASSET_BYTES",
    "MAX_PUBLIC_ASSET_BYTES",
    "PRIVATE_ASSET_VERSIONS_PER_BUILD",
    "PUBLIC_PROTECTED_ASSET_VERSIONS_PER_BUILD",
    "RUNTIMES",
    "SERVICES_PER_ACCOUNT",
    "UNDEPLOYED_BUILD_RETENTION_S",
    "UNREFERENCED_VERSION_RETENTION_S",
    "BuildLimits",
]

# twilio.com/docs/serverless/api ("Limitations"), as summarised in
# shared/reference/api-contract.md §4: 1000 public+protected and 50 private asset versions,
# and 50 function versions, per build.
PUBLIC_PROTECTED_ASSET_VERSIONS_PER_BUILD = 1000
PRIVATE_ASSET_VERSIONS_PER_BUILD = 50
FUNCTION_VERSIONS_PER_BUILD = 50

# Same page: 25 environments per service; 100 builds per hour per account.
ENVIRONMENTS_PER_SERVICE = 25
BUILDS_PER_HOUR = 100

# Twilio's docs say 10 services per account; one error seen in the wild says 50 (DESIGN.md),
# so every user of this number takes it from config.
SERVICES_PER_ACCOUNT = 10

# Asset size limits (api-contract.md §4; toolkit issue #167 shows the 413 past 25 MB).
# Twilio's "MB" here is taken as 10^6 bytes, the stricter reading of the two.
MAX_PUBLIC_ASSET_BYTES = 25_000_000
MAX_PRIVATE_ASSET_BYTES = 10_000_000

# Builds without an active deployment are deleted after 24 h; versions that no build or active
# deployment references after 7 days (api-contract.md §4).
UNDEPLOYED_BUILD_RETENTION_S = 24 * 3600
UNREFERENCED_VERSION_RETENTION_S = 7 * 24 * 3600

# Asset paths must be shorter than 256 characters (DESIGN.md, classify stage).
MAX_PATH_LENGTH = 255


@frozen
class BuildLimits:
    """How many versions one build may hold; configurable, defaulting to the documented ones."""

    public_protected: int = PUBLIC_PROTECTED_ASSET_VERSIONS_PER_BUILD
    private: int = PRIVATE_ASSET_VERSIONS_PER_BUILD
    functions: int = FUNCTION_VERSIONS_PER_BUILD


DEFAULT_BUILD_LIMITS = BuildLimits()

# The runtimes a build may name: build_enum_runtime in twilio_serverless_v1.yaml, plus node24,
# the toolkit's 2026 default (api-contract.md §3.7). Without one, Twilio builds on its current
# default: the spec's create example answers node22.
RUNTIMES = ("node8", "node10", "node12", "node14", "node16", "node18", "node20", "node22", "node24")
DEFAULT_RUNTIME = "node22"
