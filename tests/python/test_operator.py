"""Operator features: `sluice keys create`, /metrics, and root credentials generated on first
start."""

from __future__ import annotations

import configparser
import json
import re
import stat
import subprocess

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from sluice_testlib import (
    REGION,
    ROOT_ACCESS_KEY_ID,
    ROOT_SECRET_ACCESS_KEY,
    SluiceServer,
    binary_path,
    clean_env,
    stored_bytes,
    two_stage_pipeline,
    unique,
)


def run_sluice(endpoint: str, access_key: str, secret_key: str, *args: str) -> subprocess.CompletedProcess:
    env = clean_env(
        SLUICE_ENDPOINT=endpoint,
        AWS_ACCESS_KEY_ID=access_key,
        AWS_SECRET_ACCESS_KEY=secret_key,
    )
    return subprocess.run(
        [str(binary_path()), *args],
        env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )


def test_keys_create(server, endpoint, make_client):
    done = run_sluice(endpoint, ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, "keys", "create", "--name", "ci")
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    access_key, secret_key = created["accessKeyId"], created["secretAccessKey"]
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", access_key), access_key
    assert len(secret_key) == 40
    assert access_key != ROOT_ACCESS_KEY_ID

    user = make_client(access_key, secret_key)
    assert isinstance(user.list_pipelines()["pipelines"], list)
    name = unique("by-ci")
    user.create_pipeline(pipeline=two_stage_pipeline(name))
    assert user.get_pipeline(name=name)["pipeline"]["version"] == 1

    # A non-root key may not mint keys.
    refused = run_sluice(endpoint, access_key, secret_key, "keys", "create", "--name", "escalate")
    assert refused.returncode != 0
    assert refused.stdout.strip() == "" or "secretAccessKey" not in refused.stdout
    assert "AccessDenied" in refused.stderr, refused.stderr

    # A wrong secret for the root key is refused too.
    wrong = run_sluice(endpoint, ROOT_ACCESS_KEY_ID, "V" * 40, "keys", "create", "--name", "nope")
    assert wrong.returncode != 0
    assert "InvalidSignatureException" in wrong.stderr, wrong.stderr

    # Bad user names are refused.
    bad = run_sluice(endpoint, ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, "keys", "create", "--name", "has space")
    assert bad.returncode != 0

    # Keys are encrypted at rest.
    on_disk = stored_bytes(server.data_dir)
    assert secret_key.encode() not in on_disk
    assert ROOT_SECRET_ACCESS_KEY.encode() not in on_disk
    assert secret_key not in server.stderr() + server.stdout()

    # Each call makes a fresh key.
    again = run_sluice(endpoint, ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, "keys", "create", "--name", "ci")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["accessKeyId"] != access_key


def requests_total(endpoint: str, operation: str, status: str) -> int:
    text = requests.get(f"{endpoint}/metrics", timeout=5).text
    pattern = re.compile(
        r'^sluice_requests_total\{operation="%s",status="%s"\} (\d+)$' % (re.escape(operation), status), re.M
    )
    found = pattern.search(text)
    return int(found.group(1)) if found else 0


def test_metrics_count_operations(endpoint, cp):
    response = requests.get(f"{endpoint}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "# TYPE sluice_requests_total counter" in response.text

    name = unique("metered")
    cp.create_pipeline(pipeline=two_stage_pipeline(name))
    before_ok = requests_total(endpoint, "GetPipeline", "200")
    before_missing = requests_total(endpoint, "GetPipeline", "400")
    cp.get_pipeline(name=name)
    with pytest.raises(ClientError):
        cp.get_pipeline(name=unique("absent"))
    assert requests_total(endpoint, "GetPipeline", "200") == before_ok + 1
    assert requests_total(endpoint, "GetPipeline", "400") == before_missing + 1

    text = requests.get(f"{endpoint}/metrics", timeout=5).text
    assert re.search(r'^sluice_request_duration_seconds_count\{operation="GetPipeline"\} \d+$', text, re.M)
    assert ROOT_SECRET_ACCESS_KEY not in text


def test_unauthenticated_garbage_does_not_mint_metric_series(endpoint):
    """Operation labels come from X-Amz-Target; a caller who is not even authenticated must not be
    able to add a new time series per request (unbounded memory, and a /metrics that grows
    forever). Unknown or refused operations belong under a fixed label."""
    marker = unique("Bogus").replace("-", "")
    for i in range(20):
        response = requests.post(
            f"{endpoint}/",
            data=b"{}",
            headers={"Content-Type": "application/x-amz-json-1.1",
                     "X-Amz-Target": f"CodePipeline_20150709.{marker}{i}"},
            timeout=5,
        )
        assert 400 <= response.status_code < 500
        response = requests.post(
            f"{endpoint}/",
            data=b"{}",
            headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"Nope.{marker}x{i}"},
            timeout=5,
        )
        assert 400 <= response.status_code < 500
    text = requests.get(f"{endpoint}/metrics", timeout=5).text
    leaked = sorted({line.split('"')[1] for line in text.splitlines()
                     if line.startswith("sluice_requests_total{") and marker in line})
    assert not leaked, f"{len(leaked)} caller-chosen operation labels in /metrics, e.g. {leaked[:3]}"


def test_admin_api_needs_its_own_signing_name(endpoint):
    """The admin API is signed for service `sluice`; a root signature scoped to `codepipeline`
    must not be accepted there."""
    from sluice_testlib import sign_headers

    body = json.dumps({"name": "wrong-scope"}).encode()
    headers = sign_headers(endpoint, None, body, service="codepipeline",
                           extra_headers={"Content-Type": "application/json"}, path="/admin/v1/keys")
    response = requests.post(f"{endpoint}/admin/v1/keys", data=body, headers=headers, timeout=5)
    assert 400 <= response.status_code < 500, response.text
    assert "secretAccessKey" not in response.text

    headers = sign_headers(endpoint, None, body, service="sluice",
                           extra_headers={"Content-Type": "application/json"}, path="/admin/v1/keys")
    response = requests.post(f"{endpoint}/admin/v1/keys", data=body, headers=headers, timeout=5)
    assert response.status_code == 200, response.text
    assert response.json()["accessKeyId"].startswith("AKIA")


def test_generated_root_credentials(tmp_path):
    data_dir = tmp_path / "fresh-data"
    server = SluiceServer(data_dir, tmp_path, root_keys=False, name="generated").start()
    try:
        credentials_file = data_dir / "credentials"
        assert credentials_file.is_file()
        mode = stat.S_IMODE(credentials_file.stat().st_mode)
        assert mode == 0o600, oct(mode)
        master_key = data_dir / "master.key"
        if master_key.exists():
            assert stat.S_IMODE(master_key.stat().st_mode) & 0o077 == 0, "master.key must not be group/world readable"

        parser = configparser.ConfigParser()
        parser.read(credentials_file)
        assert "sluice" in parser.sections()
        profile = parser["sluice"]
        access_key = profile["aws_access_key_id"]
        secret_key = profile["aws_secret_access_key"]
        assert re.fullmatch(r"AKIA[A-Z0-9]{16}", access_key), access_key
        assert len(secret_key) == 40

        client = boto3.session.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=REGION
        ).client(
            "codepipeline",
            endpoint_url=server.endpoint,
            config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
        )
        assert client.list_pipelines()["pipelines"] == []

        # The shared suite's fixed root key means nothing to this server.
        other = boto3.session.Session(
            aws_access_key_id=ROOT_ACCESS_KEY_ID, aws_secret_access_key=ROOT_SECRET_ACCESS_KEY, region_name=REGION
        ).client("codepipeline", endpoint_url=server.endpoint,
                 config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))
        with pytest.raises(ClientError) as excinfo:
            other.list_pipelines()
        assert excinfo.value.response["Error"]["Code"] == "UnrecognizedClientException"

        # The operator CLI finds the same file through SLUICE_DATA_DIR.
        env = clean_env(SLUICE_ENDPOINT=server.endpoint, SLUICE_DATA_DIR=str(data_dir))
        done = subprocess.run([str(binary_path()), "keys", "create", "--name", "from-file"], env=env,
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["accessKeyId"].startswith("AKIA")
    finally:
        code = server.stop(timeout=10)
    assert code == 0, f"exit {code} after SIGTERM"

    output = server.stdout() + server.stderr()
    assert secret_key not in output, "the generated secret must not be printed or logged"
    assert str(credentials_file) in output, "the server should print where the credentials were written"

    # A restart keeps the generated key and does not rewrite the file.
    before = credentials_file.read_text()
    again = SluiceServer(data_dir, tmp_path, root_keys=False, name="generated-again").start()
    try:
        assert credentials_file.read_text() == before
        client = boto3.session.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=REGION
        ).client("codepipeline", endpoint_url=again.endpoint,
                 config=Config(retries={"total_max_attempts": 1, "mode": "standard"}))
        assert client.list_pipelines()["pipelines"] == []
    finally:
        assert again.stop(timeout=10) == 0
    assert secret_key not in again.stdout() + again.stderr()


def test_register_third_party_action_type(endpoint, cp, server):
    provider = unique("Vendor")[:35]
    done = run_sluice(
        endpoint, ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY,
        "action-types", "register-third-party", "--category", "Deploy", "--provider", provider,
        "--version", "1", "--input-artifacts", "1..2",
    )
    assert done.returncode == 0, done.stderr
    registered = json.loads(done.stdout)
    assert re.fullmatch(r"[0-9a-f-]{36}", registered["clientId"])
    assert len(registered["clientToken"]) >= 32

    found = cp.get_action_type(category="Deploy", owner="ThirdParty", provider=provider, version="1")
    declaration = found["actionType"]
    assert declaration["id"]["owner"] == "ThirdParty"
    assert declaration["inputArtifactDetails"] == {"minimumCount": 1, "maximumCount": 2}
    assert declaration["outputArtifactDetails"] == {"minimumCount": 0, "maximumCount": 5}
    listed = cp.list_action_types(actionOwnerFilter="ThirdParty")["actionTypes"]
    assert provider in [t["id"]["provider"] for t in listed]
    # The client token is a secret: never shown by any call, never stored in the clear.
    assert registered["clientToken"] not in json.dumps(found, default=str) + json.dumps(listed, default=str)
    assert registered["clientToken"].encode() not in stored_bytes(server.data_dir)

    again = run_sluice(
        endpoint, ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY,
        "action-types", "register-third-party", "--category", "Deploy", "--provider", provider, "--version", "1",
    )
    assert again.returncode != 0 and "ActionTypeAlreadyExistsException" in again.stderr

    bad = run_sluice(
        endpoint, ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY,
        "action-types", "register-third-party", "--category", "Painting", "--provider", provider, "--version", "2",
    )
    assert bad.returncode != 0 and "ValidationException" in bad.stderr


def test_only_root_registers_third_party_types(endpoint):
    created = json.loads(
        run_sluice(endpoint, ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, "keys", "create", "--name", unique("op")).stdout
    )
    refused = run_sluice(
        endpoint, created["accessKeyId"], created["secretAccessKey"],
        "action-types", "register-third-party", "--category", "Build", "--provider", unique("P")[:35], "--version", "1",
    )
    assert refused.returncode != 0 and "AccessDeniedException" in refused.stderr
