"""Client helpers for the Cloudforet (SpaceONE identity v2) facade tests.

- `CloudforetCli`: `sluice cloudforet token ...` and `sluice cloudforet plugins register ...`.
- `Identity`: the stock `spaceone-api` gRPC stubs with the `token` metadata; calls take and return
  plain dicts (proto field names, enums as strings).
- `Rest`: `POST {endpoint}/identity/v2/<resource>/<verb>` with `Authorization: Bearer`.
- `Tenant`: one Cloudforet domain of the test server, minting tokens for its roles.
- `wait_job`, `expect_grpc_error`, `expect_rest_error`, `forged_token`, `tampered_token`.

Nothing here knows Sluice internals; everything goes over the wire like a stock client.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import time
from typing import Callable, Iterable, Optional

import grpc
import requests
from google.protobuf import message_factory
from google.protobuf.json_format import MessageToDict, ParseDict
from spaceone.api.identity.v2 import (
    job_pb2,
    job_pb2_grpc,
    project_group_pb2,
    project_group_pb2_grpc,
    project_pb2,
    project_pb2_grpc,
    provider_pb2,
    provider_pb2_grpc,
    service_account_pb2,
    service_account_pb2_grpc,
    trusted_account_pb2,
    trusted_account_pb2_grpc,
    workspace_pb2,
    workspace_pb2_grpc,
)

from sluice_testlib import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, binary_path, clean_env, unique

PACKAGE = "spaceone.api.identity.v2"

# gRPC service name -> (pb2 module, pb2_grpc module, REST resource name in the http annotations)
SERVICES = {
    "Job": (job_pb2, job_pb2_grpc, "job"),
    "TrustedAccount": (trusted_account_pb2, trusted_account_pb2_grpc, "trusted-account"),
    "Provider": (provider_pb2, provider_pb2_grpc, "provider"),
    "Project": (project_pb2, project_pb2_grpc, "project"),
    "ProjectGroup": (project_group_pb2, project_group_pb2_grpc, "project-group"),
    "ServiceAccount": (service_account_pb2, service_account_pb2_grpc, "service-account"),
    "Workspace": (workspace_pb2, workspace_pb2_grpc, "workspace"),
}
SERVICE_NAMES = [f"{PACKAGE}.{name}" for name in SERVICES]

# Cloudforet's gRPC status code -> HTTP status of the REST facade.
HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "DEADLINE_EXCEEDED": 504,
    "INTERNAL": 500,
}

TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
JOB_ID_RE = re.compile(r"^job-[0-9a-f]{12}$")
FINISHED = ("SUCCESS", "FAILURE", "CANCELED")
RPC_TIMEOUT = 15.0


# --- CLI -----------------------------------------------------------------------------------------


class CliError(AssertionError):
    pass


class CloudforetCli:
    """Runs `sluice cloudforet ...` against one server with the root keys."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint

    def run(self, *args: str, timeout: float = 30) -> dict:
        env = clean_env(
            SLUICE_ENDPOINT=self.endpoint,
            AWS_ACCESS_KEY_ID=ROOT_ACCESS_KEY_ID,
            AWS_SECRET_ACCESS_KEY=ROOT_SECRET_ACCESS_KEY,
        )
        done = subprocess.run(
            [str(binary_path()), "cloudforet", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            raise CliError(f"sluice cloudforet {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
        try:
            return json.loads(done.stdout)
        except ValueError as err:
            raise CliError(f"sluice cloudforet {' '.join(args)} printed no JSON: {done.stdout!r}") from err

    def token(self, role: str, domain_id: str, workspace_id: Optional[str] = None,
              expires_in: Optional[int] = None) -> str:
        args = ["token", "--role", role, "--domain-id", domain_id]
        if workspace_id:
            args += ["--workspace-id", workspace_id]
        if expires_in is not None:
            args += ["--expires-in", str(expires_in)]
        out = self.run(*args)
        assert isinstance(out.get("token"), str) and out["token"], out
        return out["token"]

    def register_plugin(self, plugin_id: str, endpoint: str) -> dict:
        out = self.run("plugins", "register", "--plugin-id", plugin_id, "--endpoint", endpoint)
        assert out.get("plugin_id") == plugin_id, out
        assert out.get("endpoint") == endpoint, out
        return out


# --- gRPC ----------------------------------------------------------------------------------------


def to_dict(message) -> dict:
    return MessageToDict(message, preserving_proto_field_name=True)


def _request_class(service: str, method: str):
    pb2 = SERVICES[service][0]
    descriptor = pb2.DESCRIPTOR.services_by_name[service].methods_by_name[method].input_type
    return message_factory.GetMessageClass(descriptor)


class Identity:
    """gRPC client for one token: `client.call("Job", "list", {...}) -> dict`."""

    def __init__(self, channel: grpc.Channel, token: Optional[str], forbidden: Optional[list] = None):
        self.channel = channel
        self.token = token
        # Strings that must never appear in any response (secret values).
        self.forbidden = forbidden if forbidden is not None else []
        self._stubs = {
            name: getattr(pb2_grpc, f"{name}Stub")(channel) for name, (_, pb2_grpc, _) in SERVICES.items()
        }

    def metadata(self):
        return [("token", self.token)] if self.token is not None else []

    def call_message(self, service: str, method: str, body: Optional[dict] = None, timeout: float = RPC_TIMEOUT):
        request = ParseDict(body or {}, _request_class(service, method)())
        response = getattr(self._stubs[service], method)(request, metadata=self.metadata(), timeout=timeout)
        raw = response.SerializeToString()  # unknown fields included
        for secret in self.forbidden:
            assert secret.encode() not in raw, f"{service}.{method} returned secret {secret!r}"
        return response

    def call(self, service: str, method: str, body: Optional[dict] = None, timeout: float = RPC_TIMEOUT) -> dict:
        return to_dict(self.call_message(service, method, body, timeout))

    # Shortcuts.
    def job(self, job_id: str) -> dict:
        return self.call("Job", "get", {"job_id": job_id})

    def jobs(self, query: Optional[dict] = None, **fields) -> dict:
        body = dict(fields)
        if query is not None:
            body["query"] = query
        out = self.call("Job", "list", body)
        out.setdefault("results", [])
        out.setdefault("total_count", 0)
        return out

    def listing(self, service: str, body: Optional[dict] = None) -> list:
        out = self.call(service, "list", body or {})
        return out.get("results", [])


class GrpcErrorInfo:
    def __init__(self, err: grpc.RpcError):
        self.code = err.code()
        self.details = err.details() or ""

    @property
    def error_code(self) -> str:
        return self.details.split(":", 1)[0].strip()

    def __repr__(self):
        return f"<{self.code} {self.details!r}>"


def expect_grpc_error(fn: Callable, code: grpc.StatusCode, error_code: Optional[str] = None) -> GrpcErrorInfo:
    """Calls fn(); it must fail with `code` and details `"ERROR_CODE: message"`."""
    try:
        result = fn()
    except grpc.RpcError as err:
        info = GrpcErrorInfo(err)
    else:
        raise AssertionError(f"expected {code}, the call succeeded: {result!r}"[:2000])
    assert info.code == code, info
    assert re.match(r"^ERROR_[A-Z0-9_]+: ", info.details), info
    if error_code is not None:
        assert info.error_code == error_code, info
    return info


# --- REST ----------------------------------------------------------------------------------------


class Rest:
    """`POST {endpoint}/identity/v2/<resource>/<verb>` with JSON and `Authorization: Bearer`."""

    def __init__(self, endpoint: str, token: Optional[str], forbidden: Optional[list] = None):
        self.endpoint = endpoint
        self.token = token
        self.forbidden = forbidden if forbidden is not None else []
        self.session = requests.Session()

    def url(self, resource: str, verb: str) -> str:
        return f"{self.endpoint}/identity/v2/{resource}/{verb}"

    def post(self, resource: str, verb: str, body=None, *, token: Optional[str] = "default",
             raw: Optional[bytes] = None, timeout: float = RPC_TIMEOUT) -> requests.Response:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        bearer = self.token if token == "default" else token
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        data = raw if raw is not None else json.dumps(body if body is not None else {}).encode()
        response = self.session.post(self.url(resource, verb), data=data, headers=headers, timeout=timeout)
        for secret in self.forbidden:
            assert secret not in response.text, f"{resource}/{verb} returned secret {secret!r}"
        return response

    def call(self, resource: str, verb: str, body=None, **kwargs) -> dict:
        response = self.post(resource, verb, body, **kwargs)
        assert response.status_code == 200, (resource, verb, response.status_code, response.text[:1000])
        assert response.headers.get("content-type", "").startswith("application/json"), response.headers
        return response.json() if response.content else {}


def expect_rest_error(response: requests.Response, grpc_code: str, error_code: Optional[str] = None) -> dict:
    """The REST error shape: HTTP status per gRPC code, body {"detail": {"code", "message"}}."""
    assert response.status_code == HTTP_STATUS[grpc_code], (response.status_code, response.text[:1000])
    body = response.json()
    detail = body.get("detail")
    assert isinstance(detail, dict), body
    assert isinstance(detail.get("code"), str) and detail["code"].startswith("ERROR_"), body
    assert isinstance(detail.get("message"), str) and detail["message"], body
    if error_code is not None:
        assert detail["code"] == error_code, body
    return detail


# --- tenants -------------------------------------------------------------------------------------


class Tenant:
    """A Cloudforet domain of the server under test (a fresh domain id per test keeps tests apart)."""

    def __init__(self, cli: CloudforetCli, channel: grpc.Channel, endpoint: str, forbidden: list,
                 domain_id: Optional[str] = None):
        self.cli = cli
        self.channel = channel
        self.endpoint = endpoint
        self.forbidden = forbidden
        self.domain_id = domain_id or unique("domain")
        self._tokens: dict = {}
        self.admin = self.client("DOMAIN_ADMIN")

    def token(self, role: str = "DOMAIN_ADMIN", workspace_id: Optional[str] = None) -> str:
        key = (role, workspace_id)
        if key not in self._tokens:
            self._tokens[key] = self.cli.token(role, self.domain_id, workspace_id)
        return self._tokens[key]

    def client(self, role: str = "DOMAIN_ADMIN", workspace_id: Optional[str] = None) -> Identity:
        return Identity(self.channel, self.token(role, workspace_id), self.forbidden)

    def rest(self, role: str = "DOMAIN_ADMIN", workspace_id: Optional[str] = None) -> Rest:
        return Rest(self.endpoint, self.token(role, workspace_id), self.forbidden)

    # --- setup shortcuts (gRPC, as DOMAIN_ADMIN unless a client is given) ---

    def create_provider(self, plugin_id: str, options: Optional[dict] = None,
                        provider: Optional[str] = None, client: Optional[Identity] = None) -> dict:
        provider = provider or unique("prov")
        body = {
            "provider": provider,
            "name": f"Provider {provider}",
            "plugin_info": {"plugin_id": plugin_id, "options": options or {}},
        }
        return (client or self.admin).call("Provider", "create", body)

    def create_trusted_account(self, provider: str, *, resource_group: str = "DOMAIN",
                               plugin_options: Optional[dict] = None, sync_options: Optional[dict] = None,
                               secret_data: Optional[dict] = None, client: Optional[Identity] = None,
                               name: Optional[str] = None, **extra) -> dict:
        secret_data = secret_data if secret_data is not None else {"api_key": unique("ta-secret")}
        for value in secret_data.values():
            if isinstance(value, str) and value not in self.forbidden:
                self.forbidden.append(value)
        body = {
            "name": name or unique("ta"),
            "provider": provider,
            "data": {"purpose": "sluice test"},
            "secret_data": secret_data,
            "resource_group": resource_group,
            "schedule": {"state": "DISABLED", "hours": []},
            "sync_options": sync_options or {},
            "plugin_options": plugin_options or {},
            "tags": {"suite": "cloudforet"},
        }
        body.update(extra)
        return (client or self.admin).call("TrustedAccount", "create", body)

    def sync(self, trusted_account_id: str, client: Optional[Identity] = None) -> dict:
        return (client or self.admin).call("TrustedAccount", "sync", {"trusted_account_id": trusted_account_id})

    def sync_and_wait(self, trusted_account_id: str, statuses=FINISHED, timeout: float = 20,
                      client: Optional[Identity] = None) -> dict:
        job = self.sync(trusted_account_id, client)
        return wait_job(self.admin, job["job_id"], statuses, timeout)


def wait_job(client: Identity, job_id: str, statuses: Iterable[str] = FINISHED, timeout: float = 20,
             interval: float = 0.1) -> dict:
    """Polls Job.get until the job's status is one of `statuses`; returns the job."""
    if isinstance(statuses, str):
        statuses = (statuses,)
    statuses = tuple(statuses)
    deadline = time.monotonic() + timeout
    job = None
    while True:
        job = client.job(job_id)
        if job.get("status") in statuses:
            return job
        if time.monotonic() >= deadline:
            raise AssertionError(f"job {job_id} not in {statuses} within {timeout}s: {job}")
        time.sleep(interval)


# --- tokens that must be refused -----------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def forged_token(domain_id: str, role: str = "DOMAIN_ADMIN", workspace_id: Optional[str] = None) -> str:
    """A well-formed HS256 JWT with plausible claims, signed with a key Sluice never had."""
    now = int(time.time())
    claims = {"did": domain_id, "rol": role, "iat": now, "exp": now + 3600}
    if workspace_id:
        claims["wid"] = workspace_id
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps(claims).encode())
    signature = hmac.new(os.urandom(32), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"


def tampered_token(token: str, **claims) -> str:
    """A real token whose payload claims were changed, its signature kept."""
    parts = token.split(".")
    assert len(parts) == 3, "Sluice tokens are JWTs (header.payload.signature)"
    payload = json.loads(_b64url_decode(parts[1]))
    payload.update(claims)
    parts[1] = _b64url(json.dumps(payload).encode())
    return ".".join(parts)


def not_default(value) -> bool:
    return value not in (None, "", 0, False, [], {}, "NONE", "RESOURCE_GROUP_NONE")
