"""The assetsync exception tree; nothing else lives here.

```
AssetsyncError                  root; the CLI prints one line and exits 1
├── ConfigError                 bad or unknown keys, missing credentials (exit 2)
├── ScanError                   unreadable root, path escapes root, symlink loop (.path)
├── StateError                  corrupt or newer-schema state
│   └── LockHeldError           another assetsync holds the state lock (.pid; exit 3)
├── TransformError              one file could not be decoded/encoded (.path)
├── LimitError                  a file or build cannot fit a documented limit (.path, .limit)
├── ApiError                    (.method, .url; never credentials)
│   ├── ApiConnectionError      transport failure; retryable
│   ├── ApiStatusError          .status_code, .code (Twilio code), .more_info
│   │   ├── AuthenticationError 401/403
│   │   ├── NotFoundError       404
│   │   └── RateLimitError      429, .retry_after; retryable
│   └── BuildFailedError        build ended `failed` (.build_sid)
├── DriftError                  the live build is not the one recorded
└── SyncError                   finished with per-file failures (.result)
```

Every message says what to do next. No httpx or Pillow exception crosses the public API.
"""

from __future__ import annotations

from typing import Any

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
    "RateLimitError",
    "ScanError",
    "StateError",
    "SyncError",
    "TransformError",
]


class AssetsyncError(Exception):
    """Root of every error assetsync raises on purpose."""

    exit_code = 1


class ConfigError(AssetsyncError):
    """A bad, unknown or missing configuration key or credential."""

    exit_code = 2

    def __init__(self, message: str, *, key: str | None = None, file: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.file = file


class ScanError(AssetsyncError):
    """A file or folder of the source tree could not be read."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class StateError(AssetsyncError):
    """The state folder is corrupt, from a newer assetsync, or unusable."""


class LockHeldError(StateError):
    """Another assetsync process holds the state lock."""

    exit_code = 3

    def __init__(self, message: str, *, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


class TransformError(AssetsyncError):
    """One file could not be decoded or encoded."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class LimitError(AssetsyncError):
    """A file or a build cannot fit a documented Twilio limit."""

    def __init__(self, message: str, *, path: str | None = None, limit: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.limit = limit


class ApiError(AssetsyncError):
    """A request to the Serverless API failed. Never carries credentials."""

    def __init__(self, message: str, *, method: str = "", url: str = "") -> None:
        super().__init__(message)
        self.method = method
        self.url = url


class ApiConnectionError(ApiError):
    """The request never got an HTTP answer (DNS, refused, reset, timeout). Retryable."""


class ApiStatusError(ApiError):
    """The API answered with an error status and (usually) a Twilio error body."""

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        url: str = "",
        status_code: int = 0,
        code: int | None = None,
        more_info: str | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.status_code = status_code
        self.code = code
        self.more_info = more_info


class AuthenticationError(ApiStatusError):
    """401/403: the credentials were refused."""


class NotFoundError(ApiStatusError):
    """404: the resource does not exist (any more)."""


class RateLimitError(ApiStatusError):
    """429: too many requests; `.retry_after` seconds if the server said."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class BuildFailedError(ApiError):
    """A build ended `failed`; the previous deployment stays live."""

    def __init__(self, message: str, *, build_sid: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.build_sid = build_sid


class DriftError(AssetsyncError):
    """The environment's live build is not the one assetsync last deployed."""


class SyncError(AssetsyncError):
    """A sync finished but some files failed; `.result` holds what was done."""

    def __init__(self, message: str, *, result: object = None) -> None:
        super().__init__(message)
        self.result = result
