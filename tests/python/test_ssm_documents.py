"""SSM Automation documents through boto3's `ssm` client: create, get (JSON and YAML),
describe, list with paging and filters, update, default version, delete, and the error codes."""

from __future__ import annotations

import hashlib
import json

import boto3
import pytest
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError

from sluice_testlib import (
    ACCOUNT_ID,
    REGION,
    ROOT_ACCESS_KEY_ID,
    ROOT_SECRET_ACCESS_KEY,
    assert_aws_error,
    signed_post,
    unique,
)


@pytest.fixture(scope="session")
def ssm(endpoint):
    """boto3 SSM client signed with the root keys; one attempt per call."""
    session = boto3.session.Session(
        aws_access_key_id=ROOT_ACCESS_KEY_ID,
        aws_secret_access_key=ROOT_SECRET_ACCESS_KEY,
        region_name=REGION,
    )
    config = Config(
        retries={"max_attempts": 1, "total_max_attempts": 1, "mode": "standard"},
        connect_timeout=5,
        read_timeout=30,
    )
    return session.client("ssm", endpoint_url=endpoint, config=config)


def runbook(message: str = "hello", description: str | None = "Waits a moment") -> dict:
    document = {
        "schemaVersion": "0.3",
        "parameters": {
            "Message": {"type": "String", "description": "What to say", "default": message},
            "Targets": {"type": "StringList", "default": ["a", "b"]},
        },
        "mainSteps": [
            {"name": "Wait", "action": "aws:sleep", "inputs": {"Duration": "PT1S"}},
        ],
    }
    if description is not None:
        document["description"] = description
    return document


def content(message: str = "hello", **kwargs) -> str:
    return json.dumps(runbook(message, **kwargs))


def error_of(excinfo) -> tuple[int, str, str]:
    response = excinfo.value.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"].get("Message", ""),
    )


def create(ssm, name: str, text: str | None = None, **kwargs) -> dict:
    return ssm.create_document(
        Content=text or content(), Name=name, DocumentType="Automation", **kwargs
    )["DocumentDescription"]


def test_create_returns_the_description(ssm):
    name = unique("doc")
    text = content()
    description = create(ssm, name, text, Tags=[{"Key": "team", "Value": "ops"}])
    assert description["Name"] == name
    assert description["DocumentVersion"] == "1"
    assert description["LatestVersion"] == "1"
    assert description["DefaultVersion"] == "1"
    assert description["Status"] == "Active"
    assert description["DocumentType"] == "Automation"
    assert description["DocumentFormat"] == "JSON"
    assert description["SchemaVersion"] == "0.3"
    assert description["HashType"] == "Sha256"
    assert description["Hash"] == hashlib.sha256(text.encode()).hexdigest()
    assert description["Owner"] == ACCOUNT_ID
    assert description["PlatformTypes"] == []
    assert description["Description"] == "Waits a moment"
    assert description["Tags"] == [{"Key": "team", "Value": "ops"}]
    assert description["CreatedDate"].year >= 2024
    parameters = {p["Name"]: p for p in description["Parameters"]}
    assert parameters["Message"] == {
        "Name": "Message", "Type": "String", "Description": "What to say", "DefaultValue": "hello",
    }
    assert parameters["Targets"]["Type"] == "StringList"


def test_create_refuses_bad_input(ssm):
    name = unique("doc")
    create(ssm, name)
    with pytest.raises(ClientError) as excinfo:
        create(ssm, name)
    assert error_of(excinfo)[:2] == (400, "DocumentAlreadyExists")

    bad = dict(runbook(), mainSteps=[])
    with pytest.raises(ClientError) as excinfo:
        create(ssm, unique("doc"), json.dumps(bad))
    status, code, message = error_of(excinfo)
    assert (status, code) == (400, "InvalidDocumentContent")
    assert "mainSteps" in message

    with pytest.raises(ClientError) as excinfo:
        create(ssm, unique("doc"), "{not json")
    assert error_of(excinfo)[:2] == (400, "InvalidDocumentContent")

    with pytest.raises(ClientError) as excinfo:
        ssm.create_document(Content=content(), Name=unique("doc"), DocumentType="Command")
    status, code, message = error_of(excinfo)
    assert 400 <= status < 500 and "Automation" in message, (status, code, message)

    with pytest.raises(ClientError) as excinfo:
        ssm.create_document(Content=content(), Name=unique("doc"))
    assert 400 <= error_of(excinfo)[0] < 500

    # The model's name pattern: 3-128 of [a-zA-Z0-9_.-].
    with pytest.raises(ClientError) as excinfo:
        create(ssm, "no spaces allowed")
    assert error_of(excinfo)[:2] == (400, "ValidationException")

    with pytest.raises(ClientError) as excinfo:
        create(ssm, "AWS-" + unique("mine"))
    assert error_of(excinfo)[:2] == (400, "ValidationException")


def test_get_converts_between_json_and_yaml(ssm):
    name = unique("doc")
    text = content("hi")
    create(ssm, name, text)
    got = ssm.get_document(Name=name)
    assert got["Name"] == name
    assert got["DocumentVersion"] == "1"
    assert got["Status"] == "Active"
    assert got["DocumentType"] == "Automation"
    assert got["DocumentFormat"] == "JSON"
    assert got["Content"] == text
    as_yaml = ssm.get_document(Name=name, DocumentFormat="YAML")
    assert as_yaml["DocumentFormat"] == "YAML"
    assert yaml.safe_load(as_yaml["Content"]) == json.loads(text)

    yaml_name = unique("ydoc")
    yaml_text = yaml.safe_dump(runbook("from yaml"), sort_keys=False)
    description = create(ssm, yaml_name, yaml_text, DocumentFormat="YAML")
    assert description["DocumentFormat"] == "YAML"
    assert ssm.get_document(Name=yaml_name)["Content"] == yaml_text
    as_json = ssm.get_document(Name=yaml_name, DocumentFormat="JSON")
    assert json.loads(as_json["Content"]) == runbook("from yaml")

    arn = f"arn:aws:ssm:{REGION}:{ACCOUNT_ID}:document/{name}"
    assert ssm.get_document(Name=arn)["Name"] == name


def test_get_and_describe_errors(ssm):
    with pytest.raises(ClientError) as excinfo:
        ssm.get_document(Name=unique("missing"))
    assert error_of(excinfo)[:2] == (400, "InvalidDocument")
    with pytest.raises(ClientError) as excinfo:
        ssm.describe_document(Name=unique("missing"))
    assert error_of(excinfo)[:2] == (400, "InvalidDocument")
    name = unique("doc")
    create(ssm, name)
    with pytest.raises(ClientError) as excinfo:
        ssm.get_document(Name=name, DocumentVersion="7")
    assert error_of(excinfo)[:2] == (400, "InvalidDocumentVersion")
    with pytest.raises(ClientError) as excinfo:
        ssm.describe_document(Name=name, DocumentVersion="2")
    assert error_of(excinfo)[:2] == (400, "InvalidDocumentVersion")
    with pytest.raises(ClientError) as excinfo:
        ssm.get_document(Name=name, DocumentVersion="latest")
    assert error_of(excinfo)[:2] == (400, "ValidationException")


def test_update_adds_versions_and_keeps_the_default(ssm):
    name = unique("doc")
    create(ssm, name, content("v1"))
    updated = ssm.update_document(
        Name=name, Content=content("v2"), DocumentVersion="$LATEST", VersionName="second"
    )["DocumentDescription"]
    assert updated["DocumentVersion"] == "2"
    assert updated["LatestVersion"] == "2"
    assert updated["DefaultVersion"] == "1"
    assert updated["VersionName"] == "second"

    third = ssm.update_document(
        Name=name, Content=yaml.safe_dump(runbook("v3")), DocumentFormat="YAML", DocumentVersion="2"
    )["DocumentDescription"]
    assert (third["DocumentVersion"], third["DocumentFormat"]) == ("3", "YAML")

    # Reads follow the default version unless told otherwise.
    assert json.loads(ssm.get_document(Name=name)["Content"]) == runbook("v1")
    assert ssm.get_document(Name=name, DocumentVersion="$LATEST")["DocumentVersion"] == "3"
    assert json.loads(ssm.get_document(Name=name, DocumentVersion="2")["Content"]) == runbook("v2")
    assert ssm.get_document(Name=name, VersionName="second")["DocumentVersion"] == "2"
    assert ssm.describe_document(Name=name)["Document"]["DocumentVersion"] == "1"
    assert ssm.describe_document(Name=name, DocumentVersion="$LATEST")["Document"]["LatestVersion"] == "3"

    with pytest.raises(ClientError) as excinfo:
        ssm.update_document(Name=name, Content=content("v4"), DocumentVersion="2")
    assert error_of(excinfo)[:2] == (400, "InvalidDocumentVersion")
    with pytest.raises(ClientError) as excinfo:
        ssm.update_document(Name=name, Content=yaml.safe_dump(runbook("v3")), DocumentFormat="YAML")
    assert error_of(excinfo)[:2] == (400, "DuplicateDocumentContent")
    with pytest.raises(ClientError) as excinfo:
        ssm.update_document(Name=name, Content=content("v5"), VersionName="second")
    assert error_of(excinfo)[:2] == (400, "DuplicateDocumentVersionName")
    with pytest.raises(ClientError) as excinfo:
        ssm.update_document(Name=name, Content=json.dumps(dict(runbook(), schemaVersion="2.2")))
    assert error_of(excinfo)[:2] == (400, "InvalidDocumentContent")
    with pytest.raises(ClientError) as excinfo:
        ssm.update_document(Name=unique("missing"), Content=content())
    assert error_of(excinfo)[:2] == (400, "InvalidDocument")


def test_default_version_moves_and_versions_delete(ssm):
    name = unique("doc")
    create(ssm, name, content("v1"))
    ssm.update_document(Name=name, Content=content("v2"))
    ssm.update_document(Name=name, Content=content("v3"))
    answer = ssm.update_document_default_version(Name=name, DocumentVersion="2")
    assert answer["Description"] == {"Name": name, "DefaultVersion": "2"}
    assert ssm.describe_document(Name=name)["Document"]["DefaultVersion"] == "2"
    assert json.loads(ssm.get_document(Name=name)["Content"]) == runbook("v2")

    with pytest.raises(ClientError) as excinfo:
        ssm.update_document_default_version(Name=name, DocumentVersion="9")
    assert error_of(excinfo)[:2] == (400, "InvalidDocumentVersion")
    with pytest.raises(ClientError) as excinfo:
        ssm.update_document_default_version(Name=unique("missing"), DocumentVersion="1")
    assert error_of(excinfo)[:2] == (400, "InvalidDocument")

    # The default version cannot be deleted alone; others can.
    with pytest.raises(ClientError) as excinfo:
        ssm.delete_document(Name=name, DocumentVersion="2")
    assert error_of(excinfo)[:2] == (400, "InvalidDocumentOperation")
    ssm.delete_document(Name=name, DocumentVersion="3")
    with pytest.raises(ClientError) as excinfo:
        ssm.get_document(Name=name, DocumentVersion="3")
    assert error_of(excinfo)[:2] == (400, "InvalidDocumentVersion")
    assert ssm.describe_document(Name=name)["Document"]["LatestVersion"] == "2"
    ssm.delete_document(Name=name, DocumentVersion="1")
    with pytest.raises(ClientError) as excinfo:
        ssm.delete_document(Name=name, DocumentVersion="1")
    assert error_of(excinfo)[:2] == (400, "InvalidDocumentVersion")

    ssm.delete_document(Name=name)
    with pytest.raises(ClientError) as excinfo:
        ssm.get_document(Name=name)
    assert error_of(excinfo)[:2] == (400, "InvalidDocument")
    with pytest.raises(ClientError) as excinfo:
        ssm.delete_document(Name=name)
    assert error_of(excinfo)[:2] == (400, "InvalidDocument")
    # The name is free again.
    assert create(ssm, name)["DocumentVersion"] == "1"


def test_list_pages_through_filtered_documents(ssm):
    prefix = unique("list")
    names = sorted(f"{prefix}-{i:02d}" for i in range(7))
    for name in names:
        create(ssm, name)
    ssm.update_document(Name=names[0], Content=content("again"))
    ssm.update_document_default_version(Name=names[0], DocumentVersion="2")

    seen, sizes, token = [], [], None
    filters = [{"Key": "Name", "Values": [prefix]}, {"Key": "Owner", "Values": ["Self"]}]
    for _ in range(20):
        kwargs = {"Filters": filters, "MaxResults": 3}
        if token:
            kwargs["NextToken"] = token
        page = ssm.list_documents(**kwargs)
        seen.extend(page["DocumentIdentifiers"])
        sizes.append(len(page["DocumentIdentifiers"]))
        token = page.get("NextToken")
        if not token:
            break
    assert [d["Name"] for d in seen] == names
    assert sizes == [3, 3, 1]
    first = seen[0]
    assert first["DocumentVersion"] == "2"
    assert first["DocumentType"] == "Automation"
    assert first["DocumentFormat"] == "JSON"
    assert first["SchemaVersion"] == "0.3"
    assert first["Owner"] == ACCOUNT_ID
    assert first["PlatformTypes"] == []
    assert "CreatedDate" in first

    paginated = ssm.get_paginator("list_documents").paginate(
        Filters=[{"Key": "Name", "Values": [prefix]}], PaginationConfig={"PageSize": 2}
    )
    assert [d["Name"] for page in paginated for d in page["DocumentIdentifiers"]] == names

    legacy = ssm.list_documents(DocumentFilterList=[{"key": "Name", "value": prefix}])
    assert [d["Name"] for d in legacy["DocumentIdentifiers"]] == names
    typed = ssm.list_documents(
        Filters=[{"Key": "Name", "Values": [prefix]}, {"Key": "DocumentType", "Values": ["Automation"]}]
    )
    assert len(typed["DocumentIdentifiers"]) == 7
    commands = ssm.list_documents(
        Filters=[{"Key": "Name", "Values": [prefix]}, {"Key": "DocumentType", "Values": ["Command"]}]
    )
    assert commands["DocumentIdentifiers"] == []
    amazon = ssm.list_documents(Filters=[{"Key": "Owner", "Values": ["Amazon"]}])
    assert amazon["DocumentIdentifiers"] == []

    color = unique("color")
    tagged = f"{prefix}-tagged"
    create(ssm, tagged, Tags=[{"Key": color, "Value": "blue"}])
    blue = ssm.list_documents(Filters=[{"Key": f"tag:{color}", "Values": ["red", "blue"]}])
    assert [d["Name"] for d in blue["DocumentIdentifiers"]] == [tagged]
    red = ssm.list_documents(Filters=[{"Key": f"tag:{color}", "Values": ["red"]}])
    assert red["DocumentIdentifiers"] == []


def test_list_refuses_bad_tokens_and_keys(ssm):
    prefix = unique("tok")
    for i in range(3):
        create(ssm, f"{prefix}-{i}")
    page = ssm.list_documents(Filters=[{"Key": "Name", "Values": [prefix]}], MaxResults=1)
    token = page["NextToken"]
    assert prefix not in token
    # A token only continues the listing it came from.
    with pytest.raises(ClientError) as excinfo:
        ssm.list_documents(Filters=[{"Key": "Name", "Values": ["other"]}], NextToken=token)
    assert error_of(excinfo)[:2] == (400, "InvalidNextToken")
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with pytest.raises(ClientError) as excinfo:
        ssm.list_documents(Filters=[{"Key": "Name", "Values": [prefix]}], NextToken=tampered)
    assert error_of(excinfo)[:2] == (400, "InvalidNextToken")
    with pytest.raises(ClientError) as excinfo:
        ssm.list_documents(Filters=[{"Key": "Color", "Values": ["blue"]}])
    assert error_of(excinfo)[:2] == (400, "InvalidFilterKey")
    with pytest.raises(ClientError) as excinfo:
        ssm.list_documents(MaxResults=51)
    assert error_of(excinfo)[:2] == (400, "ValidationException")


def test_documents_need_ssm_signatures(endpoint):
    body = {"Name": "whatever"}
    response = signed_post(endpoint, None, body, target="AmazonSSM.GetDocument", service="codepipeline")
    assert_aws_error(response, 400, "InvalidSignatureException")


@pytest.mark.parametrize("operation", ["SendCommand", "GetParameter", "NoSuchOp"])
def test_other_ssm_operations_are_unknown(endpoint, operation):
    response = signed_post(endpoint, None, {}, target=f"AmazonSSM.{operation}", service="ssm")
    assert_aws_error(response, 400, "UnknownOperationException")


def test_aws_cli_round_trip(aws_cli, tmp_path):
    name = unique("cli")
    source = tmp_path / "runbook.yaml"
    source.write_text(yaml.safe_dump(runbook("from the cli"), sort_keys=False))
    created = aws_cli(
        "ssm", "create-document", "--name", name, "--document-type", "Automation",
        "--document-format", "YAML", "--content", f"file://{source}",
    )
    assert created.returncode == 0, created.stderr
    assert created.json()["DocumentDescription"]["DocumentFormat"] == "YAML"
    got = aws_cli("ssm", "get-document", "--name", name, "--document-format", "JSON")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.json()["Content"]) == runbook("from the cli")
    listed = aws_cli("ssm", "list-documents", "--filters", f"Key=Name,Values={name}")
    assert listed.returncode == 0, listed.stderr
    assert [d["Name"] for d in listed.json()["DocumentIdentifiers"]] == [name]
    missing = aws_cli("ssm", "describe-document", "--name", unique("missing"))
    assert missing.returncode != 0 and "InvalidDocument" in missing.stderr
