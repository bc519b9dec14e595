"""assetsync: publish a folder of static assets to Twilio Serverless Assets, incrementally."""

from __future__ import annotations

from assetsync.errors import (
    ApiConnectionError,
    ApiError,
    ApiStatusError,
    AssetsyncError,
    AuthenticationError,
    BuildFailedError,
    ConfigError,
    DriftError,
    LimitError,
    LockHeldError,
    NotFoundError,
    RateLimitError,
    ScanError,
    StateError,
    SyncError,
    TransformError,
)
from assetsync.models import PublishedFile, ScannedFile, Visibility

__version__ = "0.1.0"

__all__ = [
    "ApiConnectionError",
    "ApiError",
    "ApiStatusError",
    "AssetsyncError",
    "AuthenticationError",
    "BuildFailedError",
    "ConfigError",
    "DriftError",
    "LimitError",
    "LockHeldError",
    "NotFoundError",
    "PublishedFile",
    "RateLimitError",
    "ScanError",
    "ScannedFile",
    "StateError",
    "SyncError",
    "TransformError",
    "Visibility",
    "__version__",
]
