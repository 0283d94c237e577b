//! The engine: the only writer of Sluice's state. Facades hand it validated input and a principal;
//! it checks the domain rules, writes through the store in one transaction per change (with the
//! change's event), and answers with domain results or an [`Error`].
//!
//! Modules: [`secrets`] (encryption at rest and sealed paging tokens), [`keys`] (access keys and
//! principals), [`action_types`], [`pipelines`] (declarations, versions, secret properties),
//! [`tags`], [`documents`] (SSM Automation documents and their versions), [`automation`] (runbook
//! executions, their steps, signals and worker jobs), [`cloudforet`] (Cloudforet identity resources
//! and collector jobs). `handoff` gives jobs straight to long polls waiting in this process.

pub mod action_types;
pub mod artifacts;
pub mod automation;
pub mod cloudforet;
pub mod documents;
pub mod executions;
mod handoff;
pub mod keys;
pub mod pipeline_jobs;
pub mod pipelines;
pub mod secrets;
pub mod stage_retry;
pub mod tags;

use sluice_core::clock::SharedClock;
use sluice_core::pipeline::StructureError;
use sluice_core::AccountContext;
use sluice_store::Store;

pub use secrets::SecretBox;

/// What can go wrong in an engine operation. Facades map each variant to their wire once.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input that breaks a rule of the model (lengths, combinations).
    #[error("{0}")]
    Validation(String),
    /// A pipeline declaration that breaks a structural rule.
    #[error(transparent)]
    Structure(#[from] StructureError),
    #[error("{0}")]
    PipelineNotFound(String),
    #[error("{0}")]
    PipelineVersionNotFound(String),
    #[error("{0}")]
    PipelineNameInUse(String),
    #[error("{0}")]
    ActionTypeNotFound(String),
    #[error("{0}")]
    ActionTypeExists(String),
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    InvalidTags(String),
    #[error("{0}")]
    TooManyTags(String),
    #[error("{0}")]
    InvalidNextToken(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    NoSuchKey(String),
    #[error("{0}")]
    JobNotFound(String),
    #[error("{0}")]
    InvalidNonce(String),
    #[error("{0}")]
    InvalidClientToken(String),
    #[error("{0}")]
    InvalidJobState(String),
    #[error("{0}")]
    InvalidApprovalToken(String),
    #[error("{0}")]
    ApprovalAlreadyCompleted(String),
    #[error("{0}")]
    PipelineExecutionNotFound(String),
    #[error("{0}")]
    NotStoppable(String),
    #[error("{0}")]
    StageNotFound(String),
    #[error("{0}")]
    DuplicatedStopRequest(String),
    #[error("{0}")]
    StageNotRetryable(String),
    #[error("{0}")]
    NotLatestPipelineExecution(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidBucketName(String),
    #[error("{0}")]
    DocumentAlreadyExists(String),
    #[error("{0}")]
    InvalidDocument(String),
    #[error("{0}")]
    InvalidDocumentVersion(String),
    /// Document content that breaks a runbook rule; the text says which.
    #[error("{0}")]
    InvalidDocumentContent(String),
    #[error("{0}")]
    DuplicateDocumentContent(String),
    #[error("{0}")]
    DuplicateDocumentVersionName(String),
    #[error("{0}")]
    InvalidDocumentOperation(String),
    #[error("{0}")]
    InvalidFilterKey(String),
    #[error("{0}")]
    EntityTooLarge(String),
    #[error("{0}")]
    AutomationDefinitionNotFound(String),
    #[error("{0}")]
    AutomationDefinitionVersionNotFound(String),
    #[error("{0}")]
    InvalidAutomationExecutionParameters(String),
    #[error("{0}")]
    AutomationExecutionNotFound(String),
    #[error("{0}")]
    InvalidAutomationStatusUpdate(String),
    #[error("{0}")]
    InvalidAutomationSignal(String),
    #[error("{0}")]
    AutomationStepNotFound(String),
    #[error("{0}")]
    InvalidFilterValue(String),
    #[error("{0}")]
    IdempotentParameterMismatch(String),
    /// Stored data or a key could not be decrypted or decoded.
    #[error("internal error")]
    Internal(String),
    #[error("storage failure")]
    Store(#[from] sluice_store::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The principal making a request, as authenticated by a facade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub arn: String,
    pub is_root: bool,
    /// Set for a job's temporary artifact credentials: the only objects they may touch.
    pub scope: Option<std::sync::Arc<keys::JobScope>>,
}

/// A new row id: a UUID ordered by creation time (version 7), so that rows created close together
/// share the index pages a commit writes, rather than one random page per index and row. Ids
/// that are secrets (tokens) stay random.
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Shared engine state; cheap to clone.
#[derive(Debug, Clone)]
pub struct Engine {
    store: Store,
    clock: SharedClock,
    secrets: SecretBox,
    account: AccountContext,
    key_cache: std::sync::Arc<keys::KeyCache>,
    artifacts_dir: std::path::PathBuf,
    /// Stored action types seen live (they never change once declared, until deleted).
    seen_action_types: std::sync::Arc<std::sync::Mutex<action_types::KnownTypes>>,
    /// Woken after a commit that queued jobs; long polls wait on it.
    jobs_ready: std::sync::Arc<
        std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Notify>>>,
    >,
    /// Long polls of this process waiting to be handed jobs by the transition that queues them.
    waiters: std::sync::Arc<handoff::Waiters>,
    /// Pipeline definitions already parsed, by name and version.
    definitions: std::sync::Arc<executions::DefinitionCache>,
}

impl Engine {
    pub fn new(
        store: Store,
        clock: SharedClock,
        secrets: SecretBox,
        account: AccountContext,
        artifacts_dir: std::path::PathBuf,
    ) -> Self {
        Engine {
            store,
            clock,
            secrets,
            account,
            key_cache: Default::default(),
            artifacts_dir,
            seen_action_types: Default::default(),
            jobs_ready: Default::default(),
            waiters: Default::default(),
            definitions: Default::default(),
        }
    }

    /// Wakes every long poll (jobs came back to queues the caller does not know).
    pub(crate) fn notify_all_queues(&self) {
        for notifier in self.jobs_ready.lock().expect("jobs_ready").values() {
            notifier.notify_waiters();
        }
    }

    /// Wakes the long polls of `queue`: jobs were queued on it.
    pub(crate) fn notify_queue(&self, queue: &str) {
        let notifier = self.jobs_ready.lock().expect("jobs_ready").get(queue).cloned();
        if let Some(notifier) = notifier {
            notifier.notify_waiters();
        }
    }

    /// The notifier a queue's long polls wait on: only polls of that queue wake for its jobs.
    pub(crate) fn jobs_ready(&self, queue: &str) -> std::sync::Arc<tokio::sync::Notify> {
        let mut notifiers = self.jobs_ready.lock().expect("jobs_ready");
        notifiers.entry(queue.to_string()).or_default().clone()
    }

    /// Where artifact object bytes are kept.
    pub fn artifacts_dir(&self) -> &std::path::Path {
        &self.artifacts_dir
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn account(&self) -> &AccountContext {
        &self.account
    }

    pub fn now_millis(&self) -> i64 {
        self.clock.now_millis()
    }

    /// Seals a paging position into an opaque token only this server can open.
    pub fn seal_token(&self, scope: &str, position: &str) -> String {
        self.secrets.seal_token(&format!("{scope}\n{position}"))
    }

    /// Opens a token sealed for `scope`; anything else is `InvalidNextToken`.
    pub fn open_token(&self, scope: &str, token: &str) -> Result<String> {
        let invalid = || Error::InvalidNextToken("The next token is not valid".into());
        let plain = self.secrets.open_token(token).ok_or_else(invalid)?;
        let (token_scope, position) = plain.split_once('\n').ok_or_else(invalid)?;
        if token_scope != scope {
            return Err(invalid());
        }
        Ok(position.to_string())
    }
}
