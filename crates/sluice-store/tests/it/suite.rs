//! Storage behaviour every backend must show.

use sluice_core::action_type::{
    ActionType, ActionTypeId, ActionTypeSettings, ArtifactBounds, Category, ConfigProperty, Owner,
    PropertyKind,
};
use sluice_store::automation::AutomationFilter;
use sluice_store::documents::{
    AddVersionOutcome, DeleteVersionOutcome, DocumentQuery, NewDocument, NewDocumentVersion,
};
use sluice_store::events::NewEvent;
use sluice_store::executions::{self, ExecutionRow};
use sluice_store::keys::{AccessKeyRow, KeyKind};
use sluice_store::pipelines::{PipelineWrite, UpdateOutcome};
use sluice_store::Error;

use crate::support::TestDb;

mod cf_query;
mod cf_rows;
pub use cf_query::*;
pub use cf_rows::*;

fn event<'a>(kind: &'a str, subject: &'a str, at: i64) -> NewEvent<'a> {
    NewEvent {
        execution_id: None,
        job_id: None,
        actor: "arn:aws:iam::123456789012:root",
        kind,
        subject,
        detail: "{}",
        at,
    }
}

fn custom_type(provider: &str, version: &str) -> ActionType {
    ActionType {
        id: ActionTypeId {
            category: Category::Build,
            owner: Owner::Custom,
            provider: provider.into(),
            version: version.into(),
        },
        settings: ActionTypeSettings {
            entity_url_template: Some("https://example.com/{Config:Target}".into()),
            ..Default::default()
        },
        properties: vec![ConfigProperty {
            name: "Target".into(),
            required: true,
            key: true,
            secret: false,
            queryable: true,
            description: Some("what to build".into()),
            kind: Some(PropertyKind::String),
        }],
        input: ArtifactBounds { min: 0, max: 2 },
        output: ArtifactBounds { min: 1, max: 5 },
    }
}

fn write<'a>(name: &'a str, declaration: &'a str, secrets: Option<&'a [u8]>) -> PipelineWrite<'a> {
    PipelineWrite { name, pipeline_type: "V1", execution_mode: "SUPERSEDED", declaration, secrets }
}

pub async fn access_keys_round_trip_and_conflict(db: &TestDb) {
    let key = AccessKeyRow {
        access_key_id: "AKIAEXAMPLE0001".into(),
        secret_enc: vec![0, 1, 2, 255],
        principal_arn: "arn:aws:iam::123456789012:user/ci".into(),
        name: "ci".into(),
        kind: KeyKind::User,
        expires_at: None,
        created_at: 1_700_000_000_000,
        session_token_hash: None,
        job_id: None,
        scope: None,
    };
    db.store.insert_access_key(&key).await.unwrap();
    assert_eq!(db.store.access_key("AKIAEXAMPLE0001").await.unwrap(), Some(key.clone()));
    assert_eq!(db.store.access_key("AKIAMISSING").await.unwrap(), None);
    assert!(matches!(db.store.insert_access_key(&key).await, Err(Error::Conflict)));
    assert!(db.store.user_key_name_taken("ci").await.unwrap());
    assert!(!db.store.user_key_name_taken("other").await.unwrap());
}

/// Inserts a queued job `id` inside `tx`.
async fn insert_job_in(tx: &mut sluice_store::Tx<'_>, id: &str) -> sluice_store::Result<()> {
    let job = sluice_store::jobs::NewJob {
        id,
        queue_key: "group-q",
        tenant: "t",
        data: "{}",
        execution_id: None,
        step_id: None,
        continuation_token: None,
        timeout_millis: None,
        at: 1,
    };
    sluice_store::jobs::insert(tx, &job).await
}

/// Many writers at once (SQLite groups them into shared commits): each transaction's writes are
/// kept or dropped as a whole, whatever the others in its group do.
pub async fn concurrent_transactions_commit_alone_or_together(db: &TestDb) {
    let mut writers = Vec::new();
    for n in 0..40 {
        let store = db.store.clone();
        writers.push(tokio::spawn(async move {
            let mut tx = store.begin().await.unwrap();
            insert_job_in(&mut tx, &format!("group-{n}")).await.unwrap();
            tokio::task::yield_now().await;
            match n % 3 {
                0 => drop(tx),
                1 => tx.commit().await.unwrap(),
                _ => {
                    // A statement fails (a duplicate key) and the transaction is abandoned. On
                    // PostgreSQL the insert is held and fails when it is sent, here at the commit.
                    let failed = match insert_job_in(&mut tx, &format!("group-{n}")).await {
                        Err(err) => Err(err),
                        Ok(()) => tx.commit().await,
                    };
                    assert!(matches!(failed, Err(Error::Conflict)), "job {n}: {failed:?}");
                }
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    for n in 0..40 {
        let stored = db.store.job(&format!("group-{n}")).await.unwrap();
        assert_eq!(stored.is_some(), n % 3 == 1, "job {n}");
    }
}

/// Inserts a transaction holds back (on PostgreSQL, until its next statement) are there for that
/// statement, in order, with the event inserted among them; a transaction dropped with inserts
/// still held leaves nothing.
pub async fn held_inserts_are_seen_by_the_next_statement(db: &TestDb) {
    let mut tx = db.store.begin().await.unwrap();
    for n in 0..3 {
        insert_job_in(&mut tx, &format!("held-{n}")).await.unwrap();
    }
    let event = sluice_store::events::NewEvent {
        execution_id: None,
        job_id: Some("held-0"),
        actor: "tester",
        kind: "held",
        subject: "held-subject",
        detail: "{}",
        at: 1,
    };
    sluice_store::events::append(&mut tx, &event).await.unwrap();
    sluice_store::jobs::announce_in(&mut tx, db.store.backend(), "group-q").await.unwrap();
    let ids: Vec<String> = (0..4).map(|n| format!("held-{n}")).collect();
    let claimed = db.store.claim_jobs_by_id_in(&mut tx, &ids, 10, 2).await.unwrap();
    let mut claimed: Vec<String> = claimed.into_iter().map(|job| job.id).collect();
    claimed.sort();
    assert_eq!(claimed, ids[..3].to_vec(), "the next statement sees every held insert");
    tx.commit().await.unwrap();
    let events = db.store.events_for_subject("held-subject").await.unwrap();
    assert_eq!(events.len(), 1);

    let mut tx = db.store.begin().await.unwrap();
    insert_job_in(&mut tx, "held-dropped").await.unwrap();
    drop(tx);
    assert!(db.store.job("held-dropped").await.unwrap().is_none());
    assert_eq!(
        db.store.job("held-1").await.unwrap().map(|job| job.status.as_str().to_string()),
        Some("Dispatched".into())
    );
}

/// A guarded transaction writes only while its guard finds its row: its inserts and
/// notifications commit together, whether nothing else came before the commit (on PostgreSQL
/// then one statement) or a read made it begin; with a stale guard nothing is written.
pub async fn a_guarded_transaction_writes_only_while_its_guard_holds(db: &TestDb) {
    let arn = "arn:aws:codepipeline:us-east-1:123456789012:guarded";
    db.store
        .create_pipeline(&write("guarded", "{}", None), arn, &[], &event("Create", "guarded", 1))
        .await
        .unwrap();
    let mut tx = db.store.begin().await.unwrap();
    let hold = executions::lock_pipeline(&mut tx, "guarded").await.unwrap().unwrap();
    tx.commit().await.unwrap();
    let stale = executions::PipelineHold { version: hold.version + 1, ..hold.clone() };
    let job_status = |id: &'static str| async move {
        db.store.job(id).await.unwrap().map(|job| job.status.as_str().to_string())
    };

    let mut tx = executions::begin_sharing_pipeline(&db.store, "guarded", &hold).await.unwrap();
    insert_job_in(&mut tx, "guarded-only-inserts").await.unwrap();
    sluice_store::jobs::announce_in(&mut tx, db.store.backend(), "guarded-q").await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(job_status("guarded-only-inserts").await, Some("Queued".into()));

    let mut tx = executions::begin_sharing_pipeline(&db.store, "guarded", &hold).await.unwrap();
    insert_job_in(&mut tx, "guarded-with-a-read").await.unwrap();
    let ids = vec!["guarded-with-a-read".to_string()];
    assert_eq!(db.store.claim_jobs_by_id_in(&mut tx, &ids, 10, 2).await.unwrap().len(), 1);
    tx.commit().await.unwrap();
    assert_eq!(job_status("guarded-with-a-read").await, Some("Dispatched".into()));

    let stale_commit = async {
        let mut tx = executions::begin_sharing_pipeline(&db.store, "guarded", &stale).await?;
        insert_job_in(&mut tx, "guarded-stale").await?;
        tx.commit().await
    };
    assert!(matches!(stale_commit.await, Err(Error::GuardFailed)));
    let stale_read = async {
        let mut tx = executions::begin_sharing_pipeline(&db.store, "guarded", &stale).await?;
        insert_job_in(&mut tx, "guarded-stale").await?;
        db.store.claim_jobs_by_id_in(&mut tx, &["guarded-stale".to_string()], 10, 2).await
    };
    assert!(matches!(stale_read.await, Err(Error::GuardFailed)));
    assert_eq!(job_status("guarded-stale").await, None, "a stale guard writes nothing");
}

/// The periodic vacuum of the queue's tables runs outside any transaction on both backends and
/// leaves queued jobs claimable.
pub async fn queue_vacuum_leaves_jobs_claimable(db: &TestDb) {
    let mut tx = db.store.begin().await.unwrap();
    for n in 0..3 {
        let id = format!("vac-{n}");
        let job = sluice_store::jobs::NewJob {
            id: &id,
            queue_key: "vacuum-q",
            tenant: "t",
            data: "{}",
            execution_id: None,
            step_id: None,
            continuation_token: None,
            timeout_millis: None,
            at: n,
        };
        sluice_store::jobs::insert(&mut tx, &job).await.unwrap();
    }
    tx.commit().await.unwrap();
    let first = db.store.claim_jobs("vacuum-q", "t", 1, 100, 10).await.unwrap();
    db.store.vacuum_queue().await.unwrap();
    let rest = db.store.claim_jobs("vacuum-q", "t", 5, 100, 11).await.unwrap();
    let ids: Vec<&str> = first.iter().chain(&rest).map(|j| j.id.as_str()).collect();
    assert_eq!(ids, vec!["vac-0", "vac-1", "vac-2"]);
}

pub async fn action_types_insert_list_delete(db: &TestDb) {
    let make = custom_type("Make", "1");
    let lint = custom_type("Lint", "2");
    db.store.insert_action_type(&make, &event("CreateCustomActionType", "Make", 1)).await.unwrap();
    db.store.insert_action_type(&lint, &event("CreateCustomActionType", "Lint", 2)).await.unwrap();

    let stored = db.store.action_type(&make.id).await.unwrap().unwrap();
    assert_eq!(stored.action_type, make);
    assert!(!stored.deleted);

    let all = db.store.list_action_types(None).await.unwrap();
    assert_eq!(all, vec![lint.clone(), make.clone()]);
    assert_eq!(db.store.list_action_types(Some(Owner::ThirdParty)).await.unwrap(), vec![]);
    assert_eq!(db.store.list_action_types(Some(Owner::Custom)).await.unwrap().len(), 2);

    assert!(db.store.delete_action_type(&make.id, &event("Delete", "Make", 3)).await.unwrap());
    assert!(!db.store.delete_action_type(&make.id, &event("Delete", "Make", 4)).await.unwrap());
    assert_eq!(db.store.list_action_types(None).await.unwrap(), vec![lint]);
    assert!(db.store.action_type(&make.id).await.unwrap().unwrap().deleted);
}

pub async fn deleted_action_type_cannot_be_recreated(db: &TestDb) {
    let make = custom_type("Make", "1");
    db.store.insert_action_type(&make, &event("Create", "Make", 1)).await.unwrap();
    assert!(db.store.delete_action_type(&make.id, &event("Delete", "Make", 2)).await.unwrap());
    let again = db.store.insert_action_type(&make, &event("Create", "Make", 3)).await;
    assert!(matches!(again, Err(Error::Conflict)), "{again:?}");
}

/// A deleted type comes back only when declared again exactly as it was; a live one never.
pub async fn a_deleted_action_type_is_restored_only_as_it_was(db: &TestDb) {
    let make = custom_type("Make", "1");
    db.store.insert_action_type(&make, &event("Create", "Make", 1)).await.unwrap();
    assert!(!db.store.restore_action_type(&make, &event("Create", "Make", 2)).await.unwrap(), "live");
    assert!(db.store.delete_action_type(&make.id, &event("Delete", "Make", 3)).await.unwrap());
    let mut changed = make.clone();
    changed.input.max += 1;
    assert!(!db.store.restore_action_type(&changed, &event("Create", "Make", 4)).await.unwrap());
    assert!(db.store.action_type(&make.id).await.unwrap().unwrap().deleted);
    assert!(db.store.restore_action_type(&make, &event("Create", "Make", 5)).await.unwrap());
    let back = db.store.action_type(&make.id).await.unwrap().unwrap();
    assert_eq!((back.action_type, back.deleted), (make.clone(), false));
    assert_eq!(db.store.list_action_types(None).await.unwrap(), [make]);
}

pub async fn pipeline_versions_are_kept(db: &TestDb) {
    let arn = "arn:aws:codepipeline:us-east-1:123456789012:p";
    let tags = vec![("team".to_string(), "core".to_string())];
    let secret: &[u8] = &[9, 9, 9];
    db.store
        .create_pipeline(&write("p", "{\"v\":1}", Some(secret)), arn, &tags, &event("Create", "p", 10))
        .await
        .unwrap();
    let dup = db.store.create_pipeline(&write("p", "{}", None), arn, &[], &event("Create", "p", 11)).await;
    assert!(matches!(dup, Err(Error::Conflict)), "{dup:?}");

    let outcome = db.store.update_pipeline(&write("p", "{\"v\":2}", None), &event("Update", "p", 20)).await;
    assert_eq!(outcome.unwrap(), UpdateOutcome::Updated { version: 2 });
    let missing = db.store.update_pipeline(&write("q", "{}", None), &event("Update", "q", 21)).await;
    assert_eq!(missing.unwrap(), UpdateOutcome::NotFound);

    let latest = db.store.pipeline("p", None).await.unwrap().unwrap();
    assert_eq!((latest.version, latest.declaration.as_str()), (2, "{\"v\":2}"));
    assert_eq!(latest.secrets, None);
    assert_eq!((latest.meta.version, latest.meta.created_at, latest.meta.updated_at), (2, 10, 20));

    let first = db.store.pipeline("p", Some(1)).await.unwrap().unwrap();
    assert_eq!((first.version, first.declaration.as_str()), (1, "{\"v\":1}"));
    assert_eq!(first.secrets.as_deref(), Some(secret));
    assert_eq!(first.meta.version, 2, "meta always describes the latest version");

    assert_eq!(db.store.pipeline("p", Some(3)).await.unwrap(), None);
    assert_eq!(db.store.pipeline("nope", None).await.unwrap(), None);
    assert_eq!(db.store.list_tags(arn, None, 10).await.unwrap(), tags);
}

pub async fn pipelines_page_by_name(db: &TestDb) {
    for i in (0..7).rev() {
        let name = format!("p{i}");
        let arn = format!("arn:{name}");
        db.store
            .create_pipeline(&write(&name, "{}", None), &arn, &[], &event("Create", &name, i))
            .await
            .unwrap();
    }
    let first = db.store.list_pipelines(None, 3).await.unwrap();
    let names: Vec<_> = first.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["p0", "p1", "p2"]);
    let rest = db.store.list_pipelines(Some("p2"), 10).await.unwrap();
    let names: Vec<_> = rest.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["p3", "p4", "p5", "p6"]);
    assert!(db.store.list_pipelines(Some("p6"), 10).await.unwrap().is_empty());
}

pub async fn deleting_a_pipeline_removes_versions_and_tags(db: &TestDb) {
    let arn = "arn:aws:codepipeline:us-east-1:123456789012:gone";
    let tags = vec![("a".to_string(), "1".to_string())];
    db.store
        .create_pipeline(&write("gone", "{}", None), arn, &tags, &event("Create", "gone", 1))
        .await
        .unwrap();
    db.store.update_pipeline(&write("gone", "{}", None), &event("Update", "gone", 2)).await.unwrap();
    assert!(db.store.delete_pipeline("gone", arn, &event("Delete", "gone", 3)).await.unwrap());
    assert!(!db.store.delete_pipeline("gone", arn, &event("Delete", "gone", 4)).await.unwrap());
    assert_eq!(db.store.pipeline("gone", Some(1)).await.unwrap(), None);
    assert!(db.store.list_tags(arn, None, 10).await.unwrap().is_empty());

    // The name can be used again and starts over at version 1.
    db.store
        .create_pipeline(&write("gone", "{\"new\":true}", None), arn, &[], &event("Create", "gone", 5))
        .await
        .unwrap();
    let again = db.store.pipeline("gone", None).await.unwrap().unwrap();
    assert_eq!((again.version, again.declaration.as_str()), (1, "{\"new\":true}"));
}

/// Deleting a pipeline deletes its executions with their steps, waits and stage transitions,
/// and fails the open jobs of its unfinished executions (kept, so their ids still resolve);
/// a runbook execution of the same name keeps its rows and its job.
pub async fn deleting_a_pipeline_removes_its_executions(db: &TestDb) {
    use executions::{NewWait, TransitionRow};
    use sluice_core::job::JobStatus;
    use sluice_store::jobs::NewJob;
    let arn = "arn:aws:codepipeline:us-east-1:123456789012:doomed";
    db.store
        .create_pipeline(&write("doomed", "{}", None), arn, &[], &event("Create", "doomed", 1))
        .await
        .unwrap();
    let mut running = automation_row("d1", "doomed", "InProgress", 5, None);
    running.kind = "pipeline".into();
    let step = |id, execution| running_step(id, execution, 0, 5);
    let wait = |id, execution, step| NewWait {
        id,
        execution_id: execution,
        step_id: step,
        kind: "approval",
        token: None,
        due_at: Some(100),
        at: 5,
    };
    let disabled = TransitionRow {
        stage: "Build".into(),
        enabled: false,
        reason: Some("hold".into()),
        changed_by: "me".into(),
        changed_at: 5,
    };
    let mut tx = db.store.begin().await.unwrap();
    executions::insert_execution(&mut tx, &running).await.unwrap();
    executions::insert_execution(&mut tx, &automation_row("a1", "doomed", "InProgress", 5, None))
        .await
        .unwrap();
    executions::insert_step(&mut tx, &step("s1", "d1")).await.unwrap();
    executions::insert_step(&mut tx, &step("s2", "a1")).await.unwrap();
    executions::insert_wait(&mut tx, &wait("w1", "d1", "s1")).await.unwrap();
    executions::insert_wait(&mut tx, &wait("w2", "a1", "s2")).await.unwrap();
    executions::set_transition(&mut tx, "doomed", &disabled).await.unwrap();
    tx.commit().await.unwrap();
    let of = |id, execution, step| NewJob {
        execution_id: Some(execution),
        step_id: Some(step),
        ..new_job(id, "q", "t", 10)
    };
    enqueue(db, &[of("j1", "d1", "s1"), of("j2", "a1", "s2")]).await;

    assert!(db.store.delete_pipeline("doomed", arn, &event("Delete", "doomed", 20)).await.unwrap());
    let mut tx = db.store.begin().await.unwrap();
    assert_eq!(executions::execution_in(&mut tx, "d1").await.unwrap(), None);
    assert_eq!(executions::step_in(&mut tx, "s1").await.unwrap(), None);
    assert!(executions::execution_in(&mut tx, "a1").await.unwrap().is_some(), "the runbook's execution");
    assert!(executions::step_in(&mut tx, "s2").await.unwrap().is_some(), "the runbook's step");
    assert!(!executions::transition_disabled(&mut tx, "doomed", "Build").await.unwrap());
    tx.commit().await.unwrap();
    let due = db.store.due_waits("approval", 1_000, 10).await.unwrap();
    assert_eq!(due, vec![("a1".to_string(), "s2".to_string())], "only the runbook's wait is left");
    let failed = db.store.job("j1").await.unwrap().unwrap();
    assert_eq!(
        (failed.status, failed.error.as_deref()),
        (JobStatus::Failed, Some("The pipeline was deleted"))
    );
    let claimed = db.store.claim_jobs("q", "t", 5, 1_000, 30).await.unwrap();
    assert_eq!(claimed.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ["j2"]);
}

/// What the statements that lock or share a pipeline return: its latest version and an
/// incarnation that updates keep and a delete followed by a create changes.
pub async fn a_pipeline_hold_names_its_version_and_incarnation(db: &TestDb) {
    let arn = "arn:aws:codepipeline:us-east-1:123456789012:held";
    let hold = |shared: bool| async move {
        let mut tx = db.store.begin().await.unwrap();
        let hold = if shared {
            executions::share_pipeline(&mut tx, "held", db.store.backend()).await.unwrap()
        } else {
            executions::lock_pipeline(&mut tx, "held").await.unwrap()
        };
        tx.commit().await.unwrap();
        hold
    };
    assert_eq!(hold(false).await, None);
    assert_eq!(hold(true).await, None);
    db.store
        .create_pipeline(&write("held", "{}", None), arn, &[], &event("Create", "held", 1))
        .await
        .unwrap();
    let first = hold(false).await.unwrap();
    assert_eq!(first.version, 1);
    assert!(!first.incarnation.is_empty());
    assert_eq!(hold(true).await, Some(first.clone()));

    db.store.update_pipeline(&write("held", "{}", None), &event("Update", "held", 2)).await.unwrap();
    let updated = hold(true).await.unwrap();
    assert_eq!((updated.version, &updated.incarnation), (2, &first.incarnation));

    db.store.delete_pipeline("held", arn, &event("Delete", "held", 3)).await.unwrap();
    db.store
        .create_pipeline(&write("held", "{}", None), arn, &[], &event("Create", "held", 4))
        .await
        .unwrap();
    let again = hold(false).await.unwrap();
    assert_eq!(again.version, 1);
    assert_ne!(again.incarnation, first.incarnation, "a recreated pipeline is a new incarnation");
}

/// Sharing a pipeline while locking one of its executions reads both, and waits for an
/// exclusive holder of the pipeline; the execution it returns then is the one that holder wrote.
pub async fn a_shared_hold_locks_and_reads_an_execution(db: &TestDb) {
    let backend = db.store.backend();
    let share = |id: &'static str| async move {
        let mut tx = db.store.begin().await.unwrap();
        let held =
            executions::share_pipeline_locking_execution(&mut tx, "shared", id, backend).await.unwrap();
        tx.commit().await.unwrap();
        held
    };
    assert_eq!(share("x1").await, None, "no pipeline");
    let arn = "arn:aws:codepipeline:us-east-1:123456789012:shared";
    db.store
        .create_pipeline(&write("shared", "{}", None), arn, &[], &event("Create", "shared", 1))
        .await
        .unwrap();
    let (hold, missing) = share("x1").await.unwrap();
    assert_eq!((hold.version, missing), (1, None), "no execution");

    let mut execution = automation_row("x1", "shared", "InProgress", 5, None);
    execution.kind = "pipeline".into();
    let mut tx = db.store.begin().await.unwrap();
    executions::insert_execution(&mut tx, &execution).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(share("x1").await, Some((hold.clone(), Some(execution.clone()))));

    let mut exclusive = db.store.begin().await.unwrap();
    executions::lock_pipeline(&mut exclusive, "shared").await.unwrap().unwrap();
    let waiting = tokio::spawn({
        let store = db.store.clone();
        async move {
            let mut tx = store.begin().await.unwrap();
            let held = executions::share_pipeline_locking_execution(&mut tx, "shared", "x1", backend).await;
            tx.commit().await.unwrap();
            held.unwrap()
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    assert!(!waiting.is_finished(), "the share waits for the exclusive holder");
    execution.status = "Stopping".into();
    execution.updated_at = 9;
    executions::update_execution(&mut exclusive, &execution).await.unwrap();
    exclusive.commit().await.unwrap();
    assert_eq!(waiting.await.unwrap(), Some((hold, Some(execution))), "the holder's write");
}

/// Locking an execution finds only existing ones, and a second lock waits for the holder and
/// then reads its write (a row lock on PostgreSQL, the writer's turn on SQLite).
pub async fn an_execution_lock_waits_for_its_holder(db: &TestDb) {
    let mut tx = db.store.begin().await.unwrap();
    assert!(!executions::lock_execution(&mut tx, "none").await.unwrap(), "no such execution");
    assert_eq!(executions::lock_and_read_execution(&mut tx, "none").await.unwrap(), None);
    let mut execution = automation_row("held-1", "p", "InProgress", 5, None);
    executions::insert_execution(&mut tx, &execution).await.unwrap();
    tx.commit().await.unwrap();

    let mut holder = db.store.begin().await.unwrap();
    assert!(executions::lock_execution(&mut holder, "held-1").await.unwrap());
    let waiting = tokio::spawn({
        let store = db.store.clone();
        async move {
            let mut tx = store.begin().await.unwrap();
            let read = executions::lock_and_read_execution(&mut tx, "held-1").await.unwrap();
            tx.commit().await.unwrap();
            read
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    assert!(!waiting.is_finished(), "the second lock waits for the holder");
    execution.status = "Success".into();
    execution.updated_at = 9;
    executions::update_execution(&mut holder, &execution).await.unwrap();
    holder.commit().await.unwrap();
    assert_eq!(waiting.await.unwrap(), Some(execution), "the holder's write");
}

/// Finishing an in-progress job returns its step with the other steps of its stage, the
/// pipeline's disabled transitions and whether executions wait to enter the stage; a job no
/// longer in progress changes nothing.
pub async fn finishing_a_job_returns_its_stage(db: &TestDb) {
    use sluice_core::job::JobStatus;
    use sluice_store::jobs::FinishedJob;
    let backend = db.store.backend();
    let step = running_step;
    let (s1, s2) = (step("s1", "exec-1", 1, 3), step("s2", "exec-1", 1, 2));
    let waiter = |id: &str, pipeline: &str, state: &str| ExecutionRow {
        kind: "pipeline".into(),
        status: "InProgress".into(),
        stage_index: 1,
        stage_state: state.into(),
        current_step: None,
        current_action: None,
        ..automation_row(id, pipeline, "InProgress", 1, None)
    };
    let transition = |stage: &str, enabled: bool| executions::TransitionRow {
        stage: stage.into(),
        enabled,
        reason: None,
        changed_by: "me".into(),
        changed_at: 1,
    };
    let mut tx = db.store.begin().await.unwrap();
    for row in [&s1, &s2, &step("s0", "exec-1", 0, 1), &step("x1", "exec-2", 1, 1)] {
        executions::insert_step(&mut tx, row).await.unwrap();
    }
    executions::insert_execution(&mut tx, &waiter("exec-3", "other", "waiting")).await.unwrap();
    executions::insert_execution(&mut tx, &waiter("exec-4", "p", "running")).await.unwrap();
    executions::set_transition(&mut tx, "p", &transition("Deploy", false)).await.unwrap();
    executions::set_transition(&mut tx, "p", &transition("Test", true)).await.unwrap();
    executions::set_transition(&mut tx, "other", &transition("Ship", false)).await.unwrap();
    tx.commit().await.unwrap();
    let with_step =
        |id, step| sluice_store::jobs::NewJob { step_id: Some(step), ..new_job(id, "q", "t", 10) };
    enqueue(db, &[with_step("j1", "s1"), new_job("j2", "q", "t", 11), with_step("j3", "s2")]).await;
    for claimed in db.store.claim_jobs("q", "t", 3, 1_000, 12).await.unwrap() {
        let nonce = claimed.nonce.unwrap();
        db.store.acknowledge_job(&claimed.id, &nonce, 2_000, 13).await.unwrap();
    }
    let finish = |id: &'static str, status: JobStatus| async move {
        let mut tx = db.store.begin().await.unwrap();
        let found = sluice_store::jobs::finish_in_stage(
            &mut tx,
            id,
            status,
            Some("why"),
            20,
            "p",
            "waiting",
            backend,
        )
        .await;
        tx.commit().await.unwrap();
        found.unwrap()
    };
    let expected = FinishedJob {
        step: s1.clone(),
        stage_steps: vec![s2.clone(), s1.clone()],
        disabled: vec!["Deploy".into()],
        waiters: false,
    };
    assert_eq!(finish("j1", JobStatus::Failed).await, Some(Some(expected.clone())));
    let done = db.store.job("j1").await.unwrap().unwrap();
    assert_eq!(
        (done.status, done.error.as_deref(), done.lease_until),
        (JobStatus::Failed, Some("why"), None)
    );
    assert_eq!(finish("j1", JobStatus::Succeeded).await, None, "no longer in progress");
    assert_eq!(db.store.job("j1").await.unwrap().unwrap().status, JobStatus::Failed);
    assert_eq!(finish("j2", JobStatus::Succeeded).await, Some(None), "a job without a step");
    assert_eq!(finish("nope", JobStatus::Succeeded).await, None);
    let mut tx = db.store.begin().await.unwrap();
    executions::insert_execution(&mut tx, &waiter("exec-5", "p", "waiting")).await.unwrap();
    tx.commit().await.unwrap();
    let waited = FinishedJob { step: s2, waiters: true, ..expected };
    assert_eq!(finish("j3", JobStatus::Succeeded).await, Some(Some(waited)), "an execution waits");
}

/// Writes held for the next round trip that name the same row apply in the order they were
/// made (on PostgreSQL a row written twice in one statement would keep only one of the writes).
pub async fn held_writes_of_one_row_apply_in_order(db: &TestDb) {
    let mut step = executions::StepRow {
        id: "held-step".into(),
        execution_id: "held-exec".into(),
        name: "Build".into(),
        position: 0,
        status: "InProgress".into(),
        attempt: 1,
        data: "{}".into(),
        error: None,
        started_at: Some(1),
        finished_at: None,
    };
    let mut execution =
        ExecutionRow { kind: "pipeline".into(), ..automation_row("held-exec", "p", "InProgress", 1, None) };
    let mut tx = db.store.begin().await.unwrap();
    executions::insert_step(&mut tx, &step).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = db.store.begin().await.unwrap();
    executions::insert_execution(&mut tx, &execution).await.unwrap();
    execution.status = "Stopping".into();
    executions::update_execution(&mut tx, &execution).await.unwrap();
    execution.status = "Stopped".into();
    executions::update_execution(&mut tx, &execution).await.unwrap();
    step.status = "Failed".into();
    executions::update_step_later(&mut tx, &step).await.unwrap();
    step.status = "Succeeded".into();
    executions::update_step_later(&mut tx, &step).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(db.store.execution("held-exec").await.unwrap().unwrap().status, "Stopped");
    assert_eq!(db.store.step("held-step").await.unwrap().unwrap().status, "Succeeded");
}

pub async fn tags_overwrite_limit_and_page(db: &TestDb) {
    let arn = "arn:x";
    let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
    assert!(db.store.tag_resource(arn, &[pair("b", "1"), pair("a", "1")], 3).await.unwrap());
    assert!(db.store.tag_resource(arn, &[pair("a", "2")], 3).await.unwrap());
    assert!(!db.store.tag_resource(arn, &[pair("c", "1"), pair("d", "1")], 3).await.unwrap());
    assert_eq!(db.store.list_tags(arn, None, 10).await.unwrap(), vec![pair("a", "2"), pair("b", "1")]);
    assert_eq!(db.store.list_tags(arn, None, 1).await.unwrap(), vec![pair("a", "2")]);
    assert_eq!(db.store.list_tags(arn, Some("a"), 1).await.unwrap(), vec![pair("b", "1")]);
    db.store.untag_resource(arn, &["a".into(), "zz".into()]).await.unwrap();
    assert_eq!(db.store.list_tags(arn, None, 10).await.unwrap(), vec![pair("b", "1")]);
    assert!(db.store.list_tags("arn:other", None, 10).await.unwrap().is_empty());
}

pub async fn changes_append_events(db: &TestDb) {
    let make = custom_type("Evented", "1");
    db.store.insert_action_type(&make, &event("CreateCustomActionType", "Evented", 5)).await.unwrap();
    db.store.delete_action_type(&make.id, &event("DeleteCustomActionType", "Evented", 6)).await.unwrap();
    // A failed change records nothing.
    let _ = db.store.insert_action_type(&make, &event("CreateCustomActionType", "Evented", 7)).await;
    let events = db.store.events_for_subject("Evented").await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| (e.kind.as_str(), e.at)).collect();
    assert_eq!(kinds, [("CreateCustomActionType", 5), ("DeleteCustomActionType", 6)]);
    assert!(events[0].seq < events[1].seq);
    assert_eq!(events[0].actor, "arn:aws:iam::123456789012:root");
}

pub async fn reopening_applies_no_migration_twice(db: &TestDb) {
    db.store.insert_action_type(&custom_type("Kept", "1"), &event("Create", "Kept", 1)).await.unwrap();
    let again = db.reopen().await;
    again.ping().await.unwrap();
    assert_eq!(again.list_action_types(None).await.unwrap().len(), 1);
    again.close().await;
}

fn new_job<'a>(id: &'a str, queue: &'a str, tenant: &'a str, at: i64) -> sluice_store::jobs::NewJob<'a> {
    sluice_store::jobs::NewJob {
        id,
        queue_key: queue,
        tenant,
        data: "{\"k\":1}",
        execution_id: Some("exec-1"),
        step_id: None,
        continuation_token: None,
        timeout_millis: None,
        at,
    }
}

async fn enqueue(db: &TestDb, jobs: &[sluice_store::jobs::NewJob<'_>]) {
    let mut tx = db.store.begin().await.unwrap();
    for job in jobs {
        sluice_store::jobs::insert(&mut tx, job).await.unwrap();
    }
    tx.commit().await.unwrap();
}

pub async fn jobs_claim_acknowledge_finish(db: &TestDb) {
    use sluice_core::job::JobStatus;
    use sluice_store::jobs::AckOutcome;
    enqueue(
        db,
        &[
            new_job("j3", "Build/Custom/Make/1", "acct", 30),
            new_job("j1", "Build/Custom/Make/1", "acct", 10),
            new_job("j2", "Build/Custom/Make/1", "acct", 20),
            new_job("other-queue", "Test/Custom/Lint/1", "acct", 5),
            new_job("other-tenant", "Build/Custom/Make/1", "acct2", 5),
        ],
    )
    .await;
    let first = db.store.claim_jobs("Build/Custom/Make/1", "acct", 2, 1_000, 100).await.unwrap();
    let ids: Vec<_> = first.iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids, ["j1", "j2"], "oldest first, only this queue and tenant");
    assert!(first.iter().all(|j| j.status == JobStatus::Dispatched && j.attempt == 1));
    assert!(first.iter().all(|j| j.lease_until == Some(1_000) && j.data == "{\"k\":1}"));
    let nonce = first[0].nonce.clone().unwrap();
    assert!(nonce.len() >= 16 && first[1].nonce.as_deref() != Some(nonce.as_str()));

    let second = db.store.claim_jobs("Build/Custom/Make/1", "acct", 10, 1_000, 100).await.unwrap();
    assert_eq!(second.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ["j3"]);
    assert!(db.store.claim_jobs("Build/Custom/Make/1", "acct", 10, 1_000, 100).await.unwrap().is_empty());

    assert_eq!(db.store.acknowledge_job("j1", "wrong", 5_000, 110).await.unwrap(), AckOutcome::InvalidNonce);
    assert_eq!(db.store.acknowledge_job("j1", &nonce, 5_000, 110).await.unwrap(), AckOutcome::Acknowledged);
    assert_eq!(
        db.store.acknowledge_job("j1", &nonce, 5_000, 111).await.unwrap(),
        AckOutcome::AlreadyInProgress
    );
    assert_eq!(db.store.acknowledge_job("nope", &nonce, 5_000, 111).await.unwrap(), AckOutcome::NotFound);
    let acked = db.store.job("j1").await.unwrap().unwrap();
    assert_eq!((acked.status, acked.lease_until), (JobStatus::InProgress, Some(5_000)));

    let mut tx = db.store.begin().await.unwrap();
    assert!(sluice_store::jobs::finish(&mut tx, "j1", JobStatus::Succeeded, None, 120).await.unwrap());
    assert!(!sluice_store::jobs::finish(&mut tx, "j1", JobStatus::Failed, Some("x"), 121).await.unwrap());
    assert!(!sluice_store::jobs::finish(&mut tx, "j2", JobStatus::Failed, Some("x"), 121).await.unwrap());
    tx.commit().await.unwrap();
    let done = db.store.job("j1").await.unwrap().unwrap();
    assert_eq!((done.status, done.lease_until, done.updated_at), (JobStatus::Succeeded, None, 120));
    assert_eq!(
        db.store.acknowledge_job("j1", &nonce, 5_000, 130).await.unwrap(),
        AckOutcome::NotDispatched(JobStatus::Succeeded)
    );
}

pub async fn expired_leases_requeue_or_time_out(db: &TestDb) {
    use sluice_core::job::JobStatus;
    use sluice_store::jobs::AckOutcome;
    enqueue(db, &[new_job("a", "q", "t", 1), new_job("b", "q", "t", 2)]).await;
    let claimed = db.store.claim_jobs("q", "t", 2, 1_000, 10).await.unwrap();
    let first_nonce = claimed[0].nonce.clone().unwrap();
    let b_nonce = claimed[1].nonce.clone().unwrap();
    assert_eq!(db.store.acknowledge_job("b", &b_nonce, 2_000, 20).await.unwrap(), AckOutcome::Acknowledged);

    assert_eq!(db.store.requeue_unacknowledged(999).await.unwrap(), 0);
    assert_eq!(db.store.requeue_unacknowledged(1_001).await.unwrap(), 1, "only the unacknowledged job");
    let requeued = db.store.job("a").await.unwrap().unwrap();
    assert_eq!((requeued.status, requeued.nonce, requeued.lease_until), (JobStatus::Queued, None, None));
    assert_eq!(
        db.store.acknowledge_job("a", &first_nonce, 3_000, 1_002).await.unwrap(),
        AckOutcome::NotDispatched(JobStatus::Queued)
    );

    let again = db.store.claim_jobs("q", "t", 5, 4_000, 1_003).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2);
    assert_ne!(again[0].nonce.as_deref(), Some(first_nonce.as_str()), "a new nonce per dispatch");

    assert!(db.store.time_out_expired(1_999).await.unwrap().is_empty());
    let timed_out = db.store.time_out_expired(2_001).await.unwrap();
    assert_eq!(timed_out.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ["b"]);
    assert_eq!(timed_out[0].status, JobStatus::TimedOut);
    assert_eq!(db.store.job("a").await.unwrap().unwrap().status, JobStatus::Dispatched);
}

/// AcknowledgeJob's one-statement form: the lease runs for the timeout the job was queued with,
/// or the default; a job of another tenant is not found and stays as it was.
pub async fn acknowledgement_leases_for_the_jobs_timeout(db: &TestDb) {
    use sluice_core::job::JobStatus;
    use sluice_store::jobs::{AckOutcome, NewJob};
    let timed = NewJob { timeout_millis: Some(7_000), ..new_job("a", "q", "t", 1) };
    enqueue(db, &[timed, new_job("b", "q", "t", 2)]).await;
    let claimed = db.store.claim_jobs("q", "t", 2, 1_000, 10).await.unwrap();
    let (a_nonce, b_nonce) = (claimed[0].nonce.clone().unwrap(), claimed[1].nonce.clone().unwrap());
    let ack = |id: &'static str, tenant: &'static str, nonce: String, now: i64| async move {
        db.store.acknowledge_job_with_timeout(id, tenant, &nonce, 500, now).await.unwrap()
    };

    assert_eq!(ack("a", "other", a_nonce.clone(), 20).await, AckOutcome::NotFound);
    assert_eq!(db.store.job("a").await.unwrap().unwrap().status, JobStatus::Dispatched);
    assert_eq!(ack("a", "t", "wrong".into(), 20).await, AckOutcome::InvalidNonce);
    assert_eq!(ack("a", "t", a_nonce.clone(), 20).await, AckOutcome::Acknowledged);
    assert_eq!(ack("b", "t", b_nonce, 20).await, AckOutcome::Acknowledged);
    let lease = |id: &'static str| async move { db.store.job(id).await.unwrap().unwrap().lease_until };
    assert_eq!((lease("a").await, lease("b").await), (Some(7_020), Some(520)));
    assert_eq!(ack("a", "t", a_nonce, 30).await, AckOutcome::AlreadyInProgress);
    assert_eq!(lease("a").await, Some(7_020), "acknowledging again extends nothing");
}

/// Acknowledgements sent at once (on PostgreSQL merged into shared statements) each get their
/// own answer: every job is acknowledged once, a second acknowledgement of a job finds it in
/// progress, a wrong nonce or tenant is refused and changes nothing.
pub async fn concurrent_acknowledgements_each_get_their_own_answer(db: &TestDb) {
    use sluice_core::job::JobStatus;
    use sluice_store::jobs::AckOutcome;
    let ids: Vec<String> = (0..120).map(|i| format!("ack-{i:03}")).collect();
    let jobs: Vec<_> = ids.iter().enumerate().map(|(i, id)| new_job(id, "q", "t", i as i64)).collect();
    enqueue(db, &jobs).await;
    let claimed = db.store.claim_jobs("q", "t", 120, 10_000, 1).await.unwrap();
    let mut acks = Vec::new();
    for (i, job) in claimed.iter().enumerate() {
        let nonce = job.nonce.clone().unwrap();
        let sends = match i % 4 {
            0 => vec![(nonce.clone(), "t"), (nonce, "t")],
            1 => vec![("wrong".to_string(), "t"), (nonce, "t")],
            2 => vec![(nonce, "other")],
            _ => vec![(nonce, "t")],
        };
        for (nonce, tenant) in sends {
            let (store, id) = (db.store.clone(), job.id.clone());
            acks.push(tokio::spawn(async move {
                let outcome = store.acknowledge_job_with_timeout(&id, tenant, &nonce, 500, 20).await.unwrap();
                (i % 4, outcome)
            }));
        }
    }
    let mut outcomes = std::collections::BTreeMap::<(usize, String), usize>::new();
    for ack in acks {
        let (kind, outcome) = ack.await.unwrap();
        *outcomes.entry((kind, format!("{outcome:?}"))).or_default() += 1;
    }
    let expected = [
        ((0, AckOutcome::Acknowledged), 30),
        ((0, AckOutcome::AlreadyInProgress), 30),
        ((1, AckOutcome::Acknowledged), 30),
        ((1, AckOutcome::InvalidNonce), 30),
        ((2, AckOutcome::NotFound), 30),
        ((3, AckOutcome::Acknowledged), 30),
    ];
    let expected =
        expected.into_iter().map(|((kind, outcome), n)| ((kind, format!("{outcome:?}")), n)).collect();
    assert_eq!(outcomes, expected);
    for (i, job) in claimed.iter().enumerate() {
        let stored = db.store.job(&job.id).await.unwrap().unwrap();
        let status = if i % 4 == 2 { JobStatus::Dispatched } else { JobStatus::InProgress };
        assert_eq!(
            (stored.status, stored.lease_until),
            (status, Some(if i % 4 == 2 { 10_000 } else { 520 }))
        );
    }
}

/// Concurrent claims of two queues (on PostgreSQL merged into one statement per queue): every
/// queued job goes to exactly one claim, of its own queue, oldest first within each claim, and
/// no claim gets more than it asked for.
pub async fn concurrent_claims_share_out_their_queues(db: &TestDb) {
    use sluice_core::job::JobStatus;
    let names: Vec<(String, &str)> = (0..30)
        .map(|i| (format!("share-a-{i:02}"), "qa"))
        .chain((0..5).map(|i| (format!("share-b-{i:02}"), "qb")))
        .collect();
    let jobs: Vec<_> = names.iter().enumerate().map(|(i, (id, q))| new_job(id, q, "t", i as i64)).collect();
    enqueue(db, &jobs).await;
    let mut claims = Vec::new();
    for i in 0..26 {
        let (store, queue) = (db.store.clone(), if i % 8 == 7 { "qb" } else { "qa" });
        claims.push(tokio::spawn(async move {
            (queue, store.claim_jobs(queue, "t", 2, 5_000, 40).await.unwrap())
        }));
    }
    let mut seen = std::collections::BTreeSet::new();
    for claim in claims {
        let (queue, got) = claim.await.unwrap();
        assert!(got.len() <= 2, "a claim of 2 got {}", got.len());
        assert!(got.windows(2).all(|w| w[0].created_at < w[1].created_at), "oldest first");
        for job in got {
            assert_eq!(job.queue_key, queue);
            assert_eq!((job.status, job.lease_until, job.attempt), (JobStatus::Dispatched, Some(5_000), 1));
            assert!(job.nonce.is_some());
            assert!(seen.insert(job.id), "a job was handed to two claims");
        }
    }
    assert_eq!(seen.len(), 35, "every queued job was claimed once");
    for queue in ["qa", "qb"] {
        assert!(db.store.claim_jobs(queue, "t", 10, 5_000, 41).await.unwrap().is_empty());
    }
}

/// A job inserted already claimed (handed straight to a waiting poll) is stored as a claim leaves
/// a job: no other claim takes it, and its nonce acknowledges it.
pub async fn job_inserted_claimed_is_stored_as_a_claim_leaves_it(db: &TestDb) {
    use sluice_core::job::JobStatus;
    use sluice_store::jobs::AckOutcome;
    let mut tx = db.store.begin().await.unwrap();
    let returned = sluice_store::jobs::insert_dispatched(&mut tx, &new_job("h", "q", "t", 5), "nonce-h", 900)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let stored = db.store.job("h").await.unwrap().unwrap();
    assert_eq!(stored, returned, "the returned row is the stored one");
    assert_eq!(
        (stored.status, stored.nonce.as_deref(), stored.attempt, stored.lease_until),
        (JobStatus::Dispatched, Some("nonce-h"), 1, Some(900))
    );
    assert!(db.store.claim_jobs("q", "t", 5, 1_000, 10).await.unwrap().is_empty());
    assert_eq!(db.store.acknowledge_job("h", "nonce-h", 2_000, 11).await.unwrap(), AckOutcome::Acknowledged);
}

/// A job read with its execution and the declaration of the version that execution runs, in one
/// read; without an execution or once the pipeline is gone, those parts are missing.
pub async fn job_reads_with_its_execution_and_declaration(db: &TestDb) {
    use sluice_store::jobs::NewJob;
    let arn = "arn:aws:codepipeline:us-east-1:123456789012:deploy";
    db.store
        .create_pipeline(&write("deploy", "{\"v\":1}", None), arn, &[], &event("Create", "deploy", 1))
        .await
        .unwrap();
    db.store
        .update_pipeline(&write("deploy", "{\"v\":2}", None), &event("Update", "deploy", 2))
        .await
        .unwrap();
    let mut execution = automation_row("x1", "deploy", "InProgress", 5, None);
    execution.kind = "pipeline".into();
    let mut tx = db.store.begin().await.unwrap();
    executions::insert_execution(&mut tx, &execution).await.unwrap();
    tx.commit().await.unwrap();
    let of_x1 = NewJob { execution_id: Some("x1"), ..new_job("j1", "q", "t", 10) };
    enqueue(db, &[of_x1, new_job("j2", "q", "t", 11)]).await;

    let found = db.store.job_in_context("j1").await.unwrap().unwrap();
    assert_eq!((found.job.id.as_str(), found.job.execution_id.as_deref()), ("j1", Some("x1")));
    assert_eq!(found.execution, Some(execution));
    assert_eq!(found.declaration.as_deref(), Some("{\"v\":1}"), "the version the execution runs");
    let orphan = db.store.job_in_context("j2").await.unwrap().unwrap();
    assert_eq!((orphan.job.id.as_str(), orphan.execution, orphan.declaration), ("j2", None, None));
    assert_eq!(db.store.job_in_context("nope").await.unwrap(), None);

    db.store.delete_pipeline("deploy", arn, &event("Delete", "deploy", 20)).await.unwrap();
    assert_eq!(db.store.job_in_context("j1").await.unwrap().unwrap().declaration, None);
}

/// A job claimed for a poll that never got it goes back as it was before the claim; a release
/// with another nonce, or of a job since acknowledged, changes nothing.
pub async fn released_job_is_queued_as_before_its_claim(db: &TestDb) {
    use sluice_core::job::JobStatus;
    use sluice_store::jobs::AckOutcome;
    enqueue(db, &[new_job("a", "q", "t", 1), new_job("b", "q", "t", 2)]).await;
    let claimed = db.store.claim_jobs("q", "t", 2, 1_000, 10).await.unwrap();
    let (a_nonce, b_nonce) = (claimed[0].nonce.clone().unwrap(), claimed[1].nonce.clone().unwrap());
    assert_eq!(db.store.acknowledge_job("b", &b_nonce, 2_000, 11).await.unwrap(), AckOutcome::Acknowledged);

    assert_eq!(db.store.release_jobs(&[("a", "other")], 12).await.unwrap(), 0, "another claim's nonce");
    assert_eq!(db.store.release_jobs(&[("b", &b_nonce)], 12).await.unwrap(), 0, "acknowledged already");
    assert_eq!(db.store.release_jobs(&[("b", &b_nonce), ("a", &a_nonce)], 12).await.unwrap(), 1);
    let released = db.store.job("a").await.unwrap().unwrap();
    assert_eq!(
        (released.status, released.nonce, released.lease_until, released.attempt),
        (JobStatus::Queued, None, None, 0)
    );
    assert_eq!(db.store.job("b").await.unwrap().unwrap().status, JobStatus::InProgress);
    assert_eq!(
        db.store.acknowledge_job("a", &a_nonce, 3_000, 13).await.unwrap(),
        AckOutcome::NotDispatched(JobStatus::Queued)
    );
    let again = db.store.claim_jobs("q", "t", 5, 4_000, 14).await.unwrap();
    assert_eq!(again.iter().map(|j| (j.id.as_str(), j.attempt)).collect::<Vec<_>>(), [("a", 1)]);
}

/// Two stores on one database (as two server processes) and four pollers each claim batches
/// concurrently: every job is handed out exactly once.
pub async fn concurrent_claims_hand_out_each_job_once(db: &TestDb) {
    let ids: Vec<String> = (0..300).map(|i| format!("job-{i:04}")).collect();
    let jobs: Vec<_> = ids.iter().enumerate().map(|(i, id)| new_job(id, "q", "t", i as i64)).collect();
    enqueue(db, &jobs).await;
    let second = db.reopen().await;
    let mut pollers = Vec::new();
    for poller in 0..8 {
        let store = if poller % 2 == 0 { db.store.clone() } else { second.clone() };
        pollers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store.claim_jobs("q", "t", 7, 10_000, 1).await.unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|j| j.id));
            }
        }));
    }
    let mut claimed = Vec::new();
    for poller in pollers {
        claimed.extend(poller.await.unwrap());
    }
    claimed.sort();
    assert_eq!(claimed, ids, "each job exactly once");
    second.close().await;
}

fn object(key: &str, file: &str, at: i64) -> sluice_store::objects::ObjectRow {
    sluice_store::objects::ObjectRow {
        bucket: "bkt".into(),
        key: key.into(),
        file: file.into(),
        size: 3,
        etag: format!("etag-{file}"),
        content_type: "text/plain".into(),
        last_modified: at,
    }
}

pub async fn objects_put_replace_list_delete(db: &TestDb) {
    assert_eq!(db.store.put_object(&object("dir/a.txt", "f1", 1)).await.unwrap(), None);
    assert_eq!(db.store.put_object(&object("dir/a.txt", "f2", 2)).await.unwrap(), Some("f1".into()));
    assert_eq!(db.store.object("bkt", "dir/a.txt").await.unwrap(), Some(object("dir/a.txt", "f2", 2)));
    assert_eq!(db.store.object("other", "dir/a.txt").await.unwrap(), None);

    for (i, key) in ["dir/b", "dir/B", "dir/é", "dir/a b", "dirx", "dir/sub/c"].iter().enumerate() {
        db.store.put_object(&object(key, &format!("g{i}"), 3)).await.unwrap();
    }
    let keys =
        |rows: Vec<sluice_store::objects::ObjectRow>| rows.into_iter().map(|o| o.key).collect::<Vec<_>>();
    let all = keys(db.store.list_objects("bkt", "dir/", "", 100).await.unwrap());
    assert_eq!(all, ["dir/B", "dir/a b", "dir/a.txt", "dir/b", "dir/sub/c", "dir/é"], "bytewise order");
    let page = keys(db.store.list_objects("bkt", "dir/", "dir/a.txt", 2).await.unwrap());
    assert_eq!(page, ["dir/b", "dir/sub/c"]);
    assert_eq!(keys(db.store.list_objects("bkt", "", "", 100).await.unwrap()).len(), 7);
    assert!(db.store.list_objects("empty", "", "", 100).await.unwrap().is_empty());

    assert_eq!(db.store.delete_object("bkt", "dir/b").await.unwrap().map(|o| o.file), Some("g0".into()));
    assert_eq!(db.store.delete_object("bkt", "dir/b").await.unwrap(), None);
    assert_eq!(db.store.object("bkt", "dir/b").await.unwrap(), None);
}

pub async fn third_party_types_keep_their_client(db: &TestDb) {
    use sluice_store::action_types::ThirdPartyClient;
    let mut action_type = custom_type("Vendor", "1");
    action_type.id.owner = Owner::ThirdParty;
    let client = ThirdPartyClient { client_id: "client-1".into(), client_token_enc: vec![7, 7] };
    db.store
        .insert_action_type_with_client(&action_type, Some(&client), &event("Register", "Vendor", 1))
        .await
        .unwrap();
    assert_eq!(db.store.third_party_client(&action_type.id).await.unwrap(), Some(client.clone()));
    assert_eq!(db.store.list_action_types(Some(Owner::ThirdParty)).await.unwrap(), vec![action_type.clone()]);

    let custom = custom_type("Vendor", "1");
    db.store.insert_action_type(&custom, &event("Create", "Vendor", 2)).await.unwrap();
    assert_eq!(db.store.third_party_client(&custom.id).await.unwrap(), None, "custom types have no client");

    let mut other = action_type.clone();
    other.id.version = "2".into();
    let reused =
        db.store.insert_action_type_with_client(&other, Some(&client), &event("Register", "Vendor", 3)).await;
    assert!(matches!(reused, Err(Error::Conflict)), "client ids are unique: {reused:?}");
}

fn doc_version<'a>(content: &'a str, version_name: Option<&'a str>) -> NewDocumentVersion<'a> {
    NewDocumentVersion { version_name, content, format: "JSON", hash: content }
}

async fn create_doc(db: &TestDb, name: &str, document_type: &str, at: i64) {
    let arn = format!("arn:aws:ssm:us-east-1:123456789012:document/{name}");
    let document = NewDocument { name, document_type, owner: "123456789012", arn: &arn };
    let tags = vec![("team".to_string(), "ops".to_string())];
    db.store
        .create_document(&document, &doc_version("v1", None), &tags, &event("CreateDocument", name, at))
        .await
        .unwrap();
}

async fn add_version(
    db: &TestDb,
    name: &str,
    expected_latest: i64,
    (content, version_name): (&str, Option<&str>),
    (kind, at): (&str, i64),
) -> AddVersionOutcome {
    let version = doc_version(content, version_name);
    db.store.add_document_version(name, expected_latest, &version, &event(kind, name, at)).await.unwrap()
}

pub async fn document_versions_default_and_delete(db: &TestDb) {
    create_doc(db, "runbook", "Automation", 10).await;
    let arn = "arn:aws:ssm:us-east-1:123456789012:document/runbook";
    let document = NewDocument { name: "runbook", document_type: "Automation", owner: "1", arn };
    let dup = db
        .store
        .create_document(&document, &doc_version("x", None), &[], &event("Create", "runbook", 11))
        .await;
    assert!(matches!(dup, Err(Error::Conflict)), "{dup:?}");

    assert_eq!(
        add_version(db, "runbook", 1, ("v2", Some("two")), ("Update", 20)).await,
        AddVersionOutcome::Added { version: 2 }
    );
    // An update that saw an older latest version is stale, as is one for a missing document.
    assert_eq!(add_version(db, "runbook", 1, ("v3", None), ("Update", 21)).await, AddVersionOutcome::Stale);
    assert_eq!(add_version(db, "nope", 1, ("v3", None), ("Update", 21)).await, AddVersionOutcome::Stale);
    assert_eq!(
        add_version(db, "runbook", 2, ("v3", None), ("Update", 30)).await,
        AddVersionOutcome::Added { version: 3 }
    );

    let row = db.store.document("runbook").await.unwrap().unwrap();
    assert_eq!((row.latest_version, row.default_version, row.created_at, row.updated_at), (3, 1, 10, 30));
    assert_eq!((row.default_format.as_str(), row.default_version_name), ("JSON", None));
    let two = db.store.document_version("runbook", 2).await.unwrap().unwrap();
    assert_eq!((two.content.as_str(), two.version_name.as_deref(), two.created_at), ("v2", Some("two"), 20));
    assert_eq!(db.store.document_version_named("runbook", "two").await.unwrap(), Some(two));
    assert_eq!(db.store.document_version("runbook", 4).await.unwrap(), None);

    assert!(db
        .store
        .set_default_document_version("runbook", 2, &event("Default", "runbook", 40))
        .await
        .unwrap());
    assert!(!db
        .store
        .set_default_document_version("runbook", 9, &event("Default", "runbook", 41))
        .await
        .unwrap());
    let row = db.store.document("runbook").await.unwrap().unwrap();
    assert_eq!((row.default_version, row.default_version_name.as_deref()), (2, Some("two")));

    assert_eq!(
        db.store.delete_document_version("runbook", 2, &event("DeleteVersion", "runbook", 50)).await.unwrap(),
        DeleteVersionOutcome::IsDefault
    );
    assert_eq!(
        db.store.delete_document_version("runbook", 3, &event("DeleteVersion", "runbook", 50)).await.unwrap(),
        DeleteVersionOutcome::Deleted
    );
    assert_eq!(
        db.store.delete_document_version("runbook", 3, &event("DeleteVersion", "runbook", 50)).await.unwrap(),
        DeleteVersionOutcome::NoSuchVersion
    );
    assert_eq!(db.store.document("runbook").await.unwrap().unwrap().latest_version, 2);
    // Numbers are never reused after the latest version is deleted.
    assert_eq!(
        add_version(db, "runbook", 2, ("v4", None), ("Update", 60)).await,
        AddVersionOutcome::Added { version: 4 }
    );

    assert_eq!(db.store.list_tags(arn, None, 10).await.unwrap().len(), 1);
    assert!(db.store.delete_document("runbook", arn, &event("DeleteDocument", "runbook", 70)).await.unwrap());
    assert!(!db
        .store
        .delete_document("runbook", arn, &event("DeleteDocument", "runbook", 71))
        .await
        .unwrap());
    assert_eq!(db.store.document("runbook").await.unwrap(), None);
    assert_eq!(db.store.document_version("runbook", 1).await.unwrap(), None);
    assert!(db.store.list_tags(arn, None, 10).await.unwrap().is_empty());
    let kinds: Vec<_> =
        db.store.events_for_subject("runbook").await.unwrap().into_iter().map(|e| e.kind).collect();
    let expected =
        ["CreateDocument", "Update", "Update", "Default", "DeleteVersion", "Update", "DeleteDocument"];
    assert_eq!(kinds, expected);
}

pub async fn documents_page_by_name_with_filters(db: &TestDb) {
    // Upper case sorts before lower case bytewise; '_' and '%' are literal in prefixes.
    for (i, name) in ["b_one", "a-two", "b%three", "bx", "B-four", "c"].iter().enumerate() {
        let kind = if *name == "bx" { "Command" } else { "Automation" };
        create_doc(db, name, kind, i as i64).await;
    }
    let names = |rows: Vec<sluice_store::documents::DocumentRow>| -> Vec<String> {
        rows.into_iter().map(|r| r.name).collect()
    };
    let all = DocumentQuery::default();
    assert_eq!(names(db.store.list_documents(&all, None, 3).await.unwrap()), ["B-four", "a-two", "b%three"]);
    assert_eq!(
        names(db.store.list_documents(&all, Some("b%three"), 10).await.unwrap()),
        ["b_one", "bx", "c"]
    );

    let prefixed =
        DocumentQuery { name_prefixes: vec![vec!["b_".into(), "b%".into()]], ..Default::default() };
    assert_eq!(names(db.store.list_documents(&prefixed, None, 10).await.unwrap()), ["b%three", "b_one"]);
    let both = DocumentQuery {
        name_prefixes: vec![vec!["b".into()]],
        types: vec![vec!["Automation".into()]],
        ..Default::default()
    };
    assert_eq!(names(db.store.list_documents(&both, None, 10).await.unwrap()), ["b%three", "b_one"]);
    let anded =
        DocumentQuery { name_prefixes: vec![vec!["b".into()], vec!["c".into()]], ..Default::default() };
    assert!(db.store.list_documents(&anded, None, 10).await.unwrap().is_empty());
    let empty_clause = DocumentQuery { name_prefixes: vec![vec![]], ..Default::default() };
    assert!(db.store.list_documents(&empty_clause, None, 10).await.unwrap().is_empty());

    // Every document was created with team=ops; one more tag on "c".
    let prefix = "arn:aws:ssm:us-east-1:123456789012:document/";
    db.store.tag_resource(&format!("{prefix}c"), &[("tier".into(), "gold".into())], 50).await.unwrap();
    let tagged = |tags: Vec<(&str, Vec<&str>)>| DocumentQuery {
        tags: tags
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.into_iter().map(str::to_string).collect()))
            .collect(),
        tag_arn_prefix: prefix.to_string(),
        ..Default::default()
    };
    let gold = tagged(vec![("tier", vec!["silver", "gold"]), ("team", vec![])]);
    assert_eq!(names(db.store.list_documents(&gold, None, 10).await.unwrap()), ["c"]);
    let ops = tagged(vec![("team", vec!["ops"])]);
    assert_eq!(db.store.list_documents(&ops, Some("b_one"), 10).await.unwrap().len(), 2);
    let none = tagged(vec![("team", vec!["dev"])]);
    assert!(db.store.list_documents(&none, None, 10).await.unwrap().is_empty());
}

/// An in-progress step of an execution, started at `started`.
fn running_step(id: &str, execution: &str, position: i64, started: i64) -> executions::StepRow {
    executions::StepRow {
        id: id.into(),
        execution_id: execution.into(),
        name: format!("Action-{id}"),
        position,
        status: "InProgress".into(),
        attempt: 1,
        data: "{}".into(),
        error: None,
        started_at: Some(started),
        finished_at: None,
    }
}

fn automation_row(id: &str, name: &str, status: &str, at: i64, parent: Option<&str>) -> ExecutionRow {
    ExecutionRow {
        id: id.into(),
        kind: "automation".into(),
        tenant: "1".into(),
        definition_name: name.into(),
        definition_version: 1,
        status: status.into(),
        client_token: None,
        data: "{}".into(),
        stage_index: 0,
        stage_state: String::new(),
        parent_id: parent.map(Into::into),
        current_step: Some("s".into()),
        current_action: Some(if status == "Waiting" { "aws:approve" } else { "aws:sleep" }.into()),
        created_at: at,
        updated_at: at,
        finished_at: None,
    }
}

async fn listed(
    db: &TestDb,
    filter: &AutomationFilter,
    before: Option<(i64, &str)>,
    limit: i64,
) -> Vec<String> {
    let rows = db.store.list_automation_executions("1", filter, before, limit).await.unwrap();
    rows.into_iter().map(|row| row.id).collect()
}

pub async fn automation_executions_filter_and_page(db: &TestDb) {
    let rows = [
        automation_row("a", "deploy_web", "Waiting", 10, None),
        automation_row("b", "deploy-api", "Success", 20, Some("a")),
        automation_row("c", "Deploy_web", "Waiting", 20, None),
        automation_row("d", "cleanup", "Failed", 30, None),
    ];
    let mut tx = db.store.begin().await.unwrap();
    for row in &rows {
        executions::insert_execution(&mut tx, row).await.unwrap();
    }
    let mut other_tenant = automation_row("e", "deploy_web", "Waiting", 40, None);
    other_tenant.tenant = "2".into();
    executions::insert_execution(&mut tx, &other_tenant).await.unwrap();
    let mut pipeline = automation_row("f", "deploy_web", "Waiting", 50, None);
    pipeline.kind = "pipeline".into();
    executions::insert_execution(&mut tx, &pipeline).await.unwrap();
    tx.commit().await.unwrap();

    let all = AutomationFilter::default();
    // Newest first; ties on time order by id, descending.
    assert_eq!(listed(db, &all, None, 10).await, ["d", "c", "b", "a"]);
    assert_eq!(listed(db, &all, None, 2).await, ["d", "c"]);
    assert_eq!(listed(db, &all, Some((20, "c")), 2).await, ["b", "a"]);
    // A prefix matches case-sensitively, and `_` is a character, not a wildcard.
    let prefix = AutomationFilter { document_name_prefixes: vec!["deploy_".into()], ..Default::default() };
    assert_eq!(listed(db, &prefix, None, 10).await, ["a"]);
    let prefixes = AutomationFilter {
        document_name_prefixes: vec!["deploy".into(), "clean".into()],
        ..Default::default()
    };
    assert_eq!(listed(db, &prefixes, None, 10).await, ["d", "b", "a"]);
    let waiting = AutomationFilter { statuses: vec!["Waiting".into()], ..Default::default() };
    assert_eq!(listed(db, &waiting, None, 10).await, ["c", "a"]);
    let children = AutomationFilter { parent_ids: vec!["a".into()], ..Default::default() };
    assert_eq!(listed(db, &children, None, 10).await, ["b"]);
    let approving = AutomationFilter { current_actions: vec!["aws:approve".into()], ..Default::default() };
    assert_eq!(listed(db, &approving, None, 10).await, ["c", "a"]);
    let window = AutomationFilter { started_after: Some(20), started_before: Some(30), ..Default::default() };
    assert_eq!(listed(db, &window, None, 10).await, ["c", "b"]);
    let ids = AutomationFilter {
        execution_ids: vec!["a".into(), "d".into(), "e".into()],
        statuses: vec!["Waiting".into(), "Failed".into()],
        ..Default::default()
    };
    assert_eq!(listed(db, &ids, None, 10).await, ["d", "a"]);
}
