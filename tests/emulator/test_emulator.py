"""The emulator over a real socket: deploy sequence, leniency, errors, builds, auth."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from tests.conftest import EmulatorHandle, publish, wait_for_build


def _service(client: httpx.Client, name: str = "demo") -> dict[str, Any]:
    response = client.post("/v1/Services", data={"UniqueName": name, "FriendlyName": name})
    assert response.status_code == 201
    body: dict[str, Any] = response.json()
    return body


def _upload(
    client: httpx.Client,
    svc: str,
    path: str,
    content: bytes = b"x",
    visibility: str = "public",
    family: str = "Assets",
) -> dict[str, Any]:
    owner = client.post(f"/v1/Services/{svc}/{family}", data={"FriendlyName": path}).json()
    response = client.post(
        f"/v1/Services/{svc}/{family}/{owner['sid']}/Versions",
        data={"Path": path, "Visibility": visibility},
        files={"Content": ("f", content, "application/octet-stream")},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_deploy_sequence_points_the_environment_at_the_build_and_serves_it(
    emulator: EmulatorHandle,
) -> None:
    with emulator.client() as client:
        done = publish(client, {"/logo.png": (b"\x89PNG-bytes", "public")})
        env = client.get(done["environment"]["url"]).json()
    assert env["build_sid"] == done["build"]["sid"]
    served = httpx.get(f"{emulator.url}/logo.png", headers={"Host": env["domain_name"]})
    assert served.status_code == 200
    assert served.content == b"\x89PNG-bytes"
    assert served.headers["content-type"] == "image/png"


def test_sids_have_the_right_prefixes_and_domain_names_follow_twilio(
    emulator: EmulatorHandle,
) -> None:
    with emulator.client() as client:
        done = publish(client, {"/a.txt": (b"a", "public")}, service="shop", suffix="dev")
    prefixes = {"service": "ZS", "environment": "ZE", "build": "ZB", "deployment": "ZD"}
    for key, prefix in prefixes.items():
        sid = done[key]["sid"]
        assert sid.startswith(prefix) and len(sid) == 34 and int(sid[2:], 16) >= 0
    version = done["versions"]["/a.txt"]
    assert version["sid"].startswith("ZN") and version["asset_sid"].startswith("ZH")
    domain = done["environment"]["domain_name"]
    base = done["service"]["domain_base"]
    assert base.startswith("shop-") and base[5:].isdigit() and len(base[5:]) == 4
    assert domain == f"{base}-dev.twil.io"


def test_unique_name_works_in_place_of_the_service_sid(emulator: EmulatorHandle) -> None:
    with emulator.client() as client:
        svc = _service(client, "by-name")
        fetched = client.get("/v1/Services/by-name")
        env = client.post("/v1/Services/by-name/Environments", data={"UniqueName": "production"})
    assert fetched.status_code == 200 and fetched.json()["sid"] == svc["sid"]
    assert env.status_code == 201 and env.json()["service_sid"] == svc["sid"]
    assert env.json()["domain_suffix"] is None
    assert env.json()["domain_name"] == f"{svc['domain_base']}.twil.io"


def test_path_gets_a_leading_slash_and_visibility_any_case(emulator: EmulatorHandle) -> None:
    with emulator.client() as client:
        svc = _service(client)["sid"]
        version = _upload(client, str(svc), "logo.png", visibility="PROTECTED")
    assert version["path"] == "/logo.png"
    assert version["visibility"] == "protected"


def test_asset_version_get_is_metadata_only(emulator: EmulatorHandle) -> None:
    with emulator.client() as client:
        svc = _service(client)["sid"]
        version = _upload(client, str(svc), "/secret.bin", b"content-bytes")
        fetched = client.get(str(version["url"]))
    assert fetched.status_code == 200
    assert set(fetched.json()) == {
        "sid",
        "account_sid",
        "service_sid",
        "asset_sid",
        "path",
        "visibility",
        "date_created",
        "url",
    }
    assert b"content-bytes" not in fetched.content


def test_unknown_parameters_are_ignored(emulator: EmulatorHandle) -> None:
    with emulator.client() as client:
        svc = _service(client)["sid"]
        env = client.post(
            f"/v1/Services/{svc}/Environments",
            data={
                "UniqueName": "dev-environment",
                "DomainSuffix": "dev",
                "FriendlyName": "dev-environment Environment (Created by CLI)",
            },
        )
    assert env.status_code == 201
    assert "friendly_name" not in env.json()


def test_dependencies_accepted_with_and_without_the_node_librarys_quotes(
    emulator: EmulatorHandle,
) -> None:
    deps = [
        {"name": "twilio", "version": "3.29.2"},
        {"name": "@twilio/runtime-handler", "version": "1.0.1"},
    ]
    raw = json.dumps(deps)
    with emulator.client() as client:
        svc = _service(client)["sid"]
        version = _upload(client, str(svc), "/a.txt")
        bodies = [
            client.post(
                f"/v1/Services/{svc}/Builds",
                data={"AssetVersions": [version["sid"]], "Dependencies": value},
            ).json()
            for value in (raw, f'"{raw}"')
        ]
        bad = client.post(
            f"/v1/Services/{svc}/Builds",
            data={"AssetVersions": [version["sid"]], "Dependencies": "{nope"},
        )
    assert [b["dependencies"] for b in bodies] == [deps, deps]
    assert bad.status_code == 400 and bad.json()["code"] == 20001


def test_builds_embed_version_objects_and_arrays_are_repeated_keys(
    emulator: EmulatorHandle,
) -> None:
    with emulator.client() as client:
        svc = _service(client)["sid"]
        one = _upload(client, str(svc), "/one.txt")
        two = _upload(client, str(svc), "/two.txt", visibility="private")
        fn = _upload(client, str(svc), "/hello", b"exports.handler = () => {}", family="Functions")
        build = client.post(
            f"/v1/Services/{svc}/Builds",
            content=f"AssetVersions={one['sid']}&AssetVersions={two['sid']}&FunctionVersions={fn['sid']}",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ).json()
    assert [v["sid"] for v in build["asset_versions"]] == [one["sid"], two["sid"]]
    assert build["asset_versions"][1]["path"] == "/two.txt"
    assert build["asset_versions"][1]["visibility"].lower() == "private"
    assert build["function_versions"][0]["function_sid"] == fn["function_sid"]
    assert build["runtime"] == "node22" and build["status"] == "building"


def test_build_status_is_building_until_the_clock_passes_the_delay(
    emulator: EmulatorHandle,
) -> None:
    emulator.state.build_delay_s = 3600
    with emulator.client() as client:
        svc = _service(client)["sid"]
        version = _upload(client, str(svc), "/a.txt")
        build = client.post(
            f"/v1/Services/{svc}/Builds", data={"AssetVersions": [version["sid"]]}
        ).json()
        before = client.get(build["links"]["build_status"]).json()["status"]
        emulator.clock.advance(3601)
        after = client.get(build["links"]["build_status"]).json()["status"]
        full = client.get(build["url"]).json()
    assert (before, after, full["status"]) == ("building", "completed", "completed")
    assert full["date_updated"] != full["date_created"]


def test_fail_next_builds_and_invalid_builds_end_failed(emulator: EmulatorHandle) -> None:
    with emulator.client() as client:
        svc = _service(client, "one")["sid"]
        other = _service(client, "two")["sid"]
        mine = _upload(client, str(svc), "/a.txt")
        theirs = _upload(client, str(other), "/b.txt")
        emulator.state.fail_next_builds(1)
        switched = client.post(
            f"/v1/Services/{svc}/Builds", data={"AssetVersions": [mine["sid"]]}
        ).json()
        foreign = client.post(
            f"/v1/Services/{svc}/Builds", data={"AssetVersions": [theirs["sid"]]}
        ).json()
        unknown = client.post(
            f"/v1/Services/{svc}/Builds", data={"AssetVersions": ["ZN" + "0" * 32]}
        ).json()
        fine = client.post(
            f"/v1/Services/{svc}/Builds", data={"AssetVersions": [mine["sid"]]}
        ).json()
        statuses = [wait_for_build(client, b) for b in (switched, foreign, unknown, fine)]
        env = client.post(f"/v1/Services/{svc}/Environments", data={"UniqueName": "prod"}).json()
        deploy_failed = client.post(env["links"]["deployments"], data={"BuildSid": switched["sid"]})
    assert statuses == ["failed", "failed", "failed", "completed"]
    assert deploy_failed.status_code == 400


def test_a_build_with_no_versions_is_refused(emulator: EmulatorHandle) -> None:
    with emulator.client() as client:
        svc = _service(client)["sid"]
        response = client.post(f"/v1/Services/{svc}/Builds", data={"Runtime": "node22"})
    assert response.status_code == 400
    assert response.json()["code"] == 20001
    assert "At least one Function Version or Asset Version" in response.json()["message"]


def test_error_bodies_follow_twilio(emulator: EmulatorHandle) -> None:
    with emulator.client() as client:
        missing = client.post("/v1/Services", data={"FriendlyName": "x"})
        unknown = client.get("/v1/Services/ZS" + "0" * 32 + "/Assets")
        wrong_prefix = client.get("/v1/Services/ZS" + "0" * 32)
        svc = _service(client)["sid"]
        bad_sid = client.get(f"/v1/Services/{svc}/Environments/ZB" + "0" * 32)
        duplicate = client.post(
            "/v1/Services", data={"UniqueName": "demo", "FriendlyName": "again"}
        )
        no_route = client.get("/v1/Nothing")
    assert missing.status_code == 400
    assert missing.json() == {
        "code": 20001,
        "message": "Missing required parameter UniqueName in the post body",
        "more_info": "https://www.twilio.com/docs/errors/20001",
        "status": 400,
    }
    assert unknown.status_code == 404 and unknown.json()["code"] == 20404
    assert (
        unknown.json()["message"]
        == f"The requested resource /Services/ZS{'0' * 32}/Assets was not found"
    )
    assert wrong_prefix.status_code == 404 and bad_sid.status_code == 404
    assert duplicate.status_code == 409 and duplicate.json()["status"] == 409
    assert no_route.status_code == 404 and no_route.json()["code"] == 20404


def test_redeploying_the_active_build_is_409_and_a_new_one_moves_the_environment(
    emulator: EmulatorHandle,
) -> None:
    with emulator.client() as client:
        done = publish(client, {"/a.txt": (b"1", "public")})
        env, build = done["environment"], done["build"]
        again = client.post(env["links"]["deployments"], data={"BuildSid": build["sid"]})
        svc = done["service"]["sid"]
        second = client.post(
            f"/v1/Services/{svc}/Builds",
            data={"AssetVersions": [done["versions"]["/a.txt"]["sid"]]},
        ).json()
        wait_for_build(client, second)
        moved = client.post(env["links"]["deployments"], data={"BuildSid": second["sid"]})
        delete_live = client.delete(second["url"])
        delete_old = client.delete(build["url"])
        deployments = client.get(env["links"]["deployments"]).json()["deployments"]
        now_env = client.get(env["url"]).json()
    assert (
        again.status_code == 409
        and again.json()["message"] == "Environment already has requested deployment."
    )
    assert moved.status_code == 201
    assert now_env["build_sid"] == second["sid"]
    assert delete_live.status_code == 409
    assert delete_old.status_code == 204 and delete_old.content == b""
    assert [d["build_sid"] for d in deployments] == [build["sid"], second["sid"]]


def test_updates_and_deletes(emulator: EmulatorHandle) -> None:
    with emulator.client() as client:
        svc = _service(client)
        renamed = client.post(svc["url"], data={"FriendlyName": "Renamed", "UiEditable": "true"})
        asset = client.post(f"{svc['url']}/Assets", data={"FriendlyName": "a"}).json()
        asset_renamed = client.post(asset["url"], data={"FriendlyName": "b"})
        asset_no_name = client.post(asset["url"], data={})
        gone = client.delete(asset["url"])
        after = client.get(asset["url"])
        removed = client.delete(str(svc["url"]))
        listed = client.get("/v1/Services").json()["services"]
    assert renamed.status_code == 200
    assert renamed.json()["friendly_name"] == "Renamed" and renamed.json()["ui_editable"] is True
    assert asset_renamed.json()["friendly_name"] == "b"
    assert asset_no_name.status_code == 400
    assert (gone.status_code, after.status_code, removed.status_code) == (204, 404, 204)
    assert listed == []


def test_variables_crud(emulator: EmulatorHandle) -> None:
    with emulator.client() as client:
        svc = _service(client)["sid"]
        env = client.post(f"/v1/Services/{svc}/Environments", data={"UniqueName": "prod"}).json()
        url = env["links"]["variables"]
        created = client.post(url, data={"Key": "API_URL", "Value": "https://x"})
        dup = client.post(url, data={"Key": "API_URL", "Value": "y"})
        too_long = client.post(url, data={"Key": "BIG", "Value": "v" * 451})
        updated = client.post(created.json()["url"], data={"Value": "https://y"})
        listed = client.get(url).json()["variables"]
        deleted = client.delete(created.json()["url"])
    assert created.status_code == 201 and created.json()["key"] == "API_URL"
    assert dup.status_code == 409 and too_long.status_code == 400
    assert updated.json()["value"] == "https://y"
    assert [v["value"] for v in listed] == ["https://y"]
    assert deleted.status_code == 204


def test_function_version_content_and_empty_logs(emulator: EmulatorHandle) -> None:
    code = b"exports.handler = (context, event, callback) => callback(null, 'hi');"
    with emulator.client() as client:
        svc = _service(client)["sid"]
        version = _upload(client, str(svc), "/hello", code, family="Functions")
        content = client.get(version["links"]["function_version_content"])
        env = client.post(f"/v1/Services/{svc}/Environments", data={"UniqueName": "prod"}).json()
        logs = client.get(env["links"]["logs"], params={"StartDate": "2026-01-01T00:00:00Z"})
        one_log = client.get(env["links"]["logs"] + "/NO" + "0" * 32)
    assert content.json()["content"] == code.decode()
    assert logs.status_code == 200 and logs.json()["logs"] == []
    assert "StartDate=2026-01-01T00%3A00%3A00Z" in logs.json()["meta"]["url"]
    assert one_log.status_code == 404


def test_auth_accepts_the_account_and_api_keys_only(emulator: EmulatorHandle) -> None:
    emulator.state.api_keys = {"SK" + "1" * 32: "key-secret"}
    url = f"{emulator.url}/v1/Services"
    as_key = httpx.get(url, auth=("SK" + "1" * 32, "key-secret"))
    wrong = httpx.get(url, auth=(emulator.account_sid, "wrong"))
    wrong_key = httpx.get(url, auth=("SK" + "1" * 32, "nope"))
    none = httpx.get(url)
    garbage = httpx.get(
        url, headers={"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()}
    )
    emulator.state.api_keys = {}
    assert as_key.status_code == 200
    for response in (wrong, wrong_key, none, garbage):
        assert response.status_code == 401
        assert response.json()["code"] == 20003
        assert response.json()["more_info"] == "https://www.twilio.com/docs/errors/20003"


def test_upload_host_requires_each_multipart_part(emulator: EmulatorHandle) -> None:
    with emulator.client() as client:
        svc = _service(client)["sid"]
        asset = client.post(f"/v1/Services/{svc}/Assets", data={"FriendlyName": "/a"}).json()
        url = asset["links"]["asset_versions"]
        content = {"Content": ("a", b"x", "text/plain")}
        no_path = client.post(url, data={"Visibility": "public"}, files=content)
        no_visibility = client.post(url, data={"Path": "/a"}, files=content)
        no_content = client.post(
            url,
            data={"Path": "/a", "Visibility": "public"},
            files={"Other": ("o", b"o", "text/plain")},
        )
        bad_visibility = client.post(
            url, data={"Path": "/a", "Visibility": "secret"}, files=content
        )
        not_multipart = client.post(url, data={"Path": "/a", "Visibility": "public"})
        lower_case_names = client.post(
            url,
            data={"path": "/a", "visibility": "public"},
            files={"content": ("a", b"x", "text/plain")},
        )
        listed = client.get(url).json()["asset_versions"]
    for response, name in (
        (no_path, "Path"),
        (no_visibility, "Visibility"),
        (no_content, "Content"),
    ):
        assert response.status_code == 400
        assert response.json()["message"] == f"Missing required parameter {name} in the post body"
    assert bad_visibility.status_code == 400 and not_multipart.status_code == 400
    assert lower_case_names.status_code == 201
    assert len(listed) == 1


def test_upload_to_an_unknown_asset_is_a_clean_404(emulator: EmulatorHandle) -> None:
    with emulator.client() as client:
        svc = _service(client)["sid"]
        response = client.post(
            f"/v1/Services/{svc}/Assets/ZH{'0' * 32}/Versions",
            data={"Path": "/big.bin", "Visibility": "public"},
            files={"Content": ("big.bin", b"z" * 3_000_000, "application/octet-stream")},
        )
    assert response.status_code == 404 and response.json()["code"] == 20404
    assert emulator.state.request_log[-1].bytes_in > 3_000_000


def test_form_values_decode_as_twilio_clients_encode_them(emulator: EmulatorHandle) -> None:
    # The emulator parses url-encoded forms itself (a build names up to 1,100 versions): '+'
    # and %20 are spaces, %-escapes are UTF-8, '=' may appear in a value, '&' alone separates.
    name = "/a b+c/é;x=1 ~.txt"
    body = "FriendlyName=%2Fa+b%2Bc%2F%C3%A9;x=1%20~.txt&Ignored"
    with emulator.client() as client:
        svc = _service(client)["sid"]
        asset = client.post(f"/v1/Services/{svc}/Assets", content=body.encode(),
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        too_many = client.post(f"/v1/Services/{svc}/Builds",
                               content="&".join(["AssetVersions=ZN"] * 10_001).encode(),
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert asset.status_code == 201
    assert asset.json()["friendly_name"] == name
    assert too_many.status_code == 400
    assert "Too many fields" in too_many.json()["message"]
