//! What moves a waiting automation: SendAutomationSignal (Approve, Reject, Resume, StartStep,
//! StopStep), StopAutomationExecution, and the sweeper's due timers (sleeps and step timeouts).

use std::collections::BTreeMap;

use serde_json::{json, Value};
use sluice_store::executions::{self as rows, StepRow};

use super::run::{wait, Live, Outcome, Run};
use super::{object, status, KIND};
use crate::{Engine, Error, Principal, Result};

/// SignalType values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Approve,
    Reject,
    StartStep,
    StopStep,
    Resume,
    Revoke,
}

impl Signal {
    pub fn from_name(name: &str) -> Option<Signal> {
        Some(match name {
            "Approve" => Signal::Approve,
            "Reject" => Signal::Reject,
            "StartStep" => Signal::StartStep,
            "StopStep" => Signal::StopStep,
            "Resume" => Signal::Resume,
            "Revoke" => Signal::Revoke,
            _ => return None,
        })
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidAutomationSignal(message.into())
}

/// The one value of a payload key.
fn payload_value<'a>(payload: &'a BTreeMap<String, Vec<String>>, key: &str) -> Result<&'a str> {
    match payload.get(key).map(Vec::as_slice) {
        Some([value]) => Ok(value),
        _ => Err(invalid(format!("The payload needs exactly one {key}"))),
    }
}

impl Engine {
    /// SendAutomationSignal.
    pub async fn send_automation_signal(
        &self,
        actor: &Principal,
        id: &str,
        signal: Signal,
        payload: &BTreeMap<String, Vec<String>>,
    ) -> Result<()> {
        let mut run = Run::open(self).await?;
        let live = run.live(id).await?;
        if status::is_final(&live.row.status) {
            return Err(invalid(format!("Execution {id} is {}; it takes no signal", live.row.status)));
        }
        match signal {
            Signal::Approve | Signal::Reject => approve(&mut run, actor, id, signal, payload).await?,
            Signal::Resume => {
                let step = waiting_step(&mut run, id, "aws:pause").await?;
                run.finish(id, &step.id, Outcome::Success(Value::Null));
            }
            Signal::StartStep => start_step(&mut run, id, payload).await?,
            Signal::StopStep => {
                let step_id = payload_value(payload, "StepExecutionId")?;
                let step = rows::step_in(&mut run.tx, step_id).await?;
                let step = step.filter(|s| s.execution_id == id).ok_or_else(|| {
                    Error::AutomationStepNotFound(format!("Step execution {step_id} is not part of {id}"))
                })?;
                if status::is_final(&step.status) {
                    return Err(invalid(format!("Step execution {step_id} is {}", step.status)));
                }
                run.finish(id, step_id, Outcome::Cancelled(format!("Stopped by {}", actor.arn)));
            }
            Signal::Revoke => {
                return Err(invalid("Revoke answers change-calendar approvals, which Sluice does not run"))
            }
        }
        let kind = format!("SendAutomationSignal:{signal:?}");
        run.event(id, &actor.arn, &kind).await?;
        run.commit().await
    }

    /// StopAutomationExecution with `Cancel`.
    pub async fn stop_automation(&self, actor: &Principal, id: &str) -> Result<()> {
        let mut run = Run::open(self).await?;
        let live = run.live(id).await?;
        if status::is_final(&live.row.status) || live.cancelling() {
            return Err(Error::InvalidAutomationStatusUpdate(format!(
                "Execution {id} is {}; it cannot be stopped",
                live.row.status
            )));
        }
        run.cancel(id);
        run.event(id, &actor.arn, "StopAutomationExecution").await?;
        run.commit().await
    }

    /// Fires due automation timers: sleeps end, steps past `timeoutSeconds` time out. Returns
    /// how many fired.
    pub async fn sweep_automations(&self) -> Result<u64> {
        let now = self.now_millis();
        let mut fired = 0;
        for (kind, outcome) in [
            (wait::SLEEP, Outcome::Success(Value::Null)),
            (wait::TIMEOUT, Outcome::timed_out("The step did not finish within its timeoutSeconds")),
        ] {
            for (execution, step) in self.store().due_waits(kind, now, 100).await? {
                let mut run = Run::open(self).await?;
                match run.live(&execution).await {
                    Ok(_) => {}
                    Err(Error::AutomationExecutionNotFound(_)) => continue,
                    Err(err) => return Err(err),
                }
                run.finish(&execution, &step, outcome.clone());
                run.commit().await?;
                fired += 1;
            }
        }
        Ok(fired)
    }
}

/// The execution's step waiting on `action`; anything else is a signal that does not fit.
async fn waiting_step(run: &mut Run<'_>, id: &str, action: &str) -> Result<StepRow> {
    let steps = rows::steps_in(&mut run.tx, id).await?;
    let waiting = steps.into_iter().find(|step| {
        step.status == status::WAITING
            && object(&step.data).ok().and_then(|d| d.get("action").cloned()) == Some(json!(action))
    });
    waiting.ok_or_else(|| invalid(format!("Execution {id} has no {action} step waiting for this signal")))
}

async fn approve(
    run: &mut Run<'_>,
    actor: &Principal,
    id: &str,
    signal: Signal,
    payload: &BTreeMap<String, Vec<String>>,
) -> Result<()> {
    let mut step = waiting_step(run, id, "aws:approve").await?;
    let mut data = object(&step.data)?;
    let inputs = data.get("inputs").cloned().unwrap_or(Value::Null);
    let approvers: Vec<&str> = inputs
        .get("Approvers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !approvers.iter().any(|approver| names_principal(approver, &actor.arn)) {
        return Err(invalid(format!("{} is not an approver of step {}", actor.arn, step.name)));
    }
    let comment = payload.get("Comment").and_then(|c| c.first()).cloned().unwrap_or_default();
    let decision = if signal == Signal::Approve { "Approved" } else { "Rejected" };
    let mut approvals = data.get("approvals").and_then(Value::as_array).cloned().unwrap_or_default();
    approvals.retain(|a| a.get("Approver").and_then(Value::as_str) != Some(actor.arn.as_str()));
    approvals.push(json!({"Approver": actor.arn, "Decision": decision, "Comment": comment}));
    let approved = approvals.iter().filter(|a| a["Decision"] == "Approved").count() as u64;
    data.insert("approvals".into(), Value::Array(approvals));
    step.data = Value::Object(data).to_string();
    rows::update_step(&mut run.tx, &step).await?;
    let required = inputs.get("MinRequiredApprovals").and_then(Value::as_u64).unwrap_or(1);
    if signal == Signal::Reject {
        let message = format!("Step {} was rejected by {}: {comment}", step.name, actor.arn);
        run.finish(id, &step.id, Outcome::failed(message));
    } else if approved >= required {
        run.finish(id, &step.id, Outcome::Success(Value::Null));
    }
    Ok(())
}

/// Whether an `Approvers` entry names the caller: the ARN itself, or a bare IAM user or role
/// name matching the ARN's last segment.
fn names_principal(approver: &str, arn: &str) -> bool {
    approver == arn || (!approver.contains(':') && arn.rsplit('/').next() == Some(approver))
}

async fn start_step(run: &mut Run<'_>, id: &str, payload: &BTreeMap<String, Vec<String>>) -> Result<()> {
    let name = payload_value(payload, "StepName")?.to_string();
    let live: &mut Live = run.live(id).await?;
    if !live.interactive() {
        return Err(invalid(format!("Execution {id} runs in Auto mode; StartStep is for Interactive mode")));
    }
    if live.pending_step().is_none() {
        return Err(invalid(format!("Execution {id} is running a step; wait for it to finish")));
    }
    if live.doc.step(&name).is_none() {
        return Err(Error::AutomationStepNotFound(format!("The runbook has no step {name}")));
    }
    debug_assert_eq!(live.row.kind, KIND);
    run.enter(id, Some(name), true);
    Ok(())
}
