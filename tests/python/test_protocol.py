"""SigV4 and AWS JSON 1.1 protocol behaviour over raw HTTP, signed with botocore's SigV4Auth,
plus a bounded, seeded fuzz loop that must never produce a 5xx."""

from __future__ import annotations

import datetime
import json
import random
import socket

import pytest
import requests

from sluice_testlib import (
    JSON_CONTENT_TYPE,
    ROOT_ACCESS_KEY_ID,
    ROOT_SECRET_ACCESS_KEY,
    TARGET_PREFIX,
    assert_aws_error,
    sign_headers,
    signed_post,
    two_stage_pipeline,
    unique,
)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def test_a_correctly_signed_request_works(endpoint):
    response = signed_post(endpoint, "ListPipelines", {})
    assert response.status_code == 200, response.text
    assert response.headers.get("x-amzn-RequestId")
    assert response.headers.get("Content-Type", "").startswith(JSON_CONTENT_TYPE)
    assert isinstance(response.json()["pipelines"], list)


def test_unknown_members_are_ignored(endpoint):
    response = signed_post(endpoint, "ListPipelines", {"someFutureMember": {"nested": [1, 2]}, "x": None})
    assert response.status_code == 200, response.text


def test_empty_body_means_no_input(endpoint):
    response = signed_post(endpoint, "ListPipelines", b"")
    assert response.status_code == 200, response.text


def test_wrong_secret_key(endpoint):
    response = signed_post(endpoint, "ListPipelines", {}, secret_key="X" * 40)
    assert_aws_error(response, 400, "InvalidSignatureException")


def test_unknown_access_key(endpoint):
    response = signed_post(endpoint, "ListPipelines", {}, access_key="AKIAUNKNOWNKEY000000", secret_key="Y" * 40)
    assert_aws_error(response, 400, "UnrecognizedClientException")


@pytest.mark.parametrize("minutes", [-20, 20])
def test_clock_skew_beyond_15_minutes(endpoint, minutes):
    when = utc_now() + datetime.timedelta(minutes=minutes)
    response = signed_post(endpoint, "ListPipelines", {}, when=when)
    assert_aws_error(response, 400, "InvalidSignatureException")


@pytest.mark.parametrize("minutes", [-10, 10])
def test_clock_skew_within_15_minutes_is_accepted(endpoint, minutes):
    when = utc_now() + datetime.timedelta(minutes=minutes)
    response = signed_post(endpoint, "ListPipelines", {}, when=when)
    assert response.status_code == 200, response.text


def test_body_tampered_after_signing(endpoint):
    name = unique("tamper")
    signed = json.dumps({"pipeline": two_stage_pipeline(name)}).encode()
    tampered = signed.replace(b"sluice-artifacts", b"evil-artifacts!!")
    assert len(tampered) == len(signed) and tampered != signed
    response = signed_post(endpoint, "CreatePipeline", signed, send_body=tampered)
    assert_aws_error(response, 400, "InvalidSignatureException")
    # Nothing was created.
    response = signed_post(endpoint, "GetPipeline", {"name": name})
    assert_aws_error(response, 400, "PipelineNotFoundException")


def test_target_tampered_after_signing(endpoint):
    headers = sign_headers(endpoint, f"{TARGET_PREFIX}.ListPipelines", b"{}")
    headers["X-Amz-Target"] = f"{TARGET_PREFIX}.ListActionTypes"
    response = requests.post(f"{endpoint}/", data=b"{}", headers=headers, timeout=30)
    assert_aws_error(response, 400, "InvalidSignatureException")


def test_wrong_region_in_scope(endpoint):
    response = signed_post(endpoint, "ListPipelines", {}, region="eu-west-1")
    assert_aws_error(response, 400, "InvalidSignatureException")


def test_wrong_service_in_scope(endpoint):
    response = signed_post(endpoint, "ListPipelines", {}, service="sqs")
    assert_aws_error(response, 400, "InvalidSignatureException")


def test_session_token_on_a_long_term_key_is_refused(endpoint):
    response = signed_post(endpoint, "ListPipelines", {}, token="FwoGZXIvYXdzEBogus")
    assert_aws_error(response, 400, "UnrecognizedClientException")


def test_no_authentication(endpoint):
    response = requests.post(
        f"{endpoint}/",
        data=b"{}",
        headers={"Content-Type": JSON_CONTENT_TYPE, "X-Amz-Target": f"{TARGET_PREFIX}.ListPipelines"},
        timeout=30,
    )
    assert 400 <= response.status_code < 500, response.text
    assert_aws_error(response, response.status_code)


def test_garbled_authorization_header(endpoint):
    response = requests.post(
        f"{endpoint}/",
        data=b"{}",
        headers={
            "Content-Type": JSON_CONTENT_TYPE,
            "X-Amz-Target": f"{TARGET_PREFIX}.ListPipelines",
            "X-Amz-Date": utc_now().strftime("%Y%m%dT%H%M%SZ"),
            "Authorization": "AWS4-HMAC-SHA256 Credential=garbage, Signature=zz",
        },
        timeout=30,
    )
    assert 400 <= response.status_code < 500, response.text
    assert_aws_error(response, response.status_code)


def test_unknown_operation(endpoint):
    response = signed_post(endpoint, "NoSuchOp", {})
    assert_aws_error(response, 400, "UnknownOperationException")


def test_unknown_target_prefix(endpoint):
    response = signed_post(endpoint, None, {}, target="DynamoDB_20120810.ListTables")
    assert 400 <= response.status_code < 500
    assert_aws_error(response, response.status_code)


@pytest.mark.parametrize("operation", ["RollbackStage", "ListWebhooks"])
def test_modelled_but_not_built_operation(endpoint, operation):
    body = {"pipelineName": "whatever", "pipelineExecutionId": "x", "stageName": "s", "retryMode": "ALL_ACTIONS",
            "transitionType": "Inbound", "reason": "r"}
    response = signed_post(endpoint, operation, body)
    assert_aws_error(response, 400, "UnknownOperationException")


@pytest.mark.parametrize("body", [b"{", b"{\"name\": }", b"[]", b"\"text\"", b"\xff\xfe\x00", b"nul"])
def test_malformed_json(endpoint, body):
    response = signed_post(endpoint, "GetPipeline", body)
    assert_aws_error(response, 400, "SerializationException")


@pytest.mark.parametrize(
    "operation, body",
    [
        ("GetPipeline", {"name": 5}),
        ("GetPipeline", {"name": "p", "version": "one"}),
        ("GetPipeline", {"name": "p", "version": 1.5}),
        ("ListPipelines", {"maxResults": "three"}),
        ("CreatePipeline", {"pipeline": "not a structure"}),
        ("CreatePipeline", {"pipeline": {"name": "p", "roleArn": "arn:aws:iam::123456789012:role/r", "stages": {}}}),
        ("TagResource", {"resourceArn": "arn:aws:codepipeline:us-east-1:123456789012:p", "tags": [{"key": 1, "value": "v"}]}),
        ("CreateCustomActionType", {"category": "Build", "provider": "P", "version": "1",
                                    "inputArtifactDetails": {"minimumCount": "0", "maximumCount": 1},
                                    "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 1}}),
    ],
)
def test_wrong_member_type(endpoint, operation, body):
    response = signed_post(endpoint, operation, body)
    assert_aws_error(response, 400, "SerializationException")


@pytest.mark.parametrize(
    "operation, body",
    [
        ("GetPipeline", {}),
        ("GetPipeline", {"name": ""}),
        ("ListPipelines", {"maxResults": 0}),
        ("ListPipelines", {"maxResults": 1001}),
        ("CreatePipeline", {"pipeline": {"name": "p", "roleArn": "arn:aws:iam::123456789012:role/r",
                                          "stages": [{"name": "S", "actions": [{"name": "A", "runOrder": 0,
                                           "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"}}]}]}}),
    ],
)
def test_model_constraints_over_the_wire(endpoint, operation, body):
    response = signed_post(endpoint, operation, body)
    body = assert_aws_error(response, 400, "ValidationException")
    assert "validation error" in body["message"]


def test_body_over_6_mib_is_refused(endpoint):
    padding = "x" * (6 * 1024 * 1024 + 1024)
    body = json.dumps({"name": "big", "padding": padding}).encode()
    headers = sign_headers(endpoint, f"{TARGET_PREFIX}.GetPipeline", body)
    status, raw_headers, raw_body = _post_tolerating_early_close(endpoint, headers, body)
    assert status == 413, (status, raw_body[:300])
    # The server is fine afterwards.
    assert requests.get(f"{endpoint}/health", timeout=5).status_code == 200


def _post_tolerating_early_close(endpoint: str, headers: dict, body: bytes):
    """POSTs over a plain socket; a server may answer 413 and stop reading, so a failed send is
    fine as long as a response comes back."""
    host, port = endpoint.removeprefix("http://").split(":")
    head = ["POST / HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length")]
    request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    received = b""
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
                if b"\r\n\r\n" in received and _complete(received):
                    break
        except (ConnectionResetError, socket.timeout):
            pass
    assert received.startswith(b"HTTP/1.1 "), received[:200]
    header_blob, _, rest = received.partition(b"\r\n\r\n")
    status = int(header_blob.split(b" ", 2)[1])
    return status, header_blob.decode(errors="replace"), rest


def _complete(received: bytes) -> bool:
    header_blob, _, rest = received.partition(b"\r\n\r\n")
    for line in header_blob.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(rest) >= int(line.split(b":", 1)[1])
    return False


def test_errors_have_the_aws_json_shape(endpoint):
    """Every refusal above goes through assert_aws_error; here one more of each family, checking
    the header names botocore reads."""
    for response in (
        signed_post(endpoint, "GetPipeline", {"name": unique("none")}),
        signed_post(endpoint, "NoSuchOp", {}),
        signed_post(endpoint, "GetPipeline", b"{"),
        signed_post(endpoint, "ListPipelines", {}, secret_key="Z" * 40),
    ):
        body = assert_aws_error(response, 400)
        assert response.headers.get("Content-Type", "").startswith("application/x-amz-json-1.1")
        assert set(body) >= {"__type", "message"}


# --- fuzz --------------------------------------------------------------------------------------

OPERATIONS = [
    "CreateCustomActionType", "DeleteCustomActionType", "ListActionTypes", "GetActionType",
    "CreatePipeline", "GetPipeline", "UpdatePipeline", "DeletePipeline", "ListPipelines",
    "TagResource", "UntagResource", "ListTagsForResource",
]
UNBUILT = ["RollbackStage", "ListWebhooks", "OverrideStageCondition"]

FUZZ_SEED = 20150709
FUZZ_SIGNED = 300
FUZZ_UNSIGNED = 60


def _random_scalar(rng: random.Random):
    return rng.choice([
        None, True, False, 0, -1, 1, 2 ** 31, 2 ** 63, -(2 ** 63), 1e308, -0.5, 3.25,
        "", "a", "x" * rng.randint(1, 300), "\u00e9\u4e2d\U0001F600", "../../etc/passwd", "\x00\x01",
        "arn:aws:codepipeline:us-east-1:123456789012:p", "AWS", "Custom", "Source", "****",
        "' OR 1=1 --", "%s%n", "{}", "[]",
    ])


def _random_value(rng: random.Random, depth: int = 0):
    if depth > 4 or rng.random() < 0.4:
        return _random_scalar(rng)
    if rng.random() < 0.5:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    keys = ["name", "version", "pipeline", "stages", "actions", "actionTypeId", "category", "owner",
            "provider", "tags", "key", "value", "resourceArn", "tagKeys", "maxResults", "nextToken",
            "configuration", "inputArtifacts", "outputArtifacts", "runOrder", "roleArn", "artifactStore",
            "inputArtifactDetails", "minimumCount", "maximumCount", "configurationProperties",
            "executionMode", "pipelineType", "actionOwnerFilter", rng.choice(["zz", "", "__type", "ünï"])]
    return {rng.choice(keys): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 6))}


def _same_type_value(rng: random.Random, old):
    """A different value of the same JSON type, so the request usually passes the type checks
    and reaches the model constraints and the engine's own rules."""
    if isinstance(old, bool):
        return not old
    if isinstance(old, int):
        return rng.choice([0, 1, 2, 5, 6, 99, 100, 101, 999, 1000, -1, 2 ** 31, 2 ** 53])
    if isinstance(old, str):
        return rng.choice([
            "", "a", old + old, old.upper(), old[:1], "x" * rng.randint(90, 300), "S3", "Manual", "Custom",
            "AWS", "ThirdParty", "Source", "Build", "Approval", "V1", "V2", "QUEUED", "PARALLEL",
            "SourceOut", "Source", "****", "has space", "\u00e9t\u00e9", "aws:tag",
        ])
    if isinstance(old, list):
        if old and rng.random() < 0.5:
            return old[:-1]
        return old + old[:1]
    if isinstance(old, dict):
        return {k: v for k, v in old.items() if rng.random() < 0.7}
    return _random_value(rng)


def _mutate(rng: random.Random, value):
    """A copy of `value` with one randomly chosen node changed, removed or retyped."""
    value = json.loads(json.dumps(value))
    path = []
    node = value
    while isinstance(node, (dict, list)) and node and rng.random() < 0.85:
        key = rng.choice(list(node.keys())) if isinstance(node, dict) else rng.randrange(len(node))
        path.append((node, key))
        node = node[key]
    if not path:
        return _random_value(rng)
    parent, key = path[-1]
    action = rng.random()
    if action < 0.15 and isinstance(parent, dict):
        del parent[key]
    elif action < 0.25 and isinstance(parent, list):
        parent.append(parent[key])
    elif action < 0.85:
        parent[key] = _same_type_value(rng, parent[key])
    else:
        parent[key] = _random_value(rng)
    return value


def _valid_inputs(name: str) -> dict:
    return {
        "CreatePipeline": {"pipeline": two_stage_pipeline(name), "tags": [{"key": "k", "value": "v"}]},
        "UpdatePipeline": {"pipeline": two_stage_pipeline(name)},
        "GetPipeline": {"name": name, "version": 1},
        "ListPipelines": {"maxResults": 2},
        "CreateCustomActionType": {
            "category": "Build", "provider": "FuzzType", "version": "1",
            "configurationProperties": [{"name": "T", "required": True, "key": True, "secret": False, "queryable": True}],
            "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 1},
            "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 1},
        },
        "TagResource": {"resourceArn": f"arn:aws:codepipeline:us-east-1:123456789012:{name}",
                        "tags": [{"key": "a", "value": "b"}]},
        "ListTagsForResource": {"resourceArn": f"arn:aws:codepipeline:us-east-1:123456789012:{name}", "maxResults": 1},
        "GetActionType": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
        "ListActionTypes": {"actionOwnerFilter": "AWS"},
    }


def _fuzz_body(rng: random.Random, operation: str, valid: dict) -> bytes:
    kind = rng.random()
    if kind < 0.06:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
    if kind < 0.12:
        text = json.dumps(valid.get(operation, {"name": "x"}))
        return text[: rng.randint(0, len(text))].encode()
    if kind < 0.18:
        depth = rng.randint(50, 3000)
        return (("[" * depth) + ("]" * depth)).encode() if rng.random() < 0.5 else (
            '{"a":' * depth + "1" + "}" * depth).encode()
    if kind < 0.25:
        return json.dumps(_random_value(rng)).encode()
    base = valid.get(operation) or valid[rng.choice(list(valid))]
    mutated = base
    for _ in range(rng.randint(1, 3)):
        mutated = _mutate(rng, mutated)
    return json.dumps(mutated).encode()


def _fuzz_target(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.85:
        return f"{TARGET_PREFIX}.{rng.choice(OPERATIONS)}"
    if roll < 0.9:
        return f"{TARGET_PREFIX}.{rng.choice(UNBUILT)}"
    return rng.choice([
        "", ".", f"{TARGET_PREFIX}.", f"{TARGET_PREFIX}..GetPipeline", "CodePipeline_20150709",
        f"{TARGET_PREFIX}.{'A' * 300}", "AmazonSSM.ListDocuments", "codepipeline_20150709.GetPipeline",
        f"{TARGET_PREFIX}.GetPipeline.Extra", "x" * rng.randint(1, 50),
    ])


def test_fuzz_never_answers_5xx(endpoint):
    rng = random.Random(FUZZ_SEED)
    name = unique("fuzz")
    valid = _valid_inputs(name)
    failures = []
    with requests.Session() as session:
        for i in range(FUZZ_SIGNED):
            target = _fuzz_target(rng)
            body = _fuzz_body(rng, target.rsplit(".", 1)[-1], valid)
            try:
                response = signed_post(endpoint, None, body, target=target, session=session, timeout=30)
            except requests.RequestException as err:
                failures.append((i, target, body[:120], f"transport error {err}"))
                continue
            if response.status_code >= 500:
                failures.append((i, target, body[:200], response.status_code, response.text[:200]))
            elif response.status_code >= 400:
                try:
                    payload = response.json()
                    ok = isinstance(payload.get("__type"), str) and isinstance(payload.get("message"), str)
                except ValueError:
                    ok = False
                if not ok or not response.headers.get("x-amzn-RequestId"):
                    failures.append((i, target, body[:200], response.status_code, "not an AWS error body", response.text[:200]))

        for i in range(FUZZ_UNSIGNED):
            headers = {"Content-Type": JSON_CONTENT_TYPE, "X-Amz-Target": _fuzz_target(rng)}
            choice = rng.random()
            if choice < 0.4:
                headers["Authorization"] = "AWS4-HMAC-SHA256 " + "".join(
                    rng.choice("abcdefXYZ0123456789=/,; -_") for _ in range(rng.randint(0, 200)))
            elif choice < 0.7:
                headers["Authorization"] = (
                    f"AWS4-HMAC-SHA256 Credential={ROOT_ACCESS_KEY_ID}/{rng.choice(['20200101', 'x', ''])}/us-east-1/"
                    f"codepipeline/aws4_request, SignedHeaders={rng.choice(['host', '', 'host;x-amz-date;;'])}, "
                    f"Signature={'0' * rng.choice([0, 63, 64, 65])}")
                headers["X-Amz-Date"] = rng.choice(["20200101T000000Z", "garbage", "", "99999999T999999Z"])
            else:
                headers["Authorization"] = rng.choice(["Bearer abc", "Basic Zm9vOmJhcg==", "AWS4-HMAC-SHA256", ""])
            body = json.dumps(_random_value(rng)).encode()
            try:
                response = session.post(f"{endpoint}/", data=body, headers=headers, timeout=30)
            except requests.RequestException as err:
                failures.append(("unsigned", i, headers, f"transport error {err}"))
                continue
            if response.status_code >= 500 or response.status_code < 400:
                failures.append(("unsigned", i, headers, response.status_code, response.text[:200]))

    assert not failures, f"{len(failures)} bad responses, first ones: {failures[:5]}"
    assert requests.get(f"{endpoint}/health", timeout=5).status_code == 200
    # Root keys still work after the storm.
    assert signed_post(endpoint, "ListPipelines", {}).status_code == 200


# --- presigned (query string) form ---------------------------------------------------------------


def _presigned_list_pipelines(endpoint: str, expires: int, when=None, secret_key=ROOT_SECRET_ACCESS_KEY):
    from unittest import mock

    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    headers = {"Content-Type": JSON_CONTENT_TYPE, "X-Amz-Target": f"{TARGET_PREFIX}.ListPipelines"}
    request = AWSRequest(method="POST", url=f"{endpoint}/", data=b"", headers=dict(headers))
    signer = SigV4QueryAuth(Credentials(ROOT_ACCESS_KEY_ID, secret_key), "codepipeline", "us-east-1", expires=expires)
    if when is None:
        signer.add_auth(request)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            signer.add_auth(request)
    assert "X-Amz-Signature=" in request.url and "Authorization" not in request.headers
    return requests.post(request.url, data=b"", headers=headers, timeout=30)


def test_presigned_request_works(endpoint):
    response = _presigned_list_pipelines(endpoint, expires=300)
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["pipelines"], list)


def test_presigned_request_with_a_wrong_secret(endpoint):
    response = _presigned_list_pipelines(endpoint, expires=300, secret_key="Q" * 40)
    assert_aws_error(response, 400, "InvalidSignatureException")


def test_expired_presigned_request(endpoint):
    when = utc_now() - datetime.timedelta(minutes=10)
    response = _presigned_list_pipelines(endpoint, expires=60, when=when)
    assert 400 <= response.status_code < 500, response.text
    assert_aws_error(response, response.status_code)
