"""Functions benchmark: one Serverless Toolkit project deployed by the official library and by
assetsync to one emulator subprocess over a socket; prints one JSON document.

    .venv/bin/python bench/bench_functions.py [--functions 30] [--assets 1000] [--size 10000]
                                              [--rounds 3]

The project: `functions/` (public, `.protected.js` and `.private.js` files, nested folders),
`assets/` (files of `--size` bytes), `package.json` and `.env`. Each tool deploys it to its own
service, then one function is changed and each deploys again (`--rounds` times, alternating;
medians reported, with each run's wall time); then each deploys `--rounds` times more with
nothing changed (`no_change`: the official library uploads everything again). For each deploy: requests and
bytes sent (from the emulator's request log: the same count for both tools) and wall time (of
the whole command, process start included; assetsync's bytecode is compiled first, as `pip
install` does). `paths_match`: whether the functions' (path,
visibility) on the emulator are the same after the official deploy and after assetsync's;
`dependencies_match` and `variables_match` likewise for the build's Dependencies and the
environment's Variables (compared here, never printed).

The official side is `@twilio-labs/serverless-api` 5.7.0's `deployLocalProject`, installed with
npm into `bench/out/npm` (gitignored) on first use, called by a small Node script written there,
with `.env` read by `dotenv` 6.2.0 and filtered as twilio-run 5.0.1 does before deploying. The
library has no base-URL option (api-contract.md §7.1), so the script points each request's
`prefixUrl` at the emulator, the in-process override that section describes.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from assetsync.emulator.state import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN
from assetsync.state.remote_manifest import MANIFEST_PATH

BENCH_DIR = Path(__file__).resolve().parent
NPM_CACHE = BENCH_DIR / "out" / "npm"
OFFICIAL = {"@twilio-labs/serverless-api": "5.7.0", "dotenv": "6.2.0"}
ENV = {"TWILIO_ACCOUNT_SID": LOCAL_ACCOUNT_SID, "TWILIO_AUTH_TOKEN": LOCAL_AUTH_TOKEN}
CHANGED_FUNCTION = "hello.js"
# How long the emulator keeps a new build `building`; both tools wait for it once per deploy.
BUILD_DELAY_S = 0.05

DEPLOY_SCRIPT = r"""
'use strict';
// Deploys a Toolkit project with the official library, as `twilio-run deploy` would.
const path = require('path');
const fs = require('fs');
const dotenv = require('dotenv');
const { TwilioServerlessApiClient } = require('@twilio-labs/serverless-api');
const [url, cwd, serviceName, serviceSid] = process.argv.slice(2);
const base = url + '/v1';
// No option sets the base URL: point every request at the emulator, except the absolute
// next-page URLs (the library sends those with an empty prefix), which are the emulator's own.
const request = TwilioServerlessApiClient.prototype.request;
TwilioServerlessApiClient.prototype.request = function (method, target, options = {}) {
  if (options.prefixUrl !== '') options.prefixUrl = base;
  return request.call(this, method, target, options);
};
// twilio-run: `.env` through dotenv's parse, then `filterEnvVariablesForDeploy`.
const envPath = path.join(cwd, '.env');
const env = fs.existsSync(envPath) ? dotenv.parse(fs.readFileSync(envPath, 'utf8')) : {};
for (const key of Object.keys(env)) if (env[key] === '') delete env[key];
delete env.ACCOUNT_SID;
delete env.AUTH_TOKEN;
const pkgJson = JSON.parse(fs.readFileSync(path.join(cwd, 'package.json'), 'utf8'));
const client = new TwilioServerlessApiClient({
  username: process.env.TWILIO_ACCOUNT_SID, password: process.env.TWILIO_AUTH_TOKEN,
});
client.deployLocalProject({
  cwd, env, pkgJson, serviceName, serviceSid: serviceSid || undefined,
  functionsEnv: 'dev', overrideExistingService: true,
  username: process.env.TWILIO_ACCOUNT_SID, password: process.env.TWILIO_AUTH_TOKEN,
}).then((result) => {
  process.stdout.write(JSON.stringify({
    serviceSid: result.serviceSid, environmentSid: result.environmentSid,
    buildSid: result.buildSid, domain: result.domain,
  }) + '\n');
}, (err) => {
  process.stderr.write('official deploy failed: ' + (err && err.message) + '\n');
  process.exit(1);
});
"""


# the emulator, in a child process that also answers for its request log -------------------


def emulator_child(data: str, latency_ms: float = 0.0, jitter_ms: float = 0.0) -> None:
    """Serve an emulator over a socket; on stdin: `log` prints the request log, `clear`
    empties it, end of input stops. `latency_ms` (+ up to `jitter_ms`) delays every request,
    as `assetsync emulator --latency 80ms:20ms` does."""
    from assetsync.emulator.serve import start_in_thread
    from assetsync.emulator.state import EmulatorState

    state = EmulatorState(Path(data))
    state.build_delay_s = BUILD_DELAY_S
    if latency_ms > 0 or jitter_ms > 0:
        state.faults.add("*", "*", "delay", count=None, delay_s=latency_ms / 1000,
                         jitter_s=jitter_ms / 1000)
    running = start_in_thread(state)
    print(running.url, flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "log":
            # Last, when each request arrived and was answered (bench_cold's time-line).
            entries = [[e.method, e.kind, e.path, e.status, e.bytes_in, e.started, e.time]
                       for e in state.request_log]
            print(json.dumps(entries), flush=True)
        elif command == "clear":
            state.request_log.clear()
            print("ok", flush=True)
    running.stop()
    state.close()


class Emulator:
    """The emulator child process, its URL, and its request log."""

    def __init__(self, data: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--emulator-child", str(data)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            raise SystemExit("the emulator did not start")

    def _ask(self, command: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline()

    def clear(self) -> None:
        self._ask("clear")

    def traffic(self) -> dict[str, int]:
        entries = json.loads(self._ask("log"))
        return {
            "requests": len(entries),
            "write_requests": sum(1 for e in entries if e[0] != "GET"),
            "uploads": sum(1 for e in entries if e[1] == "upload"),
            "function_uploads": sum(
                1 for e in entries if e[1] == "upload" and "/Functions/" in e[2]
            ),
            "bytes_sent": sum(int(e[4]) for e in entries),
        }

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# the project ----------------------------------------------------------------------------------


def make_project(root: Path, functions: int, assets: int, size: int) -> None:
    """A Toolkit project: functions of each visibility (some nested), assets, package.json, .env."""
    fn_dir = root / "functions"
    kinds = ["", ".protected", ".private"]
    names = [CHANGED_FUNCTION]
    for i in range(1, functions):
        folder = ["", "api/", "admin/", "lib/deep/"][i % 4]
        names.append(f"{folder}fn{i:02d}{kinds[i % 3]}.js")
    for name in names:
        path = fn_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "exports.handler = (context, event, callback) => {\n"
            f"  callback(null, {{ name: {json.dumps(name)}, greeting: context.GREETING }});\n"
            "};\n"
        )
    for i in range(assets):
        path = root / "assets" / f"dir{i % 20:02d}" / f"asset{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        head = f"asset {i}\n".encode()
        path.write_bytes(head + os.urandom(max(0, size - len(head))))
    (root / "package.json").write_text(json.dumps({
        "name": "bench-functions", "version": "1.0.0", "private": True,
        "dependencies": {"@twilio/runtime-handler": "2.0.1", "twilio": "^5.0.0",
                         "axios": "1.7.2"},
        "devDependencies": {"twilio-run": "^4"},
    }, indent=2))
    (root / ".env").write_text(
        "# bench variables\nACCOUNT_SID=\nAUTH_TOKEN=\nGREETING=ahoy\nAPI_KEY=bench-not-a-secret\n"
    )
    # Let the tree age past the scan's 2 s "racy" window, as a real project's has.
    time.sleep(2.5)


def change_function(root: Path, n: int) -> None:
    path = root / "functions" / CHANGED_FUNCTION
    path.write_text(path.read_text() + f"// change {n}\n")


# the two deploys ------------------------------------------------------------------------------


def ensure_official() -> Path:
    """Install the official library into bench/out/npm once; write the deploy script."""
    marker = NPM_CACHE / "node_modules" / "@twilio-labs" / "serverless-api" / "package.json"
    installed = marker.exists() and json.loads(marker.read_text()).get("version") == "5.7.0"
    if not installed:
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("npm is not on PATH: the official library cannot be installed")
        NPM_CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--prefix", str(NPM_CACHE), "--no-audit", "--no-fund",
             "--loglevel=error", *(f"{name}@{version}" for name, version in OFFICIAL.items())],
            check=True, stdout=subprocess.DEVNULL,
        )
    script = NPM_CACHE / "deploy-official.js"
    script.write_text(DEPLOY_SCRIPT)
    return script


def compile_assetsync() -> bool:
    """Write assetsync's bytecode, as `pip install` does for an installed package, so that
    each timed command loads it instead of compiling the sources again: an editable install
    under PYTHONDONTWRITEBYTECODE=1 (set on this project's machines) never writes it itself."""
    import assetsync

    return bool(compileall.compile_dir(str(Path(assetsync.__file__).parent), quiet=1))


def timed(command: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env={**os.environ, **ENV}, text=True,
                          capture_output=True, check=False)
    return round(time.perf_counter() - started, 3), done


def deploy_official(
    emulator: Emulator, script: Path, project: Path, service_sid: str | None
) -> dict[str, Any]:
    emulator.clear()
    node = shutil.which("node") or "node"
    wall, done = timed([node, str(script), emulator.url, str(project), "bench-official",
                        service_sid or ""], project)
    if done.returncode != 0:
        raise SystemExit(done.stderr.strip()[-2000:])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"wall_s": wall, **emulator.traffic(), "_result": result}


def write_assetsync_config(project: Path, url: str) -> Path:
    config = project / ".assetsync.toml"
    config.write_text(
        '[project]\nsource = "assets"\nfunctions = "functions"\nservice = "bench-assetsync"\n'
        f'environment = "dev"\n[target]\napi = "{url}"\n[sync]\npoll_interval_s = 0.5\n'
    )
    return config


def deploy_assetsync(emulator: Emulator, config: Path, project: Path) -> dict[str, Any]:
    emulator.clear()
    # The `assetsync` command a user runs (the venv's console script), else `python -m`.
    script = Path(sys.executable).with_name("assetsync")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "assetsync"]
    wall, done = timed([*command, "-c", str(config), "sync", "--quiet"],
                       project)
    if done.returncode != 0:
        return {"error": (done.stderr or done.stdout).strip()[-1500:],
                "exit_code": done.returncode}
    return {"wall_s": wall, **emulator.traffic()}


# what is deployed -----------------------------------------------------------------------------


def deployed(url: str, service: str) -> dict[str, Any]:
    """The dev environment's live functions, dependencies and variables of a service."""
    with httpx.Client(base_url=url, auth=(LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN)) as client:
        svc = client.get(f"/v1/Services/{service}").json()
        envs = client.get(f"/v1/Services/{svc['sid']}/Environments").json()["environments"]
        env = next(e for e in envs if e["domain_suffix"] == "dev")
        build = client.get(f"/v1/Services/{svc['sid']}/Builds/{env['build_sid']}").json()
        variables = client.get(
            f"/v1/Services/{svc['sid']}/Environments/{env['sid']}/Variables"
        ).json()["variables"]
    deps = build["dependencies"]
    if isinstance(deps, str):
        deps = json.loads(deps.strip().strip('"') or "[]")
    return {
        # assetsync's own manifest (a private Function every build of its carries) is not the
        # project's: the comparison is of the project's functions.
        "functions": sorted((str(v["path"]), str(v["visibility"]).lower())
                            for v in build["function_versions"] if v["path"] != MANIFEST_PATH),
        "dependencies": sorted((d["name"], d["version"]) for d in deps),
        "variables": sorted((v["key"], v["value"]) for v in variables),
        "assets": len(build["asset_versions"]),
    }


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the runs (requests and bytes are the same in every run)."""
    keys = [k for k in runs[0] if not k.startswith("_")]
    # Counts are the same in every run; the low median keeps them whole numbers.
    return {k: (statistics.median if k == "wall_s" else statistics.median_low)(r[k] for r in runs)
            for k in keys}


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 1) if b else None


def public(run: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in run.items() if not k.startswith("_")}


def no_change(emulator: Emulator, script: Path, project: Path, config: Path,
              service_sid: str, rounds: int) -> dict[str, Any]:
    """Each tool deploying the project again with nothing changed, alternating, `rounds` times:
    the official library uploads everything again, assetsync only looks."""
    official_runs: list[dict[str, Any]] = []
    our_runs: list[dict[str, Any]] = []
    for n in range(rounds):
        for tool in (("official", "assetsync") if n % 2 == 0 else ("assetsync", "official")):
            if tool == "official":
                official_runs.append(deploy_official(emulator, script, project, service_sid))
            else:
                our_runs.append(deploy_assetsync(emulator, config, project))
    failed = [r for r in our_runs if "error" in r]
    if failed:
        return {"error": failed[0]["error"]}
    theirs, ours = median_run(official_runs), median_run(our_runs)
    return {"official": theirs, "assetsync": ours,
            "official_wall_s_runs": [r["wall_s"] for r in official_runs],
            "assetsync_wall_s_runs": [r["wall_s"] for r in our_runs],
            "ratio_official_over_assetsync": {
                "wall_s": ratio(float(theirs["wall_s"]), float(ours["wall_s"])),
                "write_requests": f"{theirs['write_requests']} vs {ours['write_requests']}",
                "bytes_sent": f"{theirs['bytes_sent']} vs {ours['bytes_sent']}"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=30)
    parser.add_argument("--assets", type=int, default=1000)
    parser.add_argument("--size", type=int, default=10_000, help="bytes per asset")
    parser.add_argument("--rounds", type=int, default=3, help="one-change deploys of each tool")
    parser.add_argument("--emulator-child", metavar="DATA", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.emulator_child:
        emulator_child(args.emulator_child)
        return
    script = ensure_official()
    compiled = compile_assetsync()
    out: dict[str, Any] = {"functions": args.functions, "assets": args.assets,
                           "asset_bytes": args.size, "bytecode_compiled": compiled}
    with tempfile.TemporaryDirectory(prefix="bench-functions-") as tmp:
        root = Path(tmp)
        project = root / "project"
        make_project(project, args.functions, args.assets, args.size)
        emulator = Emulator(root / "emulator")
        try:
            official_first = deploy_official(emulator, script, project, None)
            config = write_assetsync_config(project, emulator.url)
            ours_first = deploy_assetsync(emulator, config, project)
            service_sid = official_first["_result"]["serviceSid"]
            official_runs: list[dict[str, Any]] = []
            our_runs: list[dict[str, Any]] = []
            for n in range(1, args.rounds + 1):
                change_function(project, n)
                official_runs.append(deploy_official(emulator, script, project, service_sid))
                if not any("error" in r for r in (ours_first, *our_runs)):
                    our_runs.append(deploy_assetsync(emulator, config, project))
            official_change = median_run(official_runs)
            failed = [r for r in (ours_first, *our_runs) if "error" in r]
            ours_change = {"error": failed[0]["error"]} if failed else median_run(our_runs)
            theirs = deployed(emulator.url, "bench-official")
            out["official"] = {"first_deploy": public(official_first),
                               "one_function_changed": official_change,
                               "one_function_changed_wall_s_runs": [r["wall_s"]
                                                                    for r in official_runs],
                               "functions_deployed": len(theirs["functions"]),
                               "assets_deployed": theirs["assets"]}
            out["assetsync"] = {"first_deploy": ours_first, "one_function_changed": ours_change,
                                "one_function_changed_wall_s_runs": [r.get("wall_s")
                                                                     for r in our_runs]}
            if "error" in ours_first or "error" in ours_change:
                out["paths_match"] = None
            else:
                ours = deployed(emulator.url, "bench-assetsync")
                out["assetsync"]["functions_deployed"] = len(ours["functions"])
                out["assetsync"]["assets_deployed"] = ours["assets"]
                out["paths_match"] = ours["functions"] == theirs["functions"]
                out["dependencies_match"] = ours["dependencies"] == theirs["dependencies"]
                out["variables_match"] = ours["variables"] == theirs["variables"]
                if not out["paths_match"]:
                    theirs_set, ours_set = set(theirs["functions"]), set(ours["functions"])
                    out["paths_only_official"] = sorted(theirs_set - ours_set)[:10]
                    out["paths_only_assetsync"] = sorted(ours_set - theirs_set)[:10]
                out["ratio_official_over_assetsync_one_change"] = {
                    key: ratio(float(official_change[key]), float(ours_change[key]))
                    for key in ("bytes_sent", "wall_s", "requests")
                }
                # The same wall-time ratio without the emulator's build delay, which stands in
                # for Twilio's build time and is paid once by each tool.
                out["ratio_official_over_assetsync_one_change"][
                    "wall_s_without_build_delay"] = ratio(
                    float(official_change["wall_s"]) - BUILD_DELAY_S,
                    float(ours_change["wall_s"]) - BUILD_DELAY_S)
                out["no_change"] = no_change(emulator, script, project, config, service_sid,
                                             args.rounds)
                out["goal"] = "bytes_sent >= 100x, wall_s >= 10x"
        finally:
            emulator.stop()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
