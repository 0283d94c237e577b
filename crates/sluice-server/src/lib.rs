//! The Sluice server: configuration ([`config`]), start-up of storage, keys and secrets
//! ([`bootstrap`]), the HTTP surface on one port ([`http`]: health, metrics, AWS facades, S3),
//! the native admin API ([`admin`]) and request metrics ([`metrics`]). [`run`] serves until the shutdown future resolves,
//! then drains in-flight requests.

pub mod admin;
pub mod bootstrap;
pub mod config;
pub mod http;
pub mod metrics;

use std::future::Future;

pub use bootstrap::{bootstrap, App};
pub use config::Config;

/// Serves `app` on `listener` until `shutdown` resolves; in-flight requests finish first.
pub async fn run(
    listener: tokio::net::TcpListener,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = http::router(app.clone());
    let sweeper = tokio::spawn(sweep(app.engine().clone()));
    let relay = tokio::spawn(relay(app.engine().clone()));
    let vacuum = tokio::spawn(vacuum(app.engine().clone()));
    let settings =
        sluice_cloudforet::runner::RunnerSettings { plugin_timeout: app.plugin_timeout(), concurrency: 8 };
    let syncs = tokio::spawn(app.cloudforet().clone().run_syncs(settings));
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await?;
    sweeper.abort();
    relay.abort();
    vacuum.abort();
    syncs.abort();
    app.engine().store().close().await;
    Ok(())
}

/// How often the sweeper looks for expired leases and due timers.
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Runs the engine's sweeper until aborted; a failed pass is logged and retried.
async fn sweep(engine: sluice_engine::Engine) {
    loop {
        tokio::time::sleep(SWEEP_EVERY).await;
        if let Err(err) = engine.sweep().await {
            tracing::warn!(error = %err, "sweeper pass failed");
        }
    }
}

/// How often the queue's tables are vacuumed (PostgreSQL only; see `Store::vacuum_queue`).
const VACUUM_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// The wait before the first vacuum; it doubles up to [`VACUUM_EVERY`].
const VACUUM_FIRST: std::time::Duration = std::time::Duration::from_secs(1);

/// Vacuums the queue's tables until aborted; a failed pass is logged and retried.
///
/// The first passes come sooner. A vacuum also records the tables' sizes, which makes
/// PostgreSQL drop the plans each pooled connection keeps for its prepared statements. Plans
/// made while the tables were nearly empty (a server on a new database) stay poor as the tables
/// grow: in a B1 run a claim planned that way read the jobs table sequentially until the first
/// vacuum, ten seconds in.
async fn vacuum(engine: sluice_engine::Engine) {
    let mut wait = VACUUM_FIRST;
    loop {
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(VACUUM_EVERY);
        if let Err(err) = engine.store().vacuum_queue().await {
            tracing::warn!(error = %err, "queue vacuum failed");
        }
    }
}

/// Relays other replicas' announcements (PostgreSQL): their new jobs to this process's long
/// polls, their action type deletions to its kept types. If the listening connection fails, it
/// is opened again a second later. Polls still find every job on their own (they re-check
/// their queue at least once a second), and the relay forgets every kept type when it starts.
async fn relay(engine: sluice_engine::Engine) {
    loop {
        match engine.relay_announcements().await {
            Ok(()) => return,
            Err(err) => tracing::warn!(error = %err, "announcements interrupted"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}
