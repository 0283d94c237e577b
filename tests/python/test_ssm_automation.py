"""SSM Automation executions through boto3's `ssm` client: sleeps, approvals, pauses, branches,
child runbooks, Interactive mode, failure handling, cancellation, filters and paging, and the
error codes. Scripts and commands (which need `sluice worker --automation`) are in
test_automation_worker.py; restarts in the middle of a sleep or a wait are at the end."""

from __future__ import annotations

import json
import time
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from sluice_testlib import ACCOUNT_ID, REGION, ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, SluiceServer, unique

ROOT_ARN = f"arn:aws:iam::{ACCOUNT_ID}:root"
FINAL = {"Success", "Failed", "Cancelled", "TimedOut"}


def ssm_client(endpoint: str, access_key: str = ROOT_ACCESS_KEY_ID, secret_key: str = ROOT_SECRET_ACCESS_KEY):
    session = boto3.session.Session(
        aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=REGION
    )
    config = Config(retries={"max_attempts": 1, "total_max_attempts": 1, "mode": "standard"}, read_timeout=30)
    return session.client("ssm", endpoint_url=endpoint, config=config)


@pytest.fixture(scope="module")
def ssm(endpoint):
    return ssm_client(endpoint)


def create(ssm, steps: list, parameters: dict | None = None, outputs: list | None = None) -> str:
    name = unique("runbook")
    document = {"schemaVersion": "0.3", "parameters": parameters or {}, "mainSteps": steps}
    if outputs:
        document["outputs"] = outputs
    ssm.create_document(Name=name, Content=json.dumps(document), DocumentType="Automation")
    return name


def execution(ssm, execution_id: str) -> dict:
    return ssm.get_automation_execution(AutomationExecutionId=execution_id)["AutomationExecution"]


def wait_for(ssm, execution_id: str, statuses: set, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        current = execution(ssm, execution_id)
        if current["AutomationExecutionStatus"] in statuses:
            return current
        assert time.monotonic() < deadline, f"still {current['AutomationExecutionStatus']}: {current}"
        time.sleep(0.1)


def steps_by_name(current: dict) -> dict:
    return {step["StepName"]: step for step in current["StepExecutions"]}


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


APPROVAL_RUNBOOK = [
    {"name": "nap", "action": "aws:sleep", "inputs": {"Duration": "PT1S"}},
    {
        "name": "gate",
        "action": "aws:approve",
        "inputs": {"Approvers": [ROOT_ARN], "Message": "Deploy {{ Target }}?"},
    },
    {
        "name": "choose",
        "action": "aws:branch",
        "inputs": {
            "Choices": [
                {"NextStep": "prod", "Variable": "{{ Target }}", "StringEquals": "prod"},
                {"NextStep": "other", "Not": {"Variable": "{{ Target }}", "StringEquals": "prod"}},
            ]
        },
    },
    {"name": "prod", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}, "isEnd": True},
    {"name": "other", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}},
]


def test_sleep_approve_branch_runs_to_success(ssm):
    name = create(ssm, APPROVAL_RUNBOOK, {"Target": {"type": "String", "allowedValues": ["prod", "dev"]}})
    started = time.time()
    execution_id = ssm.start_automation_execution(DocumentName=name, Parameters={"Target": ["prod"]})[
        "AutomationExecutionId"
    ]
    assert len(execution_id) == 36
    current = execution(ssm, execution_id)
    assert current["AutomationExecutionStatus"] == "InProgress"
    assert current["CurrentStepName"] == "nap" and current["CurrentAction"] == "aws:sleep"

    waiting = wait_for(ssm, execution_id, {"Waiting"} | FINAL)
    assert waiting["AutomationExecutionStatus"] == "Waiting"
    assert time.time() - started >= 1.0, "the sleep ended early"
    steps = steps_by_name(waiting)
    assert steps["nap"]["StepStatus"] == "Success"
    assert steps["gate"]["StepStatus"] == "Waiting"
    assert json.loads(steps["gate"]["Inputs"]["Message"]) == "Deploy prod?"
    listed = ssm.describe_automation_executions(
        Filters=[{"Key": "ExecutionStatus", "Values": ["Waiting"]}, {"Key": "DocumentNamePrefix", "Values": [name]}]
    )["AutomationExecutionMetadataList"]
    assert [e["AutomationExecutionId"] for e in listed] == [execution_id]
    assert listed[0]["CurrentAction"] == "aws:approve"

    ssm.send_automation_signal(
        AutomationExecutionId=execution_id, SignalType="Approve", Payload={"Comment": ["ship it"]}
    )
    done = wait_for(ssm, execution_id, FINAL)
    assert done["AutomationExecutionStatus"] == "Success", done
    steps = steps_by_name(done)
    assert [s["StepName"] for s in done["StepExecutions"]] == ["nap", "gate", "choose", "prod"]
    assert steps["gate"]["Outputs"]["ApprovalStatus"] == ["Approved"]
    assert "other" not in steps
    assert done["ExecutedBy"] == ROOT_ARN
    assert done["Parameters"] == {"Target": ["prod"]}
    assert "ExecutionEndTime" in done
    gone = ssm.describe_automation_executions(
        Filters=[{"Key": "ExecutionStatus", "Values": ["Waiting"]}, {"Key": "DocumentNamePrefix", "Values": [name]}]
    )["AutomationExecutionMetadataList"]
    assert gone == []


def test_reject_fails_with_a_message(ssm):
    name = create(ssm, APPROVAL_RUNBOOK[1:], {"Target": {"type": "String", "default": "dev"}})
    execution_id = ssm.start_automation_execution(DocumentName=name)["AutomationExecutionId"]
    wait_for(ssm, execution_id, {"Waiting"})
    ssm.send_automation_signal(
        AutomationExecutionId=execution_id, SignalType="Reject", Payload={"Comment": ["not today"]}
    )
    done = wait_for(ssm, execution_id, FINAL)
    assert done["AutomationExecutionStatus"] == "Failed"
    assert "rejected" in done["FailureMessage"] and "not today" in done["FailureMessage"]
    gate = steps_by_name(done)["gate"]
    assert gate["StepStatus"] == "Failed" and "rejected" in gate["FailureMessage"]
    assert list(steps_by_name(done)) == ["gate"], "nothing runs after an aborting failure"


def test_signals_that_do_not_fit_are_refused(ssm):
    name = create(ssm, APPROVAL_RUNBOOK[1:2], {"Target": {"type": "String", "default": "dev"}})
    execution_id = ssm.start_automation_execution(DocumentName=name)["AutomationExecutionId"]
    with pytest.raises(ClientError) as excinfo:
        ssm.send_automation_signal(AutomationExecutionId=execution_id, SignalType="Resume")
    assert error_code(excinfo) == "InvalidAutomationSignalException"
    with pytest.raises(ClientError) as excinfo:
        ssm.send_automation_signal(
            AutomationExecutionId=execution_id, SignalType="StartStep", Payload={"StepName": ["gate"]}
        )
    assert error_code(excinfo) == "InvalidAutomationSignalException"
    with pytest.raises(ClientError) as excinfo:
        ssm.send_automation_signal(AutomationExecutionId="0" * 36, SignalType="Approve")
    assert error_code(excinfo) == "AutomationExecutionNotFoundException"
    with pytest.raises(ClientError) as excinfo:
        ssm.get_automation_execution(AutomationExecutionId="1" * 36)
    assert error_code(excinfo) == "AutomationExecutionNotFoundException"
    assert execution(ssm, execution_id)["AutomationExecutionStatus"] == "Waiting"


def test_only_listed_approvers_count_and_two_are_needed(ssm, endpoint):
    from test_operator import run_sluice

    clients, arns = [], []
    for user in (unique("alice"), unique("bob")):
        done = run_sluice(endpoint, ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, "keys", "create", "--name", user)
        assert done.returncode == 0, done.stderr
        keys = json.loads(done.stdout)
        clients.append(ssm_client(endpoint, keys["accessKeyId"], keys["secretAccessKey"]))
        arns.append(f"arn:aws:iam::{ACCOUNT_ID}:user/{user}")
    alice, bob = clients
    steps = [
        {
            "name": "gate",
            "action": "aws:approve",
            "inputs": {"Approvers": ["{{ First }}", "{{ Second }}"], "MinRequiredApprovals": 2},
        }
    ]
    name = create(ssm, steps, {"First": {"type": "String"}, "Second": {"type": "String"}})
    execution_id = ssm.start_automation_execution(
        DocumentName=name, Parameters={"First": [arns[0]], "Second": [arns[1]]}
    )["AutomationExecutionId"]
    wait_for(ssm, execution_id, {"Waiting"})
    with pytest.raises(ClientError) as excinfo:
        ssm.send_automation_signal(AutomationExecutionId=execution_id, SignalType="Approve")
    assert error_code(excinfo) == "InvalidAutomationSignalException", "root is not a listed approver"
    alice.send_automation_signal(AutomationExecutionId=execution_id, SignalType="Approve")
    alice.send_automation_signal(AutomationExecutionId=execution_id, SignalType="Approve")
    assert execution(ssm, execution_id)["AutomationExecutionStatus"] == "Waiting", "one approver counts once"
    bob.send_automation_signal(AutomationExecutionId=execution_id, SignalType="Approve")
    done = wait_for(ssm, execution_id, FINAL)
    assert done["AutomationExecutionStatus"] == "Success"
    decisions = [json.loads(d) for d in steps_by_name(done)["gate"]["Outputs"]["ApproverDecisions"]]
    assert sorted(d["Approver"] for d in decisions) == sorted(arns)


def test_pause_waits_for_resume(ssm):
    steps = [
        {"name": "hold", "action": "aws:pause", "inputs": {}},
        {"name": "after", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}},
    ]
    name = create(ssm, steps)
    execution_id = ssm.start_automation_execution(DocumentName=name)["AutomationExecutionId"]
    waiting = wait_for(ssm, execution_id, {"Waiting"})
    assert steps_by_name(waiting)["hold"]["StepStatus"] == "Waiting"
    time.sleep(0.5)
    assert execution(ssm, execution_id)["AutomationExecutionStatus"] == "Waiting", "a pause never ends by itself"
    ssm.send_automation_signal(AutomationExecutionId=execution_id, SignalType="Resume")
    done = wait_for(ssm, execution_id, FINAL)
    assert done["AutomationExecutionStatus"] == "Success"
    assert [s["StepStatus"] for s in done["StepExecutions"]] == ["Success", "Success"]


def test_stop_cancels_a_waiting_execution(ssm):
    name = create(ssm, [{"name": "hold", "action": "aws:pause", "inputs": {}}])
    execution_id = ssm.start_automation_execution(DocumentName=name)["AutomationExecutionId"]
    wait_for(ssm, execution_id, {"Waiting"})
    ssm.stop_automation_execution(AutomationExecutionId=execution_id, Type="Cancel")
    done = wait_for(ssm, execution_id, FINAL)
    assert done["AutomationExecutionStatus"] == "Cancelled"
    assert steps_by_name(done)["hold"]["StepStatus"] == "Cancelled"
    with pytest.raises(ClientError) as excinfo:
        ssm.stop_automation_execution(AutomationExecutionId=execution_id)
    assert error_code(excinfo) == "InvalidAutomationStatusUpdateException"
    with pytest.raises(ClientError) as excinfo:
        ssm.send_automation_signal(AutomationExecutionId=execution_id, SignalType="Resume")
    assert error_code(excinfo) == "InvalidAutomationSignalException"


def test_on_cancel_runs_its_step_then_ends_cancelled(ssm):
    # onCancel may not lead to a sleep, pause or approval: the cleanup is a child runbook.
    child = create(ssm, [{"name": "tidy", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}}])
    steps = [
        {"name": "hold", "action": "aws:pause", "inputs": {}, "onCancel": "step:cleanup"},
        {"name": "never", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}, "isEnd": True},
        {"name": "cleanup", "action": "aws:executeAutomation", "inputs": {"DocumentName": child}},
    ]
    name = create(ssm, steps)
    execution_id = ssm.start_automation_execution(DocumentName=name)["AutomationExecutionId"]
    wait_for(ssm, execution_id, {"Waiting"})
    ssm.stop_automation_execution(AutomationExecutionId=execution_id)
    done = wait_for(ssm, execution_id, FINAL)
    assert done["AutomationExecutionStatus"] == "Cancelled"
    assert [(s["StepName"], s["StepStatus"]) for s in done["StepExecutions"]] == [
        ("hold", "Cancelled"),
        ("cleanup", "Success"),
    ]


def test_parameters_are_checked(ssm):
    name = create(
        ssm,
        [{"name": "nap", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}}],
        {
            "Env": {"type": "String", "allowedValues": ["dev", "prod"]},
            "Count": {"type": "Integer", "default": 1},
        },
    )
    for parameters in ({"Env": ["dev"], "Nope": ["x"]}, None, {"Env": ["staging"]}, {"Env": ["dev"], "Count": ["many"]}):
        given = {"Parameters": parameters} if parameters else {}
        with pytest.raises(ClientError) as excinfo:
            ssm.start_automation_execution(DocumentName=name, **given)
        assert error_code(excinfo) == "InvalidAutomationExecutionParametersException", parameters
    with pytest.raises(ClientError) as excinfo:
        ssm.start_automation_execution(DocumentName=unique("missing"))
    assert error_code(excinfo) == "AutomationDefinitionNotFoundException"
    with pytest.raises(ClientError) as excinfo:
        ssm.start_automation_execution(DocumentName=name, DocumentVersion="7", Parameters={"Env": ["dev"]})
    assert error_code(excinfo) == "AutomationDefinitionVersionNotFoundException"
    listed = ssm.describe_automation_executions(Filters=[{"Key": "DocumentNamePrefix", "Values": [name]}])
    assert listed["AutomationExecutionMetadataList"] == [], "a refused start stores nothing"


def test_client_token_starts_once(ssm):
    name = create(ssm, [{"name": "hold", "action": "aws:pause", "inputs": {}}])
    token = str(uuid.uuid4())
    first = ssm.start_automation_execution(DocumentName=name, ClientToken=token)["AutomationExecutionId"]
    again = ssm.start_automation_execution(DocumentName=name, ClientToken=token)["AutomationExecutionId"]
    assert first == again
    listed = ssm.describe_automation_executions(Filters=[{"Key": "DocumentNamePrefix", "Values": [name]}])
    assert len(listed["AutomationExecutionMetadataList"]) == 1


def test_failures_follow_on_failure_and_max_attempts(ssm):
    bad = {"Duration": "{{ Wait }}"}
    steps = [
        {"name": "tries", "action": "aws:sleep", "inputs": bad, "maxAttempts": 3, "onFailure": "Continue"},
        {"name": "jump", "action": "aws:sleep", "inputs": bad, "onFailure": "step:landing", "isCritical": False},
        {"name": "skipped", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}},
        {"name": "landing", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}},
    ]
    name = create(ssm, steps, {"Wait": {"type": "String", "default": "soon"}})
    execution_id = ssm.start_automation_execution(DocumentName=name)["AutomationExecutionId"]
    done = wait_for(ssm, execution_id, FINAL)
    steps = steps_by_name(done)
    assert list(steps) == ["tries", "jump", "landing"]
    assert steps["tries"]["StepStatus"] == "Failed" and steps["tries"]["MaxAttempts"] == 3
    assert steps["tries"]["OnFailure"] == "Continue"
    assert steps["jump"]["StepStatus"] == "Failed"
    assert steps["landing"]["StepStatus"] == "Success"
    # onFailure Continue makes a step non-critical by default, so the run succeeds.
    assert done["AutomationExecutionStatus"] == "Success", done

    critical = [
        {"name": "tries", "action": "aws:sleep", "inputs": bad, "onFailure": "Continue", "isCritical": True},
        {"name": "after", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}},
    ]
    name = create(ssm, critical, {"Wait": {"type": "String", "default": "soon"}})
    execution_id = ssm.start_automation_execution(DocumentName=name)["AutomationExecutionId"]
    done = wait_for(ssm, execution_id, FINAL)
    assert [s["StepStatus"] for s in done["StepExecutions"]] == ["Failed", "Success"]
    assert done["AutomationExecutionStatus"] == "Failed"
    assert "tries" in done["FailureMessage"]


def test_step_timeout_times_out(ssm):
    steps = [{"name": "hold", "action": "aws:pause", "inputs": {}, "timeoutSeconds": 1}]
    name = create(ssm, steps)
    execution_id = ssm.start_automation_execution(DocumentName=name)["AutomationExecutionId"]
    done = wait_for(ssm, execution_id, FINAL, timeout=15)
    assert steps_by_name(done)["hold"]["StepStatus"] == "TimedOut"
    assert done["AutomationExecutionStatus"] == "Failed"


def test_child_runbook_runs_and_reports(ssm):
    child = create(
        ssm,
        [{"name": "hold", "action": "aws:pause", "inputs": {}}],
        {"Who": {"type": "String"}},
    )
    parent_steps = [
        {
            "name": "call",
            "action": "aws:executeAutomation",
            "inputs": {"DocumentName": child, "RuntimeParameters": {"Who": "{{ automation:EXECUTION_ID }}"}},
        },
        {"name": "after", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}},
    ]
    parent_name = create(ssm, parent_steps, outputs=["call.ExecutionId"])
    parent_id = ssm.start_automation_execution(DocumentName=parent_name)["AutomationExecutionId"]
    children = ssm.describe_automation_executions(Filters=[{"Key": "ParentExecutionId", "Values": [parent_id]}])[
        "AutomationExecutionMetadataList"
    ]
    assert len(children) == 1 and children[0]["DocumentName"] == child
    child_id = children[0]["AutomationExecutionId"]
    assert children[0]["ParentAutomationExecutionId"] == parent_id
    assert execution(ssm, child_id)["Parameters"] == {"Who": [parent_id]}
    assert execution(ssm, parent_id)["AutomationExecutionStatus"] == "InProgress"
    ssm.send_automation_signal(AutomationExecutionId=child_id, SignalType="Resume")
    done = wait_for(ssm, parent_id, FINAL)
    assert done["AutomationExecutionStatus"] == "Success"
    call = steps_by_name(done)["call"]
    assert call["Outputs"]["ExecutionId"] == [child_id] and call["Outputs"]["Status"] == ["Success"]
    assert done["Outputs"] == {"call.ExecutionId": [child_id]}


def test_cancelling_a_parent_cancels_its_child(ssm):
    child = create(ssm, [{"name": "hold", "action": "aws:pause", "inputs": {}}])
    parent = create(ssm, [{"name": "call", "action": "aws:executeAutomation", "inputs": {"DocumentName": child}}])
    parent_id = ssm.start_automation_execution(DocumentName=parent)["AutomationExecutionId"]
    (child_meta,) = ssm.describe_automation_executions(
        Filters=[{"Key": "ParentExecutionId", "Values": [parent_id]}]
    )["AutomationExecutionMetadataList"]
    ssm.stop_automation_execution(AutomationExecutionId=parent_id)
    assert wait_for(ssm, parent_id, FINAL)["AutomationExecutionStatus"] == "Cancelled"
    assert execution(ssm, child_meta["AutomationExecutionId"])["AutomationExecutionStatus"] == "Cancelled"


def test_interactive_mode_waits_for_start_step(ssm):
    steps = [
        {"name": "one", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}},
        {"name": "two", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}},
    ]
    name = create(ssm, steps)
    execution_id = ssm.start_automation_execution(DocumentName=name, Mode="Interactive")["AutomationExecutionId"]
    current = execution(ssm, execution_id)
    assert current["Mode"] == "Interactive"
    assert current["AutomationExecutionStatus"] == "Waiting" and current["StepExecutions"] == []
    with pytest.raises(ClientError) as excinfo:
        ssm.send_automation_signal(
            AutomationExecutionId=execution_id, SignalType="StartStep", Payload={"StepName": ["nope"]}
        )
    assert error_code(excinfo) == "AutomationStepNotFoundException"
    ssm.send_automation_signal(AutomationExecutionId=execution_id, SignalType="StartStep", Payload={"StepName": ["one"]})
    current = execution(ssm, execution_id)
    assert [s["StepName"] for s in current["StepExecutions"]] == ["one"]
    assert current["AutomationExecutionStatus"] == "Waiting" and current["CurrentStepName"] == "two"
    ssm.send_automation_signal(AutomationExecutionId=execution_id, SignalType="StartStep", Payload={"StepName": ["two"]})
    assert wait_for(ssm, execution_id, FINAL)["AutomationExecutionStatus"] == "Success"


def test_stop_step_cancels_one_step(ssm):
    steps = [
        {"name": "hold", "action": "aws:pause", "inputs": {}, "onFailure": "Continue"},
        {"name": "after", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}},
    ]
    name = create(ssm, steps)
    execution_id = ssm.start_automation_execution(DocumentName=name)["AutomationExecutionId"]
    hold = steps_by_name(wait_for(ssm, execution_id, {"Waiting"}))["hold"]
    with pytest.raises(ClientError) as excinfo:
        ssm.send_automation_signal(
            AutomationExecutionId=execution_id, SignalType="StopStep", Payload={"StepExecutionId": ["0" * 36]}
        )
    assert error_code(excinfo) == "AutomationStepNotFoundException"
    ssm.send_automation_signal(
        AutomationExecutionId=execution_id, SignalType="StopStep", Payload={"StepExecutionId": [hold["StepExecutionId"]]}
    )
    done = wait_for(ssm, execution_id, FINAL)
    assert [(s["StepName"], s["StepStatus"]) for s in done["StepExecutions"]] == [
        ("hold", "Cancelled"),
        ("after", "Success"),
    ]


def test_describe_pages_without_gaps_or_duplicates(ssm):
    name = create(ssm, [{"name": "hold", "action": "aws:pause", "inputs": {}}])
    started = {
        ssm.start_automation_execution(DocumentName=name)["AutomationExecutionId"] for _ in range(120)
    }
    seen: list[str] = []
    kwargs = {"Filters": [{"Key": "DocumentNamePrefix", "Values": [name]}], "MaxResults": 50}
    pages = 0
    while True:
        page = ssm.describe_automation_executions(**kwargs)
        pages += 1
        seen += [e["AutomationExecutionId"] for e in page["AutomationExecutionMetadataList"]]
        if "NextToken" not in page:
            break
        kwargs["NextToken"] = page["NextToken"]
    assert pages == 3 and len(seen) == 120 and set(seen) == started
    with pytest.raises(ClientError) as excinfo:
        ssm.describe_automation_executions(NextToken="not-a-token")
    assert error_code(excinfo) == "InvalidNextToken"
    with pytest.raises(ClientError) as excinfo:
        ssm.describe_automation_executions(Filters=[{"Key": "TagKey", "Values": ["x"]}])
    assert error_code(excinfo) == "InvalidFilterKey"
    with pytest.raises(ClientError) as excinfo:
        ssm.describe_automation_executions(MaxResults=51)
    assert error_code(excinfo) == "ValidationException"
    for execution_id in started:
        ssm.stop_automation_execution(AutomationExecutionId=execution_id)


def test_step_executions_filter_reverse_and_page(ssm):
    steps = [{"name": f"s{i}", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}} for i in range(5)]
    steps.append({"name": "hold", "action": "aws:pause", "inputs": {}})
    name = create(ssm, steps)
    execution_id = ssm.start_automation_execution(DocumentName=name)["AutomationExecutionId"]
    wait_for(ssm, execution_id, {"Waiting"})
    first = ssm.describe_automation_step_executions(AutomationExecutionId=execution_id, MaxResults=4)
    second = ssm.describe_automation_step_executions(
        AutomationExecutionId=execution_id, MaxResults=4, NextToken=first["NextToken"]
    )
    names = [s["StepName"] for s in first["StepExecutions"] + second["StepExecutions"]]
    assert names == ["s0", "s1", "s2", "s3", "s4", "hold"] and "NextToken" not in second
    reverse = ssm.describe_automation_step_executions(AutomationExecutionId=execution_id, ReverseOrder=True)
    assert [s["StepName"] for s in reverse["StepExecutions"]] == list(reversed(names))
    waiting = ssm.describe_automation_step_executions(
        AutomationExecutionId=execution_id,
        Filters=[{"Key": "StepExecutionStatus", "Values": ["Waiting"]}, {"Key": "Action", "Values": ["aws:pause"]}],
    )
    assert [s["StepName"] for s in waiting["StepExecutions"]] == ["hold"]
    with pytest.raises(ClientError) as excinfo:
        ssm.describe_automation_step_executions(AutomationExecutionId="2" * 36)
    assert error_code(excinfo) == "AutomationExecutionNotFoundException"
    ssm.stop_automation_execution(AutomationExecutionId=execution_id)


@pytest.fixture()
def own_server(tmp_path):
    instance = SluiceServer(tmp_path / "data", tmp_path)
    instance.start()
    yield instance
    instance.kill()


def test_kill_during_sleep_and_wait_then_continue(own_server, tmp_path):
    client = ssm_client(own_server.endpoint)
    sleeper = create(client, [
        {"name": "nap", "action": "aws:sleep", "inputs": {"Duration": "PT3S"}},
        {"name": "after", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}},
    ])
    waiter = create(client, [
        {"name": "gate", "action": "aws:approve", "inputs": {"Approvers": [ROOT_ARN]}},
        {"name": "after", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}},
    ])
    started = time.time()
    sleeping = client.start_automation_execution(DocumentName=sleeper)["AutomationExecutionId"]
    waiting = client.start_automation_execution(DocumentName=waiter)["AutomationExecutionId"]
    wait_for(client, waiting, {"Waiting"})
    own_server.kill()  # SIGKILL: nothing gets to shut down

    restarted = SluiceServer(own_server.data_dir, tmp_path, name="restarted")
    restarted.start()
    try:
        client = ssm_client(restarted.endpoint)
        assert execution(client, sleeping)["AutomationExecutionStatus"] == "InProgress"
        done = wait_for(client, sleeping, FINAL, timeout=20)
        assert done["AutomationExecutionStatus"] == "Success"
        nap = steps_by_name(done)["nap"]
        assert nap["ExecutionEndTime"].timestamp() - nap["ExecutionStartTime"].timestamp() >= 3.0
        assert nap["ExecutionEndTime"].timestamp() - started < 15, "the timer fired late"
        assert execution(client, waiting)["AutomationExecutionStatus"] == "Waiting"
        client.send_automation_signal(AutomationExecutionId=waiting, SignalType="Approve")
        assert wait_for(client, waiting, FINAL)["AutomationExecutionStatus"] == "Success"
    finally:
        restarted.kill()


def test_next_step_and_system_variables(ssm):
    steps = [
        {"name": "start", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}, "nextStep": "gate"},
        {"name": "skipped", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}},
        {
            "name": "gate",
            "action": "aws:approve",
            "inputs": {
                "Approvers": [ROOT_ARN],
                "Message": "{{ global:ACCOUNT_ID }}|{{ global:REGION }}|{{ global:DATE_TIME }}|{{ automation:EXECUTION_ID }}",
            },
        },
    ]
    name = create(ssm, steps)
    execution_id = ssm.start_automation_execution(DocumentName=name)["AutomationExecutionId"]
    waiting = wait_for(ssm, execution_id, {"Waiting"})
    assert [s["StepName"] for s in waiting["StepExecutions"]] == ["start", "gate"], "nextStep skips a step"
    account, region, date_time, own_id = json.loads(steps_by_name(waiting)["gate"]["Inputs"]["Message"]).split("|")
    assert (account, region, own_id) == (ACCOUNT_ID, REGION, execution_id)
    assert time.strptime(date_time, "%Y-%m-%d_%H.%M.%S"), date_time
    ssm.stop_automation_execution(AutomationExecutionId=execution_id)
