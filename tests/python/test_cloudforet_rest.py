"""Cloudforet identity v2 facade over REST: `POST /identity/v2/<resource>/<verb>` with JSON bodies
in proto field names, enums as strings, `Authorization: Bearer TOKEN`; errors as HTTP status per
gRPC code with `{"detail": {"code": "ERROR_...", "message": "..."}}`.
"""

from __future__ import annotations

import time

from cloudforet_client import (
    JOB_ID_RE,
    TIMESTAMP_RE,
    Rest,
    expect_rest_error,
    forged_token,
    not_default,
    wait_job,
)
from sluice_testlib import unique


def accounts(tag: str, workspaces=("ws",)) -> list:
    return [{
        "name": f"{tag} account {index}",
        "resource_id": f"{tag}-acct-{index}",
        "data": {"account_id": f"{tag}-{index}"},
        "location": [{"name": f"{tag} {ws}", "resource_id": f"{tag}-ou-{ws}"},
                     {"name": f"{tag} group", "resource_id": f"{tag}-ou-group"}],
    } for index, ws in enumerate(workspaces)]


def rest_wait_job(rest: Rest, job_id: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = rest.call("job", "get", {"job_id": job_id})
        if job.get("status") in ("SUCCESS", "FAILURE", "CANCELED"):
            return job
        assert time.monotonic() < deadline, f"job {job_id} did not finish within {timeout}s: {job}"
        time.sleep(0.1)


def same_as_grpc(rest_view: dict, grpc_view: dict) -> None:
    """REST and gRPC show the same message; REST may add default values gRPC omits."""
    for key, value in grpc_view.items():
        assert rest_view.get(key) == value, (key, rest_view.get(key), value)
    for key, value in rest_view.items():
        if key not in grpc_view:
            assert not not_default(value), (key, value)


def test_rest_sync_flow(tenant, plugin_id, plugin):
    rest = tenant.rest()
    tag = unique("rest")
    provider = unique("prov")
    created = rest.call("provider", "create", {
        "provider": provider, "name": "REST provider",
        "plugin_info": {"plugin_id": plugin_id, "options": {"mode": "accounts", "accounts": accounts(tag)}},
    })
    assert created["provider"] == provider and created["plugin_info"]["plugin_id"] == plugin_id
    assert rest.call("provider", "get", {"provider": provider})["name"] == "REST provider"

    secret = unique("rest-secret")
    tenant.forbidden.append(secret)
    marker = unique("marker")
    ta = rest.call("trusted-account", "create", {
        "name": unique("rest-ta"), "provider": provider, "data": {"k": "v"},
        "secret_data": {"token": secret}, "resource_group": "DOMAIN",
        "schedule": {"state": "DISABLED", "hours": []}, "sync_options": {},
        "plugin_options": {"marker": marker}, "tags": {"via": "rest"},
    })
    ta_id = ta["trusted_account_id"]
    assert ta["resource_group"] == "DOMAIN" and "secret_data" not in ta
    assert TIMESTAMP_RE.match(ta["created_at"]), ta
    listed = rest.call("trusted-account", "list", {"provider": provider})
    assert [t["trusted_account_id"] for t in listed["results"]] == [ta_id] and listed["total_count"] == 1

    job = rest.call("trusted-account", "sync", {"trusted_account_id": ta_id})
    assert JOB_ID_RE.match(job["job_id"]), job
    assert job["status"] == "PENDING", job
    assert job["resource_group"] == "DOMAIN" and job["workspace_id"] == "*", job
    assert job["plugin_id"] == plugin_id and job["trusted_account_id"] == ta_id, job
    assert TIMESTAMP_RE.match(job["created_at"]), job
    done = rest_wait_job(rest, job["job_id"])
    assert done["status"] == "SUCCESS", done
    assert TIMESTAMP_RE.match(done["finished_at"]), done
    received = plugin.syncs_with("marker", marker)
    assert len(received) == 1 and received[0].secret_data == {"token": secret}, received

    same_as_grpc(done, tenant.admin.job(job["job_id"]))

    workspaces = rest.call("workspace", "list", {})["results"]
    assert [w["name"] for w in workspaces] == [f"{tag} ws"], workspaces
    workspace_id = workspaces[0]["workspace_id"]
    assert workspaces[0]["is_managed"] is True
    assert rest.call("workspace", "get", {"workspace_id": workspace_id})["name"] == f"{tag} ws"
    groups = rest.call("project-group", "list", {"workspace_id": workspace_id})["results"]
    assert [g["reference_id"] for g in groups] == [f"{tag}-ou-group"], groups
    projects = rest.call("project", "list", {"project_group_id": groups[0]["project_group_id"]})["results"]
    assert [p["reference_id"] for p in projects] == [f"{tag}-acct-0"], projects
    assert rest.call("project", "get", {"project_id": projects[0]["project_id"]})["workspace_id"] == workspace_id
    assert rest.call("project-group", "get", {"project_group_id": groups[0]["project_group_id"]})["name"] == f"{tag} group"
    service_accounts = rest.call("service-account", "list", {"trusted_account_id": ta_id})
    assert service_accounts["total_count"] == 1
    sa = service_accounts["results"][0]
    assert sa["project_id"] == projects[0]["project_id"] and sa["provider"] == provider
    assert sa["data"] == {"account_id": f"{tag}-0"}
    assert rest.call("service-account", "get", {"service_account_id": sa["service_account_id"]})["name"] == sa["name"]

    # Job list, stat and delete.
    second = rest_wait_job(rest, rest.call("trusted-account", "sync", {"trusted_account_id": ta_id})["job_id"])
    listed = rest.call("job", "list", {
        "query": {"filter": [{"k": "status", "v": "SUCCESS", "o": "eq"}], "sort": [{"key": "job_id", "desc": True}],
                  "page": {"start": 1, "limit": 1}},
        "trusted_account_id": ta_id,
    })
    highest_id = max(job["job_id"], second["job_id"])
    assert [j["job_id"] for j in listed["results"]] == [highest_id]
    assert listed["total_count"] == 2
    assert rest.call("job", "list", {"status": "FAILURE"}).get("total_count", 0) == 0
    stat = rest.call("job", "stat", {"query": {"aggregate": [
        {"group": {"keys": [{"key": "status", "name": "status"}], "fields": [{"operator": "count", "name": "count"}]}},
        {"sort": [{"key": "count", "desc": True}]},
    ]}})
    assert stat["results"] == [{"status": "SUCCESS", "count": 2}], stat
    deleted = rest.post("job", "delete", {"job_id": second["job_id"]})
    assert deleted.status_code == 200, deleted.text
    assert not deleted.content or deleted.json() == {}, deleted.text
    expect_rest_error(rest.post("job", "get", {"job_id": second["job_id"]}), "NOT_FOUND", "ERROR_NOT_FOUND")
    assert [j["job_id"] for j in rest.call("job", "list", {})["results"]] == [job["job_id"]]

    updated = rest.call("trusted-account", "update", {"trusted_account_id": ta_id, "name": "renamed"})
    assert updated["name"] == "renamed" and "secret_data" not in updated
    rest.call("trusted-account", "delete", {"trusted_account_id": ta_id})
    expect_rest_error(rest.post("trusted-account", "get", {"trusted_account_id": ta_id}), "NOT_FOUND")


def test_rest_failing_sync_reports_the_plugin_message(tenant, plugin_id):
    rest = tenant.rest()
    message = unique("rest plugin failure")
    provider = tenant.create_provider(plugin_id, {"mode": "fail", "message": message})["provider"]
    ta = tenant.create_trusted_account(provider)
    job = rest.call("trusted-account", "sync", {"trusted_account_id": ta["trusted_account_id"]})
    done = rest_wait_job(rest, job["job_id"])
    assert done["status"] == "FAILURE" and message in done["error_message"], done


def test_rest_errors(tenant, plugin_id):
    rest = tenant.rest()
    detail = expect_rest_error(rest.post("job", "get", {"job_id": "job-0123456789ab"}), "NOT_FOUND", "ERROR_NOT_FOUND")
    assert "job-0123456789ab" in detail["message"]
    for token in ("not-a-token", forged_token(tenant.domain_id)):
        expect_rest_error(rest.post("job", "list", {}, token=token), "UNAUTHENTICATED", "ERROR_AUTHENTICATE_FAILURE")
    expect_rest_error(rest.post("job", "list", {}, token=None), "UNAUTHENTICATED")
    expect_rest_error(rest.post("job", "list", {"query": {"filter": [{"k": "status", "v": "x", "o": "bogus"}]}}),
                      "INVALID_ARGUMENT")
    expect_rest_error(rest.post("job", "list", raw=b"{not json"), "INVALID_ARGUMENT")
    name = unique("prov")
    body = {"provider": name, "name": name, "plugin_info": {"plugin_id": plugin_id, "options": {}}}
    rest.call("provider", "create", body)
    expect_rest_error(rest.post("provider", "create", body), "ALREADY_EXISTS")


def test_rest_workspace_member_cannot_delete_or_see_other_workspaces(tenant, plugin_id):
    tag = unique("restws")
    provider = tenant.create_provider(plugin_id, {"mode": "accounts", "accounts": accounts(tag, ("A", "B"))})["provider"]
    domain_ta = tenant.create_trusted_account(provider)
    domain_job = tenant.sync_and_wait(domain_ta["trusted_account_id"])
    assert domain_job["status"] == "SUCCESS", domain_job
    ids = {w["name"]: w["workspace_id"] for w in tenant.admin.listing("Workspace")}
    ws_a, ws_b = ids[f"{tag} A"], ids[f"{tag} B"]
    jobs = {}
    for ws in (ws_a, ws_b):
        owner = tenant.client("WORKSPACE_OWNER", ws)
        ta = tenant.create_trusted_account(provider, resource_group="WORKSPACE", client=owner,
                                           plugin_options={"accounts": accounts(tag + ws)})
        jobs[ws] = wait_job(tenant.admin, tenant.sync(ta["trusted_account_id"], client=owner)["job_id"])
    member = tenant.rest("WORKSPACE_MEMBER", ws_a)
    seen = {j["job_id"] for j in member.call("job", "list", {})["results"]}
    assert seen == {domain_job["job_id"], jobs[ws_a]["job_id"]}, seen
    expect_rest_error(member.post("job", "get", {"job_id": jobs[ws_b]["job_id"]}), "NOT_FOUND", "ERROR_NOT_FOUND")
    expect_rest_error(member.post("job", "delete", {"job_id": jobs[ws_a]["job_id"]}), "PERMISSION_DENIED")
    assert tenant.admin.job(jobs[ws_a]["job_id"])["job_id"] == jobs[ws_a]["job_id"]
    other = tenant.rest("DOMAIN_ADMIN")  # same domain: sees all three
    assert {j["job_id"] for j in other.call("job", "list", {})["results"]} == {
        domain_job["job_id"], jobs[ws_a]["job_id"], jobs[ws_b]["job_id"]}


def test_rest_other_domain_sees_nothing(tenant, new_tenant, plugin_id):
    provider = tenant.create_provider(plugin_id, {"mode": "accounts", "accounts": accounts(unique("iso"))})["provider"]
    ta = tenant.create_trusted_account(provider)
    job = tenant.sync_and_wait(ta["trusted_account_id"])
    other = new_tenant().rest()
    listed = other.call("job", "list", {})
    assert listed.get("results", []) == [] and listed.get("total_count", 0) == 0
    expect_rest_error(other.post("job", "get", {"job_id": job["job_id"]}), "NOT_FOUND")
    expect_rest_error(other.post("job", "delete", {"job_id": job["job_id"]}), "NOT_FOUND")
    expect_rest_error(other.post("trusted-account", "sync", {"trusted_account_id": ta["trusted_account_id"]}),
                      "NOT_FOUND")


def test_methods_not_served_are_client_errors(tenant, cf_channel):
    """A method Sluice does not serve: gRPC UNIMPLEMENTED, REST 404, both ERROR_UNSUPPORTED_API."""
    import grpc

    rest = tenant.rest()
    for resource, verb in (("workspace", "create"), ("job", "nope"), ("no-such-resource", "list")):
        response = rest.post(resource, verb, {})
        assert response.status_code == 404, (resource, verb, response.status_code, response.text)
        assert response.json()["detail"]["code"] == "ERROR_UNSUPPORTED_API", response.text
    call = cf_channel.unary_unary("/spaceone.api.identity.v2.Workspace/create")
    try:
        call(b"", metadata=(("token", tenant.token()),), timeout=10)
        raise AssertionError("an unserved gRPC method answered")
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.UNIMPLEMENTED, err
        assert err.details().startswith("ERROR_UNSUPPORTED_API: "), err.details()
    # The server is unharmed.
    assert rest.call("job", "list", {}).get("results", []) == []
