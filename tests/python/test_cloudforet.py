"""Cloudforet identity v2 facade over gRPC, with the stock `spaceone-api` stubs.

Each test works in its own Cloudforet domain (a fresh domain id), so tests never see each
other's jobs. The server is `cf_server` (plugin timeout 3 s); the plugin is the in-process test
AccountCollector (cloudforet_plugin.py), driven by the merged options it receives.
"""

from __future__ import annotations

import collections
import datetime
import re
import time

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2

from cloudforet_client import (
    JOB_ID_RE,
    SERVICE_NAMES,
    TIMESTAMP_RE,
    Identity,
    Tenant,
    expect_grpc_error,
    forged_token,
    tampered_token,
    wait_job,
)
from cloudforet_fixtures import PLUGIN_TIMEOUT_SECONDS
from cloudforet_plugin import DEFAULT_ACCOUNTS
from sluice_testlib import stored_bytes, unique

NOT_FOUND = grpc.StatusCode.NOT_FOUND
INVALID = grpc.StatusCode.INVALID_ARGUMENT
DENIED = grpc.StatusCode.PERMISSION_DENIED
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
ALREADY_EXISTS = grpc.StatusCode.ALREADY_EXISTS


# --- helpers -------------------------------------------------------------------------------------


def make_accounts(tag: str, layout: list) -> list:
    """Accounts with unique names and ids: layout is one location list per account, each a list
    of names (the first is the workspace for DOMAIN accounts)."""
    accounts = []
    for index, names in enumerate(layout):
        accounts.append({
            "name": f"{tag} account {index}",
            "resource_id": f"{tag}-acct-{index}",
            "data": {"account_id": f"{tag}-{index}", "note": "made by make_accounts"},
            "tags": {"index": str(index)},
            "location": [{"name": f"{tag} {name}", "resource_id": f"{tag}-ou-{name}"} for name in names],
        })
    return accounts


def parse_ts(value: str) -> datetime.datetime:
    assert TIMESTAMP_RE.match(value), value
    return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)


def ids(results) -> list:
    return sorted(item["job_id"] for item in results)


def check_synced(client: Identity, accounts: list, *, trusted_account_id: str, provider: str,
                 resource_group: str = "DOMAIN", workspace_id: str = None,
                 skip_groups: bool = False) -> dict:
    """Checks the workspaces, project groups, projects and service accounts a sync of `accounts`
    must have made, with their links; returns counts of what it found."""
    workspaces = {w["name"]: w for w in client.listing("Workspace")}
    groups = client.listing("ProjectGroup")
    projects = client.listing("Project")
    service_accounts = client.listing("ServiceAccount")
    seen = collections.Counter()
    for account in accounts:
        location = list(account.get("location", []))
        if resource_group == "DOMAIN" and workspace_id is None:
            if not location:
                assert not [p for p in projects if p.get("reference_id") == account["resource_id"]], account
                continue
            workspace = workspaces.get(location[0]["name"])
            assert workspace is not None, (location[0], sorted(workspaces))
            assert workspace.get("is_managed") is True, workspace
            target_workspace = workspace["workspace_id"]
            location = location[1:]
        else:
            target_workspace = workspace_id
        if skip_groups:
            location = []
        parent = None
        for entry in location:
            found = [g for g in groups
                     if g.get("reference_id") == entry["resource_id"] and g.get("workspace_id") == target_workspace]
            assert len(found) == 1, (entry, found)
            group = found[0]
            assert group["name"] == entry["name"], group
            assert group.get("parent_group_id") == parent, (group, parent)
            parent = group["project_group_id"]
        found = [p for p in projects
                 if p.get("reference_id") == account["resource_id"] and p.get("workspace_id") == target_workspace]
        assert len(found) == 1, (account["resource_id"], found)
        project = found[0]
        assert project["name"] == account["name"], project
        assert project.get("project_group_id") == parent, (project, parent)
        found = [s for s in service_accounts
                 if s.get("reference_id") == account["resource_id"] and s.get("project_id") == project["project_id"]]
        assert len(found) == 1, (account["resource_id"], found)
        service_account = found[0]
        assert service_account["name"] == account["name"], service_account
        assert service_account["provider"] == provider, service_account
        assert service_account["trusted_account_id"] == trusted_account_id, service_account
        assert service_account.get("workspace_id") == target_workspace, service_account
        assert service_account.get("data", {}) == account.get("data", {}), service_account
        assert "secret_data" not in service_account, service_account
        seen["projects"] += 1
    seen["workspaces"] = len(workspaces)
    seen["project_groups"] = len(groups)
    seen["all_projects"] = len(projects)
    seen["service_accounts"] = len(service_accounts)
    return dict(seen)


# --- reflection, auth ----------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1alpha", "v1"])
def test_reflection_lists_the_identity_services(cf_channel, version):
    # v1 messages are v1alpha's on the wire; only the service name differs.
    info = cf_channel.stream_stream(
        f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    requests_ = [reflection_pb2.ServerReflectionRequest(list_services=""),
                 reflection_pb2.ServerReflectionRequest(file_containing_symbol=f"{SERVICE_NAMES[0]}")]
    responses = list(info(iter(requests_), timeout=10))
    assert len(responses) == 2, responses
    assert responses[0].WhichOneof("message_response") == "list_services_response", responses[0]
    names = {service.name for service in responses[0].list_services_response.service}
    missing = set(SERVICE_NAMES) - names
    assert not missing, (missing, sorted(names))
    files = responses[1].file_descriptor_response.file_descriptor_proto
    assert files, responses[1]
    assert any(b"spaceone.api.identity.v2" in f for f in files), files


@pytest.mark.parametrize("kind", ["garbage", "forged", "tampered", "empty"])
def test_wrong_tokens_are_refused(tenant, cf_channel, kind):
    error_code = None if kind == "empty" else "ERROR_AUTHENTICATE_FAILURE"
    real = tenant.token("DOMAIN_ADMIN")
    token = {
        "garbage": "not-a-token",
        "forged": forged_token(tenant.domain_id),
        "tampered": tampered_token(real, did=unique("domain")),
        "empty": "",
    }[kind]
    client = Identity(cf_channel, token)
    expect_grpc_error(lambda: client.jobs(), UNAUTHENTICATED, error_code)
    expect_grpc_error(lambda: client.call("Provider", "list"), UNAUTHENTICATED, error_code)
    expect_grpc_error(lambda: client.call("Job", "stat", {"query": group_count("status")}), UNAUTHENTICATED)


def test_missing_token_is_refused(cf_channel):
    client = Identity(cf_channel, None)
    expect_grpc_error(lambda: client.jobs(), UNAUTHENTICATED)


def test_expired_token_is_refused(tenant, cf_cli, cf_channel):
    lasting = Identity(cf_channel, cf_cli.token("DOMAIN_ADMIN", tenant.domain_id, expires_in=600))
    assert lasting.jobs()["total_count"] == 0
    short = Identity(cf_channel, cf_cli.token("DOMAIN_ADMIN", tenant.domain_id, expires_in=1))
    time.sleep(2.5)
    expect_grpc_error(lambda: short.jobs(), UNAUTHENTICATED, "ERROR_AUTHENTICATE_FAILURE")


def test_unknown_job_is_not_found(tenant):
    job_id = "job-0123456789ab"
    info = expect_grpc_error(lambda: tenant.admin.job(job_id), NOT_FOUND, "ERROR_NOT_FOUND")
    assert job_id in info.details, info


# --- providers and trusted accounts --------------------------------------------------------------


def test_provider_create_get_list(tenant, plugin_id):
    name = unique("prov")
    created = tenant.create_provider(plugin_id, {"mode": "accounts", "region": "test-1"}, provider=name)
    assert created["provider"] == name
    assert created["name"] == f"Provider {name}"
    assert created["plugin_info"]["plugin_id"] == plugin_id
    assert created["plugin_info"]["options"] == {"mode": "accounts", "region": "test-1"}
    got = tenant.admin.call("Provider", "get", {"provider": name})
    assert got["provider"] == name and got["plugin_info"]["plugin_id"] == plugin_id
    listed = tenant.admin.call("Provider", "list", {"provider": name})
    assert [p["provider"] for p in listed["results"]] == [name]
    assert listed["total_count"] == 1
    expect_grpc_error(lambda: tenant.create_provider(plugin_id, provider=name), ALREADY_EXISTS)
    expect_grpc_error(lambda: tenant.admin.call("Provider", "get", {"provider": unique("nope")}), NOT_FOUND)


def test_trusted_account_crud_never_returns_secret(tenant, plugin_id, cf_server):
    provider = tenant.create_provider(plugin_id, {"mode": "accounts"})["provider"]
    secret = unique("very-secret-value")
    created = tenant.create_trusted_account(
        provider, secret_data={"api_key": secret}, plugin_options={"opt": "p"},
        sync_options={"skip_project_group": True}, name=unique("crud"),
    )
    ta_id = created["trusted_account_id"]
    assert "secret_data" not in created
    assert created["provider"] == provider
    assert created["resource_group"] == "DOMAIN"
    assert created["data"] == {"purpose": "sluice test"}
    assert created["plugin_options"] == {"opt": "p"}
    assert created["sync_options"] == {"skip_project_group": True}
    assert created["tags"] == {"suite": "cloudforet"}
    assert created["domain_id"] == tenant.domain_id
    assert TIMESTAMP_RE.match(created["created_at"]), created
    got = tenant.admin.call("TrustedAccount", "get", {"trusted_account_id": ta_id})
    assert got["name"] == created["name"] and "secret_data" not in got
    listed = tenant.admin.call("TrustedAccount", "list", {"trusted_account_id": ta_id})
    assert [t["trusted_account_id"] for t in listed["results"]] == [ta_id]
    updated = tenant.admin.call("TrustedAccount", "update", {
        "trusted_account_id": ta_id, "name": "renamed", "tags": {"k": "v"}, "plugin_options": {"opt": "q"},
    })
    assert updated["name"] == "renamed" and updated["tags"] == {"k": "v"}
    assert updated["plugin_options"] == {"opt": "q"}
    assert "secret_data" not in updated
    # Encrypted at rest: the value is nowhere in the data directory.
    assert secret.encode() not in stored_bytes(cf_server.data_dir)
    tenant.admin.call("TrustedAccount", "delete", {"trusted_account_id": ta_id})
    expect_grpc_error(lambda: tenant.admin.call("TrustedAccount", "get", {"trusted_account_id": ta_id}),
                      NOT_FOUND, "ERROR_NOT_FOUND")


# --- sync ----------------------------------------------------------------------------------------


def test_sync_runs_the_plugin_and_builds_the_tree(tenant, plugin_id, plugin):
    provider = tenant.create_provider(plugin_id, {"mode": "accounts"})["provider"]
    marker = unique("marker")
    secret = unique("sync-secret")
    # Every secret value is unique: the suite refuses any response or log line that contains one.
    region = unique("secret-region")
    ta = tenant.create_trusted_account(provider, plugin_options={"marker": marker},
                                       secret_data={"api_key": secret, "region": region})
    ta_id = ta["trusted_account_id"]
    job = tenant.sync(ta_id)
    assert JOB_ID_RE.match(job["job_id"]), job
    assert job["status"] == "PENDING", job
    assert job["resource_group"] == "DOMAIN"
    assert job["workspace_id"] == "*"
    assert job["plugin_id"] == plugin_id
    assert job["trusted_account_id"] == ta_id
    assert job["domain_id"] == tenant.domain_id
    assert TIMESTAMP_RE.match(job["created_at"]), job
    done = wait_job(tenant.admin, job["job_id"])
    assert done["status"] == "SUCCESS", done
    assert TIMESTAMP_RE.match(done["finished_at"]), done
    assert parse_ts(done["finished_at"]) >= parse_ts(done["created_at"])
    assert not done.get("error_message"), done

    received = plugin.syncs_with("marker", marker)
    assert len(received) == 1, received
    assert received[0].secret_data == {"api_key": secret, "region": region}
    assert received[0].domain_id == tenant.domain_id

    first = check_synced(tenant.admin, DEFAULT_ACCOUNTS, trusted_account_id=ta_id, provider=provider)
    assert first == {"projects": 3, "workspaces": 2, "project_groups": 5, "all_projects": 3,
                     "service_accounts": 3}, first

    # A second sync finds everything again instead of making copies.
    again = tenant.sync_and_wait(ta_id)
    assert again["status"] == "SUCCESS", again
    second = check_synced(tenant.admin, DEFAULT_ACCOUNTS, trusted_account_id=ta_id, provider=provider)
    assert second == first

    # Filters of the resource lists.
    workspaces = tenant.admin.listing("Workspace", {"name": "Alpha"})
    assert [w["name"] for w in workspaces] == ["Alpha"]
    alpha = workspaces[0]["workspace_id"]
    assert tenant.admin.call("Workspace", "get", {"workspace_id": alpha})["name"] == "Alpha"
    in_alpha = tenant.admin.listing("Project", {"workspace_id": alpha})
    assert sorted(p["reference_id"] for p in in_alpha) == ["acct-0001", "acct-0002"]
    groups = tenant.admin.listing("ProjectGroup", {"workspace_id": alpha})
    assert sorted(g["reference_id"] for g in groups) == ["ou-db", "ou-prod", "ou-web"]
    prod = [g for g in groups if g["reference_id"] == "ou-prod"][0]
    children = tenant.admin.listing("ProjectGroup", {"parent_group_id": prod["project_group_id"]})
    assert sorted(g["reference_id"] for g in children) == ["ou-db", "ou-web"]
    got_group = tenant.admin.call("ProjectGroup", "get", {"project_group_id": prod["project_group_id"]})
    assert got_group["name"] == "Prod"
    project = in_alpha[0]
    assert tenant.admin.call("Project", "get", {"project_id": project["project_id"]})["name"] == project["name"]
    by_project = tenant.admin.listing("ServiceAccount", {"project_id": project["project_id"]})
    assert len(by_project) == 1 and by_project[0]["reference_id"] == project["reference_id"]
    sa_id = by_project[0]["service_account_id"]
    assert tenant.admin.call("ServiceAccount", "get", {"service_account_id": sa_id})["provider"] == provider
    by_ta = tenant.admin.call("ServiceAccount", "list", {"trusted_account_id": ta_id})
    assert by_ta["total_count"] == 3
    expect_grpc_error(lambda: tenant.admin.call("Workspace", "get", {"workspace_id": unique("workspace")}),
                      NOT_FOUND)


def test_sync_options_merge_into_plugin_options(tenant, plugin_id, plugin):
    marker = unique("marker")
    accounts = make_accounts(unique("merge"), [["ws"]])
    provider = tenant.create_provider(
        plugin_id, {"mode": "fail", "message": "provider options must be overridden",
                    "a": "provider", "b": "provider", "marker": marker},
    )["provider"]
    ta = tenant.create_trusted_account(
        provider,
        plugin_options={"mode": "accounts", "accounts": accounts, "b": "plugin", "c": "plugin"},
        sync_options={"c": "sync", "d": "sync"},
    )
    done = tenant.sync_and_wait(ta["trusted_account_id"])
    assert done["status"] == "SUCCESS", done
    received = plugin.syncs_with("marker", marker)
    assert len(received) == 1, received
    options = received[0].options
    expected = {"a": "provider", "b": "plugin", "c": "sync", "d": "sync", "mode": "accounts", "marker": marker}
    assert {k: options.get(k) for k in expected} == expected, options


def test_sync_option_skip_project_group(tenant, plugin_id):
    tag = unique("skip")
    accounts = make_accounts(tag, [["ws", "g1", "g2"], ["ws", "g1", "g3"]])
    provider = tenant.create_provider(plugin_id, {"mode": "accounts", "accounts": accounts})["provider"]
    ta = tenant.create_trusted_account(provider, sync_options={"skip_project_group": True})
    done = tenant.sync_and_wait(ta["trusted_account_id"])
    assert done["status"] == "SUCCESS", done
    seen = check_synced(tenant.admin, accounts, trusted_account_id=ta["trusted_account_id"],
                        provider=provider, skip_groups=True)
    assert seen["projects"] == 2 and seen["workspaces"] == 1 and seen["project_groups"] == 0, seen


def test_sync_skips_accounts_without_location(tenant, plugin_id):
    tag = unique("noloc")
    accounts = make_accounts(tag, [[], ["ws", "g"], []])
    provider = tenant.create_provider(plugin_id, {"mode": "accounts", "accounts": accounts})["provider"]
    ta = tenant.create_trusted_account(provider)
    done = tenant.sync_and_wait(ta["trusted_account_id"])
    assert done["status"] == "SUCCESS", done
    seen = check_synced(tenant.admin, accounts, trusted_account_id=ta["trusted_account_id"], provider=provider)
    assert seen["projects"] == 1 and seen["all_projects"] == 1 and seen["service_accounts"] == 1, seen


def test_sync_option_single_workspace_id(tenant, plugin_id):
    tag = unique("single")
    first_accounts = make_accounts(tag, [["home", "g"]])
    provider = tenant.create_provider(plugin_id, {"mode": "accounts", "accounts": first_accounts})["provider"]
    ta = tenant.create_trusted_account(provider)
    assert tenant.sync_and_wait(ta["trusted_account_id"])["status"] == "SUCCESS"
    home = tenant.admin.listing("Workspace", {"name": f"{tag} home"})
    assert len(home) == 1, home
    home_id = home[0]["workspace_id"]

    more = make_accounts(tag + "-b", [["elsewhere", "g"], ["other", "h"]])
    single = tenant.create_trusted_account(
        provider, plugin_options={"accounts": more}, sync_options={"single_workspace_id": home_id},
    )
    done = tenant.sync_and_wait(single["trusted_account_id"])
    assert done["status"] == "SUCCESS", done
    names = {w["name"] for w in tenant.admin.listing("Workspace")}
    assert names == {f"{tag} home"}, names
    projects = tenant.admin.listing("Project", {"workspace_id": home_id})
    assert {p["reference_id"] for p in projects} >= {a["resource_id"] for a in more}, projects
    service_accounts = tenant.admin.listing("ServiceAccount", {"trusted_account_id": single["trusted_account_id"]})
    assert len(service_accounts) == 2 and all(s["workspace_id"] == home_id for s in service_accounts)


def test_failing_plugin_fails_the_job(tenant, plugin_id):
    message = unique("plugin exploded")
    provider = tenant.create_provider(plugin_id, {"mode": "fail", "message": message})["provider"]
    ta = tenant.create_trusted_account(provider)
    job = tenant.sync(ta["trusted_account_id"])
    assert job["status"] == "PENDING", job
    done = wait_job(tenant.admin, job["job_id"])
    assert done["status"] == "FAILURE", done
    assert message in done.get("error_message", ""), done
    assert TIMESTAMP_RE.match(done["finished_at"]), done
    assert tenant.admin.listing("ServiceAccount", {"trusted_account_id": ta["trusted_account_id"]}) == []


def test_hanging_plugin_fails_after_the_timeout(tenant, plugin_id):
    provider = tenant.create_provider(plugin_id, {"mode": "hang", "seconds": 20})["provider"]
    ta = tenant.create_trusted_account(provider)
    started = time.monotonic()
    job = tenant.sync(ta["trusted_account_id"])
    running = wait_job(tenant.admin, job["job_id"], ("IN_PROGRESS", "SUCCESS", "FAILURE"), timeout=PLUGIN_TIMEOUT_SECONDS)
    assert running["status"] == "IN_PROGRESS", running
    done = wait_job(tenant.admin, job["job_id"], timeout=PLUGIN_TIMEOUT_SECONDS + 8)
    elapsed = time.monotonic() - started
    assert done["status"] == "FAILURE", done
    assert done.get("error_message"), done
    assert PLUGIN_TIMEOUT_SECONDS - 0.5 <= elapsed < PLUGIN_TIMEOUT_SECONDS + 8, elapsed
    assert TIMESTAMP_RE.match(done["finished_at"]), done


def test_duplicate_sync_fails_while_a_job_is_in_progress(tenant, plugin_id):
    provider = tenant.create_provider(plugin_id, {"mode": "hang", "seconds": 20})["provider"]
    ta = tenant.create_trusted_account(provider)
    ta_id = ta["trusted_account_id"]
    first = tenant.sync(ta_id)
    wait_job(tenant.admin, first["job_id"], "IN_PROGRESS", timeout=PLUGIN_TIMEOUT_SECONDS - 1)
    second = tenant.sync(ta_id)
    assert second["job_id"] != first["job_id"]
    assert second["status"] in ("PENDING", "FAILURE"), second
    second = wait_job(tenant.admin, second["job_id"], timeout=5)
    assert second["status"] == "FAILURE", second
    message = second.get("error_message", "")
    assert message.startswith("The same job is already running."), second
    # JobInfo has no error_code, but the code is kept and filterable, as in Cloudforet's model.
    by_code = tenant.admin.jobs({"filter": [{"k": "error_code", "v": "ERROR_DUPLICATE_JOB", "o": "eq"}]})
    assert [j["job_id"] for j in by_code["results"]] == [second["job_id"]], by_code
    assert tenant.admin.job(first["job_id"])["status"] in ("IN_PROGRESS", "FAILURE")
    # Once the first has ended (plugin timeout), the next sync is no duplicate.
    assert wait_job(tenant.admin, first["job_id"], timeout=PLUGIN_TIMEOUT_SECONDS + 8)["status"] == "FAILURE"
    tenant.admin.call("TrustedAccount", "update", {
        "trusted_account_id": ta_id,
        "plugin_options": {"mode": "accounts", "accounts": make_accounts(unique("dup"), [["ws"]])},
    })
    third = tenant.sync_and_wait(ta_id)
    assert third["status"] == "SUCCESS", third


# --- the query language over a corpus of jobs ----------------------------------------------------

BATCH_GAP_SECONDS = 2.5


class Corpus:
    pass


@pytest.fixture(scope="module")
def corpus(cf_cli, cf_channel, cf_server, cf_forbidden, plugin) -> Corpus:
    """Seven finished jobs in one domain: two plugins, four trusted accounts, five SUCCESS and two
    FAILURE, made in two batches at least BATCH_GAP_SECONDS apart (for timediff)."""
    c = Corpus()
    c.tenant = t = Tenant(cf_cli, cf_channel, cf_server.endpoint, cf_forbidden)
    c.p_alpha, c.p_beta = unique("plug-alpha"), unique("plug-beta")
    for plugin_id in (c.p_alpha, c.p_beta):
        cf_cli.register_plugin(plugin_id, plugin.endpoint)
    tag = unique("corpus")
    prov_a = t.create_provider(c.p_alpha, {"mode": "accounts", "accounts": make_accounts(tag + "a", [["ws"]])})
    prov_b = t.create_provider(c.p_beta, {"mode": "accounts", "accounts": make_accounts(tag + "b", [["ws"]])})
    c.ta1 = t.create_trusted_account(prov_a["provider"])["trusted_account_id"]
    c.ta2 = t.create_trusted_account(
        prov_a["provider"], plugin_options={"mode": "fail", "message": "boom-one: access denied"})["trusted_account_id"]
    c.ta3 = t.create_trusted_account(prov_b["provider"])["trusted_account_id"]
    c.ta4 = t.create_trusted_account(
        prov_b["provider"], plugin_options={"mode": "fail", "message": "boom-two: throttled"})["trusted_account_id"]
    c.batch1 = [t.sync_and_wait(ta) for ta in (c.ta1, c.ta2, c.ta3)]
    time.sleep(BATCH_GAP_SECONDS)
    c.batch2 = [t.sync_and_wait(ta) for ta in (c.ta1, c.ta3, c.ta4, c.ta1)]
    statuses = [j["status"] for j in c.batch1 + c.batch2]
    assert statuses == ["SUCCESS", "FAILURE", "SUCCESS", "SUCCESS", "SUCCESS", "FAILURE", "SUCCESS"], statuses
    listed = t.admin.jobs()
    c.jobs = listed["results"]
    assert listed["total_count"] == 7
    assert ids(c.jobs) == ids(c.batch1 + c.batch2)
    c.by_id = {j["job_id"]: j for j in c.jobs}
    c.sorted_ids = sorted(c.by_id)
    return c


def _contains(field, value) -> bool:
    return field is not None and str(value).lower() in str(field).lower()


def _regex(field, pattern) -> bool:
    return field is not None and re.search(pattern, str(field), re.IGNORECASE) is not None


def expected_match(job: dict, key: str, value, operator: str) -> bool:
    """Cloudforet's filter semantics, on a job as the list returns it (absent = default)."""
    field = job.get(key)
    if operator == "eq":
        return field == value
    if operator == "not":
        return field != value
    if operator in ("lt", "lte", "gt", "gte"):
        if field is None:
            return False
        return {"lt": field < value, "lte": field <= value, "gt": field > value, "gte": field >= value}[operator]
    if operator == "exists":
        return bool(field) == value
    if operator == "contain":
        return _contains(field, value)
    if operator == "not_contain":
        return not _contains(field, value)
    if operator == "in":
        return field in value
    if operator == "not_in":
        return field not in value
    if operator == "contain_in":
        return any(_contains(field, v) for v in value)
    if operator == "not_contain_in":
        # python-core's list filter ORs one "does not contain" per value (filter_operator.py).
        return any(not _contains(field, v) for v in value)
    if operator == "regex":
        return _regex(field, value)
    if operator == "regex_in":
        return any(_regex(field, v) for v in value)
    if operator.startswith("datetime_"):
        if field is None:
            return False
        a, b = parse_ts(field), parse_ts(value)
        return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[operator.split("_", 1)[1]]
    raise AssertionError(f"no expectation for {operator}")


def operator_cases(c: Corpus) -> dict:
    pivot_id = c.sorted_ids[3]
    pivot_time = c.batch2[1]["created_at"]
    return {
        "eq": [("status", "SUCCESS"), ("plugin_id", c.p_beta), ("trusted_account_id", c.ta2)],
        "not": [("status", "SUCCESS"), ("plugin_id", c.p_alpha)],
        "lt": [("job_id", pivot_id)],
        "lte": [("job_id", pivot_id)],
        "gt": [("job_id", pivot_id)],
        "gte": [("job_id", pivot_id)],
        "exists": [("error_message", True), ("error_message", False), ("finished_at", True)],
        "contain": [("error_message", "boom-"), ("error_message", "one: access"), ("plugin_id", "alpha")],
        "not_contain": [("error_message", "boom-one"), ("plugin_id", "alpha")],
        "in": [("trusted_account_id", [c.ta1, c.ta4]), ("status", ["FAILURE"])],
        "not_in": [("trusted_account_id", [c.ta1, c.ta4]), ("status", ["SUCCESS", "FAILURE"])],
        "contain_in": [("plugin_id", ["alpha", "no-such-fragment"]), ("error_message", ["boom-one", "boom-two"])],
        "not_contain_in": [("error_message", ["boom-one", "no-such-fragment"]), ("plugin_id", ["alpha", "beta"])],
        "regex": [("plugin_id", r"^plug-beta-[0-9a-f]+$"), ("error_message", r"boom-(one|two): ")],
        "regex_in": [("plugin_id", [r"^plug-alpha-", r"^nothing$"]), ("error_message", [r"^boom-two", r"denied$"])],
        "datetime_gt": [("created_at", pivot_time)],
        "datetime_gte": [("created_at", pivot_time)],
        "datetime_lt": [("created_at", pivot_time)],
        "datetime_lte": [("created_at", pivot_time)],
    }


OPERATORS = ["eq", "not", "lt", "lte", "gt", "gte", "exists", "contain", "not_contain", "in", "not_in",
             "contain_in", "not_contain_in", "regex", "regex_in", "datetime_gt", "datetime_gte",
             "datetime_lt", "datetime_lte"]


@pytest.mark.parametrize("operator", OPERATORS)
def test_list_filter_operator(corpus, operator):
    for key, value in operator_cases(corpus)[operator]:
        expected = sorted(j["job_id"] for j in corpus.jobs if expected_match(j, key, value, operator))
        out = corpus.tenant.admin.jobs({"filter": [{"k": key, "v": value, "o": operator}]})
        assert ids(out["results"]) == expected, (key, value, operator)
        assert out["total_count"] == len(expected), (key, value, operator, out["total_count"])


def test_list_filter_timediff(corpus):
    last_first = max(parse_ts(j["created_at"]) for j in corpus.batch1)
    first_second = min(parse_ts(j["created_at"]) for j in corpus.batch2)
    assert (first_second - last_first).total_seconds() >= BATCH_GAP_SECONDS - 0.1
    middle = last_first + (first_second - last_first) / 2
    first_ids = ids(corpus.batch1)
    second_ids = ids(corpus.batch2)
    for operator, expected in [("timediff_gt", second_ids), ("timediff_gte", second_ids),
                               ("timediff_lt", first_ids), ("timediff_lte", first_ids)]:
        seconds = round((datetime.datetime.now(datetime.timezone.utc) - middle).total_seconds())
        out = corpus.tenant.admin.jobs({"filter": [{"k": "created_at", "v": f"now-{seconds}s", "o": operator}]})
        assert ids(out["results"]) == expected, (operator, seconds)
    everything = sorted(corpus.by_id)
    for operator, value, expected in [("timediff_gt", "now-1d", everything), ("timediff_lt", "now-1d", []),
                                      ("timediff_lte", "now+1h", everything), ("timediff_gte", "now+1h", []),
                                      ("timediff_gt", "now-2h", everything), ("timediff_lt", "now-1w", [])]:
        out = corpus.tenant.admin.jobs({"filter": [{"k": "created_at", "v": value, "o": operator}]})
        assert ids(out["results"]) == expected, (operator, value)


def test_list_filter_match_takes_a_dict(corpus):
    # Cloudforet's `match` is MongoDB's $elemMatch: its value must be a dict. Jobs have no list
    # field, so with a dict it may match nothing or be refused; with anything else it is refused.
    try:
        out = corpus.tenant.admin.jobs({"filter": [{"k": "options", "v": {"no_such_key": "x"}, "o": "match"}]})
    except grpc.RpcError as err:
        assert err.code() == INVALID, err
    else:
        assert ids(out["results"]) == [], out
    expect_grpc_error(
        lambda: corpus.tenant.admin.jobs({"filter": [{"k": "job_id", "v": "abc", "o": "match"}]}), INVALID)


def test_list_string_operators_ignore_case(corpus):
    failures = sorted(j["job_id"] for j in corpus.jobs if j["status"] == "FAILURE")
    for flt in ({"k": "error_message", "v": "BOOM-", "o": "contain"},
                {"k": "error_message", "v": ["BOOM-ONE", "Boom-Two"], "o": "contain_in"},
                {"k": "error_message", "v": "^BOOM-(ONE|TWO)", "o": "regex"}):
        assert ids(corpus.tenant.admin.jobs({"filter": [flt]})["results"]) == failures, flt


def test_list_filter_key_aliases_and_conjunction(corpus):
    c = corpus
    long_form = c.tenant.admin.jobs({"filter": [{"key": "status", "value": "SUCCESS", "operator": "eq"}]})
    short_form = c.tenant.admin.jobs({"filter": [{"k": "status", "v": "SUCCESS", "o": "eq"}]})
    assert ids(long_form["results"]) == ids(short_form["results"]) != []
    both = c.tenant.admin.jobs({"filter": [{"k": "status", "v": "SUCCESS", "o": "eq"},
                                            {"k": "plugin_id", "v": c.p_alpha, "o": "eq"}]})
    expected = sorted(j["job_id"] for j in c.jobs if j["status"] == "SUCCESS" and j["plugin_id"] == c.p_alpha)
    assert ids(both["results"]) == expected and len(expected) == 3


def test_list_filter_or(corpus):
    c = corpus
    out = c.tenant.admin.jobs({"filter_or": [{"k": "status", "v": "FAILURE", "o": "eq"},
                                             {"k": "trusted_account_id", "v": c.ta3, "o": "eq"}]})
    expected = sorted(j["job_id"] for j in c.jobs if j["status"] == "FAILURE" or j["trusted_account_id"] == c.ta3)
    assert ids(out["results"]) == expected and out["total_count"] == 4
    mixed = c.tenant.admin.jobs({
        "filter": [{"k": "plugin_id", "v": c.p_beta, "o": "eq"}],
        "filter_or": [{"k": "status", "v": "FAILURE", "o": "eq"},
                      {"k": "trusted_account_id", "v": c.ta1, "o": "eq"}],
    })
    expected = sorted(j["job_id"] for j in c.jobs if j["plugin_id"] == c.p_beta
                      and (j["status"] == "FAILURE" or j["trusted_account_id"] == c.ta1))
    assert ids(mixed["results"]) == expected and len(expected) == 1


def test_list_request_fields(corpus):
    c = corpus
    admin = c.tenant.admin

    def expect(fields, predicate):
        out = admin.jobs(**fields)
        expected = sorted(j["job_id"] for j in c.jobs if predicate(j))
        assert ids(out["results"]) == expected, fields
        assert out["total_count"] == len(expected), fields

    expect({"status": "SUCCESS"}, lambda j: j["status"] == "SUCCESS")
    expect({"status": "FAILURE"}, lambda j: j["status"] == "FAILURE")
    expect({"plugin_id": c.p_beta}, lambda j: j["plugin_id"] == c.p_beta)
    expect({"trusted_account_id": c.ta1}, lambda j: j["trusted_account_id"] == c.ta1)
    expect({"job_id": c.sorted_ids[2]}, lambda j: j["job_id"] == c.sorted_ids[2])
    expect({"workspace_id": "*"}, lambda j: True)
    expect({"status": "SUCCESS", "plugin_id": c.p_beta},
           lambda j: j["status"] == "SUCCESS" and j["plugin_id"] == c.p_beta)
    expect({"status": "IN_PROGRESS"}, lambda j: False)


def test_list_sort(corpus):
    c = corpus
    asc = c.tenant.admin.jobs({"sort": [{"key": "job_id"}]})
    assert [j["job_id"] for j in asc["results"]] == c.sorted_ids
    desc = c.tenant.admin.jobs({"sort": [{"key": "job_id", "desc": True}]})
    assert [j["job_id"] for j in desc["results"]] == c.sorted_ids[::-1]
    by_time = c.tenant.admin.jobs({"sort": [{"key": "created_at", "desc": True}]})
    expected = [j["job_id"] for j in sorted(c.jobs, key=lambda j: parse_ts(j["created_at"]), reverse=True)]
    assert [j["job_id"] for j in by_time["results"]] == expected
    two_keys = c.tenant.admin.jobs({"sort": [{"key": "status"}, {"key": "job_id", "desc": True}]})
    expected = [j["job_id"] for j in sorted(sorted(c.jobs, key=lambda j: j["job_id"], reverse=True),
                                            key=lambda j: j["status"])]
    assert [j["job_id"] for j in two_keys["results"]] == expected


def test_list_paging_counts_before_the_page(corpus):
    c = corpus
    for start, limit in [(1, 3), (3, 2), (6, 5), (7, 1), (8, 3), (20, 2)]:
        out = c.tenant.admin.jobs({"sort": [{"key": "job_id"}], "page": {"start": start, "limit": limit}})
        assert [j["job_id"] for j in out["results"]] == c.sorted_ids[start - 1:start - 1 + limit], (start, limit)
        assert out["total_count"] == 7, (start, limit)
    filtered = c.tenant.admin.jobs({"filter": [{"k": "status", "v": "SUCCESS", "o": "eq"}],
                                    "sort": [{"key": "job_id", "desc": True}], "page": {"start": 2, "limit": 2}})
    successes = sorted((j["job_id"] for j in c.jobs if j["status"] == "SUCCESS"), reverse=True)
    assert [j["job_id"] for j in filtered["results"]] == successes[1:3]
    assert filtered["total_count"] == 5


def test_list_only_count_only_keyword(corpus):
    c = corpus
    only = c.tenant.admin.jobs({"only": ["job_id", "status"]})
    assert only["total_count"] == 7 and len(only["results"]) == 7
    for job in only["results"]:
        assert set(job) <= {"job_id", "status"}, job
        assert job["status"] == c.by_id[job["job_id"]]["status"]
    counted = c.tenant.admin.jobs({"count_only": True})
    assert counted["total_count"] == 7 and counted["results"] == []
    counted = c.tenant.admin.jobs({"count_only": True, "filter": [{"k": "status", "v": "FAILURE", "o": "eq"}]})
    assert counted["total_count"] == 2 and counted["results"] == []
    target = c.sorted_ids[4]
    keyword = c.tenant.admin.jobs({"keyword": target})
    assert ids(keyword["results"]) == [target]


def test_list_rejects_bad_filters(corpus):
    admin = corpus.tenant.admin
    for flt in ({"k": "status", "v": "SUCCESS", "o": "no_such_operator"},
                {"k": "error_message", "v": "yes", "o": "exists"},
                {"k": "created_at", "v": "not a time", "o": "datetime_gt"},
                {"k": "created_at", "v": "yesterday-ish", "o": "timediff_lt"},
                {"k": "status", "v": "SUCCESS", "o": "in"}):
        expect_grpc_error(lambda: admin.jobs({"filter": [flt]}), INVALID)


def _stat_rows(out: dict) -> list:
    rows = []
    for row in out.get("results", []):
        rows.append({k: (int(v) if isinstance(v, float) and v.is_integer() else v) for k, v in row.items()})
    return rows


def group_count(key: str, sort_desc: bool = True) -> dict:
    return {"aggregate": [
        {"group": {"keys": [{"key": key, "name": key}], "fields": [{"operator": "count", "name": "count"}]}},
        {"sort": [{"key": "count", "desc": sort_desc}]},
    ]}


def test_stat_group_by_status(corpus):
    c = corpus
    out = c.tenant.admin.call("Job", "stat", {"query": group_count("status")})
    counts = collections.Counter(j["status"] for j in c.jobs)
    assert _stat_rows(out) == [{"status": "SUCCESS", "count": counts["SUCCESS"]},
                               {"status": "FAILURE", "count": counts["FAILURE"]}]
    ascending = c.tenant.admin.call("Job", "stat", {"query": group_count("status", sort_desc=False)})
    assert _stat_rows(ascending) == _stat_rows(out)[::-1]


def test_stat_with_filter_count_and_distinct(corpus):
    c = corpus
    query = group_count("plugin_id", sort_desc=False)
    query["filter"] = [{"k": "status", "v": "SUCCESS", "o": "eq"}]
    out = c.tenant.admin.call("Job", "stat", {"query": query})
    assert _stat_rows(out) == [{"plugin_id": c.p_beta, "count": 2}, {"plugin_id": c.p_alpha, "count": 3}]
    total = c.tenant.admin.call("Job", "stat", {"query": {"aggregate": [{"count": {"name": "total"}}]}})
    assert _stat_rows(total) == [{"total": 7}]
    distinct = c.tenant.admin.call("Job", "stat", {"query": {"distinct": "trusted_account_id"}})
    assert sorted(distinct["results"]) == sorted([c.ta1, c.ta2, c.ta3, c.ta4])


# --- delete --------------------------------------------------------------------------------------


def test_delete_removes_the_job(tenant, plugin_id):
    provider = tenant.create_provider(plugin_id, {"mode": "accounts",
                                                  "accounts": make_accounts(unique("del"), [["ws"]])})["provider"]
    ta = tenant.create_trusted_account(provider)
    keep = tenant.sync_and_wait(ta["trusted_account_id"])
    gone = tenant.sync_and_wait(ta["trusted_account_id"])
    tenant.admin.call("Job", "delete", {"job_id": gone["job_id"]})
    expect_grpc_error(lambda: tenant.admin.job(gone["job_id"]), NOT_FOUND, "ERROR_NOT_FOUND")
    assert ids(tenant.admin.jobs()["results"]) == [keep["job_id"]]
    expect_grpc_error(lambda: tenant.admin.call("Job", "delete", {"job_id": gone["job_id"]}), NOT_FOUND)


# --- workspaces, roles and domains ---------------------------------------------------------------


class Tenancy:
    pass


@pytest.fixture(scope="module")
def tenancy(cf_cli, cf_channel, cf_server, cf_forbidden, plugin) -> Tenancy:
    """One domain with two synced workspaces A and B, and one finished job at each level: the
    domain trusted account's job (workspace '*'), one in A (made by A's owner) and one in B (made
    by a DOMAIN_ADMIN token scoped to B)."""
    s = Tenancy()
    s.tenant = t = Tenant(cf_cli, cf_channel, cf_server.endpoint, cf_forbidden)
    s.plugin_id = unique("plugin-tenancy")
    cf_cli.register_plugin(s.plugin_id, plugin.endpoint)
    s.tag = tag = unique("tenancy")
    s.provider = t.create_provider(s.plugin_id, {
        "mode": "accounts", "accounts": make_accounts(tag, [["A", "top"], ["B", "top"]]),
    })["provider"]
    s.domain_ta = t.create_trusted_account(s.provider)["trusted_account_id"]
    s.job_domain = t.sync_and_wait(s.domain_ta)
    assert s.job_domain["status"] == "SUCCESS", s.job_domain
    workspaces = {w["name"]: w["workspace_id"] for w in t.admin.listing("Workspace")}
    s.ws_a, s.ws_b = workspaces[f"{tag} A"], workspaces[f"{tag} B"]
    s.owner_a = t.client("WORKSPACE_OWNER", s.ws_a)
    s.member_a = t.client("WORKSPACE_MEMBER", s.ws_a)
    s.admin_b = t.client("DOMAIN_ADMIN", s.ws_b)
    s.ws_accounts_a = make_accounts(tag + "-wa", [["g1", "g2"]])
    s.ta_a = t.create_trusted_account(s.provider, resource_group="WORKSPACE", client=s.owner_a,
                                      plugin_options={"accounts": s.ws_accounts_a})
    s.ta_b = t.create_trusted_account(s.provider, resource_group="WORKSPACE", client=s.admin_b,
                                      plugin_options={"accounts": make_accounts(tag + "-wb", [["g"]])})
    s.job_a = wait_job(t.admin, t.sync(s.ta_a["trusted_account_id"], client=s.owner_a)["job_id"])
    s.job_b = wait_job(t.admin, t.sync(s.ta_b["trusted_account_id"], client=s.admin_b)["job_id"])
    assert s.job_a["status"] == "SUCCESS" and s.job_b["status"] == "SUCCESS", (s.job_a, s.job_b)
    return s


def test_workspace_trusted_account_syncs_into_its_workspace(tenancy):
    s = tenancy
    assert s.ta_a["resource_group"] == "WORKSPACE" and s.ta_a["workspace_id"] == s.ws_a, s.ta_a
    assert s.ta_b["workspace_id"] == s.ws_b, s.ta_b
    assert s.job_a["resource_group"] == "WORKSPACE" and s.job_a["workspace_id"] == s.ws_a, s.job_a
    assert s.job_b["workspace_id"] == s.ws_b, s.job_b
    assert s.job_domain["workspace_id"] == "*" and s.job_domain["resource_group"] == "DOMAIN"
    account = s.ws_accounts_a[0]
    projects = [p for p in s.tenant.admin.listing("Project") if p.get("reference_id") == account["resource_id"]]
    assert len(projects) == 1 and projects[0]["workspace_id"] == s.ws_a, projects
    last = account["location"][-1]["resource_id"]
    group = s.tenant.admin.call("ProjectGroup", "get", {"project_group_id": projects[0]["project_group_id"]})
    assert group["reference_id"] == last and group["workspace_id"] == s.ws_a, group
    service_accounts = s.tenant.admin.listing("ServiceAccount", {"trusted_account_id": s.ta_a["trusted_account_id"]})
    assert len(service_accounts) == 1 and service_accounts[0]["project_id"] == projects[0]["project_id"]
    # No workspace is made from a WORKSPACE account's location.
    names = {w["name"] for w in s.tenant.admin.listing("Workspace")}
    assert names == {f"{s.tag} A", f"{s.tag} B"}, names


def test_member_sees_own_workspace_and_domain_jobs_only(tenancy):
    s = tenancy
    listed = s.member_a.jobs()
    seen = set(ids(listed["results"]))
    assert {s.job_domain["job_id"], s.job_a["job_id"]} <= seen, seen
    assert s.job_b["job_id"] not in seen
    assert all(j["workspace_id"] in (s.ws_a, "*") for j in listed["results"]), listed
    assert s.member_a.job(s.job_a["job_id"])["job_id"] == s.job_a["job_id"]
    assert s.member_a.job(s.job_domain["job_id"])["workspace_id"] == "*"
    expect_grpc_error(lambda: s.member_a.job(s.job_b["job_id"]), NOT_FOUND, "ERROR_NOT_FOUND")
    filtered = s.member_a.jobs(workspace_id=s.ws_b)
    assert s.job_b["job_id"] not in ids(filtered["results"])


def test_member_cannot_delete(tenancy):
    s = tenancy
    expect_grpc_error(lambda: s.member_a.call("Job", "delete", {"job_id": s.job_a["job_id"]}), DENIED)
    assert s.tenant.admin.job(s.job_a["job_id"])["job_id"] == s.job_a["job_id"]


def test_owner_deletes_only_own_workspace_jobs(tenancy):
    s = tenancy
    extra = wait_job(s.tenant.admin, s.tenant.sync(s.ta_a["trusted_account_id"], client=s.owner_a)["job_id"])
    assert extra["workspace_id"] == s.ws_a
    s.owner_a.call("Job", "delete", {"job_id": extra["job_id"]})
    expect_grpc_error(lambda: s.tenant.admin.job(extra["job_id"]), NOT_FOUND)
    for other in (s.job_b, s.job_domain):
        info = expect_grpc_error(lambda: s.owner_a.call("Job", "delete", {"job_id": other["job_id"]}),
                                 NOT_FOUND)
        assert other["job_id"] in info.details
        assert s.tenant.admin.job(other["job_id"])["job_id"] == other["job_id"]


def test_owner_stat_counts_own_workspace_only(tenancy):
    s = tenancy
    out = s.owner_a.call("Job", "stat", {"query": group_count("workspace_id")})
    rows = _stat_rows(out)
    in_a = s.tenant.admin.jobs(workspace_id=s.ws_a)["total_count"]
    assert rows == [{"workspace_id": s.ws_a, "count": in_a}], rows
    everything = _stat_rows(s.tenant.admin.call("Job", "stat", {"query": group_count("workspace_id")}))
    assert {r["workspace_id"] for r in everything} == {"*", s.ws_a, s.ws_b}, everything


def test_admin_lists_by_workspace(tenancy):
    s = tenancy
    assert s.job_a["job_id"] in ids(s.tenant.admin.jobs(workspace_id=s.ws_a)["results"])
    only_b = s.tenant.admin.jobs(workspace_id=s.ws_b)
    assert ids(only_b["results"]) == [s.job_b["job_id"]]
    assert ids(s.tenant.admin.jobs(workspace_id="*")["results"]) == [s.job_domain["job_id"]]


def test_workspace_roles_cannot_do_domain_things(tenancy):
    s = tenancy
    expect_grpc_error(lambda: s.tenant.create_provider(s.plugin_id, client=s.owner_a), DENIED)
    expect_grpc_error(lambda: s.tenant.create_trusted_account(s.provider, resource_group="DOMAIN",
                                                              client=s.owner_a), DENIED)
    expect_grpc_error(lambda: s.tenant.create_trusted_account(s.provider, resource_group="WORKSPACE",
                                                              client=s.member_a), DENIED)


def test_other_domain_sees_nothing(tenancy, new_tenant):
    s = tenancy
    other = new_tenant()
    assert other.admin.jobs() == {"results": [], "total_count": 0}
    assert other.admin.jobs(workspace_id=s.ws_a)["total_count"] == 0
    for job in (s.job_domain, s.job_a, s.job_b):
        expect_grpc_error(lambda: other.admin.job(job["job_id"]), NOT_FOUND)
        expect_grpc_error(lambda: other.admin.call("Job", "delete", {"job_id": job["job_id"]}), NOT_FOUND)
    assert _stat_rows(other.admin.call("Job", "stat", {"query": group_count("status")})) == []
    expect_grpc_error(lambda: other.admin.call("TrustedAccount", "get",
                                               {"trusted_account_id": s.domain_ta}), NOT_FOUND)
    expect_grpc_error(lambda: other.admin.call("TrustedAccount", "sync",
                                               {"trusted_account_id": s.domain_ta}), NOT_FOUND)
    for service in ("Workspace", "Project", "ProjectGroup", "ServiceAccount", "TrustedAccount"):
        assert other.admin.listing(service) == [], service
    assert s.provider not in {p["provider"] for p in other.admin.listing("Provider")}
    # A token of the other domain naming this domain's workspace still sees nothing of it: the
    # server may refuse the token's workspace outright, or answer within the other domain.
    crossed = other.client("WORKSPACE_OWNER", s.ws_a)
    try:
        assert crossed.jobs()["total_count"] == 0
    except grpc.RpcError as err:
        assert err.code() in (NOT_FOUND, DENIED, UNAUTHENTICATED), err
    for job in (s.job_domain, s.job_a):
        try:
            result = crossed.job(job["job_id"])
        except grpc.RpcError as err:
            assert err.code() in (NOT_FOUND, DENIED, UNAUTHENTICATED), err
        else:
            raise AssertionError(f"another domain's token read {result}")
