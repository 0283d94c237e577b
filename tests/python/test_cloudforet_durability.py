"""Cloudforet syncs across restarts and replicas: a server killed (SIGKILL) in the middle of a
sync leaves the job FAILURE once the sync's lease runs out, never IN_PROGRESS, and the account
syncs again afterwards; on two servers sharing one PostgreSQL database, a sync started on one
runs, and a scheduled sync fires exactly once."""

from __future__ import annotations

import datetime
import os
import secrets
import subprocess
import time
import uuid

import grpc
import pytest

from cloudforet_client import CloudforetCli, Tenant, wait_job
from sluice_testlib import SluiceServer, unique

ADMIN_URL = os.environ.get("SLUICE_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
PLUGIN_TIMEOUT_SECONDS = 2
# The runner's lease margin beyond the plugin timeout (crates/sluice-cloudforet/src/runner.rs).
LEASE_MARGIN_SECONDS = 10


def psql(sql: str) -> None:
    subprocess.run(["psql", ADMIN_URL, "-qAtc", sql], check=True, capture_output=True, timeout=60)


def tenant_of(server: SluiceServer, forbidden: list, domain_id: str | None = None) -> tuple[Tenant, grpc.Channel]:
    channel = grpc.insecure_channel(server.endpoint.removeprefix("http://"))
    grpc.channel_ready_future(channel).result(timeout=10)
    return Tenant(CloudforetCli(server.endpoint), channel, server.endpoint, forbidden, domain_id), channel


def new_server(data_dir, logs, name: str, **env) -> SluiceServer:
    server = SluiceServer(data_dir, logs, name=name)
    server.env["SLUICE_CLOUDFORET_PLUGIN_TIMEOUT_SECONDS"] = str(PLUGIN_TIMEOUT_SECONDS)
    server.env.update(env)
    return server


def test_a_sync_cut_off_by_kill_fails_and_the_account_syncs_again(tmp_path, plugin):
    data_dir = tmp_path / "data"
    server = new_server(data_dir, tmp_path, "killed").start()
    forbidden: list = []
    tenant, channel = tenant_of(server, forbidden)
    plugin_id = unique("plugin-kill")
    tenant.cli.register_plugin(plugin_id, plugin.endpoint)
    provider = tenant.create_provider(plugin_id, {"mode": "hang", "seconds": 30})["provider"]
    account = tenant.create_trusted_account(provider)["trusted_account_id"]
    job = tenant.sync(account)
    wait_job(tenant.admin, job["job_id"], "IN_PROGRESS", timeout=10)
    server.kill()
    channel.close()

    server = new_server(data_dir, tmp_path, "restarted").start()
    try:
        tenant, channel = tenant_of(server, forbidden, tenant.domain_id)
        ended = wait_job(tenant.admin, job["job_id"], ("FAILURE", "SUCCESS", "CANCELED"),
                         timeout=PLUGIN_TIMEOUT_SECONDS + LEASE_MARGIN_SECONDS + 15)
        assert ended["status"] == "FAILURE", ended
        assert "interrupted" in ended["error_message"], ended
        assert ended.get("finished_at"), ended

        # The account is not blocked by the failed job: a new sync runs to its end.
        tenant.admin.call("Provider", "update", {
            "provider": provider,
            "plugin_info": {"plugin_id": plugin_id, "options": {"mode": "accounts"}},
        })
        again = tenant.sync_and_wait(account, timeout=20)
        assert again["status"] == "SUCCESS", again
        channel.close()
    finally:
        assert server.stop() == 0


@pytest.fixture
def two_replicas(tmp_path):
    database = f"sluice_cf_{uuid.uuid4().hex[:12]}"
    psql(f"CREATE DATABASE {database}")
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + database
    master_key = secrets.token_hex(32)
    servers = []
    try:
        for index in range(2):
            server = new_server(tmp_path / f"data{index}", tmp_path, f"cf-node{index}",
                                SLUICE_DATABASE_URL=url, SLUICE_MASTER_KEY=master_key)
            servers.append(server.start())
        yield servers
    finally:
        for server in servers:
            server.stop()
        psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def test_replicas_share_tokens_and_syncs(two_replicas, plugin):
    forbidden: list = []
    first, channel_a = tenant_of(two_replicas[0], forbidden)
    second, channel_b = tenant_of(two_replicas[1], forbidden, first.domain_id)
    plugin_id = unique("plugin-replica")
    first.cli.register_plugin(plugin_id, plugin.endpoint)
    provider = first.create_provider(plugin_id, {"mode": "accounts"})["provider"]
    account = first.create_trusted_account(provider)["trusted_account_id"]

    # A token minted by one replica works on the other; the job started on the second is
    # visible and finished through the first.
    job = second.sync(account, client=second.client())
    done = wait_job(first.admin, job["job_id"], timeout=20)
    assert done["status"] == "SUCCESS", done
    projects = first.admin.listing("Project")
    assert len(projects) == 3, projects
    channel_a.close()
    channel_b.close()


def test_a_scheduled_sync_fires_once_across_replicas(two_replicas, plugin):
    now = datetime.datetime.now(datetime.timezone.utc)
    if now.minute == 59 and now.second >= 45:
        time.sleep(61 - now.second)  # stay inside one UTC hour for the whole test
    hour = datetime.datetime.now(datetime.timezone.utc).hour
    forbidden: list = []
    tenant, channel = tenant_of(two_replicas[0], forbidden)
    plugin_id = unique("plugin-schedule")
    tenant.cli.register_plugin(plugin_id, plugin.endpoint)
    provider = tenant.create_provider(plugin_id, {"mode": "accounts"})["provider"]
    account = tenant.create_trusted_account(provider, schedule={"state": "ENABLED", "hours": [hour]})
    account_id = account["trusted_account_id"]
    assert account["schedule"] == {"state": "ENABLED", "hours": [hour]}

    deadline = time.monotonic() + 10
    jobs: list = []
    while time.monotonic() < deadline and not jobs:
        jobs = tenant.admin.jobs(trusted_account_id=account_id)["results"]
        time.sleep(0.2)
    assert jobs, "no scheduled sync started"
    time.sleep(2)  # both sweepers have passed many times by now
    jobs = tenant.admin.jobs(trusted_account_id=account_id)["results"]
    assert len(jobs) == 1, jobs
    assert wait_job(tenant.admin, jobs[0]["job_id"], timeout=20)["status"] == "SUCCESS"

    # A disabled schedule starts nothing.
    other = tenant.create_trusted_account(provider, schedule={"state": "DISABLED", "hours": [hour]})
    time.sleep(1.5)
    assert tenant.admin.jobs(trusted_account_id=other["trusted_account_id"])["total_count"] == 0
    channel.close()
