"""Running a deployed Function's code with Node, one subprocess per request, as Twilio's
runtime would: `exports.handler(context, event, callback)`, within the 10 s execution limit.

The runner below is assetsync's own, written from the behaviour Twilio documents
(twilio.com/docs/serverless/functions-assets/functions/invocation) and that the official local
runtime shows (twilio-run 5.0.1 `dist/runtime/route.js`: `handleSuccess`, `handleError`,
`constructContext`; `dist/runtime/internal/response.js`: `Twilio.Response`):

- a string reply is `text/plain`, a `Twilio.Response` sends its status, headers and body, any
  other value is JSON, nothing is an empty 200;
- `callback(err)` with an `Error` is a 500 with `{message, name, stack}` as JSON, any other
  error value is sent as the body of a 500 (a string as `text/html`, as Express sends it);
- `context` has `DOMAIN_NAME`, `PATH`, `SERVICE_SID`, `ENVIRONMENT_SID` and the environment's
  Variables; there is no `getTwilioClient` (the emulator holds no Twilio credentials);
- `Runtime.getFunctions()` / `Runtime.getAssets()` give the build's functions (keys without
  the leading `/`) and private assets (keys with it) as `{path}` on the local disk, so
  `require(Runtime.getFunctions()['lib/util'].path)` loads a private function as on Twilio.

The code's console output goes to the child's stderr and is dropped: Logs stay empty.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

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

NODE_RUNNER = r"""
'use strict';
const util = require('util');
const MARK = __REPLY_MARK__;
for (const name of ['log', 'info', 'warn', 'error', 'debug', 'trace']) {
  console[name] = (...args) => { process.stderr.write(util.format(...args) + '\n'); };
}
let replied = false;
function reply(status, headers, body) {
  if (replied) return;
  replied = true;
  const text = JSON.stringify({ status, headers, body: body.toString('base64') });
  process.stdout.write(MARK + text + '\n', () => process.exit(0));
}
function hasHeader(headers, name) {
  return headers.some(([key]) => String(key).toLowerCase() === name);
}
// As Express's res.send: bytes as they are, a string as text, anything else as JSON.
function send(status, headers, value, stringType) {
  let body = Buffer.alloc(0);
  let type = null;
  if (value === undefined || value === null) {
    body = Buffer.alloc(0);
  } else if (Buffer.isBuffer(value)) {
    body = value;
    type = 'application/octet-stream';
  } else if (typeof value === 'string') {
    body = Buffer.from(value, 'utf8');
    type = stringType;
  } else {
    body = Buffer.from(JSON.stringify(value), 'utf8');
    type = 'application/json; charset=utf-8';
  }
  if (type && !hasHeader(headers, 'content-type')) headers.push(['Content-Type', type]);
  reply(status, headers, body);
}
function fail(err) {
  if (err instanceof Error) {
    send(500, [], { message: err.message, name: err.name, stack: err.stack }, '');
  } else {
    send(500, [], err, 'text/html; charset=utf-8');
  }
}
class TwilioResponse {
  constructor(options) {
    const given = options || {};
    this.statusCode = given.statusCode || 200;
    this.body = given.body === undefined ? null : given.body;
    this.headers = Object.assign({}, given.headers || {});
  }
  setStatusCode(code) { this.statusCode = code; return this; }
  setBody(body) { this.body = body; return this; }
  setHeaders(headers) {
    if (headers && typeof headers === 'object') this.headers = Object.assign({}, headers);
    return this;
  }
  appendHeader(key, value) {
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      throw new Error('Header value cannot be an object');
    }
    const old = this.headers[key];
    this.headers[key] = old === undefined ? value : [].concat(old, value);
    return this;
  }
  setCookie(key, value, attributes) {
    const extra = attributes && attributes.length ? ';' + attributes.join(';') : '';
    return this.appendHeader('Set-Cookie', key + '=' + value + extra);
  }
  removeCookie(key) {
    const kept = [].concat(this.headers['Set-Cookie'] || [])
      .filter((c) => typeof c === 'string' && !c.startsWith(key + '='));
    this.headers['Set-Cookie'] = kept.concat([key + '=;Max-Age=0']);
    return this;
  }
}
function pairs(headers) {
  const out = [];
  for (const [key, value] of Object.entries(headers || {})) {
    for (const one of [].concat(value)) out.push([key, String(one)]);
  }
  return out;
}
function callback(err, payload) {
  if (err) return fail(err);
  if (payload instanceof TwilioResponse) {
    const status = Number(payload.statusCode);
    return send(status, pairs(payload.headers), payload.body, 'text/html; charset=utf-8');
  }
  return send(200, [], payload, 'text/plain; charset=utf-8');
}
function start(req) {
  const functions = {};
  for (const [key, file] of Object.entries(req.functions)) functions[key] = { path: file };
  const assets = {};
  for (const [key, file] of Object.entries(req.assets)) {
    assets[key] = { path: file, open: () => require('fs').readFileSync(file, 'utf8') };
  }
  global.Twilio = { Response: TwilioResponse };
  global.Runtime = {
    getFunctions: () => functions,
    getAssets: () => assets,
    getSync: () => { throw new Error('Runtime.getSync() is not available in the emulator'); },
  };
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  let handler;
  try {
    // Content is stored by digest, without an extension: Node loads such a file as CommonJS.
    const loaded = require(req.file);
    handler = loaded && loaded.handler;
  } catch (err) {
    return fail(err);
  }
  if (typeof handler !== 'function') {
    return fail(new Error('Could not find a "handler" function in ' + req.path));
  }
  try {
    const result = handler(req.context, req.event, callback);
    if (result && typeof result.catch === 'function') result.catch(fail);
  } catch (err) {
    fail(err);
  }
}
let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => start(JSON.parse(input)));
""".replace("__REPLY_MARK__", json.dumps(_REPLY_MARK))


@dataclass(frozen=True, slots=True)
class FunctionRequest:
    """One invocation: the code's file, its published path, and what the handler is given.

    `context` holds the environment's Variables (secrets): it goes to the child on stdin only.
    """

    file: str
    path: str
    context: Mapping[str, str]
    event: Mapping[str, object]
    functions: Mapping[str, str] = field(default_factory=dict)
    assets: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"FunctionRequest(path={self.path!r}, file={self.file!r}, context=<hidden>)"


@dataclass(frozen=True, slots=True)
class FunctionReply:
    """What the function answered (or the runtime, for an error or a timeout)."""

    status: int
    headers: Sequence[tuple[str, str]]
    body: bytes


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


def _child_environment() -> dict[str, str]:
    # Nothing of the emulator's own environment (credentials, tokens) reaches user code.
    return {"PATH": os.environ.get("PATH", ""), "NODE_ENV": "production"}


def _timed_out(path: str, limit_s: float) -> FunctionReply:
    # Twilio ends an invocation past 10 s with "runtime application timed out" (Functions
    # FAQ); the status code it answers with is not documented: 504 here.
    body = f"runtime application timed out: {path} ran longer than {limit_s:g} s".encode()
    return FunctionReply(504, (("Content-Type", "text/plain; charset=utf-8"),), body)


def _crashed(path: str, detail: str) -> FunctionReply:
    body = json.dumps({"message": f"the function {path} ended without replying: {detail}",
                       "name": "Error"}).encode()
    return FunctionReply(500, (("Content-Type", "application/json; charset=utf-8"),), body)


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
    }).encode()
    process = await asyncio.create_subprocess_exec(
        node, "-e", NODE_RUNNER,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_child_environment(),
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
    except (ValueError, KeyError, TypeError):
        return _crashed(request.path, "its reply could not be read")
    if not 100 <= status <= 599:
        return _crashed(request.path, f"it set the status code {status}")
    return FunctionReply(status, headers, body)
