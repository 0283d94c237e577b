"""`sluice worker` running a shell command per job."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import threading
import time
import zipfile

import pytest

from sluice_testlib import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, binary_path, clean_env
from test_executions import Setup, s3_client


def start_worker(endpoint: str, setup: Setup, script: str, *options: str) -> subprocess.Popen:
    env = clean_env(SLUICE_ENDPOINT=endpoint, AWS_ACCESS_KEY_ID=ROOT_ACCESS_KEY_ID,
                    AWS_SECRET_ACCESS_KEY=ROOT_SECRET_ACCESS_KEY)
    return subprocess.Popen(
        [str(binary_path()), "worker", "--action-type", f"Build/Custom/{setup.provider}/1",
         "--query", "Target=all", *options, "--", "sh", "-c", script],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def wait_for(setup: Setup, execution_id: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    status = setup.execution(execution_id)["status"]
    while status == "InProgress" and time.monotonic() < deadline:
        time.sleep(0.1)
        status = setup.execution(execution_id)["status"]
    return status


def stop(worker: subprocess.Popen) -> int:
    worker.send_signal(signal.SIGTERM)
    return worker.wait(timeout=15)


@pytest.fixture
def approved_setup(cp, endpoint):
    setup = Setup(cp, endpoint, approval=False)
    return setup


def test_worker_runs_the_command_and_uploads_outputs(approved_setup, endpoint):
    setup = approved_setup
    script = 'cat in/code > out/bin/copy.txt && echo "target=$Target" >> out/bin/copy.txt && echo compiled fine'
    worker = start_worker(endpoint, setup, script)
    try:
        execution_id = setup.start()
        assert wait_for(setup, execution_id) == "Succeeded"
        build = setup.action_state("Build")["latestExecution"]
        assert build["summary"] == "compiled fine"
    finally:
        assert stop(worker) == 0, "the worker stops cleanly on SIGTERM"
    state = setup.cp.get_pipeline_execution(pipelineName=setup.name, pipelineExecutionId=execution_id)
    assert state["pipelineExecution"]["status"] == "Succeeded"
    # The output artifact is a zip of out/bin/.
    listed = s3_client(endpoint).list_objects_v2(Bucket="artifacts", Prefix=f"{setup.name}/bin/")
    [entry] = listed["Contents"]
    archive = zipfile.ZipFile(io.BytesIO(s3_client(endpoint).get_object(Bucket="artifacts", Key=entry["Key"])["Body"].read()))
    assert archive.read("copy.txt") == b"source v1target=all\n"


def test_a_start_hands_its_job_to_a_poll_already_waiting(approved_setup):
    """The build action's type has a secret property, so its job's view is read from the
    execution; a start that hands the job to a waiting long poll has to have written it."""
    setup = approved_setup
    got = {}

    def poll():
        deadline = time.monotonic() + 10
        while "job" not in got and time.monotonic() < deadline:
            jobs = setup.cp.poll_for_jobs(actionTypeId=setup.type_id, maxBatchSize=1,
                                          queryParam={"Target": "all"})["jobs"]
            if jobs:
                got["job"] = jobs[0]

    poller = threading.Thread(target=poll)
    poller.start()
    time.sleep(0.3)  # the poll is now waiting (a poll waits up to a second for a job)
    execution_id = setup.start()
    poller.join()
    job = got["job"]
    assert job["data"]["actionConfiguration"]["configuration"]["Target"] == "all"
    setup.cp.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
    setup.cp.put_job_success_result(jobId=job["id"])
    assert wait_for(setup, execution_id) == "Succeeded"


def test_worker_reports_progress_while_the_command_runs(approved_setup, endpoint, tmp_path):
    setup = approved_setup
    release = tmp_path / "release"
    script = f'echo "40% linked"; while [ ! -e {release} ]; do sleep 0.05; done; echo built'
    worker = start_worker(endpoint, setup, script, "--progress-every", "0.2")
    try:
        execution_id = setup.start()
        deadline = time.monotonic() + 20
        running = setup.action_state("Build").get("latestExecution", {})
        while running.get("percentComplete") != 40 and time.monotonic() < deadline:
            time.sleep(0.1)
            running = setup.action_state("Build").get("latestExecution", {})
        assert running["status"] == "InProgress"
        assert running["percentComplete"] == 40 and running["summary"] == "40% linked"
        release.touch()
        assert wait_for(setup, execution_id) == "Succeeded"
        done = setup.action_state("Build")["latestExecution"]
        assert done["summary"] == "built" and done["percentComplete"] == 100
    finally:
        release.touch()
        assert stop(worker) == 0


def progress(endpoint: str, body) -> "requests.Response":
    import requests

    from sluice_testlib import sign_headers

    path = "/admin/v1/pipeline-jobs/progress"
    payload = json.dumps(body).encode()
    headers = sign_headers(endpoint, None, payload, service="sluice",
                           extra_headers={"Content-Type": "application/json"}, path=path)
    return requests.post(f"{endpoint}{path}", data=payload, headers=headers, timeout=10)


def test_progress_needs_the_held_job_and_sane_values(approved_setup, endpoint):
    setup = approved_setup
    execution_id = setup.start()
    deadline = time.monotonic() + 10
    jobs = []
    while not jobs and time.monotonic() < deadline:
        jobs = setup.cp.poll_for_jobs(actionTypeId=setup.type_id, maxBatchSize=1,
                                      queryParam={"Target": "all"})["jobs"]
    [job] = jobs
    held = {"jobId": job["id"], "nonce": job["nonce"]}
    # Not yet acknowledged: the job is not running.
    assert progress(endpoint, {**held, "summary": "early"}).json()["__type"] == "InvalidJobStateException"
    setup.cp.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
    for body, code in [
        ({**held, "nonce": "not-the-nonce", "summary": "x"}, "InvalidNonceException"),
        ({**held, "percentComplete": 101}, "ValidationException"),
        ({**held, "percentComplete": "half"}, "ValidationException"),
        ({**held, "summary": "x" * 2049}, "ValidationException"),
        (held, "ValidationException"),
        ({"jobId": "no-such-job", "nonce": "n", "summary": "x"}, "JobNotFoundException"),
    ]:
        answer = progress(endpoint, body)
        assert answer.status_code == 400 and answer.json()["__type"] == code, (body, answer.text)
    assert "percentComplete" not in setup.action_state("Build").get("latestExecution", {})
    answer = progress(endpoint, {**held, "summary": "half way", "percentComplete": 50})
    assert answer.status_code == 200, answer.text
    running = setup.action_state("Build")["latestExecution"]
    assert (running["status"], running["summary"], running["percentComplete"]) == ("InProgress", "half way", 50)
    setup.cp.put_job_success_result(jobId=job["id"])
    assert wait_for(setup, execution_id) == "Succeeded"
    after = progress(endpoint, {**held, "summary": "late"})
    assert after.json()["__type"] == "InvalidJobStateException", after.text


def test_worker_reports_failures(approved_setup, endpoint):
    setup = approved_setup
    worker = start_worker(endpoint, setup, "echo about to fail; echo 'no such target' >&2; exit 3")
    try:
        execution_id = setup.start()
        assert wait_for(setup, execution_id) == "Failed"
        error = setup.action_state("Build")["latestExecution"]["errorDetails"]
        assert error["code"] == "JobFailed"
        assert "exit status: 3" in error["message"] and "no such target" in error["message"]
    finally:
        assert stop(worker) == 0


def test_worker_rides_out_a_server_restart(tmp_path):
    import boto3
    from botocore.config import Config

    from sluice_testlib import REGION, SluiceServer

    server = SluiceServer(tmp_path / "data", tmp_path, name="first").start()
    make = lambda s: boto3.client(  # noqa: E731
        "codepipeline", endpoint_url=s.endpoint, region_name=REGION, config=Config(retries={"total_max_attempts": 1}),
        aws_access_key_id=ROOT_ACCESS_KEY_ID, aws_secret_access_key=ROOT_SECRET_ACCESS_KEY,
    )
    setup = Setup(make(server), server.endpoint, approval=False)
    worker = start_worker(server.endpoint, setup, "echo after restart")
    try:
        server.kill()
        time.sleep(1.5)  # the worker's polls fail meanwhile and back off
        again = SluiceServer(tmp_path / "data", tmp_path, name="second")
        again.port, again.endpoint = server.port, server.endpoint
        again.start()
        try:
            setup.cp = make(again)
            execution_id = setup.start()
            assert wait_for(setup, execution_id) == "Succeeded"
        finally:
            again.stop()
    finally:
        assert stop(worker) == 0
