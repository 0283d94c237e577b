//! The sync runner: claims trusted-account sync runs from the engine queue, calls the plugin
//! and hands the outcome back to the engine. Runs inside every server; on PostgreSQL several
//! servers share the queue and each run goes to one of them.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::{plugin, Cloudforet};

/// How much longer than the plugin timeout a run's lease lasts: the runner always ends a run by
/// then, so a run still leased past it belongs to a server that died.
pub const LEASE_MARGIN_MS: i64 = 10_000;

/// How the runner behaves.
#[derive(Debug, Clone, Copy)]
pub struct RunnerSettings {
    /// How long a plugin may take to answer a sync.
    pub plugin_timeout: Duration,
    /// How many syncs run at once in this server.
    pub concurrency: usize,
}

impl Cloudforet {
    /// Runs syncs until the task is aborted.
    pub async fn run_syncs(self, settings: RunnerSettings) {
        let permits = Arc::new(Semaphore::new(settings.concurrency.max(1)));
        let lease_ms =
            i64::try_from(settings.plugin_timeout.as_millis()).unwrap_or(i64::MAX / 2) + LEASE_MARGIN_MS;
        loop {
            let Ok(permit) = permits.clone().acquire_owned().await else { return };
            match self.engine().cf_claim_sync(Duration::from_secs(5), lease_ms).await {
                Ok(Some(run)) => {
                    let cf = self.clone();
                    tokio::spawn(async move {
                        cf.run_one(&run, settings.plugin_timeout).await;
                        drop(permit);
                    });
                }
                Ok(None) => drop(permit),
                Err(err) => {
                    tracing::warn!(error = %err, "claiming a sync failed");
                    drop(permit);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn run_one(&self, run: &sluice_store::jobs::JobRow, timeout: Duration) {
        let work = match self.engine().cf_begin_sync(run).await {
            Ok(Some(work)) => work,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(error = %err, run = %run.id, "starting a sync failed");
                return;
            }
        };
        let outcome = plugin::sync(&work, timeout).await;
        if let Err(err) = self.engine().cf_finish_sync(&work, outcome).await {
            tracing::warn!(error = %err, job = %work.job.job_id, "recording a sync failed");
        }
    }
}
