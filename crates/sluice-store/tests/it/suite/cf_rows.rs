//! Cloudforet rows: resources found by name or reference within a workspace, scheduled
//! trusted accounts handed to exactly one of two stores per hour, plugin registration, and the
//! in-progress jobs the duplicate rule looks at.

use sluice_store::cloudforet::{self as rows, CfJobRow, ResourceKey, ResourceRow};

use crate::support::TestDb;

fn resource(kind: &str, id: &str, workspace: &str, name: &str, reference: Option<&str>) -> ResourceRow {
    ResourceRow {
        kind: kind.into(),
        domain_id: "d1".into(),
        id: id.into(),
        workspace_id: workspace.into(),
        name: name.into(),
        reference_id: reference.map(str::to_string),
        parent_id: None,
        trusted_account_id: None,
        provider: None,
        info: "{}".into(),
        secret_enc: None,
        schedule_hours: None,
        created_at: 1_000,
        updated_at: 1_000,
    }
}

pub async fn cf_resources_found_by_key_in_their_workspace(db: &TestDb) {
    let mut tx = db.store.begin().await.unwrap();
    rows::insert_resource(&mut tx, &resource("project", "project-1", "ws-a", "One", Some("ref-1")))
        .await
        .unwrap();
    rows::insert_resource(&mut tx, &resource("project", "project-2", "ws-b", "One", Some("ref-1")))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = db.store.begin().await.unwrap();
    let again = rows::insert_resource(&mut tx, &resource("project", "project-1", "ws-a", "Dup", None)).await;
    assert!(matches!(again, Err(sluice_store::Error::Conflict)), "{again:?}");
    drop(tx);

    let mut tx = db.store.begin().await.unwrap();
    let in_b =
        rows::resource_by_in(&mut tx, "project", "d1", Some("ws-b"), ResourceKey::ReferenceId, "ref-1")
            .await
            .unwrap();
    assert_eq!(in_b.map(|r| r.id).as_deref(), Some("project-2"));
    let anywhere =
        rows::resource_by_in(&mut tx, "project", "d1", None, ResourceKey::Name, "One").await.unwrap();
    assert!(anywhere.is_some());
    let other_domain =
        rows::resource_by_in(&mut tx, "project", "d2", None, ResourceKey::Name, "One").await.unwrap();
    assert!(other_domain.is_none());

    let mut changed = resource("project", "project-1", "ws-a", "Renamed", Some("ref-9"));
    changed.updated_at = 2_000;
    rows::update_resource(&mut tx, &changed).await.unwrap();
    assert!(rows::delete_resource(&mut tx, "project", "d1", "project-2").await.unwrap());
    assert!(!rows::delete_resource(&mut tx, "project", "d1", "project-2").await.unwrap());
    tx.commit().await.unwrap();

    let stored = db.store.cf_resource("project", "d1", "project-1").await.unwrap().unwrap();
    assert_eq!(
        (stored.name.as_str(), stored.reference_id.as_deref(), stored.updated_at),
        ("Renamed", Some("ref-9"), 2_000)
    );
    assert!(db.store.cf_resource("project", "d1", "project-2").await.unwrap().is_none());
}

pub async fn cf_scheduled_accounts_go_to_one_store_per_hour(db: &TestDb) {
    let mut due = resource("trusted_account", "ta-1", "*", "Due", None);
    due.schedule_hours = Some(",3,15,".into());
    let mut other_hour = resource("trusted_account", "ta-2", "*", "Later", None);
    other_hour.schedule_hours = Some(",4,".into());
    let mut tx = db.store.begin().await.unwrap();
    rows::insert_resource(&mut tx, &due).await.unwrap();
    rows::insert_resource(&mut tx, &other_hour).await.unwrap();
    tx.commit().await.unwrap();

    let second = db.reopen().await;
    let epoch_hour = 500_000 * 24 + 15;
    let (a, b) = tokio::join!(
        db.store.claim_scheduled_accounts(15, epoch_hour),
        second.claim_scheduled_accounts(15, epoch_hour)
    );
    let claimed: Vec<String> = a.unwrap().into_iter().chain(b.unwrap()).map(|r| r.id).collect();
    assert_eq!(claimed, vec!["ta-1".to_string()]);
    assert!(db.store.claim_scheduled_accounts(15, epoch_hour).await.unwrap().is_empty());
    // The next day at 15:00 it is due again; at 3:00 too.
    let next = db.store.claim_scheduled_accounts(3, epoch_hour + 12).await.unwrap();
    assert_eq!(next.len(), 1);
    second.close().await;
}

pub async fn cf_plugins_register_and_repoint(db: &TestDb) {
    assert_eq!(db.store.cf_plugin_endpoint("plugin-x").await.unwrap(), None);
    db.store.put_cf_plugin("plugin-x", "http://127.0.0.1:1", 10).await.unwrap();
    db.store.put_cf_plugin("plugin-x", "http://127.0.0.1:2", 20).await.unwrap();
    assert_eq!(db.store.cf_plugin_endpoint("plugin-x").await.unwrap().as_deref(), Some("http://127.0.0.1:2"));
}

fn job(id: &str, workspace: &str, status: &str, created: i64) -> CfJobRow {
    CfJobRow {
        job_id: id.into(),
        domain_id: "d1".into(),
        workspace_id: workspace.into(),
        resource_group: "DOMAIN".into(),
        trusted_account_id: "ta-1".into(),
        plugin_id: "plugin-x".into(),
        status: status.into(),
        options: "{}".into(),
        error_code: None,
        error_message: None,
        created_at: created,
        updated_at: created,
        finished_at: None,
    }
}

pub async fn cf_jobs_in_progress_of_an_account(db: &TestDb) {
    let mut tx = db.store.begin().await.unwrap();
    for row in [
        job("job-a", "*", "IN_PROGRESS", 1),
        job("job-b", "*", "SUCCESS", 2),
        job("job-c", "ws-1", "IN_PROGRESS", 3),
        job("job-d", "*", "IN_PROGRESS", 4),
    ] {
        rows::insert_job(&mut tx, &row).await.unwrap();
    }
    let running = rows::in_progress_jobs_in(&mut tx, "d1", "*", "ta-1", "job-d").await.unwrap();
    assert_eq!(running.iter().map(|j| j.job_id.as_str()).collect::<Vec<_>>(), vec!["job-a"]);
    let mut ended = running[0].clone();
    ended.status = "CANCELED".into();
    ended.finished_at = Some(9);
    rows::update_job(&mut tx, &ended).await.unwrap();
    assert!(rows::delete_job(&mut tx, "d1", "job-b").await.unwrap());
    tx.commit().await.unwrap();
    let stored = db.store.cf_job("d1", "job-a").await.unwrap().unwrap();
    assert_eq!((stored.status.as_str(), stored.finished_at), ("CANCELED", Some(9)));
    assert!(db.store.cf_job("d2", "job-a").await.unwrap().is_none());
    assert!(db.store.cf_job("d1", "job-b").await.unwrap().is_none());
}

pub async fn cf_job_read_for_a_change_holds_off_other_writers(db: &TestDb) {
    let mut tx = db.store.begin().await.unwrap();
    rows::insert_job(&mut tx, &job("job-l", "*", "IN_PROGRESS", 1)).await.unwrap();
    tx.commit().await.unwrap();

    // A sync's end reads the job in its transaction; a timeout from another server must wait.
    let mut ending = db.store.begin().await.unwrap();
    let seen = rows::job_in(&mut ending, "d1", "job-l").await.unwrap().unwrap();
    let other = db.reopen().await;
    let timeout = tokio::spawn(async move {
        let mut tx = other.begin().await.unwrap();
        let mut row = rows::job_in(&mut tx, "d1", "job-l").await.unwrap().unwrap();
        let status_seen = row.status.clone();
        row.status = "FAILURE".into();
        rows::update_job(&mut tx, &row).await.unwrap();
        tx.commit().await.unwrap();
        other.close().await;
        status_seen
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!timeout.is_finished(), "a second writer changed the job while it was locked");
    let mut done = seen;
    done.status = "SUCCESS".into();
    rows::update_job(&mut ending, &done).await.unwrap();
    ending.commit().await.unwrap();
    // The waiting writer then sees the committed end, not the status from before it.
    assert_eq!(timeout.await.unwrap(), "SUCCESS");
}
