"""A test AccountCollector plugin (`spaceone.api.identity.plugin.AccountCollector`) for Sluice's
Cloudforet facade, built on the stock `spaceone-api` stubs.

Run it alone:
    python cloudforet_plugin.py --port 50071
or start it in-process (the test fixtures do):
    plugin = PluginServer().start()      # free loopback port, plugin.endpoint == "http://127.0.0.1:N"
    ...
    plugin.stop()

`sync` does what the merged `options` it receives say:
    {"mode": "accounts", "accounts": [AccountInfo as JSON, ...]}  returns those accounts
        (no "accounts": DEFAULT_ACCOUNTS; no "mode" at all means "accounts")
    {"mode": "fail", "message": "...", "code": "INVALID_ARGUMENT"}  aborts with that gRPC status
    {"mode": "hang", "seconds": N}  waits N seconds (or until the caller gives up), then answers
        like "accounts"
Every request is recorded (method, options, secret_data, schema_id, domain_id) so tests can check
what the server sent; standalone, each one is also printed as a JSON line on stdout.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from typing import Optional

import grpc
from google.protobuf.json_format import MessageToDict, ParseDict
from spaceone.api.identity.plugin import account_collector_pb2, account_collector_pb2_grpc

SERVICE_NAME = "spaceone.api.identity.plugin.AccountCollector"

# Three accounts in two workspaces, each two project groups deep. "Prod" is shared by the first
# two, so a sync makes 2 workspaces, 5 project groups, 3 projects and 3 service accounts.
DEFAULT_ACCOUNTS = [
    {
        "name": "Account One",
        "resource_id": "acct-0001",
        "data": {"account_id": "0001", "kind": "default"},
        "secret_schema_id": "test-secret-schema",
        "secret_data": {"role_arn": "plugin-account-secret-0001"},
        "tags": {"team": "web"},
        "location": [
            {"name": "Alpha", "resource_id": "ou-alpha"},
            {"name": "Prod", "resource_id": "ou-prod"},
            {"name": "Web", "resource_id": "ou-web"},
        ],
    },
    {
        "name": "Account Two",
        "resource_id": "acct-0002",
        "data": {"account_id": "0002", "kind": "default"},
        "secret_schema_id": "test-secret-schema",
        "secret_data": {"role_arn": "plugin-account-secret-0002"},
        "tags": {"team": "db"},
        "location": [
            {"name": "Alpha", "resource_id": "ou-alpha"},
            {"name": "Prod", "resource_id": "ou-prod"},
            {"name": "Db", "resource_id": "ou-db"},
        ],
    },
    {
        "name": "Account Three",
        "resource_id": "acct-0003",
        "data": {"account_id": "0003", "kind": "default"},
        "secret_schema_id": "test-secret-schema",
        "secret_data": {"role_arn": "plugin-account-secret-0003"},
        "tags": {"team": "tools"},
        "location": [
            {"name": "Beta", "resource_id": "ou-beta"},
            {"name": "Dev", "resource_id": "ou-dev"},
            {"name": "Tools", "resource_id": "ou-tools"},
        ],
    },
]

PLUGIN_METADATA = {
    "supported_resource_type": ["identity.ServiceAccount", "identity.Project", "identity.ProjectGroup"],
    "supported_schema": ["test-secret-schema"],
    "plugin": "sluice-test-account-collector",
}


@dataclass
class Received:
    """One request the plugin received."""

    method: str  # "init" or "sync"
    options: dict
    secret_data: dict
    schema_id: str
    domain_id: str
    at: float = field(default_factory=time.time)

    def as_json(self) -> dict:
        return {
            "method": self.method,
            "options": self.options,
            "secret_data": self.secret_data,
            "schema_id": self.schema_id,
            "domain_id": self.domain_id,
            "at": self.at,
        }


def _struct_to_dict(message, field_name: str) -> dict:
    if not message.HasField(field_name):
        return {}
    return MessageToDict(getattr(message, field_name), preserving_proto_field_name=True)


def _plain_number(value):
    """Struct numbers arrive as floats; 10.0 -> 10 for readability."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class AccountCollector(account_collector_pb2_grpc.AccountCollectorServicer):
    def __init__(self, echo: bool = False):
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._echo = echo
        self._stopping = threading.Event()

    # --- recording ---------------------------------------------------------------------------

    def _record(self, entry: Received) -> None:
        with self._lock:
            self.received.append(entry)
        if self._echo:
            print(json.dumps(entry.as_json(), sort_keys=True), flush=True)

    def requests(self, method: Optional[str] = None) -> list[Received]:
        with self._lock:
            return [r for r in self.received if method is None or r.method == method]

    def syncs_with(self, key: str, value) -> list[Received]:
        """The sync requests whose merged options have options[key] == value."""
        return [r for r in self.requests("sync") if r.options.get(key) == value]

    # --- rpcs --------------------------------------------------------------------------------

    def init(self, request, context):
        self._record(Received("init", _struct_to_dict(request, "options"), {}, "", request.domain_id))
        return ParseDict({"metadata": PLUGIN_METADATA}, account_collector_pb2.PluginInfo())

    def sync(self, request, context):
        options = _struct_to_dict(request, "options")
        self._record(
            Received(
                "sync",
                options,
                _struct_to_dict(request, "secret_data"),
                request.schema_id,
                request.domain_id,
            )
        )
        mode = options.get("mode", "accounts")
        if mode == "fail":
            message = str(options.get("message", "test plugin failure"))
            code_name = str(options.get("code", "INVALID_ARGUMENT"))
            code = getattr(grpc.StatusCode, code_name, grpc.StatusCode.INVALID_ARGUMENT)
            context.abort(code, message)
        if mode == "hang":
            seconds = float(_plain_number(options.get("seconds", 30)))
            deadline = time.monotonic() + seconds
            # Stop early when the caller has given up (deadline, cancel) or the plugin stops.
            while time.monotonic() < deadline and context.is_active() and not self._stopping.is_set():
                time.sleep(0.05)
            if not context.is_active():
                return account_collector_pb2.AccountsInfo()
        elif mode != "accounts":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unknown test plugin mode {mode!r}")
        accounts = options.get("accounts")
        if accounts is None:
            accounts = DEFAULT_ACCOUNTS
        return ParseDict({"results": copy.deepcopy(accounts)}, account_collector_pb2.AccountsInfo())


class PluginServer:
    """The plugin on a loopback port, in this process."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, echo: bool = False, workers: int = 32):
        self.host = host
        self.requested_port = port
        self.collector = AccountCollector(echo=echo)
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
        account_collector_pb2_grpc.add_AccountCollectorServicer_to_server(self.collector, self._server)
        self.port: Optional[int] = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> "PluginServer":
        self.port = self._server.add_insecure_port(f"{self.host}:{self.requested_port}")
        if not self.port:
            raise RuntimeError(f"could not bind {self.host}:{self.requested_port}")
        self._server.start()
        return self

    def stop(self, grace: float = 0.5) -> None:
        self.collector._stopping.set()
        self._server.stop(grace).wait(5)

    def wait(self) -> None:
        self._server.wait_for_termination()

    # Shortcuts to the recording.
    def requests(self, method: Optional[str] = None) -> list[Received]:
        return self.collector.requests(method)

    def syncs_with(self, key: str, value) -> list[Received]:
        return self.collector.syncs_with(key, value)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    server = PluginServer(args.host, args.port, echo=True).start()
    print(json.dumps({"listening": server.endpoint}), flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
