"""Fixtures of the Cloudforet facade tests (loaded by conftest.py through `pytest_plugins`).

The Cloudforet suite runs its own Sluice server (`cf_server`), started with
SLUICE_CLOUDFORET_PLUGIN_TIMEOUT_SECONDS=3 so a hanging plugin fails its job quickly, and an
in-process test AccountCollector plugin (`plugin`, see cloudforet_plugin.py).
"""

from __future__ import annotations

import grpc
import pytest

from cloudforet_client import CloudforetCli, Tenant
from cloudforet_plugin import DEFAULT_ACCOUNTS, PluginServer
from sluice_testlib import ROOT_SECRET_ACCESS_KEY, SluiceServer, unique

PLUGIN_TIMEOUT_SECONDS = 3


@pytest.fixture(scope="session")
def cf_forbidden():
    """Secret values that no response and no log line may contain; tests add theirs."""
    values = [account["secret_data"]["role_arn"] for account in DEFAULT_ACCOUNTS]
    return values


@pytest.fixture(scope="session")
def cf_server(tmp_path_factory, isolated_aws_environment, cf_forbidden):
    data_dir = tmp_path_factory.mktemp("sluice-cf-data")
    logs = tmp_path_factory.mktemp("sluice-cf-logs")
    instance = SluiceServer(data_dir, logs, name="sluice-cloudforet")
    instance.env["SLUICE_LOG"] = "debug"
    instance.env["SLUICE_CLOUDFORET_PLUGIN_TIMEOUT_SECONDS"] = str(PLUGIN_TIMEOUT_SECONDS)
    instance.start()
    yield instance
    code = instance.stop(timeout=10)
    assert code == 0, (
        f"sluice did not shut down gracefully on SIGTERM within 10 s (exit {code}); "
        f"stderr tail:\n{instance.stderr()[-3000:]}"
    )
    output = instance.stdout() + instance.stderr()
    assert ROOT_SECRET_ACCESS_KEY not in output, "root secret was logged"
    leaked = [secret for secret in cf_forbidden if secret in output]
    assert not leaked, f"secret data reached the server's logs: {leaked}"


@pytest.fixture(scope="session")
def cf_cli(cf_server) -> CloudforetCli:
    return CloudforetCli(cf_server.endpoint)


@pytest.fixture(scope="session")
def cf_target(cf_server) -> str:
    """gRPC target: the same host:port as the HTTP endpoint."""
    return cf_server.endpoint.removeprefix("http://")


@pytest.fixture(scope="session")
def cf_channel(cf_target):
    channel = grpc.insecure_channel(cf_target)
    grpc.channel_ready_future(channel).result(timeout=10)
    yield channel
    channel.close()


@pytest.fixture(scope="session")
def plugin():
    server = PluginServer().start()
    yield server
    server.stop()


@pytest.fixture
def new_tenant(cf_cli, cf_channel, cf_server, cf_forbidden):
    """Makes a Tenant on a fresh domain id."""

    def make(domain_id=None) -> Tenant:
        return Tenant(cf_cli, cf_channel, cf_server.endpoint, cf_forbidden, domain_id)

    return make


@pytest.fixture
def tenant(new_tenant) -> Tenant:
    return new_tenant()


@pytest.fixture
def plugin_id(cf_cli, plugin) -> str:
    """A fresh plugin id registered to the test plugin."""
    identifier = unique("plugin-test")
    cf_cli.register_plugin(identifier, plugin.endpoint)
    return identifier


@pytest.fixture
def register_plugin(cf_cli, plugin):
    """Registers a fresh plugin id (prefix given) to the test plugin and returns it."""

    def register(prefix: str = "plugin-test") -> str:
        identifier = unique(prefix)
        cf_cli.register_plugin(identifier, plugin.endpoint)
        return identifier

    return register
