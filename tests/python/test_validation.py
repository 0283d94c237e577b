"""Declaration rules: each broken pipeline is refused with HTTP 400 and the AWS error code, and
nothing is stored."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from sluice_testlib import ROLE_ARN, custom_action, manual_approval, s3_source, unique


@pytest.fixture(scope="module")
def build_provider(cp) -> str:
    """A custom Build type: exactly one input, at most one output, one required property."""
    provider = unique("Check")
    cp.create_custom_action_type(
        category="Build",
        provider=provider,
        version="1",
        configurationProperties=[
            {"name": "Target", "required": True, "key": True, "secret": False},
        ],
        inputArtifactDetails={"minimumCount": 1, "maximumCount": 1},
        outputArtifactDetails={"minimumCount": 0, "maximumCount": 1},
    )
    return provider


def build(provider: str, name: str = "Make", inputs=("SourceOut",), outputs=(), **config) -> dict:
    action = custom_action(provider, name, inputs, config or {"Target": "all"})
    if outputs:
        action["outputArtifacts"] = [{"name": o} for o in outputs]
    return action


def stage(name: str, *actions: dict) -> dict:
    return {"name": name, "actions": list(actions)}


def pipeline(name: str, *stages: dict, **extra) -> dict:
    declaration = {
        "name": name,
        "roleArn": ROLE_ARN,
        "artifactStore": {"type": "S3", "location": "sluice-artifacts"},
        "stages": list(stages),
    }
    declaration.update(extra)
    return declaration


def without(action: dict, key: str) -> dict:
    action = dict(action)
    action["configuration"] = {k: v for k, v in action["configuration"].items() if k != key}
    return action


def with_run_order(action: dict, order: int) -> dict:
    return dict(action, runOrder=order)


# Each case: (id, builder(name, provider) -> declaration, expected code).
STRUCTURE = "InvalidStructureException"
ACTION = "InvalidActionDeclarationException"
VALIDATION = "ValidationException"

CASES = [
    ("one-stage", lambda n, p: pipeline(n, stage("Source", s3_source())), STRUCTURE),
    ("source-outside-first-stage", lambda n, p: pipeline(
        n,
        stage("Source", s3_source()),
        stage("Build", build(p), s3_source("Again", "OtherOut")),
    ), STRUCTURE),
    ("non-source-in-first-stage", lambda n, p: pipeline(
        n,
        stage("Source", s3_source(), manual_approval()),
        stage("Build", build(p)),
    ), STRUCTURE),
    ("first-stage-without-source", lambda n, p: pipeline(
        n,
        stage("Approve", manual_approval()),
        stage("Approve2", manual_approval()),
    ), STRUCTURE),
    ("duplicate-stage-names", lambda n, p: pipeline(
        n,
        stage("Source", s3_source()),
        stage("Twice", manual_approval()),
        stage("Twice", build(p)),
    ), STRUCTURE),
    ("duplicate-action-names", lambda n, p: pipeline(
        n,
        stage("Source", s3_source()),
        stage("Approve", manual_approval("Same"), manual_approval("Same")),
    ), STRUCTURE),
    ("input-never-produced", lambda n, p: pipeline(
        n,
        stage("Source", s3_source()),
        stage("Build", build(p, inputs=["Nowhere"])),
    ), STRUCTURE),
    ("input-produced-by-a-later-stage", lambda n, p: pipeline(
        n,
        stage("Source", s3_source()),
        stage("Build", build(p, "First", inputs=["Later"])),
        stage("Late", build(p, "Second", inputs=["SourceOut"], outputs=["Later"])),
    ), STRUCTURE),
    ("input-produced-in-parallel", lambda n, p: pipeline(
        n,
        stage("Source", s3_source()),
        stage("Build",
              build(p, "Producer", inputs=["SourceOut"], outputs=["Bin"]),
              build(p, "Consumer", inputs=["Bin"])),
    ), STRUCTURE),
    # Action-level rules: AWS answers these with InvalidActionDeclarationException, e.g.
    # "Action X declares 0 input artifacts which is less than the minimum count (1)" and
    # "ActionType (Category: ..., Owner: 'Custom', ...) in action 'X' is not available".
    ("too-few-input-artifacts", lambda n, p: pipeline(
        n,
        stage("Source", s3_source()),
        stage("Build", build(p, inputs=[])),
    ), ACTION),
    ("too-many-input-artifacts", lambda n, p: pipeline(
        n,
        stage("Source", s3_source("A", "One"), s3_source("B", "Two")),
        stage("Build", build(p, inputs=["One", "Two"])),
    ), ACTION),
    ("source-without-output-artifact", lambda n, p: pipeline(
        n,
        stage("Source", s3_source(output=None)),
        stage("Approve", manual_approval()),
    ), ACTION),
    ("unknown-action-type", lambda n, p: pipeline(
        n,
        stage("Source", s3_source()),
        stage("Build", custom_action(unique("Missing"), "Make", ["SourceOut"], {"Target": "x"})),
    ), ACTION),
    ("missing-required-configuration", lambda n, p: pipeline(
        n,
        stage("Source", without(s3_source(), "S3Bucket")),
        stage("Approve", manual_approval()),
    ), ACTION),
    ("missing-required-custom-configuration", lambda n, p: pipeline(
        n,
        stage("Source", s3_source()),
        stage("Build", without(build(p), "Target")),
    ), ACTION),
    # Model constraints.
    ("bad-pipeline-name", lambda n, p: pipeline(
        "bad name!",
        stage("Source", s3_source()),
        stage("Approve", manual_approval()),
    ), VALIDATION),
    ("pipeline-name-too-long", lambda n, p: pipeline(
        "x" * 101,
        stage("Source", s3_source()),
        stage("Approve", manual_approval()),
    ), VALIDATION),
    ("bad-stage-name", lambda n, p: pipeline(
        n,
        stage("Source", s3_source()),
        stage("has spaces", manual_approval()),
    ), VALIDATION),
    ("bad-role-arn", lambda n, p: dict(pipeline(
        n,
        stage("Source", s3_source()),
        stage("Approve", manual_approval()),
    ), roleArn="not-an-arn"), VALIDATION),
    ("unknown-category", lambda n, p: pipeline(
        n,
        stage("Source", s3_source()),
        stage("Paint", {
            "name": "Brush",
            "actionTypeId": {"category": "Painting", "owner": "Custom", "provider": p, "version": "1"},
        }),
    ), VALIDATION),
    ("queued-on-v1", lambda n, p: pipeline(
        n,
        stage("Source", s3_source()),
        stage("Approve", manual_approval()),
        pipelineType="V1",
        executionMode="QUEUED",
    ), VALIDATION),
    ("parallel-on-default-type", lambda n, p: pipeline(
        n,
        stage("Source", s3_source()),
        stage("Approve", manual_approval()),
        executionMode="PARALLEL",
    ), VALIDATION),
]


@pytest.mark.parametrize("build_declaration, expected", [pytest.param(b, e, id=i) for i, b, e in CASES])
def test_invalid_declaration_is_refused(cp, build_provider, build_declaration, expected):
    name = unique("invalid")
    declaration = build_declaration(name, build_provider)
    with pytest.raises(ClientError) as excinfo:
        cp.create_pipeline(pipeline=declaration)
    response = excinfo.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["Error"]["Code"] == expected, response["Error"]
    assert response["Error"]["Message"], "the error should say what is wrong"
    with pytest.raises(ClientError) as excinfo:
        cp.get_pipeline(name=declaration["name"])
    assert excinfo.value.response["Error"]["Code"] in ("PipelineNotFoundException", "ValidationException")


def test_valid_run_orders_within_a_stage(cp, build_provider):
    """The same stage may consume an artifact made by an action with a lower runOrder."""
    name = unique("ordered")
    declaration = pipeline(
        name,
        stage("Source", s3_source()),
        stage("Build",
              build(build_provider, "Producer", inputs=["SourceOut"], outputs=["Bin"]),
              with_run_order(build(build_provider, "Consumer", inputs=["Bin"]), 2)),
    )
    created = cp.create_pipeline(pipeline=declaration)["pipeline"]
    orders = {a["name"]: a["runOrder"] for s in created["stages"] for a in s["actions"]}
    assert orders == {"Fetch": 1, "Producer": 1, "Consumer": 2}
