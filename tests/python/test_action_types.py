"""Custom action types with boto3: create, list (with owner filter), get, delete."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from sluice_testlib import unique


def error_of(excinfo) -> tuple[int, str]:
    response = excinfo.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def type_key(action_type: dict) -> tuple:
    i = action_type["id"]
    return (i["category"], i["owner"], i["provider"], i["version"])


def all_action_types(cp, **kwargs) -> list[dict]:
    found, token = [], None
    for _ in range(50):
        page = cp.list_action_types(**kwargs, **({"nextToken": token} if token else {}))
        found.extend(page["actionTypes"])
        token = page.get("nextToken")
        if not token:
            return found
    raise AssertionError("ListActionTypes never stopped paging")


def test_custom_action_types_lifecycle(cp):
    deploy_provider = unique("Ship")
    build_provider = unique("Make")

    created = cp.create_custom_action_type(
        category="Deploy",
        provider=deploy_provider,
        version="1",
        settings={"entityUrlTemplate": "https://ci.example/{Config:Target}"},
        configurationProperties=[
            {"name": "Target", "required": True, "key": True, "secret": False, "queryable": True,
             "description": "what to deploy", "type": "String"},
            {"name": "Password", "required": True, "key": False, "secret": True},
        ],
        inputArtifactDetails={"minimumCount": 0, "maximumCount": 1},
        outputArtifactDetails={"minimumCount": 0, "maximumCount": 0},
        tags=[{"key": "team", "value": "core"}],
    )
    declared = created["actionType"]
    assert type_key(declared) == ("Deploy", "Custom", deploy_provider, "1")
    assert declared["inputArtifactDetails"] == {"minimumCount": 0, "maximumCount": 1}
    assert declared["settings"]["entityUrlTemplate"] == "https://ci.example/{Config:Target}"
    properties = {p["name"]: p for p in declared["actionConfigurationProperties"]}
    assert properties["Target"]["queryable"] is True and properties["Target"]["key"] is True
    assert properties["Password"]["secret"] is True and properties["Password"]["required"] is True
    assert created["tags"] == [{"key": "team", "value": "core"}]

    cp.create_custom_action_type(
        category="Build",
        provider=build_provider,
        version="1",
        inputArtifactDetails={"minimumCount": 1, "maximumCount": 1},
        outputArtifactDetails={"minimumCount": 0, "maximumCount": 1},
    )

    everything = {type_key(t): t for t in all_action_types(cp)}
    assert ("Approval", "AWS", "Manual", "1") in everything
    assert ("Source", "AWS", "S3", "1") in everything
    assert ("Deploy", "Custom", deploy_provider, "1") in everything
    assert ("Build", "Custom", build_provider, "1") in everything
    listed = {p["name"]: p for p in everything[("Deploy", "Custom", deploy_provider, "1")]["actionConfigurationProperties"]}
    assert listed["Password"]["secret"] is True
    assert listed["Target"]["queryable"] is True
    s3 = everything[("Source", "AWS", "S3", "1")]
    assert s3["outputArtifactDetails"] == {"minimumCount": 1, "maximumCount": 1}

    custom_only = all_action_types(cp, actionOwnerFilter="Custom")
    assert {t["id"]["owner"] for t in custom_only} == {"Custom"}
    custom_keys = {type_key(t) for t in custom_only}
    assert ("Deploy", "Custom", deploy_provider, "1") in custom_keys
    assert ("Build", "Custom", build_provider, "1") in custom_keys

    aws_only = all_action_types(cp, actionOwnerFilter="AWS")
    assert {type_key(t) for t in aws_only} >= {("Approval", "AWS", "Manual", "1"), ("Source", "AWS", "S3", "1")}
    assert {t["id"]["owner"] for t in aws_only} == {"AWS"}

    cp.delete_custom_action_type(category="Deploy", provider=deploy_provider, version="1")
    remaining = {type_key(t) for t in all_action_types(cp)}
    assert ("Deploy", "Custom", deploy_provider, "1") not in remaining
    assert ("Build", "Custom", build_provider, "1") in remaining

    # A deleted id cannot be declared again (AWS: use a version never used before).
    with pytest.raises(ClientError) as excinfo:
        cp.create_custom_action_type(
            category="Deploy",
            provider=deploy_provider,
            version="1",
            inputArtifactDetails={"minimumCount": 0, "maximumCount": 1},
            outputArtifactDetails={"minimumCount": 0, "maximumCount": 0},
        )
    status, _ = error_of(excinfo)
    assert 400 <= status < 500
    # ... but a new version of it can.
    cp.create_custom_action_type(
        category="Deploy",
        provider=deploy_provider,
        version="2",
        inputArtifactDetails={"minimumCount": 0, "maximumCount": 1},
        outputArtifactDetails={"minimumCount": 0, "maximumCount": 0},
    )
    assert ("Deploy", "Custom", deploy_provider, "2") in {type_key(t) for t in all_action_types(cp, actionOwnerFilter="Custom")}


def test_declaring_a_live_action_type_twice_is_refused(cp):
    provider = unique("Twice")
    args = dict(
        category="Test",
        provider=provider,
        version="1",
        inputArtifactDetails={"minimumCount": 0, "maximumCount": 1},
        outputArtifactDetails={"minimumCount": 0, "maximumCount": 0},
    )
    cp.create_custom_action_type(**args)
    with pytest.raises(ClientError) as excinfo:
        cp.create_custom_action_type(**args)
    status, _ = error_of(excinfo)
    assert 400 <= status < 500


def test_get_action_type(cp):
    found = cp.get_action_type(category="Approval", owner="AWS", provider="Manual", version="1")["actionType"]
    assert found["id"] == {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}
    assert found["inputArtifactDetails"] == {"minimumCount": 0, "maximumCount": 0}
    assert found["outputArtifactDetails"] == {"minimumCount": 0, "maximumCount": 0}
    assert "executor" in found and found["executor"]["type"] in ("JobWorker", "Lambda")
    names = {p["name"] for p in found.get("properties", [])}
    assert "CustomData" in names

    # GetActionType's owner is modelled as the pattern AWS|ThirdParty: Custom is refused.
    with pytest.raises(ClientError) as excinfo:
        cp.get_action_type(category="Build", owner="Custom", provider="Whatever", version="1")
    assert error_of(excinfo) == (400, "ValidationException")

    with pytest.raises(ClientError) as excinfo:
        cp.get_action_type(category="Build", owner="AWS", provider="NoSuchProvider", version="1")
    assert error_of(excinfo) == (400, "ActionTypeNotFoundException")


def test_delete_of_an_absent_custom_action_type_succeeds(cp):
    # DeleteCustomActionType models no not-found error.
    cp.delete_custom_action_type(category="Build", provider=unique("Never"), version="1")


@pytest.mark.parametrize(
    "properties, input_details",
    [
        pytest.param(
            [{"name": "Q", "required": False, "key": False, "secret": False, "queryable": True}],
            {"minimumCount": 0, "maximumCount": 1},
            id="queryable-but-optional",
        ),
        pytest.param(
            [{"name": "Q", "required": True, "key": False, "secret": True, "queryable": True}],
            {"minimumCount": 0, "maximumCount": 1},
            id="queryable-and-secret",
        ),
        pytest.param(
            [{"name": "A", "required": True, "key": False, "secret": False, "queryable": True},
             {"name": "B", "required": True, "key": False, "secret": False, "queryable": True}],
            {"minimumCount": 0, "maximumCount": 1},
            id="two-queryable",
        ),
        pytest.param([], {"minimumCount": 3, "maximumCount": 1}, id="min-above-max"),
        pytest.param([], {"minimumCount": 0, "maximumCount": 9}, id="max-above-5"),
    ],
)
def test_invalid_custom_action_type_declarations(cp, properties, input_details):
    with pytest.raises(ClientError) as excinfo:
        cp.create_custom_action_type(
            category="Build",
            provider=unique("Bad"),
            version="1",
            configurationProperties=properties,
            inputArtifactDetails=input_details,
            outputArtifactDetails={"minimumCount": 0, "maximumCount": 0},
        )
    assert error_of(excinfo) == (400, "ValidationException")
