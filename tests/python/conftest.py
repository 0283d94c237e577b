"""Fixtures: one Sluice server for the session, boto3 clients, and an aws CLI runner.

The server is the release binary (`target/release/sluice`, or $SLUICE_BIN) on a free loopback
port with a fresh data directory and fixed root keys. At the end it gets SIGTERM and must exit 0
within 10 s (graceful shutdown).

Run from the repository root:
    python3 -m venv /tmp/pyvenv && /tmp/pyvenv/bin/pip install -r tests/python/requirements.txt
    cargo build --release -p sluice-cli
    /tmp/pyvenv/bin/python -m pytest tests/python -q
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass

import boto3
import pytest
from botocore.config import Config

from sluice_testlib import (
    REGION,
    aws_command,
    ROOT_ACCESS_KEY_ID,
    ROOT_SECRET_ACCESS_KEY,
    SluiceServer,
)

# The Cloudforet facade suite's own fixtures (its server, the test plugin, tenants).
pytest_plugins = ("cloudforet_fixtures",)

# Settings that could make a stock client talk to something else, or sign differently.
_LEAKY_AWS_ENV = [
    "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION",
    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_CODEPIPELINE", "AWS_CA_BUNDLE", "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_PAGER",
]


@pytest.fixture(scope="session")
def aws_config_files(tmp_path_factory):
    """Empty AWS config and credentials files, so no developer configuration leaks in."""
    directory = tmp_path_factory.mktemp("aws-config")
    config = directory / "config"
    credentials = directory / "credentials"
    config.write_text("")
    credentials.write_text("")
    return config, credentials


@pytest.fixture(scope="session", autouse=True)
def isolated_aws_environment(aws_config_files):
    config, credentials = aws_config_files
    with pytest.MonkeyPatch.context() as patch:
        for name in _LEAKY_AWS_ENV:
            patch.delenv(name, raising=False)
        patch.setenv("AWS_CONFIG_FILE", str(config))
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield


@pytest.fixture(scope="session")
def server(tmp_path_factory, isolated_aws_environment):
    data_dir = tmp_path_factory.mktemp("sluice-data")
    logs = tmp_path_factory.mktemp("sluice-logs")
    instance = SluiceServer(data_dir, logs)
    # Debug logging makes the "secrets never reach the logs" checks stronger.
    instance.env["SLUICE_LOG"] = "debug"
    instance.start()
    yield instance
    code = instance.stop(timeout=10)
    assert code == 0, (
        f"sluice did not shut down gracefully on SIGTERM within 10 s (exit {code}); "
        f"stderr tail:\n{instance.stderr()[-3000:]}"
    )
    assert ROOT_SECRET_ACCESS_KEY not in instance.stdout() + instance.stderr(), "root secret was logged"


@pytest.fixture(scope="session")
def endpoint(server) -> str:
    return server.endpoint


def _client(endpoint: str, access_key: str, secret_key: str):
    session = boto3.session.Session(
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name=REGION,
    )
    # One attempt only: a failing request must surface as it is, never be retried away.
    config = Config(
        retries={"max_attempts": 1, "total_max_attempts": 1, "mode": "standard"},
        connect_timeout=5,
        read_timeout=30,
    )
    return session.client("codepipeline", endpoint_url=endpoint, config=config)


@pytest.fixture(scope="session")
def make_client(endpoint):
    """Builds a boto3 CodePipeline client for other keys."""

    def make(access_key: str, secret_key: str):
        return _client(endpoint, access_key, secret_key)

    return make


@pytest.fixture(scope="session")
def cp(endpoint):
    """boto3 CodePipeline client signed with the root keys."""
    return _client(endpoint, ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY)


@pytest.fixture
def raw_responses(cp):
    """Every raw response body (bytes) the `cp` client receives during the test."""
    bodies: list[bytes] = []

    def record(http_response, **_):
        bodies.append(http_response.content)

    cp.meta.events.register("after-call.codepipeline", record)
    yield bodies
    cp.meta.events.unregister("after-call.codepipeline", record)


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout) if self.stdout.strip() else None


@pytest.fixture(scope="session")
def aws_cli(endpoint, aws_config_files):
    """Runs the aws CLI (v1) against the server with the root keys; returns a CliResult."""
    config, credentials = aws_config_files
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    base_env.update(
        AWS_ACCESS_KEY_ID=ROOT_ACCESS_KEY_ID,
        AWS_SECRET_ACCESS_KEY=ROOT_SECRET_ACCESS_KEY,
        AWS_CONFIG_FILE=str(config),
        AWS_SHARED_CREDENTIALS_FILE=str(credentials),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_MAX_ATTEMPTS="1",
        AWS_RETRY_MODE="standard",
    )

    def run(*args: str, access_key: str = ROOT_ACCESS_KEY_ID, secret_key: str = ROOT_SECRET_ACCESS_KEY,
            timeout: float = 60) -> CliResult:
        env = dict(base_env, AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key)
        command = aws_command() + [
            "--endpoint-url", endpoint, "--region", REGION, "--output", "json", *args,
        ]
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
        return CliResult(done.returncode, done.stdout, done.stderr)

    return run
