"""Every response body of a full deploy sequence validates against Twilio's OpenAPI schemas.

The schemas come from shared/reference/twilio_serverless_v1.yaml; objects are closed
(`additionalProperties: false`) so a missing *or extra* field fails, and every spec field must
be present, so the bodies carry exactly the spec's fields.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from openapi_schema_validator import OAS30Validator

from tests.conftest import EmulatorHandle, wait_for_build

SPEC = Path(__file__).resolve().parents[3] / "shared" / "reference" / "twilio_serverless_v1.yaml"


@cache
def _spec() -> dict[str, Any]:
    if not SPEC.exists():  # pragma: no cover - the reference folder travels with the project
        pytest.skip(f"{SPEC} not found")
    spec: dict[str, Any] = yaml.safe_load(SPEC.read_text())
    return spec


def _resolve(node: Any, spec: dict[str, Any]) -> Any:
    """Inline every $ref and close every object schema that lists its properties."""
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            return _resolve(spec["components"]["schemas"][name], spec)
        out = {k: _resolve(v, spec) for k, v in node.items()}
        if out.get("properties"):
            out["additionalProperties"] = False
            out["required"] = sorted(out["properties"])
        return out
    if isinstance(node, list):
        return [_resolve(v, spec) for v in node]
    return node


@cache
def _operations() -> list[tuple[str, re.Pattern[str], dict[str, Any]]]:
    spec = _spec()
    ops = []
    for template, item in spec["paths"].items():
        pattern = re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$")
        for method, op in item.items():
            if method in ("get", "post", "delete"):
                ops.append((method.upper(), pattern, op))
    return ops


def check(response: httpx.Response, path_template_hint: str = "") -> dict[str, Any]:
    """Validate one response against the spec operation it answers; returns the body."""
    path = response.request.url.path
    method = response.request.method
    # The upload host's routes are not in the spec: validate them as the matching GET instance.
    if method == "POST" and re.search(r"/(Assets|Functions)/[^/]+/Versions$", path):
        method, path = "GET", path + "/ZN" + "0" * 32
    matches = [op for m, p, op in _operations() if m == method and p.match(path)]
    assert len(matches) == 1, f"no single spec operation for {method} {path}"
    responses = matches[0]["responses"]
    expected = str(response.status_code)
    if response.request.method == "POST" and "/Versions" in response.request.url.path:
        assert response.status_code == 201
        expected = "200"
    assert expected in responses, (
        f"{method} {path} answered {response.status_code}, spec has {list(responses)}"
    )
    if response.status_code == 204:
        assert response.content == b""
        return {}
    schema = _resolve(responses[expected]["content"]["application/json"]["schema"], _spec())
    body: dict[str, Any] = response.json()
    OAS30Validator(schema, format_checker=OAS30Validator.FORMAT_CHECKER).validate(body)
    return body


def test_full_deploy_sequence_conforms_to_the_spec(emulator: EmulatorHandle) -> None:
    with emulator.client() as c:
        svc = check(
            c.post("/v1/Services", data={"UniqueName": "conf", "FriendlyName": "Conformance"})
        )
        s = f"/v1/Services/{svc['sid']}"
        check(c.get("/v1/Services"))
        check(c.get(s))
        check(c.post(s, data={"FriendlyName": "Renamed"}))
        env = check(
            c.post(
                f"{s}/Environments", data={"UniqueName": "dev-environment", "DomainSuffix": "dev"}
            )
        )
        check(c.get(f"{s}/Environments"))
        check(c.get(env["url"]))
        made: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        for family, path, visibility, content, links_key in (
            ("Functions", "/hello", "public", b"exports.handler = () => {};", "function_versions"),
            ("Assets", "/logo.png", "protected", b"\x89PNG", "asset_versions"),
        ):
            owner = check(c.post(f"{s}/{family}", data={"FriendlyName": path}))
            check(c.get(f"{s}/{family}"))
            check(c.get(owner["url"]))
            check(c.post(owner["url"], data={"FriendlyName": path}))
            version = check(
                c.post(
                    owner["links"][links_key],
                    data={"Path": path, "Visibility": visibility},
                    files={"Content": (path[1:], content, "application/octet-stream")},
                )
            )
            check(c.get(owner["links"][links_key]))
            check(c.get(version["url"]))
            made[family] = owner, version
        (fn, fv), (asset, av) = made["Functions"], made["Assets"]
        check(c.get(fv["links"]["function_version_content"]))
        build = check(
            c.post(
                f"{s}/Builds",
                data={
                    "AssetVersions": [av["sid"]],
                    "FunctionVersions": [fv["sid"]],
                    "Dependencies": '[{"name":"twilio","version":"3.29.2"}]',
                },
            )
        )
        check(c.get(build["links"]["build_status"]))
        assert wait_for_build(c, build) == "completed"
        check(c.get(f"{s}/Builds"))
        check(c.get(build["url"]))
        dep = check(c.post(env["links"]["deployments"], data={"BuildSid": build["sid"]}))
        check(c.get(env["links"]["deployments"]))
        check(c.get(dep["url"]))
        var = check(c.post(env["links"]["variables"], data={"Key": "A", "Value": "1"}))
        check(c.get(env["links"]["variables"]))
        check(c.get(var["url"]))
        check(c.post(var["url"], data={"Value": "2"}))
        check(c.get(env["links"]["logs"]))
        check(c.delete(var["url"]))
        extra = check(c.post(f"{s}/Builds", data={"AssetVersions": [av["sid"]]}))
        check(c.delete(extra["url"]))
        check(c.delete(asset["url"]))
        check(c.delete(fn["url"]))
        check(c.delete(env["url"]))
        check(c.delete(s))


def test_the_validator_rejects_a_missing_or_extra_field() -> None:
    schema = _resolve(
        {"$ref": "#/components/schemas/serverless.v1.service.asset.asset_version"}, _spec()
    )
    good = {
        "sid": "ZN" + "0" * 32,
        "account_sid": "AC" + "0" * 32,
        "service_sid": "ZS" + "0" * 32,
        "asset_sid": "ZH" + "0" * 32,
        "path": "/a",
        "visibility": "public",
        "date_created": "2018-11-10T20:00:00Z",
        "url": "https://x/y",
    }
    OAS30Validator(schema).validate(good)
    for bad in ({k: v for k, v in good.items() if k != "path"}, {**good, "content": "secret"}):
        with pytest.raises(Exception, match=r"(required|Additional properties)"):
            OAS30Validator(schema).validate(bad)
