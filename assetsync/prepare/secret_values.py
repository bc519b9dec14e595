"""The secret check's value types and the rules' version: what a run whose every verdict is
cached needs, without compiling the rules (`assetsync.prepare.secrets`, loaded only when some
file has to be scanned)."""

from __future__ import annotations

from assetsync.frozen import frozen

__all__ = ["RULES_VERSION", "KnownSecret"]

# Bump when a rule in `assetsync.prepare.secrets` changes, so that verdicts cached under the
# older rules are not trusted (tests/prepare/test_secrets.py pins a digest of the rules to this
# number).
RULES_VERSION = 1


@frozen
class KnownSecret:
    """A credential assetsync itself holds (from the config), matched exactly."""

    id: str
    kind: str
    value: bytes
