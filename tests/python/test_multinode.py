"""Several `sluice serve` processes on one PostgreSQL database: with eight pollers spread across
three of them, 2,000 jobs are each handed out and completed exactly once and every execution
finishes; and a long poll on one server wakes for a job queued through another."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import threading
import time
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from sluice_testlib import REGION, ROLE_ARN, ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, SluiceServer

ADMIN_URL = os.environ.get("SLUICE_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
EXECUTIONS = int(os.environ.get("SLUICE_MULTINODE_EXECUTIONS", "1000"))  # two jobs each
POLLERS = 8
DEADLINE_SECONDS = 240


def psql(sql: str) -> None:
    subprocess.run(["psql", ADMIN_URL, "-qAtc", sql], check=True, capture_output=True, timeout=60)


def client(endpoint: str, service: str = "codepipeline"):
    config = Config(retries={"total_max_attempts": 1}, max_pool_connections=32,
                    s3={"addressing_style": "path"}, signature_version="s3v4")
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, config=config,
                        aws_access_key_id=ROOT_ACCESS_KEY_ID, aws_secret_access_key=ROOT_SECRET_ACCESS_KEY)


@contextlib.contextmanager
def replicas(tmp_path, count: int):
    """`count` servers on one fresh PostgreSQL database, sharing the master key and artifacts."""
    database = f"sluice_multinode_{uuid.uuid4().hex[:12]}"
    psql(f"CREATE DATABASE {database}")
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + database
    master_key = secrets.token_hex(32)
    servers = []
    try:
        for index in range(count):
            server = SluiceServer(tmp_path / f"data{index}", tmp_path, name=f"node{index}")
            server.env.update(SLUICE_DATABASE_URL=url, SLUICE_MASTER_KEY=master_key,
                              SLUICE_ARTIFACTS_DIR=str(tmp_path / "shared-artifacts"))
            servers.append(server.start())
        yield servers
    finally:
        for server in servers:
            server.stop()
        psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def test_three_servers_hand_out_each_job_once(tmp_path):
    with replicas(tmp_path, 3) as servers:
        run_jobs(servers)


def test_a_long_poll_wakes_for_a_job_queued_on_another_server(tmp_path):
    # PollForJobs waits up to 1 s. A job queued on server A while a poll waits on server B must
    # reach that poll: B hears of it through PostgreSQL, not by polling again later.
    with replicas(tmp_path, 2) as (a, b):
        source = {"category": "Source", "owner": "Custom", "provider": "Wake", "version": "1"}
        cp_a, cp_b = client(a.endpoint), client(b.endpoint)
        for category in ("Source", "Build"):
            cp_a.create_custom_action_type(
                category=category, provider="Wake", version="1",
                inputArtifactDetails={"minimumCount": 0, "maximumCount": 0},
                outputArtifactDetails={"minimumCount": 0, "maximumCount": 0})
        cp_a.create_pipeline(pipeline={
            "name": "wake", "roleArn": ROLE_ARN, "artifactStore": {"type": "S3", "location": "wake"},
            "stages": [{"name": "Source", "actions": [{"name": "Src", "actionTypeId": source}]},
                       {"name": "Work", "actions": [{"name": "W", "actionTypeId": dict(source, category="Build")}]}],
        })
        cp_b.poll_for_jobs(actionTypeId=source)  # B has polled this queue before
        answers = []
        poll = threading.Thread(target=lambda: answers.append(cp_b.poll_for_jobs(actionTypeId=source)["jobs"]))
        poll.start()
        time.sleep(0.2)
        execution_id = cp_a.start_pipeline_execution(name="wake")["pipelineExecutionId"]
        poll.join(timeout=10)
        [jobs] = answers
        assert [j["data"]["pipelineContext"]["pipelineExecutionId"] for j in jobs] == [execution_id]


def test_a_start_sees_pipeline_changes_made_through_another_server(tmp_path):
    """A server keeps the latest definition of a pipeline between starts; a delete and create
    under the same name, and an update, made through another server must each be seen."""
    from test_executions import Setup

    with replicas(tmp_path, 2) as (first, second):
        cp_first, cp_second = client(first.endpoint), client(second.endpoint)
        setup = Setup(cp_first, first.endpoint, mode="PARALLEL", approval=False)

        def start_and_poll(target: str) -> int:
            execution_id = setup.start()
            jobs = cp_first.poll_for_jobs(actionTypeId=setup.type_id, maxBatchSize=10,
                                          queryParam={"Target": target})["jobs"]
            assert [j["data"]["pipelineContext"]["pipelineExecutionId"] for j in jobs] == [execution_id]
            return setup.execution(execution_id)["pipelineVersion"]

        def with_target(declaration: dict, target: str) -> dict:
            declaration["stages"][1]["actions"][0]["configuration"]["Target"] = target
            return declaration

        assert start_and_poll("all") == 1
        declaration = cp_second.get_pipeline(name=setup.name)["pipeline"]
        del declaration["version"]
        cp_second.delete_pipeline(name=setup.name)
        cp_second.create_pipeline(pipeline=with_target(declaration, "recreated"))
        assert start_and_poll("recreated") == 1
        cp_second.update_pipeline(pipeline=with_target(declaration, "updated"))
        assert start_and_poll("updated") == 2
        again = setup.start(clientRequestToken="the-same-start")
        assert setup.start(clientRequestToken="the-same-start") == again
        assert cp_second.start_pipeline_execution(name=setup.name, clientRequestToken="the-same-start")[
            "pipelineExecutionId"] == again


def test_a_custom_action_type_deleted_through_one_server_cannot_be_polled_on_another(tmp_path):
    # The other server kept the type as live after polling it; PostgreSQL relays the deletion.
    with replicas(tmp_path, 2) as (a, b):
        cp_a, cp_b = client(a.endpoint), client(b.endpoint)
        type_id = {"category": "Build", "owner": "Custom", "provider": "Gone", "version": "1"}
        cp_a.create_custom_action_type(
            category="Build", provider="Gone", version="1",
            inputArtifactDetails={"minimumCount": 0, "maximumCount": 0},
            outputArtifactDetails={"minimumCount": 0, "maximumCount": 0})
        assert cp_b.poll_for_jobs(actionTypeId=type_id)["jobs"] == []
        cp_a.delete_custom_action_type(category="Build", provider="Gone", version="1")
        deadline = time.monotonic() + 5
        while True:
            try:
                cp_b.poll_for_jobs(actionTypeId=type_id)
            except ClientError as err:
                assert err.response["Error"]["Code"] == "ActionTypeNotFoundException"
                break
            assert time.monotonic() < deadline, "the other server still polls the deleted type"


def run_jobs(servers):
    first = client(servers[0].endpoint)
    type_id = {"category": "Build", "owner": "Custom", "provider": "Multi", "version": "1"}
    first.create_custom_action_type(
        category="Build", provider="Multi", version="1",
        inputArtifactDetails={"minimumCount": 0, "maximumCount": 1},
        outputArtifactDetails={"minimumCount": 0, "maximumCount": 0},
    )
    client(servers[1].endpoint, "s3").put_object(Bucket="multi-src", Key="app.zip", Body=b"x")
    build = lambda name: {"name": name, "actionTypeId": type_id}  # noqa: E731
    first.create_pipeline(pipeline={
        "name": "multi", "roleArn": ROLE_ARN, "pipelineType": "V2", "executionMode": "PARALLEL",
        "artifactStore": {"type": "S3", "location": "multi-artifacts"},
        "stages": [
            {"name": "Source", "actions": [{
                "name": "Src", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                "configuration": {"S3Bucket": "multi-src", "S3ObjectKey": "app.zip"},
                "outputArtifacts": [{"name": "code"}]}]},
            {"name": "Work", "actions": [build("A"), build("B")]},
        ],
    })
    clients = [client(s.endpoint) for s in servers]
    execution_ids = []
    for i in range(EXECUTIONS):
        execution_ids.append(clients[i % 3].start_pipeline_execution(name="multi")["pipelineExecutionId"])

    completed: list[str] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + DEADLINE_SECONDS

    def poller(index: int):
        cp = clients[index % 3]
        while time.monotonic() < deadline:
            with lock:
                if len(completed) >= 2 * EXECUTIONS or errors:
                    return
            jobs = cp.poll_for_jobs(actionTypeId=type_id, maxBatchSize=10)["jobs"]
            for job in jobs:
                try:
                    cp.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
                    cp.put_job_success_result(jobId=job["id"])
                except Exception as err:  # a job handed out twice fails here
                    with lock:
                        errors.append(f"{job['id']}: {err}")
                    return
                with lock:
                    completed.append(job["id"])

    threads = [threading.Thread(target=poller, args=(i,)) for i in range(POLLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DEADLINE_SECONDS + 30)
    assert not errors, errors[:5]
    assert len(completed) == 2 * EXECUTIONS, f"{len(completed)} of {2 * EXECUTIONS} jobs completed in time"
    assert len(set(completed)) == len(completed), "a job was completed twice"
    summaries, token = [], None
    while True:
        kwargs = {"pipelineName": "multi", "maxResults": 100}
        if token:
            kwargs["nextToken"] = token
        page = first.list_pipeline_executions(**kwargs)
        summaries += page["pipelineExecutionSummaries"]
        token = page.get("nextToken")
        if not token:
            break
    statuses = {s["pipelineExecutionId"]: s["status"] for s in summaries}
    assert set(statuses) == set(execution_ids)
    assert set(statuses.values()) == {"Succeeded"}
