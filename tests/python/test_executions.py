"""Pipeline executions and the job-worker protocol, driven by boto3 as a worker would."""

from __future__ import annotations

import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sluice_testlib import REGION, ROLE_ARN, ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, SluiceServer, unique

S3_CONFIG = Config(s3={"addressing_style": "path"}, signature_version="s3v4", retries={"total_max_attempts": 1})


def s3_client(endpoint, key_id=ROOT_ACCESS_KEY_ID, secret=ROOT_SECRET_ACCESS_KEY, token=None):
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=key_id,
        aws_secret_access_key=secret, aws_session_token=token, config=S3_CONFIG,
    )


def error_code(err: ClientError) -> str:
    return err.response["Error"]["Code"]


class Setup:
    """A custom build type, a source object and a Source → Approval → Build pipeline."""

    def __init__(self, cp, endpoint, mode: str | None = None, approval: bool = True):
        self.cp = cp
        self.endpoint = endpoint
        self.provider = unique("Make")[:35]
        self.type_id = {"category": "Build", "owner": "Custom", "provider": self.provider, "version": "1"}
        self.declare_type()
        self.bucket = unique("src").lower()
        s3_client(endpoint).put_object(Bucket=self.bucket, Key="app.zip", Body=b"source v1")
        self.name = unique("pipe")
        declaration = {
            "name": self.name, "roleArn": ROLE_ARN,
            "artifactStore": {"type": "S3", "location": "artifacts"},
            "stages": [
                {"name": "Source", "actions": [{
                    "name": "Src", "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                    "configuration": {"S3Bucket": self.bucket, "S3ObjectKey": "app.zip"},
                    "outputArtifacts": [{"name": "code"}]}]},
                {"name": "Approve", "actions": [{
                    "name": "Gate", "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}]},
                {"name": "Build", "actions": [{
                    "name": "Make", "actionTypeId": self.type_id,
                    "configuration": {"Target": "all", "Token": "hunter2"},
                    "inputArtifacts": [{"name": "code"}], "outputArtifacts": [{"name": "bin"}]}]},
            ],
        }
        if not approval:
            del declaration["stages"][1]
        if mode:
            declaration.update(pipelineType="V2", executionMode=mode)
        cp.create_pipeline(pipeline=declaration)

    def declare_type(self):
        self.cp.create_custom_action_type(
            category="Build", provider=self.provider, version="1",
            configurationProperties=[
                {"name": "Target", "required": True, "key": True, "secret": False, "queryable": True},
                {"name": "Token", "required": False, "key": False, "secret": True},
            ],
            inputArtifactDetails={"minimumCount": 1, "maximumCount": 1},
            outputArtifactDetails={"minimumCount": 0, "maximumCount": 1},
        )

    def start(self, **kwargs) -> str:
        return self.cp.start_pipeline_execution(name=self.name, **kwargs)["pipelineExecutionId"]

    def execution(self, execution_id: str) -> dict:
        return self.cp.get_pipeline_execution(pipelineName=self.name, pipelineExecutionId=execution_id)["pipelineExecution"]

    def action_state(self, stage: str) -> dict:
        states = self.cp.get_pipeline_state(name=self.name)["stageStates"]
        return next(s for s in states if s["stageName"] == stage)["actionStates"][0]

    def approve(self, status: str = "Approved", summary: str = "looks good"):
        token = self.action_state("Approve")["latestExecution"]["token"]
        return self.cp.put_approval_result(
            pipelineName=self.name, stageName="Approve", actionName="Gate",
            result={"summary": summary, "status": status}, token=token,
        )

    def poll(self, expect: int = 1) -> list:
        jobs = self.cp.poll_for_jobs(actionTypeId=self.type_id, maxBatchSize=10, queryParam={"Target": "all"})["jobs"]
        assert len(jobs) == expect, jobs
        return jobs


@pytest.fixture
def setup(cp, endpoint):
    return Setup(cp, endpoint)


def test_source_approval_build_end_to_end(setup, cp, endpoint):
    execution_id = setup.start()
    assert setup.execution(execution_id)["status"] == "InProgress"
    assert setup.action_state("Source")["latestExecution"]["status"] == "Succeeded"
    gate = setup.action_state("Approve")["latestExecution"]
    assert gate["status"] == "InProgress" and gate["token"]
    setup.poll(expect=0)  # nothing to build before the approval

    assert "approvedAt" in setup.approve()
    [job] = setup.poll()
    data = job["data"]
    assert data["actionConfiguration"]["configuration"] == {"Target": "all", "Token": "hunter2"}
    assert data["pipelineContext"]["pipelineExecutionId"] == execution_id
    assert data["pipelineContext"]["stage"]["name"] == "Build"
    assert cp.acknowledge_job(jobId=job["id"], nonce=job["nonce"])["status"] == "InProgress"

    credentials = data["artifactCredentials"]
    worker = s3_client(endpoint, credentials["accessKeyId"], credentials["secretAccessKey"], credentials["sessionToken"])
    source = data["inputArtifacts"][0]["location"]["s3Location"]
    assert worker.get_object(Bucket=source["bucketName"], Key=source["objectKey"])["Body"].read() == b"source v1"
    with pytest.raises(ClientError) as refused:
        worker.get_object(Bucket=setup.bucket, Key="app.zip")
    assert error_code(refused.value) == "AccessDenied"
    output = data["outputArtifacts"][0]["location"]["s3Location"]
    worker.put_object(Bucket=output["bucketName"], Key=output["objectKey"], Body=b"built binary")

    cp.put_job_success_result(jobId=job["id"], continuationToken="half-way",
                              executionDetails={"summary": "compiling", "percentComplete": 50})
    assert setup.action_state("Build")["latestExecution"]["status"] == "InProgress"
    [again] = setup.poll()
    assert again["data"]["continuationToken"] == "half-way"
    cp.acknowledge_job(jobId=again["id"], nonce=again["nonce"])
    cp.put_job_success_result(jobId=again["id"], executionDetails={"summary": "built", "percentComplete": 100,
                                                                   "externalExecutionId": "run-7"})

    execution = setup.execution(execution_id)
    assert execution["status"] == "Succeeded"
    etag = s3_client(endpoint).head_object(Bucket=setup.bucket, Key="app.zip")["ETag"].strip('"')
    assert [r["revisionId"] for r in execution["artifactRevisions"]] == [etag]
    build = setup.action_state("Build")["latestExecution"]
    assert (build["status"], build["summary"], build["externalExecutionId"]) == ("Succeeded", "built", "run-7")
    # The job is over: its credentials no longer work.
    with pytest.raises(ClientError):
        worker.get_object(Bucket=source["bucketName"], Key=source["objectKey"])

    listed = cp.list_action_executions(pipelineName=setup.name, filter={"pipelineExecutionId": execution_id})
    details = {d["actionName"]: d for d in listed["actionExecutionDetails"]}
    assert {name: d["status"] for name, d in details.items()} == {"Src": "Succeeded", "Gate": "Succeeded", "Make": "Succeeded"}
    assert details["Make"]["input"]["configuration"] == {"Target": "all", "Token": "****"}, "secrets stay hidden"
    assert details["Make"]["output"]["executionResult"]["externalExecutionId"] == "run-7"
    assert details["Make"]["input"]["inputArtifacts"][0]["s3location"]["key"] == source["objectKey"]
    first = cp.list_action_executions(pipelineName=setup.name, maxResults=2)
    rest = cp.list_action_executions(pipelineName=setup.name, maxResults=2, nextToken=first["nextToken"])
    paged = [d["actionExecutionId"] for d in first["actionExecutionDetails"] + rest["actionExecutionDetails"]]
    assert sorted(paged) == sorted(d["actionExecutionId"] for d in details.values())
    assert "nextToken" not in rest


def test_failure_result_fails_the_execution(setup, cp):
    execution_id = setup.start()
    setup.approve()
    [job] = setup.poll()
    cp.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
    cp.put_job_failure_result(jobId=job["id"], failureDetails={"type": "JobFailed", "message": "make: *** [all] Error 2"})
    assert setup.execution(execution_id)["status"] == "Failed"
    details = setup.action_state("Build")["latestExecution"]
    assert details["status"] == "Failed"
    assert details["errorDetails"] == {"code": "JobFailed", "message": "make: *** [all] Error 2"}


def test_rejection_fails_the_execution(setup):
    execution_id = setup.start()
    setup.approve(status="Rejected", summary="not today")
    assert setup.execution(execution_id)["status"] == "Failed"
    gate = setup.action_state("Approve")["latestExecution"]
    assert gate["status"] == "Failed" and "not today" in gate["errorDetails"]["message"]
    setup.poll(expect=0)


def test_protocol_errors(setup, cp):
    setup.start()
    token = setup.action_state("Approve")["latestExecution"]["token"]
    with pytest.raises(ClientError) as wrong_token:
        cp.put_approval_result(pipelineName=setup.name, stageName="Approve", actionName="Gate",
                               result={"summary": "x", "status": "Approved"}, token="00000000-0000-0000-0000-000000000000")
    assert error_code(wrong_token.value) == "InvalidApprovalTokenException"
    setup.approve()
    with pytest.raises(ClientError) as twice:
        cp.put_approval_result(pipelineName=setup.name, stageName="Approve", actionName="Gate",
                               result={"summary": "x", "status": "Approved"}, token=token)
    assert error_code(twice.value) == "ApprovalAlreadyCompletedException"

    [job] = setup.poll()
    with pytest.raises(ClientError) as early:
        cp.put_job_success_result(jobId=job["id"])
    assert error_code(early.value) == "InvalidJobStateException"
    with pytest.raises(ClientError) as bad_nonce:
        cp.acknowledge_job(jobId=job["id"], nonce="not-the-nonce")
    assert error_code(bad_nonce.value) == "InvalidNonceException"
    with pytest.raises(ClientError) as unknown:
        cp.acknowledge_job(jobId="11111111-2222-3333-4444-555555555555", nonce="x")
    assert error_code(unknown.value) == "JobNotFoundException"
    with pytest.raises(ClientError) as no_query:
        cp.poll_for_jobs(actionTypeId=setup.type_id)
    assert error_code(no_query.value) == "ValidationException"
    details = cp.get_job_details(jobId=job["id"])["jobDetails"]
    assert details["id"] == job["id"] and details["data"]["pipelineContext"]["pipelineName"] == setup.name


def test_missing_source_object_fails_with_a_message(cp, endpoint):
    setup = Setup(cp, endpoint)
    s3_client(endpoint).delete_object(Bucket=setup.bucket, Key="app.zip")
    execution_id = setup.start()
    assert setup.execution(execution_id)["status"] == "Failed"
    source = setup.action_state("Source")["latestExecution"]
    assert source["status"] == "Failed" and "does not exist" in source["errorDetails"]["message"]


def test_client_request_token_and_paging(setup, cp):
    first = setup.start(clientRequestToken="deploy-42")
    assert setup.start(clientRequestToken="deploy-42") == first
    ids = [first] + [setup.start() for _ in range(4)]
    seen, token = [], None
    while True:
        kwargs = {"pipelineName": setup.name, "maxResults": 2}
        if token:
            kwargs["nextToken"] = token
        page = cp.list_pipeline_executions(**kwargs)
        seen += [s["pipelineExecutionId"] for s in page["pipelineExecutionSummaries"]]
        token = page.get("nextToken")
        if not token:
            break
    assert seen == list(reversed(ids)), "newest first, each once"
    with pytest.raises(ClientError) as missing:
        cp.get_pipeline_execution(pipelineName=setup.name, pipelineExecutionId="00000000-0000-0000-0000-000000000000")
    assert error_code(missing.value) == "PipelineExecutionNotFoundException"


def statuses(setup, ids):
    return [setup.execution(i)["status"] for i in ids]


def test_superseded_mode_replaces_waiting_executions(setup):
    first, second, third = setup.start(), setup.start(), setup.start()
    # The first holds the approval stage; the second waited behind it and was replaced by the third.
    assert statuses(setup, [first, second, third]) == ["InProgress", "Superseded", "InProgress"]
    setup.approve()
    gate = setup.action_state("Approve")["latestExecution"]
    assert gate["status"] == "InProgress", "the third execution entered the approval stage"
    assert setup.cp.get_pipeline_state(name=setup.name)["stageStates"][1]["latestExecution"]["pipelineExecutionId"] == third


def test_queued_mode_runs_in_order(cp, endpoint):
    setup = Setup(cp, endpoint, mode="QUEUED")
    first, second, third = setup.start(), setup.start(), setup.start()
    assert statuses(setup, [first, second, third]) == ["InProgress"] * 3
    setup.approve()
    state = cp.get_pipeline_state(name=setup.name)["stageStates"][1]["latestExecution"]
    assert state["pipelineExecutionId"] == second, "the oldest waiting execution goes next"
    setup.approve()
    assert cp.get_pipeline_state(name=setup.name)["stageStates"][1]["latestExecution"]["pipelineExecutionId"] == third


def test_parallel_mode_runs_side_by_side(cp, endpoint):
    setup = Setup(cp, endpoint, mode="PARALLEL")
    first, second = setup.start(), setup.start()
    setup.approve()  # approves the newest execution's gate
    jobs = setup.poll()
    assert jobs[0]["data"]["pipelineContext"]["pipelineExecutionId"] == second
    assert statuses(setup, [first, second]) == ["InProgress", "InProgress"]


def test_variables_are_resolved(cp, endpoint):
    setup = Setup(cp, endpoint, mode="PARALLEL")
    declaration = cp.get_pipeline(name=setup.name)["pipeline"]
    declaration["variables"] = [{"name": "Env", "defaultValue": "dev"}, {"name": "Region"}]
    cp.update_pipeline(pipeline=declaration)
    execution_id = setup.start(variables=[{"name": "Region", "value": "eu-west-1"}])
    variables = {v["name"]: v["resolvedValue"] for v in setup.execution(execution_id)["variables"]}
    assert variables == {"Env": "dev", "Region": "eu-west-1"}
    with pytest.raises(ClientError) as unknown:
        setup.start(variables=[{"name": "Region", "value": "x"}, {"name": "Nope", "value": "y"}])
    assert error_code(unknown.value) == "ValidationException"
    with pytest.raises(ClientError) as missing:
        setup.start()
    assert error_code(missing.value) == "ValidationException"


def test_a_start_runs_the_latest_declaration_after_an_update_and_after_a_recreate(cp, endpoint):
    """Starts keep the latest definition between them; an update, and a delete followed by a
    create under the same name (which starts again at version 1), must each be seen."""
    setup = Setup(cp, endpoint, mode="PARALLEL", approval=False)

    def start_and_poll(target: str) -> dict:
        execution_id = setup.start()
        jobs = cp.poll_for_jobs(actionTypeId=setup.type_id, maxBatchSize=10, queryParam={"Target": target})["jobs"]
        assert len(jobs) == 1, f"one job for Target={target}"
        assert jobs[0]["data"]["pipelineContext"]["pipelineExecutionId"] == execution_id
        return setup.execution(execution_id)

    def with_target(declaration: dict, target: str) -> dict:
        declaration["stages"][1]["actions"][0]["configuration"]["Target"] = target
        return declaration

    assert start_and_poll("all")["pipelineVersion"] == 1
    declaration = cp.get_pipeline(name=setup.name)["pipeline"]
    del declaration["version"]
    cp.delete_pipeline(name=setup.name)
    cp.create_pipeline(pipeline=with_target(declaration, "recreated"))
    assert start_and_poll("recreated")["pipelineVersion"] == 1
    cp.update_pipeline(pipeline=with_target(declaration, "updated"))
    assert start_and_poll("updated")["pipelineVersion"] == 2


def test_polling_a_deleted_custom_action_type_fails_until_it_is_restored(cp, endpoint):
    # AWS: PollForJobs for the custom action fails after the action is marked for deletion.
    setup = Setup(cp, endpoint, approval=False)
    setup.start()
    other = cp.poll_for_jobs(actionTypeId=setup.type_id, maxBatchSize=1, queryParam={"Target": "other"})
    assert other["jobs"] == []  # the server now keeps the type as live
    cp.delete_custom_action_type(category="Build", provider=setup.provider, version="1")
    with pytest.raises(ClientError) as deleted:
        setup.poll()
    assert error_code(deleted.value) == "ActionTypeNotFoundException"
    assert setup.action_state("Build")["latestExecution"]["status"] == "InProgress"
    # Declared again exactly as it was, the type is restored, and its queued job can be polled.
    setup.declare_type()
    setup.poll()
    never = dict(setup.type_id, provider=unique("Never")[:35])
    with pytest.raises(ClientError) as undeclared:
        cp.poll_for_jobs(actionTypeId=never, maxBatchSize=1)
    assert error_code(undeclared.value) == "ActionTypeNotFoundException"


def test_a_job_queued_while_its_type_is_deleted_is_polled_once_the_type_is_restored(cp, endpoint):
    # The job goes to the queue of its queryable property's value even while the type is
    # deleted, so restoring the type is enough to poll it.
    setup = Setup(cp, endpoint, approval=False)
    cp.delete_custom_action_type(category="Build", provider=setup.provider, version="1")
    execution_id = setup.start()
    assert setup.action_state("Build")["latestExecution"]["status"] == "InProgress"
    setup.declare_type()
    [job] = setup.poll()
    assert job["data"]["pipelineContext"]["pipelineExecutionId"] == execution_id
    assert job["data"]["actionConfiguration"]["configuration"] == {"Target": "all", "Token": "hunter2"}


def test_deleting_a_pipeline_ends_its_jobs_and_a_recreated_one_starts_afresh(cp, endpoint):
    setup = Setup(cp, endpoint, mode="PARALLEL", approval=False)
    setup.start()
    [held] = setup.poll()
    assert cp.acknowledge_job(jobId=held["id"], nonce=held["nonce"])["status"] == "InProgress"
    setup.start()  # its job stays queued
    cp.disable_stage_transition(pipelineName=setup.name, stageName="Build", transitionType="Inbound", reason="hold")
    declaration = cp.get_pipeline(name=setup.name)["pipeline"]
    del declaration["version"]
    cp.delete_pipeline(name=setup.name)
    # The queued job is not handed out (polls of the type are not refused because of it), and
    # the held job's result is refused.
    setup.poll(expect=0)
    with pytest.raises(ClientError) as refused:
        cp.put_job_success_result(jobId=held["id"])
    assert error_code(refused.value) == "InvalidJobStateException"

    # Created again under the same name, the pipeline has no history and no disabled transition.
    cp.create_pipeline(pipeline=declaration)
    assert cp.list_pipeline_executions(pipelineName=setup.name)["pipelineExecutionSummaries"] == []
    states = cp.get_pipeline_state(name=setup.name)["stageStates"]
    assert [s.get("latestExecution") for s in states] == [None, None]
    assert states[1]["inboundTransitionState"]["enabled"] is True
    execution_id = setup.start()
    [job] = setup.poll()
    assert job["data"]["pipelineContext"]["pipelineExecutionId"] == execution_id
    cp.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
    cp.put_job_success_result(jobId=job["id"])
    assert setup.execution(execution_id)["status"] == "Succeeded"


def test_kill_9_with_jobs_dispatched_and_in_progress(tmp_path):
    server = SluiceServer(tmp_path / "data", tmp_path, name="killed").start()
    config = Config(retries={"total_max_attempts": 1})
    make = lambda s: boto3.client(  # noqa: E731
        "codepipeline", endpoint_url=s.endpoint, region_name=REGION, config=config,
        aws_access_key_id=ROOT_ACCESS_KEY_ID, aws_secret_access_key=ROOT_SECRET_ACCESS_KEY,
    )
    setup = Setup(make(server), server.endpoint, mode="PARALLEL", approval=False)
    ids = [setup.start() for _ in range(3)]
    jobs = setup.poll(expect=3)
    acknowledged = jobs[:2]
    for job in acknowledged:
        setup.cp.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
    server.kill()

    again = SluiceServer(tmp_path / "data", tmp_path, name="revived").start()
    try:
        setup.cp = make(again)
        setup.poll(expect=0)  # nothing was lost back to the queue, nothing handed out twice
        dispatched = jobs[2]
        assert setup.cp.acknowledge_job(jobId=dispatched["id"], nonce=dispatched["nonce"])["status"] == "InProgress"
        for job in jobs:
            setup.cp.put_job_success_result(jobId=job["id"])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and statuses(setup, ids) != ["Succeeded"] * 3:
            time.sleep(0.1)
        assert statuses(setup, ids) == ["Succeeded"] * 3
    finally:
        again.stop()


def test_third_party_jobs_need_the_client_token(cp, endpoint):
    import json as _json
    import subprocess

    from sluice_testlib import binary_path, clean_env

    provider = unique("Vendor")[:35]
    registered = subprocess.run(
        [str(binary_path()), "action-types", "register-third-party", "--category", "Deploy",
         "--provider", provider, "--version", "1", "--input-artifacts", "1..1", "--output-artifacts", "0..0"],
        env=clean_env(SLUICE_ENDPOINT=endpoint, AWS_ACCESS_KEY_ID=ROOT_ACCESS_KEY_ID,
                      AWS_SECRET_ACCESS_KEY=ROOT_SECRET_ACCESS_KEY),
        capture_output=True, text=True, timeout=60, check=True,
    )
    client = _json.loads(registered.stdout)
    setup = Setup(cp, endpoint, approval=False)
    declaration = cp.get_pipeline(name=setup.name)["pipeline"]
    type_id = {"category": "Deploy", "owner": "ThirdParty", "provider": provider, "version": "1"}
    declaration["stages"][1]["actions"][0].update(actionTypeId=type_id, configuration={}, outputArtifacts=[])
    cp.update_pipeline(pipeline=declaration)
    execution_id = setup.start()

    [polled] = cp.poll_for_third_party_jobs(actionTypeId=type_id, maxBatchSize=5)["jobs"]
    assert polled["clientId"] == client["clientId"]
    job_id = polled["jobId"]
    for call in [
        lambda token: cp.get_third_party_job_details(jobId=job_id, clientToken=token),
        lambda token: cp.put_third_party_job_success_result(jobId=job_id, clientToken=token),
    ]:
        with pytest.raises(ClientError) as refused:
            call("not-the-token")
        assert error_code(refused.value) == "InvalidClientTokenException"
    details = cp.get_third_party_job_details(jobId=job_id, clientToken=client["clientToken"])["jobDetails"]
    assert details["nonce"] and details["data"]["pipelineContext"]["pipelineExecutionId"] == execution_id
    assert details["data"]["artifactCredentials"]["sessionToken"]
    with pytest.raises(ClientError) as wrong_ack:
        cp.acknowledge_third_party_job(jobId=job_id, nonce=details["nonce"], clientToken="nope")
    assert error_code(wrong_ack.value) == "InvalidClientTokenException"
    assert setup.execution(execution_id)["status"] == "InProgress", "a refused call changes nothing"
    ack = cp.acknowledge_third_party_job(jobId=job_id, nonce=details["nonce"], clientToken=client["clientToken"])
    assert ack["status"] == "InProgress"
    cp.put_third_party_job_failure_result(
        jobId=job_id, clientToken=client["clientToken"],
        failureDetails={"type": "ConfigurationError", "message": "vendor says no"},
    )
    assert setup.execution(execution_id)["status"] == "Failed"
    failed = setup.action_state("Build")["latestExecution"]
    assert failed["errorDetails"] == {"code": "ConfigurationError", "message": "vendor says no"}


def test_stop_waits_for_running_actions_or_abandons_them(setup, cp):
    # Without abandon: Stopping until the running approval is answered, then Stopped.
    first = setup.start()
    cp.stop_pipeline_execution(pipelineName=setup.name, pipelineExecutionId=first, reason="enough")
    assert setup.execution(first)["status"] == "Stopping"
    with pytest.raises(ClientError) as again:
        cp.stop_pipeline_execution(pipelineName=setup.name, pipelineExecutionId=first)
    assert error_code(again.value) == "DuplicatedStopRequestException"
    setup.approve()
    assert setup.execution(first)["status"] == "Stopped"
    setup.poll(expect=0)  # a stopping execution starts nothing new

    # With abandon: the running build job is abandoned at once and its worker is refused.
    second = setup.start()
    setup.approve()
    [job] = setup.poll()
    cp.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
    cp.stop_pipeline_execution(pipelineName=setup.name, pipelineExecutionId=second, abandon=True)
    assert setup.execution(second)["status"] == "Stopped"
    assert setup.action_state("Build")["latestExecution"]["status"] == "Abandoned"
    with pytest.raises(ClientError) as late:
        cp.put_job_success_result(jobId=job["id"])
    assert error_code(late.value) == "InvalidJobStateException"
    with pytest.raises(ClientError) as done:
        cp.stop_pipeline_execution(pipelineName=setup.name, pipelineExecutionId=second)
    assert error_code(done.value) == "PipelineExecutionNotStoppableException"


def test_disabled_transition_holds_executions_until_enabled(setup, cp):
    cp.disable_stage_transition(pipelineName=setup.name, stageName="Build", transitionType="Inbound",
                                reason="change freeze")
    execution_id = setup.start()
    setup.approve()
    setup.poll(expect=0)
    build = next(s for s in cp.get_pipeline_state(name=setup.name)["stageStates"] if s["stageName"] == "Build")
    assert build["inboundTransitionState"]["enabled"] is False
    assert build["inboundTransitionState"]["disabledReason"] == "change freeze"
    assert setup.execution(execution_id)["status"] == "InProgress"

    cp.enable_stage_transition(pipelineName=setup.name, stageName="Approve", transitionType="Outbound")
    [job] = setup.poll()
    assert job["data"]["pipelineContext"]["pipelineExecutionId"] == execution_id
    with pytest.raises(ClientError) as unknown:
        cp.disable_stage_transition(pipelineName=setup.name, stageName="Nope", transitionType="Inbound", reason="x")
    assert error_code(unknown.value) == "StageNotFoundException"


def test_configuration_variables_resolve_from_pipeline_variables_and_namespaces(cp, endpoint):
    setup = Setup(cp, endpoint, mode="PARALLEL", approval=False)
    declaration = cp.get_pipeline(name=setup.name)["pipeline"]
    declaration["variables"] = [{"name": "Target", "defaultValue": "all"}]
    declaration["stages"][0]["actions"][0]["namespace"] = "SourceVariables"
    build = declaration["stages"][1]["actions"][0]
    build["configuration"] = {"Target": "#{variables.Target}", "Token": "etag-#{SourceVariables.ETag}"}
    cp.update_pipeline(pipeline=declaration)
    execution_id = setup.start()
    [job] = setup.poll()  # polls with queryParam Target=all: the resolved value
    etag = s3_client(endpoint).head_object(Bucket=setup.bucket, Key="app.zip")["ETag"].strip('"')
    assert job["data"]["actionConfiguration"]["configuration"] == {"Target": "all", "Token": f"etag-{etag}"}
    details = cp.list_action_executions(pipelineName=setup.name, filter={"pipelineExecutionId": execution_id})
    make = next(d for d in details["actionExecutionDetails"] if d["actionName"] == "Make")
    assert make["input"]["resolvedConfiguration"] == {"Target": "all", "Token": "****"}, "secrets stay hidden"

    build["configuration"] = {"Target": "all", "Token": "#{Nowhere.Value}"}
    cp.update_pipeline(pipeline=declaration)
    failed = setup.start()
    assert setup.execution(failed)["status"] == "Failed"
    error = setup.action_state("Build")["latestExecution"]["errorDetails"]
    assert error["code"] == "ConfigurationError" and "#{Nowhere.Value}" in error["message"]


def fail_build(setup, cp, message="make: *** [all] Error 2"):
    [job] = setup.poll()
    cp.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
    cp.put_job_failure_result(jobId=job["id"], failureDetails={"type": "JobFailed", "message": message})


def retry(setup, execution_id, stage="Build", mode="FAILED_ACTIONS"):
    return setup.cp.retry_stage_execution(pipelineName=setup.name, stageName=stage,
                                          pipelineExecutionId=execution_id, retryMode=mode)


def test_retry_failed_actions_reruns_the_failed_build(setup, cp):
    execution_id = setup.start()
    setup.approve()
    fail_build(setup, cp)
    assert setup.execution(execution_id)["status"] == "Failed"

    assert retry(setup, execution_id)["pipelineExecutionId"] == execution_id
    assert setup.execution(execution_id)["status"] == "InProgress"
    build = next(s for s in cp.get_pipeline_state(name=setup.name)["stageStates"] if s["stageName"] == "Build")
    assert build["latestExecution"] == {"pipelineExecutionId": execution_id, "status": "InProgress"}
    assert build["retryStageMetadata"] == {"manualStageRetryAttempt": 1, "latestRetryTrigger": "ManualStageRetry"}
    [job] = setup.poll()
    cp.acknowledge_job(jobId=job["id"], nonce=job["nonce"])
    cp.put_job_success_result(jobId=job["id"], executionDetails={"summary": "second time lucky"})
    assert setup.execution(execution_id)["status"] == "Succeeded"

    # Both runs of the build are in the history: the failed one and the retry.
    runs = cp.list_action_executions(pipelineName=setup.name, filter={"pipelineExecutionId": execution_id})
    builds = [d["status"] for d in runs["actionExecutionDetails"] if d["actionName"] == "Make"]
    assert builds == ["Succeeded", "Failed"]
    with pytest.raises(ClientError) as succeeded:
        retry(setup, execution_id)
    assert error_code(succeeded.value) == "StageNotRetryableException"


def test_retry_all_actions_reruns_a_rejected_stage_and_checks_its_arguments(setup, cp):
    execution_id = setup.start()
    setup.approve(status="Rejected", summary="not yet")
    assert setup.execution(execution_id)["status"] == "Failed"
    with pytest.raises(ClientError) as wrong_stage:
        retry(setup, execution_id, stage="Build")
    assert error_code(wrong_stage.value) == "StageNotRetryableException"
    with pytest.raises(ClientError) as no_stage:
        retry(setup, execution_id, stage="Nope")
    assert error_code(no_stage.value) == "StageNotFoundException"
    with pytest.raises(ClientError) as bad_mode:
        retry(setup, execution_id, stage="Approve", mode="SOME_ACTIONS")
    assert error_code(bad_mode.value) == "ValidationException"
    with pytest.raises(ClientError) as no_execution:
        retry(setup, "00000000-0000-0000-0000-000000000000", stage="Approve")
    assert error_code(no_execution.value) == "PipelineExecutionNotFoundException"

    retry(setup, execution_id, stage="Approve", mode="ALL_ACTIONS")
    gate = setup.action_state("Approve")["latestExecution"]
    assert gate["status"] == "InProgress" and gate["token"]
    setup.approve()
    fail_build(setup, cp)
    assert setup.execution(execution_id)["status"] == "Failed"


def test_retry_is_refused_once_a_later_execution_ran_the_stage(cp, endpoint):
    setup = Setup(cp, endpoint, approval=False)
    first = setup.start()
    fail_build(setup, cp)
    second = setup.start()
    fail_build(setup, cp)
    with pytest.raises(ClientError) as stale:
        retry(setup, first)
    assert error_code(stale.value) == "NotLatestPipelineExecutionException"
    retry(setup, second)
    setup.poll()
    assert statuses(setup, [first, second]) == ["Failed", "InProgress"]
