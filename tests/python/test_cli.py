"""The stock aws CLI (v1) against Sluice: JSON output on success, non-zero exit and the AWS error
code on stderr on failure."""

from __future__ import annotations

import json

from sluice_testlib import ACCOUNT_ID, REGION, ROLE_ARN, custom_action, manual_approval, s3_source, unique


def ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result


def test_cli_round_trip(aws_cli, tmp_path):
    provider = unique("CliBuild")
    created = ok(aws_cli(
        "codepipeline", "create-custom-action-type",
        "--category", "Build",
        "--provider", provider,
        "--action-version", "1",
        "--input-artifact-details", "minimumCount=1,maximumCount=1",
        "--output-artifact-details", "minimumCount=0,maximumCount=1",
        "--configuration-properties",
        json.dumps([
            {"name": "Target", "required": True, "key": True, "secret": False, "queryable": True},
            {"name": "Password", "required": False, "key": False, "secret": True},
        ]),
    )).json()
    assert created["actionType"]["id"] == {"category": "Build", "owner": "Custom", "provider": provider, "version": "1"}

    listed = ok(aws_cli("codepipeline", "list-action-types", "--action-owner-filter", "Custom")).json()
    assert provider in {t["id"]["provider"] for t in listed["actionTypes"]}

    name = unique("cli")
    declaration = {
        "name": name,
        "roleArn": ROLE_ARN,
        "artifactStore": {"type": "S3", "location": "sluice-artifacts"},
        "stages": [
            {"name": "Source", "actions": [s3_source()]},
            {"name": "Approve", "actions": [manual_approval()]},
            {"name": "Build", "actions": [
                custom_action(provider, "Make", ["SourceOut"], {"Target": "all", "Password": "cli-secret-value"}),
            ]},
        ],
    }
    input_file = tmp_path / "create.json"
    input_file.write_text(json.dumps({"pipeline": declaration, "tags": [{"key": "via", "value": "cli"}]}))
    created = ok(aws_cli("codepipeline", "create-pipeline", "--cli-input-json", f"file://{input_file}"))
    assert created.json()["pipeline"]["version"] == 1
    assert "cli-secret-value" not in created.stdout

    got = ok(aws_cli("codepipeline", "get-pipeline", "--name", name))
    document = got.json()
    assert document["pipeline"]["name"] == name
    assert document["metadata"]["pipelineArn"] == f"arn:aws:codepipeline:{REGION}:{ACCOUNT_ID}:{name}"
    build = document["pipeline"]["stages"][2]["actions"][0]
    assert build["configuration"] == {"Target": "all", "Password": "****"}
    assert "cli-secret-value" not in got.stdout

    # Second pipeline from a bare declaration file, then an update from a file.
    other = unique("cli-file")
    pipeline_file = tmp_path / "pipeline.json"
    plain = dict(declaration, name=other)
    pipeline_file.write_text(json.dumps(plain))
    ok(aws_cli("codepipeline", "create-pipeline", "--pipeline", f"file://{pipeline_file}"))
    plain["stages"][1]["actions"][0]["configuration"]["CustomData"] = "second"
    pipeline_file.write_text(json.dumps(plain))
    updated = ok(aws_cli("codepipeline", "update-pipeline", "--pipeline", f"file://{pipeline_file}")).json()
    assert updated["pipeline"]["version"] == 2

    names = {p["name"] for p in ok(aws_cli("codepipeline", "list-pipelines")).json()["pipelines"]}
    assert {name, other} <= names

    tags = ok(aws_cli(
        "codepipeline", "list-tags-for-resource",
        "--resource-arn", f"arn:aws:codepipeline:{REGION}:{ACCOUNT_ID}:{name}",
    )).json()
    assert tags["tags"] == [{"key": "via", "value": "cli"}]

    deleted = ok(aws_cli("codepipeline", "delete-pipeline", "--name", name))
    assert deleted.stdout.strip() == ""
    names = {p["name"] for p in ok(aws_cli("codepipeline", "list-pipelines")).json()["pipelines"]}
    assert name not in names and other in names

    missing = aws_cli("codepipeline", "get-pipeline", "--name", name)
    assert missing.returncode != 0
    assert "PipelineNotFoundException" in missing.stderr, missing.stderr
    assert missing.stdout.strip() == ""


def test_cli_reports_validation_errors(aws_cli, tmp_path):
    declaration = {
        "name": unique("cli-bad"),
        "roleArn": ROLE_ARN,
        "artifactStore": {"type": "S3", "location": "sluice-artifacts"},
        "stages": [{"name": "Source", "actions": [s3_source()]}],
    }
    pipeline_file = tmp_path / "bad.json"
    pipeline_file.write_text(json.dumps(declaration))
    result = aws_cli("codepipeline", "create-pipeline", "--pipeline", f"file://{pipeline_file}")
    assert result.returncode != 0
    assert "InvalidStructureException" in result.stderr, result.stderr


def test_cli_with_wrong_credentials(aws_cli):
    result = aws_cli("codepipeline", "list-pipelines", access_key="AKIANOTAREALKEY00000", secret_key="W" * 40)
    assert result.returncode != 0
    assert "UnrecognizedClientException" in result.stderr, result.stderr
    result = aws_cli("codepipeline", "list-pipelines", secret_key="W" * 40)
    assert result.returncode != 0
    assert "InvalidSignatureException" in result.stderr, result.stderr
