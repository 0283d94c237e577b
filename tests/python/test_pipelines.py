"""Pipeline declarations with boto3: create, get (versions, metadata, secret masking), update,
list, delete, and the not-found / name-in-use errors."""

from __future__ import annotations

import datetime

import pytest
from botocore.exceptions import ClientError

from sluice_testlib import (
    ACCOUNT_ID,
    REGION,
    ROLE_ARN,
    custom_action,
    deep_copy,
    manual_approval,
    s3_source,
    stored_bytes,
    two_stage_pipeline,
    unique,
)

SECRET = "hunter2-Sluice-plain-secret-7f3a"
MASK = "****"


def error_of(excinfo) -> tuple[int, str]:
    response = excinfo.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def create_build_type(cp) -> str:
    """A custom Build type taking one input, with a queryable and a secret property."""
    provider = unique("Builder")
    cp.create_custom_action_type(
        category="Build",
        provider=provider,
        version="1",
        configurationProperties=[
            {"name": "Target", "required": True, "key": True, "secret": False, "queryable": True},
            {"name": "ApiToken", "required": True, "key": False, "secret": True},
        ],
        inputArtifactDetails={"minimumCount": 1, "maximumCount": 1},
        outputArtifactDetails={"minimumCount": 0, "maximumCount": 1},
    )
    return provider


def three_stage(name: str, provider: str, secret: str = SECRET, custom_data: str = "v1") -> dict:
    return {
        "name": name,
        "roleArn": ROLE_ARN,
        "artifactStore": {"type": "S3", "location": "sluice-artifacts"},
        "stages": [
            {"name": "Source", "actions": [s3_source("Fetch", "SourceOut")]},
            {"name": "Approve", "actions": [manual_approval("Gate", custom_data)]},
            {"name": "Build", "actions": [
                custom_action(provider, "Make", ["SourceOut"], {"Target": "all", "ApiToken": secret}),
            ]},
        ],
    }


def actions_by_name(declaration: dict) -> dict:
    return {a["name"]: a for stage in declaration["stages"] for a in stage["actions"]}


def assert_recent(moment) -> None:
    assert isinstance(moment, datetime.datetime), moment
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - moment).total_seconds()) < 300, (moment, now)


def test_three_stage_pipeline_round_trip(cp, raw_responses, server):
    provider = create_build_type(cp)
    name = unique("pipe")

    created = cp.create_pipeline(pipeline=three_stage(name, provider))["pipeline"]
    assert created["name"] == name
    assert created["version"] == 1
    assert [s["name"] for s in created["stages"]] == ["Source", "Approve", "Build"]
    assert actions_by_name(created)["Make"]["configuration"]["ApiToken"] == MASK

    got = cp.get_pipeline(name=name)
    declaration = got["pipeline"]
    assert declaration["version"] == 1
    assert declaration["roleArn"] == ROLE_ARN
    assert declaration["artifactStore"] == {"type": "S3", "location": "sluice-artifacts"}
    actions = actions_by_name(declaration)
    assert {a["runOrder"] for a in actions.values()} == {1}, "runOrder defaults to 1 in the stored declaration"
    assert actions["Fetch"]["outputArtifacts"] == [{"name": "SourceOut"}]
    assert actions["Make"]["inputArtifacts"] == [{"name": "SourceOut"}]
    assert actions["Make"]["actionTypeId"] == {"category": "Build", "owner": "Custom", "provider": provider, "version": "1"}
    assert actions["Make"]["configuration"] == {"Target": "all", "ApiToken": MASK}
    assert actions["Gate"]["configuration"] == {"CustomData": "v1"}
    metadata = got["metadata"]
    assert metadata["pipelineArn"] == f"arn:aws:codepipeline:{REGION}:{ACCOUNT_ID}:{name}"
    assert_recent(metadata["created"])
    assert_recent(metadata["updated"])

    # Update from what get returned: the mask goes back and must keep the stored secret.
    edited = deep_copy(declaration)
    actions_by_name(edited)["Gate"]["configuration"]["CustomData"] = "v2"
    updated = cp.update_pipeline(pipeline=edited)["pipeline"]
    assert updated["version"] == 2
    assert actions_by_name(updated)["Gate"]["configuration"]["CustomData"] == "v2"
    assert actions_by_name(updated)["Make"]["configuration"]["ApiToken"] == MASK

    latest = cp.get_pipeline(name=name)
    assert latest["pipeline"]["version"] == 2
    assert actions_by_name(latest["pipeline"])["Gate"]["configuration"]["CustomData"] == "v2"
    assert actions_by_name(latest["pipeline"])["Make"]["configuration"]["ApiToken"] == MASK
    assert latest["metadata"]["updated"] >= latest["metadata"]["created"]

    first = cp.get_pipeline(name=name, version=1)["pipeline"]
    assert first["version"] == 1
    assert actions_by_name(first)["Gate"]["configuration"]["CustomData"] == "v1"
    assert actions_by_name(first)["Make"]["configuration"]["ApiToken"] == MASK

    summaries = {p["name"]: p for p in cp.list_pipelines()["pipelines"]}
    assert name in summaries
    assert summaries[name]["version"] == 2
    assert_recent(summaries[name]["created"])

    # A third version with a new secret value: still only the mask comes back.
    third = three_stage(name, provider, secret=SECRET + "-rotated", custom_data="v3")
    assert cp.update_pipeline(pipeline=third)["pipeline"]["version"] == 3
    assert actions_by_name(cp.get_pipeline(name=name)["pipeline"])["Make"]["configuration"]["ApiToken"] == MASK

    for body in raw_responses:
        assert SECRET.encode() not in body, body[:300]
    assert len(raw_responses) >= 8
    # Encrypted at rest, and never logged.
    on_disk = stored_bytes(server.data_dir)
    assert SECRET.encode() not in on_disk, "a secret configuration value is stored in plain text"
    assert (SECRET + "-rotated").encode() not in on_disk
    assert SECRET not in server.stderr() + server.stdout()

    with pytest.raises(ClientError) as excinfo:
        cp.get_pipeline(name=name, version=99)
    assert error_of(excinfo) == (400, "PipelineVersionNotFoundException")

    cp.delete_pipeline(name=name)
    with pytest.raises(ClientError) as excinfo:
        cp.get_pipeline(name=name)
    assert error_of(excinfo) == (400, "PipelineNotFoundException")
    with pytest.raises(ClientError) as excinfo:
        cp.get_pipeline(name=name, version=1)
    assert error_of(excinfo) == (400, "PipelineNotFoundException")
    assert name not in {p["name"] for p in cp.list_pipelines()["pipelines"]}


def test_defaults_are_reported(cp):
    name = unique("a.b@c_d-defaults")
    declaration = two_stage_pipeline(name)
    declaration["version"] = 7  # ignored: a new pipeline is always version 1
    created = cp.create_pipeline(pipeline=declaration)["pipeline"]
    assert created["version"] == 1
    got = cp.get_pipeline(name=name)
    assert got["pipeline"]["version"] == 1
    assert got["metadata"]["pipelineArn"] == f"arn:aws:codepipeline:{REGION}:{ACCOUNT_ID}:{name}"
    assert created.get("pipelineType", "V1") == "V1"
    assert created.get("executionMode", "SUPERSEDED") == "SUPERSEDED"
    summary = next(p for p in cp.list_pipelines()["pipelines"] if p["name"] == name)
    assert summary["version"] == 1
    assert summary.get("pipelineType", "V1") == "V1"
    assert summary.get("executionMode", "SUPERSEDED") == "SUPERSEDED"


def test_v2_pipeline_with_queued_mode(cp):
    name = unique("v2")
    declaration = two_stage_pipeline(name)
    declaration.update(pipelineType="V2", executionMode="QUEUED")
    created = cp.create_pipeline(pipeline=declaration)["pipeline"]
    assert (created["pipelineType"], created["executionMode"]) == ("V2", "QUEUED")
    summary = next(p for p in cp.list_pipelines()["pipelines"] if p["name"] == name)
    assert (summary["pipelineType"], summary["executionMode"]) == ("V2", "QUEUED")


def test_duplicate_name_is_refused(cp):
    name = unique("dup")
    cp.create_pipeline(pipeline=two_stage_pipeline(name))
    with pytest.raises(ClientError) as excinfo:
        cp.create_pipeline(pipeline=two_stage_pipeline(name))
    assert error_of(excinfo) == (400, "PipelineNameInUseException")
    assert cp.get_pipeline(name=name)["pipeline"]["version"] == 1


def test_missing_pipeline(cp):
    name = unique("ghost")
    with pytest.raises(ClientError) as excinfo:
        cp.get_pipeline(name=name)
    assert error_of(excinfo) == (400, "PipelineNotFoundException")
    with pytest.raises(ClientError) as excinfo:
        cp.get_pipeline(name=name, version=3)
    assert error_of(excinfo) == (400, "PipelineNotFoundException")
    # Updating a pipeline that does not exist is refused (the model lists no not-found code).
    with pytest.raises(ClientError) as excinfo:
        cp.update_pipeline(pipeline=two_stage_pipeline(name))
    status, _ = error_of(excinfo)
    assert 400 <= status < 500
    # DeletePipeline models no not-found error: deleting an absent pipeline succeeds.
    cp.delete_pipeline(name=name)


def test_invalid_update_keeps_the_current_version(cp):
    name = unique("keep")
    cp.create_pipeline(pipeline=two_stage_pipeline(name))
    broken = two_stage_pipeline(name)
    broken["stages"] = broken["stages"][:1]
    with pytest.raises(ClientError) as excinfo:
        cp.update_pipeline(pipeline=broken)
    assert error_of(excinfo) == (400, "InvalidStructureException")
    current = cp.get_pipeline(name=name)["pipeline"]
    assert current["version"] == 1
    assert len(current["stages"]) == 2


def test_absent_optional_secret_is_not_invented(cp):
    provider = unique("OptSecret")
    cp.create_custom_action_type(
        category="Deploy",
        provider=provider,
        version="1",
        configurationProperties=[
            {"name": "Where", "required": True, "key": True, "secret": False},
            {"name": "Token", "required": False, "key": False, "secret": True},
        ],
        inputArtifactDetails={"minimumCount": 0, "maximumCount": 1},
        outputArtifactDetails={"minimumCount": 0, "maximumCount": 0},
    )
    name = unique("optsecret")
    declaration = two_stage_pipeline(name)
    declaration["stages"].append({"name": "Deploy", "actions": [
        custom_action(provider, "Ship", [], {"Where": "prod"}, category="Deploy"),
    ]})
    cp.create_pipeline(pipeline=declaration)
    ship = actions_by_name(cp.get_pipeline(name=name)["pipeline"])["Ship"]
    assert ship["configuration"] == {"Where": "prod"}


def test_pipeline_outlives_a_deleted_action_type(cp):
    provider = create_build_type(cp)
    name = unique("orphan")
    cp.create_pipeline(pipeline=three_stage(name, provider))
    cp.delete_custom_action_type(category="Build", provider=provider, version="1")
    got = cp.get_pipeline(name=name)["pipeline"]
    assert got["version"] == 1
    assert actions_by_name(got)["Make"]["configuration"] == {"Target": "all", "ApiToken": MASK}
    assert name in {p["name"] for p in cp.list_pipelines()["pipelines"]}
    # The type is gone, so the same declaration no longer validates.
    with pytest.raises(ClientError) as excinfo:
        cp.update_pipeline(pipeline=three_stage(name, provider))
    status, _ = error_of(excinfo)
    assert status == 400
