"""Shared helpers for the black-box suite: running a Sluice server process, signing raw
AWS JSON 1.1 requests with botocore's SigV4 signer, and building pipeline declarations.

Nothing here knows Sluice internals; everything goes over the wire like a stock client.
"""

from __future__ import annotations

import copy
import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Optional
from unittest import mock

import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BINARY = REPO_ROOT / "target" / "release" / "sluice"

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
TARGET_PREFIX = "CodePipeline_20150709"
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"

# Fixed root credentials for the shared server: AKIA + 16 characters, and a 40-character secret.
ROOT_ACCESS_KEY_ID = "AKIASLUICETESTROOT01"
ROOT_SECRET_ACCESS_KEY = "SluiceTestRootSecret/0123456789abcdefghi"
assert len(ROOT_ACCESS_KEY_ID) == 20 and len(ROOT_SECRET_ACCESS_KEY) == 40

ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/sluice-test"


def binary_path() -> Path:
    return Path(os.environ.get("SLUICE_BIN") or DEFAULT_BINARY)


def aws_command() -> list[str]:
    """The aws CLI (v1) of this Python environment."""
    script = Path(sys.executable).with_name("aws")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "awscli"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict:
    """The current environment without any SLUICE_* or AWS_* variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLUICE_", "AWS_"))}
    env.update(extra)
    return env


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class SluiceServer:
    """One `sluice serve` process on a free loopback port, its output captured to files."""

    def __init__(self, data_dir: Path, log_dir: Path, root_keys: bool = True, name: str = "sluice"):
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.stdout_path = Path(log_dir) / f"{name}.stdout.log"
        self.stderr_path = Path(log_dir) / f"{name}.stderr.log"
        extra = {}
        if root_keys:
            extra = {
                "SLUICE_ROOT_ACCESS_KEY_ID": ROOT_ACCESS_KEY_ID,
                "SLUICE_ROOT_SECRET_ACCESS_KEY": ROOT_SECRET_ACCESS_KEY,
            }
        self.env = clean_env(**extra)
        self.process: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 20.0) -> "SluiceServer":
        binary = binary_path()
        if not binary.is_file():
            raise RuntimeError(
                f"Sluice binary {binary} not found: run `cargo build --release -p sluice-cli` "
                "in the repository root or set SLUICE_BIN"
            )
        self._stdout = open(self.stdout_path, "wb")
        self._stderr = open(self.stderr_path, "wb")
        self.process = subprocess.Popen(
            [str(binary), "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.data_dir)],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=self._stderr,
        )
        deadline = time.monotonic() + timeout
        last_error = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"sluice exited with {self.process.returncode} before it was healthy:\n{self.stderr()}"
                )
            try:
                response = requests.get(f"{self.endpoint}/health", timeout=1)
                if response.status_code == 200:
                    return self
                last_error = f"/health answered {response.status_code}"
            except requests.RequestException as err:
                last_error = str(err)
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"sluice was not healthy within {timeout}s ({last_error}):\n{self.stderr()}")

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        """SIGTERM, then wait; returns the exit code, or None if it had to be killed."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        self._close_logs()
        return self.process.returncode

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self._close_logs()

    def _close_logs(self) -> None:
        for handle in (getattr(self, "_stdout", None), getattr(self, "_stderr", None)):
            if handle is not None and not handle.closed:
                handle.close()

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""


def stored_bytes(data_dir: Path) -> bytes:
    """Everything a server keeps in its data directory (database, WAL, keys), concatenated."""
    blob = b""
    for path in sorted(Path(data_dir).rglob("*")):
        if path.is_file():
            blob += path.read_bytes()
    return blob


# --- raw, signed AWS JSON 1.1 requests ---------------------------------------------------------


def sign_headers(
    endpoint: str,
    target: str,
    body: bytes,
    access_key: str = ROOT_ACCESS_KEY_ID,
    secret_key: str = ROOT_SECRET_ACCESS_KEY,
    *,
    region: str = REGION,
    service: str = "codepipeline",
    when: Optional[datetime.datetime] = None,
    token: Optional[str] = None,
    extra_headers: Optional[dict] = None,
    path: str = "/",
) -> dict:
    """Headers of a POST to `endpoint` + `path` signed by botocore's SigV4 signer.

    `when` (naive UTC) replaces the signer's clock, which sets X-Amz-Date and the scope date.
    """
    headers = {"Content-Type": JSON_CONTENT_TYPE}
    if extra_headers and any(k.lower() == "content-type" for k in extra_headers):
        headers = {}
    if target is not None:
        headers["X-Amz-Target"] = target
    headers.update(extra_headers or {})
    request = AWSRequest(method="POST", url=f"{endpoint}{path}", data=body, headers=headers)
    signer = SigV4Auth(Credentials(access_key, secret_key, token), service, region)
    if when is None:
        signer.add_auth(request)
    else:
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            signer.add_auth(request)
    return dict(request.headers.items())


def signed_post(
    endpoint: str,
    operation: Optional[str],
    body,
    *,
    target: Optional[str] = None,
    send_body: Optional[bytes] = None,
    session: Optional[requests.Session] = None,
    timeout: float = 30,
    **sign_kwargs,
) -> requests.Response:
    """POSTs `body` (bytes, str or a JSON-able value) signed for `operation`.

    `send_body` sends different bytes than were signed (tampering).
    """
    if isinstance(body, (bytes, bytearray)):
        payload = bytes(body)
    elif isinstance(body, str):
        payload = body.encode()
    else:
        payload = json.dumps(body).encode()
    if target is None and operation is not None:
        target = f"{TARGET_PREFIX}.{operation}"
    headers = sign_headers(endpoint, target, payload, **sign_kwargs)
    poster = session or requests
    return poster.post(
        f"{endpoint}/",
        data=payload if send_body is None else send_body,
        headers=headers,
        timeout=timeout,
    )


def assert_aws_error(response: requests.Response, status: int, code: Optional[str] = None) -> dict:
    """Checks the AWS JSON 1.1 error shape and returns the decoded body."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers.get("x-amzn-RequestId"), dict(response.headers)
    body = response.json()
    assert isinstance(body.get("__type"), str) and body["__type"], body
    assert isinstance(body.get("message"), str), body
    if code is not None:
        # Some AWS services send "prefix#Code"; clients take the part after '#'.
        assert body["__type"].split("#")[-1] == code, body
    return body


# --- declarations ------------------------------------------------------------------------------


def s3_source(name: str = "Fetch", output: str = "SourceOut") -> dict:
    return {
        "name": name,
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
        "configuration": {"S3Bucket": "sluice-test-bucket", "S3ObjectKey": "app.zip"},
        "outputArtifacts": [{"name": output}] if output else [],
    }


def manual_approval(name: str = "Gate", custom_data: str = "please look") -> dict:
    return {
        "name": name,
        "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"},
        "configuration": {"CustomData": custom_data},
    }


def custom_action(provider: str, name: str = "Make", inputs=("SourceOut",), configuration=None,
                  category: str = "Build", version: str = "1") -> dict:
    return {
        "name": name,
        "actionTypeId": {"category": category, "owner": "Custom", "provider": provider, "version": version},
        "configuration": dict(configuration or {}),
        "inputArtifacts": [{"name": i} for i in inputs],
    }


def two_stage_pipeline(name: str) -> dict:
    """A minimal valid pipeline using only built-in action types."""
    return {
        "name": name,
        "roleArn": ROLE_ARN,
        "artifactStore": {"type": "S3", "location": "sluice-artifacts"},
        "stages": [
            {"name": "Source", "actions": [s3_source()]},
            {"name": "Approve", "actions": [manual_approval()]},
        ],
    }


def deep_copy(value):
    return copy.deepcopy(value)
