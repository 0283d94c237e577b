//! Pipeline executions: stages in order, actions grouped by run order, stage locks by execution
//! mode (SUPERSEDED, QUEUED, PARALLEL), custom and third-party actions as jobs, manual approvals
//! and S3 sources run by the engine. Every transition is one transaction that first locks the
//! pipeline row, then works through a queue of follow-on work (entering a stage may finish it at
//! once, which may enter the next, …) before committing. See docs/ENGINE.md.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};
use sluice_core::action_type::{ActionTypeId, Category, Owner};
use sluice_core::pipeline::{ActionSpec, PipelineSpec};
use sluice_store::executions::{self as rows, ExecutionRow, NewWait, StepRow};
use sluice_store::jobs::{self, NewJob};
use sluice_store::Tx;

use crate::pipelines::spec_from_declaration;
use crate::{Engine, Error, Principal, Result};

/// How long a manual approval waits unless the action sets `timeoutInMinutes`.
pub const APPROVAL_TIMEOUT_MILLIS: i64 = 7 * 24 * 3_600_000;

/// Execution statuses (PipelineExecutionStatus).
pub mod status {
    pub const IN_PROGRESS: &str = "InProgress";
    pub const SUCCEEDED: &str = "Succeeded";
    pub const FAILED: &str = "Failed";
    pub const SUPERSEDED: &str = "Superseded";
    pub const STOPPING: &str = "Stopping";
    pub const STOPPED: &str = "Stopped";
}

/// Action execution statuses.
pub mod step_status {
    pub const IN_PROGRESS: &str = "InProgress";
    pub const SUCCEEDED: &str = "Succeeded";
    pub const FAILED: &str = "Failed";
    pub const ABANDONED: &str = "Abandoned";
}

pub(crate) const RUNNING: &str = "running";
pub(crate) const WAITING: &str = "waiting";
const DONE: &str = "done";

/// The pipeline version an execution runs.
#[derive(Debug, Clone)]
pub struct Definition {
    pub name: String,
    pub version: i64,
    pub mode: String,
    pub spec: Arc<PipelineSpec>,
    pub declaration: Arc<Value>,
}

impl Definition {
    fn artifact_bucket(&self) -> String {
        let store = self.declaration.get("artifactStore").or_else(|| {
            self.declaration.get("artifactStores").and_then(Value::as_object).and_then(|m| m.values().next())
        });
        store
            .and_then(|s| s.get("location"))
            .and_then(Value::as_str)
            .unwrap_or("sluice-artifacts")
            .to_string()
    }

    fn action_declaration(&self, stage: usize, action: &str) -> Option<&Value> {
        self.declaration
            .get("stages")?
            .get(stage)?
            .get("actions")?
            .as_array()?
            .iter()
            .find(|a| a.get("name").and_then(Value::as_str) == Some(action))
    }
}

/// Where an action's outputs go: `<artifact bucket>/<pipeline>/<artifact>/<random>`.
fn output_locations(def: &Definition, action: &ActionSpec) -> Vec<Value> {
    let bucket = def.artifact_bucket();
    action
        .output_artifacts
        .iter()
        .map(|name| {
            let key = format!("{}/{}/{}", def.name, name, uuid::Uuid::new_v4().simple());
            json!({"name": name, "bucket": bucket, "key": key})
        })
        .collect()
}

/// Follow-on work inside one transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Work {
    /// An execution asks to enter a stage.
    Request { execution: String, stage: usize },
    /// A step of an execution finished; check its group.
    StepDone { execution: String, stage: usize },
    /// A stage was left; let a waiting execution in.
    Admit { stage: usize },
}

/// Jobs claimed in a transition for a waiting long poll of a queue (their views are built after
/// the commit).
type Handed = (String, crate::handoff::Waiter, Vec<jobs::JobRow>);

/// One transition: a locked pipeline, a transaction and its queue of work.
pub(crate) struct Transition<'e> {
    engine: &'e Engine,
    pub tx: Tx<'static>,
    /// The pipeline's definitions by version; executions run the version they started on.
    defs: std::collections::HashMap<i64, Definition>,
    name: String,
    pub now: i64,
    pub(crate) work: VecDeque<Work>,
    /// Executions read or written in this transition, as last written.
    executions: std::collections::HashMap<String, ExecutionRow>,
    /// Jobs this transition queued, with their queues: they are handed to waiting polls, or
    /// their queues' polls are woken after the commit.
    queued: Vec<(String, String)>,
    /// Waiting long polls this transition took, with the jobs it queued for them already
    /// claimed; they are sent after the commit.
    handing: Vec<Handed>,
    /// The pipeline is share-locked (a PARALLEL transition), so each execution's row is locked
    /// before it is first read.
    shared: bool,
    /// Executions this transition inserted or changed and has not written yet: an execution
    /// often changes several times in one transition (leaves a stage, enters the next), and is
    /// written once, by [`Transition::flush`], before the commit. Queries by stage see these
    /// changes laid over the stored rows ([`Transition::executions_at_stage`]).
    inserted: std::collections::BTreeSet<String>,
    changed: std::collections::BTreeSet<String>,
    /// What a job result read with the finish of its job, after the locks were taken
    /// ([`Transition::prime`]), so that deciding the stage's next move reads nothing more.
    primed: Primed,
}

/// Reads a job result made ahead ([`sluice_store::jobs::FinishedJob`]), each used in place of
/// the read it stands for.
#[derive(Default)]
struct Primed {
    /// The steps of one execution at one stage, with this transition's own step changes laid
    /// over them; used once, by the first check of that stage.
    stage_steps: Option<((String, i64), Vec<StepRow>)>,
    /// The pipeline's stages whose inbound transition is disabled.
    disabled: Option<std::collections::HashSet<String>>,
    /// A stage no stored execution waited to enter.
    no_waiters_at: Option<i64>,
}

/// A row's JSON data as an object; empty if the text is not one. Parsed straight into the map:
/// through a `Value` it was parsed and then copied whole.
pub(crate) fn data_of(text: &str) -> Map<String, Value> {
    serde_json::from_str(text).unwrap_or_default()
}

/// Where an action's input artifacts are, from the execution's data: each earlier output of that
/// name, or only the name if none was recorded.
fn input_locations(execution_data: &Map<String, Value>, action: &ActionSpec) -> Vec<Value> {
    let artifacts = execution_data.get("artifacts");
    action
        .input_artifacts
        .iter()
        .map(|name| artifacts.and_then(|a| a.get(name)).cloned().unwrap_or_else(|| json!({"name": name})))
        .collect()
}

pub(crate) fn queue_key(type_id: &ActionTypeId, query: Option<(&str, &str)>) -> String {
    match query {
        Some((name, value)) => format!("{type_id}|{name}={value}"),
        None => type_id.to_string(),
    }
}

/// A definition from a stored declaration (which carries its `version`).
fn parse_definition(name: &str, declaration: &str, latest: i64) -> Result<Definition> {
    let declaration: Value = serde_json::from_str(declaration)
        .map_err(|e| Error::Internal(format!("stored declaration of {name}: {e}")))?;
    let version = declaration.get("version").and_then(Value::as_i64).unwrap_or(latest);
    Ok(Definition {
        name: name.to_string(),
        version,
        mode: declaration.get("executionMode").and_then(Value::as_str).unwrap_or("SUPERSEDED").to_string(),
        spec: Arc::new(spec_from_declaration(&declaration)?),
        declaration: Arc::new(declaration),
    })
}

/// How many parsed definitions [`DefinitionCache`] keeps before it starts over.
const DEFINITIONS_KEPT: usize = 256;

/// Parsed definitions by pipeline name and version, each with the stored text it came from.
/// Every use still reads the declaration from the store and hands out the cached parse only if
/// the text is the same, so a pipeline deleted and created again under the same name and
/// version is never answered with the old one; the cache only saves parsing.
///
/// Starts keep one more map, `latest`: each pipeline's latest definition with the incarnation
/// it belongs to. A start uses it without reading the declaration only after the statement
/// that locks the pipeline has returned the same version and incarnation
/// ([`Engine::start_transition`]).
#[derive(Debug, Default)]
pub(crate) struct DefinitionCache {
    parsed: Mutex<HashMap<(String, i64), (String, Definition)>>,
    latest: Mutex<HashMap<String, (String, Definition)>>,
}

/// Inserts into a cache map, starting it over once it holds [`DEFINITIONS_KEPT`] entries.
fn keep<K: std::hash::Hash + Eq, V>(map: &Mutex<HashMap<K, V>>, key: K, value: V) {
    let mut kept = map.lock().expect("definition cache");
    if kept.len() >= DEFINITIONS_KEPT {
        kept.clear();
    }
    kept.insert(key, value);
}

impl DefinitionCache {
    fn get(&self, name: &str, declaration: &str, latest: i64) -> Result<Definition> {
        let key = (name.to_string(), latest);
        if let Some((text, def)) = self.parsed.lock().expect("definition cache").get(&key) {
            if text == declaration {
                return Ok(def.clone());
            }
        }
        let def = parse_definition(name, declaration, latest)?;
        keep(&self.parsed, key, (declaration.to_string(), def.clone()));
        Ok(def)
    }

    /// The latest definition a start saw of pipeline `name`, with its incarnation.
    fn latest(&self, name: &str) -> Option<(String, Definition)> {
        self.latest.lock().expect("definition cache").get(name).cloned()
    }

    fn remember_latest(&self, incarnation: String, def: Definition) {
        keep(&self.latest, def.name.clone(), (incarnation, def));
    }
}

impl Engine {
    /// A definition from a stored declaration (which carries its `version`), parsed once per
    /// text ([`DefinitionCache`]).
    pub(crate) fn definition_from(&self, name: &str, declaration: &str, latest: i64) -> Result<Definition> {
        self.definitions.get(name, declaration, latest)
    }

    pub(crate) async fn definition(&self, name: &str, version: Option<i64>) -> Result<Definition> {
        let view = self.pipeline(name, version).await?;
        self.definition_from(name, &view.declaration, view.meta.version)
    }

    /// A pipeline version's definition and its secret values, in one read.
    pub(crate) async fn definition_with_secrets(
        &self,
        name: &str,
        version: i64,
    ) -> Result<(Definition, crate::pipelines::Secrets)> {
        let (declaration, secrets) = self.pipeline_version_with_secrets(name, version).await?;
        Ok((self.definition_from(name, &declaration, version)?, secrets))
    }

    /// Opens a transition on `def`'s pipeline (locks it).
    pub(crate) async fn transition(&self, def: Definition) -> Result<Transition<'_>> {
        self.open_transition(def, false).await
    }

    /// Opens a transition that shares the pipeline with other PARALLEL transitions when `def`
    /// runs in PARALLEL mode (executions do not share stages then), and locks it otherwise.
    pub(crate) async fn transition_for(&self, def: Definition) -> Result<Transition<'_>> {
        let shared = def.mode == "PARALLEL";
        self.open_transition(def, shared).await
    }

    /// [`Self::transition_for`] with execution `id` locked and read: on PostgreSQL, a PARALLEL
    /// transition shares the pipeline and locks the execution in one statement.
    pub(crate) async fn transition_for_execution(&self, def: Definition, id: &str) -> Result<Transition<'_>> {
        if def.mode != "PARALLEL" {
            let mut t = self.transition_for(def).await?;
            t.execution(id).await?;
            return Ok(t);
        }
        let mut tx = self.store().begin().await?;
        let held =
            rows::share_pipeline_locking_execution(&mut tx, &def.name, id, self.store().backend()).await?;
        let (_, row) = held.ok_or_else(|| crate::pipelines::pipeline_not_found(&def.name))?;
        let row = row.ok_or_else(|| Error::Internal(format!("execution {id} vanished")))?;
        let mut t = self.transition_on(tx, &def.name, true);
        t.executions.insert(id.to_string(), row);
        t.defs.insert(def.version, def);
        Ok(t)
    }

    async fn open_transition(&self, def: Definition, shared: bool) -> Result<Transition<'_>> {
        let (mut t, _) = self.begin_transition(&def.name, shared).await?;
        t.defs.insert(def.version, def);
        Ok(t)
    }

    /// Opens a transition on pipeline `name`, sharing or locking it, with what the lock read.
    async fn begin_transition(
        &self,
        name: &str,
        shared: bool,
    ) -> Result<(Transition<'_>, rows::PipelineHold)> {
        let mut tx = self.store().begin().await?;
        let hold = if shared {
            rows::share_pipeline(&mut tx, name, self.store().backend()).await?
        } else {
            rows::lock_pipeline(&mut tx, name).await?
        };
        let hold = hold.ok_or_else(|| crate::pipelines::pipeline_not_found(name))?;
        Ok((self.transition_on(tx, name, shared), hold))
    }

    /// A transition of pipeline `name` on `tx`, which has locked or shared the pipeline.
    fn transition_on(&self, tx: Tx<'static>, name: &str, shared: bool) -> Transition<'_> {
        Transition {
            engine: self,
            tx,
            defs: std::collections::HashMap::new(),
            name: name.to_string(),
            now: self.now_millis(),
            work: VecDeque::new(),
            executions: std::collections::HashMap::new(),
            queued: Vec::new(),
            handing: Vec::new(),
            shared,
            inserted: Default::default(),
            changed: Default::default(),
            primed: Primed::default(),
        }
    }

    /// Opens a start's transition on the pipeline's latest definition, which it returns; the
    /// pipeline is locked.
    ///
    /// The latest definition an earlier start used is taken without reading it when the
    /// statement that locks the pipeline returns its version and incarnation: no update or
    /// delete of the pipeline can come between that statement and the commit. Else (first
    /// start, or the pipeline changed) its latest declaration is read inside the transaction and
    /// kept for the next start. A start that could share the pipeline (PARALLEL, not
    /// `exclusive`) has tried the kept definition already ([`Self::start_on_kept_definition`]).
    async fn start_transition(&self, name: &str, exclusive: bool) -> Result<(Transition<'_>, Definition)> {
        let kept = self.definitions.latest(name).filter(|(_, def)| exclusive || def.mode != "PARALLEL");
        if let Some((incarnation, def)) = kept {
            let (mut t, hold) = self.begin_transition(name, false).await?;
            if hold.version == def.version && hold.incarnation == incarnation {
                t.defs.insert(def.version, def.clone());
                return Ok((t, def));
            }
        }
        let (mut t, hold) = self.begin_transition(name, false).await?;
        let def = t.def_of(hold.version).await?;
        self.definitions.remember_latest(hold.incarnation, def.clone());
        Ok((t, def))
    }

    /// Starts an execution of the pipeline's latest version; the same client token returns the
    /// execution it started before.
    pub async fn start_pipeline_execution(
        &self,
        actor: &Principal,
        name: &str,
        variables: Vec<(String, String)>,
        client_token: Option<String>,
    ) -> Result<String> {
        if let Some(id) = self.start_on_kept_definition(actor, name, &variables, &client_token).await? {
            return Ok(id);
        }
        // A client token is looked up before the insert; that start locks the pipeline, so no
        // other start can insert the token between.
        let (mut t, def) = self.start_transition(name, client_token.is_some()).await?;
        if let Some(token) = &client_token {
            let tenant = &t.engine.account().account_id;
            if let Some(existing) =
                rows::execution_by_token(&mut t.tx, "pipeline", tenant, name, token).await?
            {
                return Ok(existing.id);
            }
        }
        let (t, id) = self.prepare_start(t, &def, actor, variables, client_token).await?;
        t.commit().await?;
        Ok(id)
    }

    /// A start of a PARALLEL pipeline on the latest definition kept from an earlier start, in a
    /// transaction guarded by the pipeline still being at that definition's version and
    /// incarnation ([`rows::begin_sharing_pipeline`]). On PostgreSQL such a start, which only
    /// inserts, is one statement. None, with nothing written, when no definition is kept, when
    /// the guard fails, when the client token was given before (the unique index on tokens
    /// refuses the insert), or when the start fails before its commit: such a failure may come
    /// from the kept definition being stale. The locked start settles all of these.
    async fn start_on_kept_definition(
        &self,
        actor: &Principal,
        name: &str,
        variables: &[(String, String)],
        client_token: &Option<String>,
    ) -> Result<Option<String>> {
        let Some((incarnation, def)) = self.definitions.latest(name) else { return Ok(None) };
        if def.mode != "PARALLEL" {
            return Ok(None);
        }
        let hold = rows::PipelineHold { version: def.version, incarnation };
        let tx = match rows::begin_sharing_pipeline(self.store(), name, &hold).await {
            Err(sluice_store::Error::GuardFailed) => return Ok(None),
            begun => begun?,
        };
        let mut t = self.transition_on(tx, name, true);
        t.defs.insert(def.version, def.clone());
        let (t, id) = match self.prepare_start(t, &def, actor, variables.to_vec(), client_token.clone()).await
        {
            Ok(prepared) => prepared,
            Err(err) => {
                tracing::debug!(error = %err, pipeline = name, "a start on the kept definition failed; locking");
                return Ok(None);
            }
        };
        match t.commit().await {
            Err(Error::Store(sluice_store::Error::GuardFailed | sluice_store::Error::Conflict)) => Ok(None),
            committed => committed.map(|()| Some(id)),
        }
    }

    /// A new execution of `def` in `t`, started as far as one transition takes it: the caller
    /// commits. Returns the transition and the execution's id.
    async fn prepare_start<'e>(
        &'e self,
        mut t: Transition<'e>,
        def: &Definition,
        actor: &Principal,
        variables: Vec<(String, String)>,
        client_token: Option<String>,
    ) -> Result<(Transition<'e>, String)> {
        let declared = resolve_variables(&def.declaration, variables)?;
        let id = crate::new_id();
        let data = json!({
            "variables": declared,
            "trigger": {"triggerType": "StartPipelineExecution", "triggerDetail": actor.arn},
            "artifacts": {},
            "namespaces": {},
        });
        let row = ExecutionRow {
            id: id.clone(),
            kind: "pipeline".into(),
            tenant: self.account().account_id.clone(),
            definition_name: def.name.clone(),
            definition_version: def.version,
            status: status::IN_PROGRESS.into(),
            client_token,
            data: data.to_string(),
            stage_index: 0,
            stage_state: WAITING.into(),
            parent_id: None,
            current_step: None,
            current_action: None,
            created_at: t.now,
            updated_at: t.now,
            finished_at: None,
        };
        t.insert_execution(row);
        t.event(&id, &actor.arn, "StartPipelineExecution").await?;
        t.work.push_back(Work::Request { execution: id.clone(), stage: 0 });
        t.run().await?;
        Ok((t, id))
    }
}

impl Engine {
    /// StopPipelineExecution. Without `abandon` the execution is `Stopping` until its running
    /// actions finish; with it, running actions are abandoned (their jobs fail, their credentials
    /// end) and the execution is `Stopped` at once. A waiting execution stops at once either way.
    pub async fn stop_pipeline_execution(
        &self,
        actor: &Principal,
        pipeline: &str,
        id: &str,
        abandon: bool,
    ) -> Result<()> {
        let row = self.pipeline_execution(pipeline, id).await?;
        let def = self.definition(pipeline, Some(row.definition_version)).await?;
        let mut t = self.transition(def).await?;
        let mut execution = t.execution(id).await?;
        match (execution.status.as_str(), abandon) {
            (status::IN_PROGRESS, _) | (status::STOPPING, true) => {}
            (status::STOPPING, false) => {
                return Err(Error::DuplicatedStopRequest(format!("Execution {id} is already stopping")));
            }
            (other, _) => {
                return Err(Error::NotStoppable(format!("Execution {id} is {other} and cannot be stopped")));
            }
        }
        let stage = execution.stage_index as usize;
        if abandon {
            for mut step in rows::steps_at(&mut t.tx, id, execution.stage_index).await? {
                if step.status != step_status::IN_PROGRESS {
                    continue;
                }
                step.status = step_status::ABANDONED.into();
                step.finished_at = Some(t.now);
                rows::update_step(&mut t.tx, &step).await?;
                rows::resolve_waits(&mut t.tx, &step.id, t.now).await?;
                // A failed job's artifact credentials end with it (see `keys::JobGrant`).
                sluice_store::jobs::abandon_for_step(&mut t.tx, &step.id, t.now).await?;
            }
        }
        t.event(
            id,
            &actor.arn,
            if abandon { "StopPipelineExecution(abandon)" } else { "StopPipelineExecution" },
        )
        .await?;
        if execution.stage_state == RUNNING {
            execution.status = status::STOPPING.into();
            execution.updated_at = t.now;
            t.save_execution(&execution).await?;
            t.work.push_back(Work::StepDone { execution: id.to_string(), stage });
        } else {
            execution.status = status::STOPPED.into();
            execution.stage_state = DONE.into();
            execution.finished_at = Some(t.now);
            execution.updated_at = t.now;
            t.save_execution(&execution).await?;
        }
        t.run().await?;
        t.commit().await
    }
}

/// Replaces `#{variables.NAME}` (pipeline variables) and `#{Namespace.Variable}` (output
/// variables of an earlier action) in configuration values; an unknown reference is an error.
pub(crate) fn resolve_configuration(
    configuration: &std::collections::BTreeMap<String, String>,
    execution: &Map<String, Value>,
) -> std::result::Result<std::collections::BTreeMap<String, String>, String> {
    let lookup = |reference: &str| -> Option<String> {
        let (namespace, name) = reference.split_once('.')?;
        if namespace == "variables" {
            let variables = execution.get("variables")?.as_array()?;
            let found = variables.iter().find(|v| v.get("name").and_then(Value::as_str) == Some(name))?;
            return found.get("resolvedValue").and_then(Value::as_str).map(str::to_string);
        }
        execution.get("namespaces")?.get(namespace)?.get(name)?.as_str().map(str::to_string)
    };
    configuration
        .iter()
        .map(|(key, value)| {
            let mut out = String::new();
            let mut rest = value.as_str();
            while let Some(start) = rest.find("#{") {
                let Some(end) = rest[start..].find('}') else { break };
                let reference = &rest[start + 2..start + end];
                let resolved = lookup(reference).ok_or_else(|| {
                    format!("The variable #{{{reference}}} in configuration {key} cannot be resolved")
                })?;
                out.push_str(&rest[..start]);
                out.push_str(&resolved);
                rest = &rest[start + end + 1..];
            }
            out.push_str(rest);
            Ok((key.clone(), out))
        })
        .collect()
}

/// Pipeline variables: declared defaults overridden by the start request; unknown names refused.
fn resolve_variables(declaration: &Value, given: Vec<(String, String)>) -> Result<Vec<Value>> {
    let declared: Vec<(String, Option<String>)> = declaration
        .get("variables")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|v| {
                    Some((
                        v.get("name")?.as_str()?.to_string(),
                        v.get("defaultValue").and_then(Value::as_str).map(str::to_string),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    for (name, _) in &given {
        if !declared.iter().any(|(d, _)| d == name) {
            return Err(Error::Validation(format!("Variable {name} is not declared by the pipeline")));
        }
    }
    declared
        .into_iter()
        .map(|(name, default)| {
            let value = given.iter().find(|(g, _)| g == &name).map(|(_, v)| v.clone()).or(default);
            value
                .map(|v| json!({"name": name, "resolvedValue": v}))
                .ok_or_else(|| Error::Validation(format!("Variable {name} has no default and was not given")))
        })
        .collect()
}

impl Transition<'_> {
    /// The pipeline this transition is of.
    pub(crate) fn pipeline(&self) -> &str {
        &self.name
    }

    /// The store's backend.
    pub(crate) fn backend(&self) -> sluice_store::Backend {
        self.engine.store().backend()
    }

    /// Commits, then wakes pollers of the queues that got jobs: in this process directly, in
    /// other processes on the same PostgreSQL database through the commit's announcements.
    /// Long polls waiting in this process are handed the new jobs, inserted already claimed for
    /// them (or, for polls that registered after the job was queued, claimed here), and get them
    /// once the transaction has committed ([`crate::handoff`]).
    pub(crate) async fn commit(mut self) -> Result<()> {
        self.flush().await?;
        let (mut handed, unclaimed) = self.hand_off_jobs().await?;
        handed.append(&mut self.handing);
        let backend = self.engine.store().backend();
        for queue in &unclaimed {
            jobs::announce_in(&mut self.tx, backend, queue).await?;
        }
        self.tx.commit().await?;
        for queue in &unclaimed {
            self.engine.notify_queue(queue);
        }
        for (queue, waiter, claimed) in handed {
            self.engine.deliver(&queue, waiter, claimed).await;
        }
        Ok(())
    }

    /// Claims this transition's new jobs that no poll waited for when they were queued, for long
    /// polls of this process that have started waiting since.
    /// Returns the claims with their polls, and the queues left with new jobs nobody was handed.
    /// Only the transition's own jobs are handed out: older queued jobs were announced when
    /// they were queued, so polls already know of them.
    async fn hand_off_jobs(&mut self) -> Result<(Vec<Handed>, Vec<String>)> {
        let mut by_queue = std::collections::BTreeMap::<String, Vec<String>>::new();
        for (queue, id) in self.queued.drain(..) {
            by_queue.entry(queue).or_default().push(id);
        }
        let tenant = self.engine.account().account_id.clone();
        let (mut handed, mut unclaimed) = (Vec::new(), Vec::new());
        for (queue, mut ids) in by_queue {
            while !ids.is_empty() {
                let Some(waiter) = self.engine.waiters.take(&tenant, &queue) else { break };
                let take = usize::try_from(waiter.max).unwrap_or(1).clamp(1, ids.len());
                let batch: Vec<String> = ids.drain(..take).collect();
                let lease = self.now + crate::pipeline_jobs::DISPATCH_LEASE_MILLIS;
                let claimed =
                    self.engine.store().claim_jobs_by_id_in(&mut self.tx, &batch, lease, self.now).await?;
                // A job not claimable here is left for polls to find (its queue is woken).
                ids.extend(batch.into_iter().filter(|id| !claimed.iter().any(|j| &j.id == id)));
                if claimed.is_empty() {
                    self.engine.waiters.put_back(&tenant, &queue, waiter);
                    break;
                }
                handed.push((queue.clone(), waiter, claimed));
            }
            if !ids.is_empty() {
                unclaimed.push(queue);
            }
        }
        Ok((handed, unclaimed))
    }

    /// The definition an execution runs.
    pub(crate) async fn def_of(&mut self, version: i64) -> Result<Definition> {
        if let Some(def) = self.defs.get(&version) {
            return Ok(def.clone());
        }
        let (declaration, _) = self.engine.pipeline_in(&mut self.tx, &self.name, version).await?;
        let def = self.engine.definition_from(&self.name, &declaration, version)?;
        self.defs.insert(version, def.clone());
        Ok(def)
    }

    pub(crate) async fn event(&mut self, execution: &str, actor: &str, kind: &str) -> Result<()> {
        let event = sluice_store::events::NewEvent {
            execution_id: Some(execution),
            job_id: None,
            actor,
            kind,
            subject: &self.name,
            detail: "{}",
            at: self.now,
        };
        sluice_store::events::append(&mut self.tx, &event).await?;
        Ok(())
    }

    /// An execution as this transition sees it (read once, then kept with every change).
    pub(crate) async fn execution(&mut self, id: &str) -> Result<ExecutionRow> {
        if let Some(row) = self.executions.get(id) {
            return Ok(row.clone());
        }
        let row = if self.shared {
            rows::lock_and_read_execution(&mut self.tx, id).await?
        } else {
            rows::execution_in(&mut self.tx, id).await?
        };
        let row = row.ok_or_else(|| Error::Internal(format!("execution {id} vanished")))?;
        self.executions.insert(id.to_string(), row.clone());
        Ok(row)
    }

    /// Records an execution's new state; the transition's later reads see it, and
    /// [`Transition::flush`] writes it.
    pub(crate) async fn save_execution(&mut self, row: &ExecutionRow) -> Result<()> {
        if !self.inserted.contains(&row.id) {
            self.changed.insert(row.id.clone());
        }
        self.executions.insert(row.id.clone(), row.clone());
        Ok(())
    }

    /// A new execution, written by [`Transition::flush`].
    pub(crate) fn insert_execution(&mut self, row: ExecutionRow) {
        self.inserted.insert(row.id.clone());
        self.executions.insert(row.id.clone(), row);
    }

    /// Writes the executions inserted or changed since the last flush.
    pub(crate) async fn flush(&mut self) -> Result<()> {
        for id in std::mem::take(&mut self.inserted) {
            rows::insert_execution(&mut self.tx, &self.executions[&id]).await?;
        }
        for id in std::mem::take(&mut self.changed) {
            rows::update_execution(&mut self.tx, &self.executions[&id]).await?;
        }
        Ok(())
    }

    /// The pipeline's in-progress executions at a stage in any of `states`, oldest first, as
    /// this transition sees them: the stored rows with its own unwritten changes laid over them.
    /// (Writing those first would cost a second write of the same rows before the commit.)
    pub(crate) async fn executions_at_stage(
        &mut self,
        index: i64,
        states: &[&str],
    ) -> Result<Vec<ExecutionRow>> {
        let none_stored = states == [WAITING] && self.primed.no_waiters_at == Some(index);
        let stored = if none_stored {
            Vec::new()
        } else {
            rows::executions_at_stage(&mut self.tx, &self.name, index, states).await?
        };
        let mut here: std::collections::BTreeMap<(i64, String), ExecutionRow> =
            std::collections::BTreeMap::new();
        for row in stored {
            let row = self.executions.get(&row.id).cloned().unwrap_or(row);
            here.insert((row.created_at, row.id.clone()), row);
        }
        for row in self.executions.values() {
            here.entry((row.created_at, row.id.clone())).or_insert_with(|| row.clone());
        }
        let at_stage = |e: &ExecutionRow| {
            e.kind == "pipeline"
                && e.definition_name == self.name
                && e.stage_index == index
                && states.contains(&e.stage_state.as_str())
                && e.status == status::IN_PROGRESS
        };
        Ok(here.into_values().filter(at_stage).collect())
    }

    /// Keeps what a job result read with the finish of its job, for the reads it stands for.
    pub(crate) fn prime(&mut self, finished: &sluice_store::jobs::FinishedJob) {
        let key = (finished.step.execution_id.clone(), finished.step.position);
        self.primed = Primed {
            stage_steps: Some((key, finished.stage_steps.clone())),
            disabled: Some(finished.disabled.iter().cloned().collect()),
            no_waiters_at: (!finished.waiters).then_some(finished.step.position),
        };
    }

    /// Records a step's new state; written with the transaction's next round trip. The step
    /// must exist before this transition.
    pub(crate) async fn save_step(&mut self, step: &StepRow) -> Result<()> {
        if let Some((_, steps)) = &mut self.primed.stage_steps {
            for kept in steps.iter_mut().filter(|kept| kept.id == step.id) {
                *kept = step.clone();
            }
        }
        rows::update_step_later(&mut self.tx, step).await?;
        Ok(())
    }

    /// The steps of an execution at a stage, in start order.
    async fn steps_at(&mut self, id: &str, stage: i64) -> Result<Vec<StepRow>> {
        let primed = self.primed.stage_steps.take_if(|((execution, at), _)| execution == id && *at == stage);
        match primed {
            Some((_, steps)) => Ok(steps),
            None => Ok(rows::steps_at(&mut self.tx, id, stage).await?),
        }
    }

    /// Whether the pipeline's inbound transition to `stage` is disabled.
    async fn transition_disabled(&mut self, stage: &str) -> Result<bool> {
        match &self.primed.disabled {
            Some(disabled) => Ok(disabled.contains(stage)),
            None => Ok(rows::transition_disabled(&mut self.tx, &self.name, stage).await?),
        }
    }

    /// Queues "this step finished" for its execution.
    pub(crate) fn step_done(&mut self, step: &StepRow) {
        self.work.push_back(Work::StepDone {
            execution: step.execution_id.clone(),
            stage: step.position as usize,
        });
    }

    /// Works through the queue until nothing follows.
    pub(crate) async fn run(&mut self) -> Result<()> {
        while let Some(work) = self.work.pop_front() {
            match work {
                Work::Request { execution, stage } => self.request(&execution, stage).await?,
                Work::StepDone { execution, stage } => self.check_stage(&execution, stage).await?,
                Work::Admit { stage } => self.admit(stage).await?,
            }
        }
        Ok(())
    }

    /// The stage lock rules of the execution mode.
    async fn request(&mut self, id: &str, stage: usize) -> Result<()> {
        let mut execution = self.execution(id).await?;
        // Only a waiting execution asks to enter a stage (an admit read before another
        // transition let it in must not start the stage twice).
        let waiting_here = execution.stage_state == WAITING && execution.stage_index == stage as i64;
        if execution.status != status::IN_PROGRESS || !waiting_here {
            return Ok(());
        }
        let def = self.def_of(execution.definition_version).await?;
        let index = stage as i64;
        let stage_name = def.spec.stages[stage].name.clone();
        // The first stage has no inbound transition to disable (DisableStageTransition refuses it).
        let open = stage == 0 || !self.transition_disabled(&stage_name).await?;
        // PARALLEL executions share stages: no need to read (possibly many) neighbours.
        let (running, others_waiting) = if def.mode == "PARALLEL" {
            (Vec::new(), Vec::new())
        } else {
            let here = self.executions_at_stage(index, &[RUNNING, WAITING]).await?;
            let (running, waiting): (Vec<_>, Vec<_>) =
                here.into_iter().partition(|e| e.stage_state == RUNNING);
            (running, waiting.into_iter().filter(|w| w.id != id).collect::<Vec<_>>())
        };
        let free = open && running.iter().all(|r| r.id == id);
        let may_enter = match def.mode.as_str() {
            "PARALLEL" => open,
            "QUEUED" => {
                free && others_waiting
                    .iter()
                    .all(|w| (w.created_at, &w.id) > (execution.created_at, &execution.id))
            }
            _ => free,
        };
        if def.mode == "SUPERSEDED" && !may_enter {
            for mut older in others_waiting {
                older.status = status::SUPERSEDED.into();
                older.stage_state = DONE.into();
                older.finished_at = Some(self.now);
                older.updated_at = self.now;
                self.save_execution(&older).await?;
            }
        }
        execution.stage_index = index;
        execution.stage_state = if may_enter { RUNNING.into() } else { WAITING.into() };
        execution.updated_at = self.now;
        self.save_execution(&execution).await?;
        if may_enter {
            let first = def.spec.stages[stage].actions.iter().map(|a| a.run_order).min().unwrap_or(1);
            self.start_group(&execution, &def, stage, first).await?;
        }
        Ok(())
    }

    pub(crate) async fn start_group(
        &mut self,
        execution: &ExecutionRow,
        def: &Definition,
        stage: usize,
        run_order: u32,
    ) -> Result<()> {
        let actions: Vec<ActionSpec> =
            def.spec.stages[stage].actions.iter().filter(|a| a.run_order == run_order).cloned().collect();
        let mut finished = false;
        for action in actions {
            finished |= self.start_action(execution, def, stage, &action).await?;
        }
        // A group whose actions all wait for a job or an approval cannot be done yet.
        if finished {
            self.work.push_back(Work::StepDone { execution: execution.id.clone(), stage });
        }
        Ok(())
    }

    /// Starts one action; true if it finished at once (an S3 source, or a configuration error).
    pub(crate) async fn start_action(
        &mut self,
        execution: &ExecutionRow,
        def: &Definition,
        stage: usize,
        action: &ActionSpec,
    ) -> Result<bool> {
        let step_id = crate::new_id();
        let mut data = json!({
            "stage": def.spec.stages[stage].name,
            "action": action.name,
            "runOrder": action.run_order,
            "actionTypeId": {"category": action.type_id.category.as_str(), "owner": action.type_id.owner.as_str(),
                             "provider": action.type_id.provider, "version": action.type_id.version},
            "configuration": action.configuration,
            "namespace": action.namespace,
        });
        let mut step = StepRow {
            id: step_id.clone(),
            execution_id: execution.id.clone(),
            name: action.name.clone(),
            position: stage as i64,
            status: step_status::IN_PROGRESS.into(),
            attempt: 1,
            data: String::new(),
            error: None,
            started_at: Some(self.now),
            finished_at: None,
        };
        let current = self.execution(&execution.id).await?;
        let execution_data = data_of(&current.data);
        step.attempt = crate::stage_retry::stage_attempt(&execution_data, &def.spec.stages[stage].name);
        let secret_check = self.check_secret_references(def, stage, action, &execution_data).await?;
        match secret_check.and_then(|()| resolve_configuration(&action.configuration, &execution_data)) {
            Ok(resolved) => data["configuration"] = json!(resolved),
            Err(message) => {
                data["errorDetails"] = json!({"code": "ConfigurationError", "message": message});
                step.status = step_status::FAILED.into();
                step.finished_at = Some(self.now);
                step.data = data.to_string();
                rows::insert_step(&mut self.tx, &step).await?;
                return Ok(true);
            }
        }
        let id = &action.type_id;
        match (id.category, id.owner, id.provider.as_str()) {
            (Category::Approval, Owner::Aws, "Manual") => {
                let token = uuid::Uuid::new_v4().to_string();
                data["token"] = json!(token);
                let timeout = def
                    .action_declaration(stage, &action.name)
                    .and_then(|a| a.get("timeoutInMinutes"))
                    .and_then(Value::as_i64)
                    .map(|m| m * 60_000)
                    .unwrap_or(APPROVAL_TIMEOUT_MILLIS)
                    .min(APPROVAL_TIMEOUT_MILLIS);
                data["expiresAt"] = json!(self.now + timeout);
                step.data = data.to_string();
                rows::insert_step(&mut self.tx, &step).await?;
                let wait = NewWait {
                    id: &crate::new_id(),
                    execution_id: &execution.id,
                    step_id: &step_id,
                    kind: "approval",
                    token: Some(&token),
                    due_at: Some(self.now + timeout),
                    at: self.now,
                };
                rows::insert_wait(&mut self.tx, &wait).await?;
            }
            (Category::Source, Owner::Aws, "S3") => {
                let outcome = self.run_s3_source(def, action).await;
                match outcome {
                    Ok((artifact, revision)) => {
                        data["outputArtifacts"] = json!([artifact]);
                        data["outputVariables"] = json!({"ETag": revision});
                        data["revision"] = json!(revision);
                        step.status = step_status::SUCCEEDED.into();
                        step.finished_at = Some(self.now);
                        self.record_outputs(execution, &data).await?;
                    }
                    Err(message) => {
                        data["errorDetails"] = json!({"code": "JobFailed", "message": message});
                        step.status = step_status::FAILED.into();
                        step.finished_at = Some(self.now);
                    }
                }
                step.data = data.to_string();
                rows::insert_step(&mut self.tx, &step).await?;
            }
            _ => {
                data["outputArtifacts"] = json!(output_locations(def, action));
                data["inputArtifacts"] = json!(input_locations(&execution_data, action));
                step.data = data.to_string();
                rows::insert_step(&mut self.tx, &step).await?;
                self.enqueue_job(def, execution, &step, action, None).await?;
            }
        }
        Ok(step.status != step_status::IN_PROGRESS)
    }

    /// Secret values are not in the stored declaration; check their variable references resolve.
    async fn check_secret_references(
        &mut self,
        def: &Definition,
        stage: usize,
        action: &ActionSpec,
        execution: &Map<String, Value>,
    ) -> Result<std::result::Result<(), String>> {
        if !action.configuration.values().any(|v| v == crate::pipelines::SECRET_MASK) {
            return Ok(Ok(()));
        }
        let prefix = format!("{}/{}/", def.spec.stages[stage].name, action.name);
        let (_, secrets) = self.engine.pipeline_in(&mut self.tx, &def.name, def.version).await?;
        let secrets: std::collections::BTreeMap<String, String> = secrets
            .into_iter()
            .filter_map(|(path, value)| path.strip_prefix(&prefix).map(|p| (p.to_string(), value)))
            .collect();
        Ok(resolve_configuration(&secrets, execution).map(|_| ()))
    }

    /// Queues a job for a step (the first, or a continuation).
    pub(crate) async fn enqueue_job(
        &mut self,
        def: &Definition,
        execution: &ExecutionRow,
        step: &StepRow,
        action: &ActionSpec,
        continuation_token: Option<&str>,
    ) -> Result<()> {
        let action_type = self.engine.action_type_in(&mut self.tx, &action.type_id).await?;
        // The queryable value as resolved when the step started.
        let step_data = data_of(&step.data);
        let resolved = step_data.get("configuration");
        let query = action_type.as_ref().and_then(|t| t.queryable_property()).and_then(|p| {
            let value = resolved.and_then(|c| c.get(&p.name)).and_then(Value::as_str);
            value
                .or_else(|| action.configuration.get(&p.name).map(String::as_str))
                .map(|v| (p.name.clone(), v.to_string()))
        });
        let (step_id, stage) = (step.id.as_str(), step.position as usize);
        let key = queue_key(&action.type_id, query.as_ref().map(|(n, v)| (n.as_str(), v.as_str())));
        let timeout = crate::pipeline_jobs::job_timeout(def, stage, &action.name);
        let secrets = action_type.as_ref().is_none_or(|t| t.properties.iter().any(|p| p.secret));
        let view = crate::pipeline_jobs::recorded_view(&step_data, &def.name, secrets);
        let data = json!({"stage": stage, "action": action.name, "pipeline": def.name, "version": def.version,
                          "timeoutMillis": timeout, "view": view});
        let id = crate::new_id();
        let job = NewJob {
            id: &id,
            queue_key: &key,
            tenant: &self.engine.account().account_id,
            data: &data.to_string(),
            execution_id: Some(&execution.id),
            step_id: Some(step_id),
            continuation_token,
            timeout_millis: Some(timeout),
            at: self.now,
        };
        let Some(poll) = self.waiting_poll(&key) else {
            jobs::insert(&mut self.tx, &job).await?;
            self.queued.push((key, id));
            return Ok(());
        };
        // A poll of this process waits for this queue: the job goes in already claimed for it.
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let lease = self.now + crate::pipeline_jobs::DISPATCH_LEASE_MILLIS;
        let row = jobs::insert_dispatched(&mut self.tx, &job, &nonce, lease).await?;
        self.handing[poll].2.push(row);
        Ok(())
    }

    /// Where in [`Transition::handing`] the next job of `queue` goes: a poll this transition
    /// already took that still has room, else the oldest poll of this process waiting for the
    /// queue (None: nobody waits).
    fn waiting_poll(&mut self, queue: &str) -> Option<usize> {
        let room = |(q, waiter, jobs): &Handed| q == queue && (jobs.len() as i64) < waiter.max.max(1);
        if let Some(found) = self.handing.iter().position(room) {
            return Some(found);
        }
        let waiter = self.engine.waiters.take(&self.engine.account().account_id, queue)?;
        self.handing.push((queue.to_string(), waiter, Vec::new()));
        Some(self.handing.len() - 1)
    }

    /// Copies the source object into the artifact bucket; its ETag is the revision.
    async fn run_s3_source(
        &mut self,
        def: &Definition,
        action: &ActionSpec,
    ) -> std::result::Result<(Value, String), String> {
        let bucket = action.configuration.get("S3Bucket").cloned().unwrap_or_default();
        let key = action.configuration.get("S3ObjectKey").cloned().unwrap_or_default();
        let name = action.output_artifacts.first().cloned().unwrap_or_default();
        let target = output_locations(def, action);
        let target_key =
            target.first().and_then(|t| t.get("key")).and_then(Value::as_str).unwrap_or_default().to_string();
        let artifact_bucket = def.artifact_bucket();
        match self.engine.copy_object_in(&mut self.tx, &bucket, &key, &artifact_bucket, &target_key).await {
            Ok((copied, _)) => Ok((
                json!({"name": name, "bucket": artifact_bucket, "key": target_key, "revision": copied.etag.trim_matches('"')}),
                copied.etag.trim_matches('"').to_string(),
            )),
            Err(Error::NoSuchKey(_)) | Err(Error::InvalidBucketName(_)) => {
                Err(format!("The object s3://{bucket}/{key} does not exist in Sluice's artifact store"))
            }
            Err(other) => Err(format!("The source object could not be read: {other}")),
        }
    }

    /// Records a finished step's output artifacts and variables on its execution.
    pub(crate) async fn record_outputs(&mut self, execution: &ExecutionRow, step_data: &Value) -> Result<()> {
        let mut current = self.execution(&execution.id).await?;
        let mut data = data_of(&current.data);
        if let Some(outputs) = step_data.get("outputArtifacts").and_then(Value::as_array) {
            let artifacts = data.entry("artifacts").or_insert_with(|| json!({}));
            for output in outputs {
                if let (Some(name), Some(map)) =
                    (output.get("name").and_then(Value::as_str), artifacts.as_object_mut())
                {
                    map.insert(name.to_string(), output.clone());
                }
            }
        }
        if let (Some(namespace), Some(variables)) =
            (step_data.get("namespace").and_then(Value::as_str), step_data.get("outputVariables"))
        {
            let namespaces = data.entry("namespaces").or_insert_with(|| json!({}));
            if let Some(map) = namespaces.as_object_mut() {
                map.insert(namespace.to_string(), variables.clone());
            }
        }
        if let Some(revision) = step_data.get("revision") {
            let revisions = data.entry("artifactRevisions").or_insert_with(|| json!([]));
            if let Some(list) = revisions.as_array_mut() {
                list.push(json!({"name": step_data["outputArtifacts"][0]["name"], "revisionId": revision, "created": self.now}));
            }
        }
        current.data = Value::Object(data).to_string();
        current.updated_at = self.now;
        self.save_execution(&current).await
    }

    /// After a step finished: fail the stage, start the next run-order group, or leave the stage.
    async fn check_stage(&mut self, id: &str, stage: usize) -> Result<()> {
        let mut execution = self.execution(id).await?;
        let live = execution.status == status::IN_PROGRESS || execution.status == status::STOPPING;
        if !live || execution.stage_index != stage as i64 || execution.stage_state != RUNNING {
            return Ok(());
        }
        let def = self.def_of(execution.definition_version).await?;
        let steps = crate::stage_retry::current_steps(self.steps_at(id, stage as i64).await?);
        if steps.iter().any(|s| s.status == step_status::IN_PROGRESS) {
            return Ok(());
        }
        if execution.status == status::STOPPING {
            execution.status = status::STOPPED.into();
            return self.leave(execution, stage).await;
        }
        let failed = steps.iter().any(|s| s.status == step_status::FAILED);
        let current_group = steps
            .iter()
            .filter_map(|s| data_of(&s.data).get("runOrder").and_then(Value::as_u64))
            .max()
            .unwrap_or(0) as u32;
        let next_group =
            def.spec.stages[stage].actions.iter().map(|a| a.run_order).filter(|&r| r > current_group).min();
        match (failed, next_group) {
            (true, _) => {
                execution.status = status::FAILED.into();
                self.leave(execution, stage).await
            }
            (false, Some(run_order)) => self.start_group(&execution, &def, stage, run_order).await,
            (false, None) if stage + 1 == def.spec.stages.len() => {
                execution.status = status::SUCCEEDED.into();
                self.leave(execution, stage).await
            }
            (false, None) => {
                // The next stage first: admitting a waiter into this stage queries executions by
                // stage, which writes this one, and by then it holds its next stage.
                self.work.push_back(Work::Request { execution: id.to_string(), stage: stage + 1 });
                self.work.push_back(Work::Admit { stage });
                execution.stage_state = WAITING.into();
                execution.stage_index = stage as i64 + 1;
                execution.updated_at = self.now;
                self.save_execution(&execution).await?;
                Ok(())
            }
        }
    }

    /// Ends an execution in its final status and frees the stage it held.
    async fn leave(&mut self, mut execution: ExecutionRow, stage: usize) -> Result<()> {
        execution.stage_state = DONE.into();
        execution.finished_at = Some(self.now);
        execution.updated_at = self.now;
        self.save_execution(&execution).await?;
        let kind = match execution.status.as_str() {
            status::SUCCEEDED => "ExecutionSucceeded",
            status::STOPPED => "ExecutionStopped",
            _ => "ExecutionFailed",
        };
        self.event(&execution.id, "sluice", kind).await?;
        self.work.push_back(Work::Admit { stage });
        Ok(())
    }

    /// Lets the next waiting execution into a stage that was left.
    async fn admit(&mut self, stage: usize) -> Result<()> {
        let waiting = self.executions_at_stage(stage as i64, &[WAITING]).await?;
        let mode = match waiting.first() {
            Some(first) => self.def_of(first.definition_version).await?.mode,
            None => return Ok(()),
        };
        let next = match mode.as_str() {
            "SUPERSEDED" => waiting.last().cloned(),
            _ => waiting.first().cloned(),
        };
        if let Some(next) = next {
            self.work.push_back(Work::Request { execution: next.id, stage });
        }
        Ok(())
    }
}

/// One stage's state for GetPipelineState.
#[derive(Debug, Clone)]
pub struct StageStateView {
    pub stage_name: String,
    /// The newest execution that ran the stage and the stage's status in it.
    pub latest: Option<(String, String)>,
    /// How many times the latest execution's run of this stage was retried by hand.
    pub retries: i64,
    /// Each action of the stage with its newest action execution, if any.
    pub actions: Vec<(String, Option<StepRow>)>,
}

/// How many recent executions GetPipelineState looks through.
const STATE_WINDOW: i64 = 25;

impl Engine {
    /// An execution of a pipeline.
    pub async fn pipeline_execution(&self, pipeline: &str, id: &str) -> Result<ExecutionRow> {
        let row = self.store().execution(id).await?;
        row.filter(|r| {
            r.kind == "pipeline" && r.definition_name == pipeline && r.tenant == self.account().account_id
        })
        .ok_or_else(|| {
            Error::PipelineExecutionNotFound(format!("Pipeline execution {id} of {pipeline} was not found"))
        })
    }

    /// Executions of a pipeline, newest first, a page at a time.
    pub async fn list_pipeline_executions(
        &self,
        pipeline: &str,
        next_token: Option<&str>,
        max: usize,
    ) -> Result<(Vec<ExecutionRow>, Option<String>)> {
        self.pipeline(pipeline, None).await?;
        let scope = format!("executions:{pipeline}");
        let cursor = next_token.map(|t| self.open_token(&scope, t)).transpose()?;
        let before = match cursor.as_deref().and_then(|c| c.split_once(' ')) {
            Some((at, id)) => Some((
                at.parse::<i64>()
                    .map_err(|_| Error::InvalidNextToken("The next token is not valid".into()))?,
                id.to_string(),
            )),
            None if cursor.is_some() => {
                return Err(Error::InvalidNextToken("The next token is not valid".into()))
            }
            None => None,
        };
        let tenant = &self.account().account_id;
        let before_ref = before.as_ref().map(|(at, id)| (*at, id.as_str()));
        let mut page =
            self.store().list_executions("pipeline", tenant, pipeline, before_ref, max as i64 + 1).await?;
        let next = if page.len() > max {
            page.truncate(max);
            page.last().map(|e| self.seal_token(&scope, &format!("{} {}", e.created_at, e.id)))
        } else {
            None
        };
        Ok((page, next))
    }

    /// GetPipelineState: per stage, its newest execution and each action's newest execution.
    pub async fn pipeline_state(&self, pipeline: &str) -> Result<(Definition, Vec<StageStateView>)> {
        let def = self.definition(pipeline, None).await?;
        let tenant = self.account().account_id.clone();
        let recent = self.store().list_executions("pipeline", &tenant, pipeline, None, STATE_WINDOW).await?;
        let mut steps_by_execution = Vec::new();
        for execution in &recent {
            steps_by_execution.push((execution.id.clone(), self.store().steps_of(&execution.id).await?));
        }
        let stages = def
            .spec
            .stages
            .iter()
            .enumerate()
            .map(|(index, stage)| {
                let in_stage = |steps: &[StepRow]| {
                    steps.iter().filter(|s| s.position == index as i64).cloned().collect::<Vec<_>>()
                };
                let latest = steps_by_execution.iter().find_map(|(id, steps)| {
                    let here = crate::stage_retry::current_steps(in_stage(steps));
                    (!here.is_empty()).then(|| (id.clone(), stage_status(&here)))
                });
                let actions = stage
                    .actions
                    .iter()
                    .map(|action| {
                        let newest = steps_by_execution.iter().find_map(|(_, steps)| {
                            in_stage(steps).into_iter().rev().find(|s| s.name == action.name)
                        });
                        (action.name.clone(), newest)
                    })
                    .collect();
                let retries = latest
                    .as_ref()
                    .and_then(|(id, _)| recent.iter().find(|e| &e.id == id))
                    .map(|e| crate::stage_retry::stage_retries(&data_of(&e.data), &stage.name))
                    .unwrap_or(0);
                StageStateView { stage_name: stage.name.clone(), latest, retries, actions }
            })
            .collect();
        Ok((def, stages))
    }
}

fn stage_status(steps: &[StepRow]) -> String {
    if steps.iter().any(|s| s.status == step_status::IN_PROGRESS) {
        "InProgress".into()
    } else if steps.iter().any(|s| s.status == step_status::FAILED) {
        "Failed".into()
    } else {
        "Succeeded".into()
    }
}

impl Engine {
    /// ListActionExecutions: action executions of a pipeline (optionally one execution), newest
    /// first, a page at a time.
    pub async fn list_action_executions(
        &self,
        pipeline: &str,
        execution_id: Option<&str>,
        next_token: Option<&str>,
        max: usize,
    ) -> Result<(Vec<rows::StepOfExecution>, Option<String>)> {
        self.pipeline(pipeline, None).await?;
        if let Some(id) = execution_id {
            self.pipeline_execution(pipeline, id).await?;
        }
        let scope = format!("action-executions:{pipeline}:{}", execution_id.unwrap_or(""));
        let invalid = || Error::InvalidNextToken("The next token is not valid".into());
        let cursor = next_token.map(|t| self.open_token(&scope, t)).transpose()?;
        let before = match cursor.as_deref() {
            Some(text) => {
                let (at, id) = text.split_once(' ').ok_or_else(invalid)?;
                Some((at.parse::<i64>().map_err(|_| invalid())?, id.to_string()))
            }
            None => None,
        };
        let tenant = self.account().account_id.clone();
        let before_ref = before.as_ref().map(|(at, id)| (*at, id.as_str()));
        let mut page = self
            .store()
            .list_steps("pipeline", &tenant, pipeline, execution_id, before_ref, max as i64 + 1)
            .await?;
        let next = if page.len() > max {
            page.truncate(max);
            page.last().map(|s| {
                self.seal_token(&scope, &format!("{} {}", s.step.started_at.unwrap_or(0), s.step.id))
            })
        } else {
            None
        };
        Ok((page, next))
    }
}

impl Engine {
    /// The recorded inbound transition states of a pipeline's stages (unrecorded: enabled).
    pub async fn stage_transitions(&self, pipeline: &str) -> Result<Vec<rows::TransitionRow>> {
        Ok(self.store().transitions(pipeline).await?)
    }

    /// Disable/EnableStageTransition. `Outbound` on a stage is the inbound transition of the next
    /// one. Enabling lets the execution waiting there (by mode) in.
    pub async fn set_stage_transition(
        &self,
        actor: &Principal,
        pipeline: &str,
        stage: &str,
        outbound: bool,
        enabled: bool,
        reason: Option<String>,
    ) -> Result<()> {
        let def = self.definition(pipeline, None).await?;
        let index = def.spec.stages.iter().position(|s| s.name == stage).ok_or_else(|| {
            Error::StageNotFound(format!("Stage {stage} was not found in pipeline {pipeline}"))
        })?;
        let target = if outbound { index + 1 } else { index };
        let Some(target_stage) = def.spec.stages.get(target).map(|s| s.name.clone()) else {
            return Err(Error::Validation(format!(
                "Stage {stage} is the last stage and has no outbound transition"
            )));
        };
        if target == 0 {
            return Err(Error::Validation(format!(
                "Stage {stage} is the first stage and has no inbound transition"
            )));
        }
        let mut t = self.transition(def).await?;
        let row = rows::TransitionRow {
            stage: target_stage,
            enabled,
            reason,
            changed_by: actor.arn.clone(),
            changed_at: t.now,
        };
        rows::set_transition(&mut t.tx, pipeline, &row).await?;
        if enabled {
            t.work.push_back(Work::Admit { stage: target });
        }
        t.run().await?;
        t.commit().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_variables_resolve() {
        let execution = json!({
            "variables": [{"name": "Env", "resolvedValue": "prod"}],
            "namespaces": {"SourceVars": {"ETag": "abc123"}},
        });
        let execution = execution.as_object().unwrap().clone();
        let config = std::collections::BTreeMap::from([
            ("Target".to_string(), "deploy-#{variables.Env}-#{SourceVars.ETag}".to_string()),
            ("Plain".to_string(), "no #{ closing".to_string()),
        ]);
        let resolved = resolve_configuration(&config, &execution).unwrap();
        assert_eq!(resolved["Target"], "deploy-prod-abc123");
        assert_eq!(resolved["Plain"], "no #{ closing");
        let missing = std::collections::BTreeMap::from([("X".to_string(), "#{variables.Nope}".to_string())]);
        assert!(resolve_configuration(&missing, &execution).unwrap_err().contains("#{variables.Nope}"));
    }
}
