"""The environment variables assetsync reads, all of them, in one place: credentials
(`TWILIO_ACCOUNT_SID`, ...) and the variables that stand in for `[target]` keys.

Pure over the mapping it is given (the CLI passes `os.environ` once). Every error names the
variable, never the config file: the value did not come from the file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from assetsync.config.sections import Credentials
from assetsync.errors import ConfigError

__all__ = ["CI_NAME_VARIABLES", "ENV_KEYS", "ci_values", "env_error", "env_layer",
           "read_credentials"]

# Variables that stand in for file keys (flag > environment > file > default). The same names
# as the Twilio CLI and the official helper libraries (TWILIO_REGION, TWILIO_EDGE).
ENV_KEYS: Mapping[str, tuple[str, str]] = {
    "ASSETSYNC_API_URL": ("target", "api_url"),
    "ASSETSYNC_UPLOAD_URL": ("target", "upload_url"),
    "TWILIO_REGION": ("target", "region"),
    "TWILIO_EDGE": ("target", "edge"),
}

_ACCOUNT_SID_RE = re.compile(r"AC[0-9a-fA-F]{32}\Z")

# The CI variables that name a pull request or branch, from which `assetsync preview` derives
# its default name (assetsync.sync.preview.preview_name): GitHub Actions' GITHUB_REF
# (`refs/pull/7/merge`, `refs/heads/main`), GitLab CI's CI_MERGE_REQUEST_IID and CI_COMMIT_BRANCH.
CI_NAME_VARIABLES = ("GITHUB_REF", "CI_MERGE_REQUEST_IID", "CI_COMMIT_BRANCH")


def ci_values(environ: Mapping[str, str]) -> dict[str, str]:
    """Each of `CI_NAME_VARIABLES` that is set (and not blank), by name."""
    return {n: environ[n].strip() for n in CI_NAME_VARIABLES if environ.get(n, "").strip()}


def env_error(name: str, problem: str) -> ConfigError:
    """`NAME: problem`: the one-line error for a bad or missing environment variable."""
    return ConfigError(f"{name}: {problem}", key=name)


def env_layer(environ: Mapping[str, str]) -> dict[tuple[str, str], tuple[str, str]]:
    """(section, key) -> (value, variable name) for each stand-in variable that is set."""
    out: dict[tuple[str, str], tuple[str, str]] = {}
    for name, where in ENV_KEYS.items():
        value = environ.get(name, "").strip()
        if value:
            out[where] = (value, name)
    return out


def read_credentials(environ: Mapping[str, str]) -> Credentials | None:
    """Credentials from the environment, None when no Twilio variable is set at all.

    Raises:
        ConfigError: a malformed account SID, or a half-set pair; naming the variable.
    """
    sid = environ.get("TWILIO_ACCOUNT_SID", "").strip()
    token = environ.get("TWILIO_AUTH_TOKEN", "").strip()
    key = environ.get("TWILIO_API_KEY", "").strip()
    secret = environ.get("TWILIO_API_SECRET", "").strip()
    if not (sid or token or key or secret):
        return None
    if sid and not _ACCOUNT_SID_RE.match(sid):
        raise env_error("TWILIO_ACCOUNT_SID", "expected 'AC' followed by 32 hex digits; "
                        "copy the Account SID from the Twilio Console")
    if key or secret:
        pairs = (("TWILIO_API_KEY", key), ("TWILIO_API_SECRET", secret),
                 ("TWILIO_ACCOUNT_SID", sid))
        missing = [name for name, value in pairs if not value]
        if missing:
            raise env_error(missing[0], "is not set; an API key needs TWILIO_API_KEY, "
                            "TWILIO_API_SECRET and TWILIO_ACCOUNT_SID")
        return Credentials(account_sid=sid, username=key, password=secret)
    if not (sid and token):
        missing_name = "TWILIO_AUTH_TOKEN" if sid else "TWILIO_ACCOUNT_SID"
        raise env_error(missing_name, "is not set; set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    return Credentials(account_sid=sid, username=sid, password=token)
