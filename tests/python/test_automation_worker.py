"""`sluice worker --automation` runs SSM Automation scripts and commands: the issue's end-to-end
runbook (sleep → approve → branch → executeScript → sleep) from boto3, a failing script, a
failing command, and a command killed when its execution is cancelled."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from sluice_testlib import ROOT_ACCESS_KEY_ID, ROOT_SECRET_ACCESS_KEY, binary_path, clean_env
from test_ssm_automation import FINAL, ROOT_ARN, create, execution, ssm_client, steps_by_name, wait_for


@pytest.fixture(scope="module")
def ssm(endpoint):
    return ssm_client(endpoint)


@pytest.fixture(scope="module")
def worker(endpoint):
    env = clean_env(
        SLUICE_ENDPOINT=endpoint, AWS_ACCESS_KEY_ID=ROOT_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY=ROOT_SECRET_ACCESS_KEY
    )
    process = subprocess.Popen(
        [str(binary_path()), "worker", "--automation", "--concurrency", "2"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    yield process
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=20) == 0, process.stderr.read().decode()


SCRIPT = """
def handler(events, context):
    print("computing")
    return {"message": "hello " + events["who"], "count": len(events["who"])}
"""


def test_sleep_approve_branch_script_sleep_end_to_end(ssm, worker):
    steps = [
        {"name": "first", "action": "aws:sleep", "inputs": {"Duration": "PT1S"}},
        {"name": "gate", "action": "aws:approve", "inputs": {"Approvers": [ROOT_ARN]}},
        {
            "name": "route",
            "action": "aws:branch",
            "inputs": {
                "Choices": [{"NextStep": "compute", "Variable": "{{ Who }}", "StartsWith": "w"}],
                "Default": "skipped",
            },
        },
        {
            "name": "compute",
            "action": "aws:executeScript",
            "inputs": {
                "Runtime": "python3.11",
                "Handler": "handler",
                "Script": SCRIPT,
                "InputPayload": {"who": "{{ Who }}"},
            },
            "outputs": [
                {"Name": "Message", "Selector": "$.Payload.message", "Type": "String"},
                {"Name": "Count", "Selector": "$.Payload.count", "Type": "Integer"},
            ],
        },
        {"name": "last", "action": "aws:sleep", "inputs": {"Duration": "PT1S"}, "isEnd": True},
        {"name": "skipped", "action": "aws:sleep", "inputs": {"Duration": "PT0S"}},
    ]
    name = create(ssm, steps, {"Who": {"type": "String", "default": "world"}}, outputs=["compute.Message"])
    execution_id = ssm.start_automation_execution(DocumentName=name)["AutomationExecutionId"]
    waiting = wait_for(ssm, execution_id, {"Waiting"} | FINAL)
    assert waiting["AutomationExecutionStatus"] == "Waiting"
    assert steps_by_name(waiting)["gate"]["StepStatus"] == "Waiting"
    ssm.send_automation_signal(AutomationExecutionId=execution_id, SignalType="Approve")
    done = wait_for(ssm, execution_id, FINAL, timeout=30)
    assert done["AutomationExecutionStatus"] == "Success", done
    assert [s["StepName"] for s in done["StepExecutions"]] == ["first", "gate", "route", "compute", "last"]
    compute = steps_by_name(done)["compute"]
    assert compute["Outputs"]["Message"] == ["hello world"] and compute["Outputs"]["Count"] == ["5"]
    assert json.loads(compute["Outputs"]["OutputPayload"][0]) == {"Payload": {"message": "hello world", "count": 5}}
    assert done["Outputs"] == {"compute.Message": ["hello world"]}


def test_a_command_uses_an_earlier_output(ssm, worker, tmp_path):
    marker = tmp_path / "marker"
    steps = [
        {
            "name": "say",
            "action": "aws:executeScript",
            "inputs": {"Runtime": "python3.11", "Handler": "handler", "Script": SCRIPT, "InputPayload": {"who": "cli"}},
            "outputs": [{"Name": "Message", "Selector": "$.Payload.message", "Type": "String"}],
        },
        {
            "name": "shell",
            "action": "aws:runCommand",
            "inputs": {
                "DocumentName": "AWS-RunShellScript",
                "Parameters": {"commands": [f"echo '{{{{ say.Message }}}}' > {marker}", f"cat {marker}"]},
            },
        },
    ]
    name = create(ssm, steps)
    execution_id = ssm.start_automation_execution(DocumentName=name)["AutomationExecutionId"]
    done = wait_for(ssm, execution_id, FINAL, timeout=30)
    assert done["AutomationExecutionStatus"] == "Success", done
    shell = steps_by_name(done)["shell"]
    assert shell["Outputs"]["Output"] == ["hello cli\n"] and shell["Outputs"]["ResponseCode"] == ["0"]
    assert marker.read_text() == "hello cli\n"


def test_failing_script_and_command_fail_the_execution(ssm, worker):
    raising = [{
        "name": "boom",
        "action": "aws:executeScript",
        "inputs": {"Runtime": "python3.11", "Handler": "handler", "Script": "def handler(e, c):\n    raise RuntimeError('kaput')\n"},
    }]
    execution_id = ssm.start_automation_execution(DocumentName=create(ssm, raising))["AutomationExecutionId"]
    done = wait_for(ssm, execution_id, FINAL, timeout=30)
    assert done["AutomationExecutionStatus"] == "Failed"
    assert "RuntimeError: kaput" in done["FailureMessage"]

    exiting = [{
        "name": "exit",
        "action": "aws:runCommand",
        "inputs": {"DocumentName": "AWS-RunShellScript", "Parameters": {"commands": ["echo oops >&2", "exit 3"]}},
    }]
    execution_id = ssm.start_automation_execution(DocumentName=create(ssm, exiting))["AutomationExecutionId"]
    done = wait_for(ssm, execution_id, FINAL, timeout=30)
    assert done["AutomationExecutionStatus"] == "Failed"
    step = steps_by_name(done)["exit"]
    assert "exited with 3" in step["FailureMessage"] and "oops" in step["FailureMessage"]


def test_cancel_kills_a_running_command(ssm, worker, tmp_path):
    started, finished = tmp_path / "started", tmp_path / "finished"
    steps = [{
        "name": "slow",
        "action": "aws:runCommand",
        "inputs": {
            "DocumentName": "AWS-RunShellScript",
            "Parameters": {"commands": [f"touch {started}", "sleep 8", f"touch {finished}"]},
        },
    }]
    execution_id = ssm.start_automation_execution(DocumentName=create(ssm, steps))["AutomationExecutionId"]
    deadline = time.monotonic() + 20
    while not started.exists():
        assert time.monotonic() < deadline, "the worker never started the command"
        time.sleep(0.1)
    ssm.stop_automation_execution(AutomationExecutionId=execution_id)
    assert execution(ssm, execution_id)["AutomationExecutionStatus"] == "Cancelled"
    time.sleep(10)
    assert not finished.exists(), "the cancelled command kept running"


def admin(endpoint: str, verb: str, body) -> "requests.Response":
    import requests

    from sluice_testlib import sign_headers

    path = f"/admin/v1/automation-jobs/{verb}"
    payload = json.dumps(body).encode()
    headers = sign_headers(endpoint, None, payload, service="sluice",
                           extra_headers={"Content-Type": "application/json"}, path=path)
    return requests.post(f"{endpoint}{path}", data=payload, headers=headers, timeout=30)


def test_the_job_api_refuses_bad_calls(endpoint):
    for verb, body, code in [
        ("poll", {"maxJobs": 0}, "ValidationException"),
        ("poll", {"maxJobs": 1, "waitSeconds": 21}, "ValidationException"),
        ("acknowledge", {"jobId": "nope", "nonce": "x"}, "JobNotFoundException"),
        ("status", {}, "ValidationException"),
        ("complete", {"jobId": "nope", "nonce": "x", "result": {}}, "JobNotFoundException"),
        ("complete", {"jobId": "nope", "nonce": "x"}, "ValidationException"),
        ("explode", {}, "UnknownOperationException"),
    ]:
        response = admin(endpoint, verb, body)
        assert 400 <= response.status_code < 500, (verb, response.status_code, response.text)
        assert response.json()["__type"] == code, (verb, response.text)
