"""Running a deployed Function's code with Node, one subprocess per request, as Twilio's
runtime would: `exports.handler(context, event, callback)`, within the 10 s execution limit.

The runner (`function_runner.js` beside this module) is assetsync's own, written from the
behaviour Twilio documents (twilio.com/docs/serverless/functions-assets/functions/invocation,
/docs/runtime/client) and that the Toolkit's local runtime shows (`@twilio/runtime-handler`
`dev-runtime/route.ts`: `constructContext`, `constructGlobalScope`, `handleSuccess`;
`internal/runtime.ts`: `getAssets`, `getFunctions`; `utils/requireFromProject.ts`):

- `Twilio` is the project's own `twilio` package (resolved from `base_dir`'s node_modules, as
  twilio-run resolves it from the project) plus `Twilio.Response`; without the package,
  reaching for it answers 500 with one line saying to run `npm install`;
- a string reply is `text/plain`, a TwiML document `text/xml`, a `Twilio.Response` its status,
  headers and body, any other value JSON, nothing an empty 200;
- `callback(err)` with an `Error` is a 500 with `{message, name, stack}` as JSON, any other
  error value is sent as the body of a 500 (a string as `text/html`, as Express sends it);
- `context` has `DOMAIN_NAME`, `PATH`, `SERVICE_SID`, `ENVIRONMENT_SID`, `ACCOUNT_SID` and
  `AUTH_TOKEN` (the emulator's, when the service includes credentials), the environment's
  Variables, and `getTwilioClient()`: a client of the project's `twilio` whose requests to the
  Serverless API go to this emulator and whose requests to any other API are refused;
- `Runtime.getFunctions()` / `Runtime.getAssets()` give the build's functions (keys without
  the leading `/`) and private assets (keys with it, with `open()`) as `{path}` in the
  emulator's storage, so `require(Runtime.getFunctions()['lib/util'].path)` loads a private
  function as on Twilio.

What the code writes with `console.log/info/warn/error` (and an error it throws) comes back with
the reply as (level, message) pairs, which the emulator keeps as Log resources
(`assetsync.emulator.logs`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from assetsync.frozen import field, frozen
from assetsync.functions.toolkit import FUNCTION_EXECUTION_LIMIT_S

__all__ = [
    "NODE_ENV_VAR",
    "NODE_RUNNER",
    "FunctionReply",
    "FunctionRequest",
    "node_executable",
    "run_function",
]

# Set to 0 (or false/no/off) to never run functions (their paths then answer 501), or to the
# path of a Node executable to use instead of the `node` found on PATH.
NODE_ENV_VAR = "ASSETSYNC_EMULATOR_NODE"
_OFF = frozenset({"0", "false", "no", "off"})
_ON = frozenset({"", "1", "true", "yes", "on"})

# The runner's reply follows this marker on stdout, so stray writes by the code cannot be
# mistaken for it.
_REPLY_MARK = "\n\x1eassetsync-function-reply\x1e"

# The runner: a file of its own beside this module, started as `node NODE_RUNNER MARK`.
NODE_RUNNER = Path(__file__).with_name("function_runner.js")


@frozen
class FunctionRequest:
    """One invocation: the code's file, its published path, and what the handler is given.

    `context` holds the environment's Variables (secrets) and `credentials` the emulator's
    account (sid, token) for `getTwilioClient()`: both go to the child on stdin only.
    `base_dir` is where packages (`twilio`) are resolved from, `project_dir` the Toolkit
    project named in the `npm install` message ("" when unknown), `api_url` the emulator's
    own address (None when it has none, e.g. in-process).
    """

    file: str
    path: str
    context: Mapping[str, str]
    event: Mapping[str, object]
    functions: Mapping[str, str] = field(default_factory=dict)
    assets: Mapping[str, str] = field(default_factory=dict)
    base_dir: str = ""
    project_dir: str = ""
    api_url: str | None = None
    credentials: tuple[str, str] | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"FunctionRequest(path={self.path!r}, file={self.file!r}, context=<hidden>)"


@frozen
class FunctionReply:
    """What the function answered (or the runtime, for an error or a timeout), and what it
    logged: (level, message) pairs, level `INFO`, `WARN` or `ERROR`."""

    status: int
    headers: Sequence[tuple[str, str]]
    body: bytes
    logs: Sequence[tuple[str, str]] = ()


def node_executable(environ: Mapping[str, str]) -> str | None:
    """The Node executable to run functions with, or None when functions are not to be run:
    `ASSETSYNC_EMULATOR_NODE` = 0 turns running off, a path names the executable, and unset
    means `node` on PATH if there is one."""
    chosen = environ.get(NODE_ENV_VAR, "").strip()
    if chosen.lower() in _OFF:
        return None
    if chosen.lower() in _ON:
        return shutil.which("node")
    return shutil.which(chosen)


def _child_environment(project_dir: str) -> dict[str, str]:
    # Nothing of the emulator's own environment (credentials, tokens, HOME) reaches user code.
    # NODE_PATH lets the code's own `require('x')` find the project's packages although the
    # code runs from the emulator's storage (twilio-run runs it inside the project).
    env = {"PATH": os.environ.get("PATH", ""), "NODE_ENV": "production"}
    if project_dir:
        env["NODE_PATH"] = str(Path(project_dir) / "node_modules")
    return env


def _timed_out(path: str, limit_s: float) -> FunctionReply:
    # Twilio ends an invocation past 10 s with "runtime application timed out" (Functions
    # FAQ); the status code it answers with is not documented: 504 here.
    text = f"runtime application timed out: {path} ran longer than {limit_s:g} s"
    return FunctionReply(504, (("Content-Type", "text/plain; charset=utf-8"),), text.encode(),
                         (("ERROR", text),))


def _crashed(path: str, detail: str) -> FunctionReply:
    message = f"the function {path} ended without replying: {detail}"
    body = json.dumps({"message": message, "name": "Error"}).encode()
    return FunctionReply(500, (("Content-Type", "application/json; charset=utf-8"),), body,
                         (("ERROR", message),))


async def run_function(
    node: str, request: FunctionRequest, *, timeout_s: float = FUNCTION_EXECUTION_LIMIT_S
) -> FunctionReply:
    """Run one invocation in a fresh Node process; killed once `timeout_s` has passed."""
    payload = json.dumps({
        "file": request.file,
        "path": request.path,
        "context": dict(request.context),
        "event": dict(request.event),
        "functions": dict(request.functions),
        "assets": dict(request.assets),
        "base_dir": request.base_dir or os.path.dirname(request.file),
        "project_dir": request.project_dir,
        "api_url": request.api_url,
        "credentials": list(request.credentials) if request.credentials else None,
    }).encode()
    process = await asyncio.create_subprocess_exec(
        node, str(NODE_RUNNER), _REPLY_MARK,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_child_environment(request.project_dir),
        cwd=os.path.dirname(request.file) or None,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(payload), timeout_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        return _timed_out(request.path, timeout_s)
    text = out.decode("utf-8", "replace")
    mark = text.rfind(_REPLY_MARK)
    if mark < 0:
        last = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [
            f"exit status {process.returncode}"
        ]
        return _crashed(request.path, last[0][:200])
    try:
        answer = json.loads(text[mark + len(_REPLY_MARK):])
        status = int(answer["status"])
        headers = tuple((str(k), str(v)) for k, v in answer["headers"])
        body = base64.b64decode(answer["body"])
        logs = tuple((str(level), str(message)) for level, message in answer.get("logs", ()))
    except (ValueError, KeyError, TypeError):
        return _crashed(request.path, "its reply could not be read")
    if not 100 <= status <= 599:
        return _crashed(request.path, f"it set the status code {status}")
    return FunctionReply(status, headers, body, logs)
