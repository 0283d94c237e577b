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

/// How often a server looks for trusted accounts whose scheduled hour has come.
const SCHEDULE_EVERY: Duration = Duration::from_secs(5);

impl Cloudforet {
    /// Runs syncs, and starts scheduled ones, until the task is aborted.
    pub async fn run_syncs(self, settings: RunnerSettings) {
        // One future for both loops, so aborting the task stops both.
        tokio::join!(self.clone().run_schedules(), self.run_claims(settings));
    }

    /// Starts the syncs of trusted accounts scheduled for the current UTC hour (each once per
    /// hour across every server).
    async fn run_schedules(self) {
        loop {
            if let Err(err) = self.engine().cf_run_schedules().await {
                tracing::warn!(error = %err, "starting scheduled syncs failed");
            }
            tokio::time::sleep(SCHEDULE_EVERY).await;
        }
    }

    async fn run_claims(&self, settings: RunnerSettings) {
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
