//! Claims on PostgreSQL, merged across concurrent polls. A claim is one statement that commits
//! on its own, and on PostgreSQL the commit costs more than the statement; under load many
//! polls of one queue claim at once (B1: sixteen workers, each polling for one job). So one
//! task takes the small claims (at most [`LARGEST_SHARED`] jobs each) that wait for it and runs
//! one claim statement per queue for all of them, taking as many jobs as they asked for
//! together, then hands each poll its share, oldest jobs to the oldest poll. Nothing is handed
//! out before the claim has committed. Jobs claimed for a poll that stopped waiting go back to
//! the queue as if never claimed, and their queue is announced, as for new jobs. SQLite has its
//! own group commit (`sqlite_writer`) and does not use this.

use std::collections::BTreeMap;

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use crate::batch::Pending;
use crate::jobs::JobRow;
use crate::{sql, Error, Result};

/// The most claims one batch carries.
const MOST: usize = 64;
/// The largest claim that shares a statement; a larger one runs on its own, as its commit is
/// already shared by its jobs. (B1b, polls of 100: shared claims ran one long statement after
/// another where separate ones overlapped, and B1b was slower in three pairs of three,
/// 1,045 → 967 jobs/s on average.)
pub(crate) const LARGEST_SHARED: i64 = 10;

/// One poll's claim: up to `max` queued jobs of a queue and tenant, leased until `lease_until`.
#[derive(Debug, Clone)]
pub(crate) struct Claim {
    pub queue_key: String,
    pub tenant: String,
    pub max: i64,
    pub lease_until: i64,
    pub now: i64,
}

/// A claim and where its jobs go (or the error text).
struct Waiting {
    claim: Claim,
    reply: oneshot::Sender<std::result::Result<Vec<JobRow>, String>>,
}

/// The sending side of the claiming task; the task ends when every sender is gone.
#[derive(Debug)]
pub(crate) struct Claims {
    sender: mpsc::UnboundedSender<Waiting>,
}

impl Claims {
    /// Starts the task that runs claims on `pool` with the store's claim statement (`$1` queue,
    /// `$2` tenant, `$3` how many, `$4` lease, `$5` now).
    pub(crate) fn start(pool: AnyPool, claim_sql: String) -> Claims {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, claim_sql.into(), receiver));
        Claims { sender }
    }

    /// Claims up to `claim.max` jobs, committed when this returns, oldest first.
    pub(crate) async fn claim(&self, claim: Claim) -> Result<Vec<JobRow>> {
        let (reply, answer) = oneshot::channel();
        let stopped = || Error::Corrupt("the claiming task stopped".into());
        self.sender.send(Waiting { claim, reply }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?.map_err(Error::Shared)
    }
}

async fn run(pool: AnyPool, claim_sql: std::sync::Arc<str>, receiver: mpsc::UnboundedReceiver<Waiting>) {
    let mut pending = Pending::new(receiver);
    while let Some(batch) = pending.next(MOST, |_| true).await {
        let mut queues = BTreeMap::<(String, String), Vec<Waiting>>::new();
        // A poll that stopped waiting is not claimed for.
        for waiting in batch.into_iter().filter(|waiting| !waiting.reply.is_closed()) {
            let key = (waiting.claim.queue_key.clone(), waiting.claim.tenant.clone());
            queues.entry(key).or_default().push(waiting);
        }
        let mut claiming = tokio::task::JoinSet::new();
        for polls in queues.into_values() {
            let (pool, claim) = (pool.clone(), claim_sql.clone());
            claiming.spawn(async move { claim_for(&pool, &claim, polls).await });
        }
        while claiming.join_next().await.is_some() {}
    }
}

/// Runs one claim for the polls of one queue and hands each its share; jobs of a poll that
/// has gone meanwhile go back to the queue.
async fn claim_for(pool: &AnyPool, claim_sql: &str, polls: Vec<Waiting>) {
    let total: i64 = polls.iter().map(|waiting| waiting.claim.max.max(0)).sum();
    let first = &polls[0].claim;
    // The polls of a batch are never empty, so both have a maximum.
    let lease_until = polls.iter().map(|waiting| waiting.claim.lease_until).fold(first.lease_until, i64::max);
    let now = polls.iter().map(|waiting| waiting.claim.now).fold(first.now, i64::max);
    let query = sql::query(claim_sql).bind(first.queue_key.as_str()).bind(first.tenant.as_str());
    let claimed = query.bind(total).bind(lease_until).bind(now).fetch_all(pool).await;
    let jobs = claimed.and_then(|rows| crate::jobs::sorted(rows.iter().map(crate::jobs::decode).collect()));
    let mut jobs = match jobs {
        Ok(jobs) => jobs.into_iter(),
        Err(err) => {
            let text = err.to_string();
            for waiting in polls {
                let _ = waiting.reply.send(Err(text.clone()));
            }
            return;
        }
    };
    let unsent = hand_out(polls, &mut jobs);
    if let Err(err) = release(pool, &unsent, now).await {
        tracing::warn!(error = %err, "putting back jobs claimed for polls that left failed");
    }
}

/// Hands each poll its share of `jobs`, in the polls' order; returns the jobs of polls that
/// have gone.
fn hand_out(polls: Vec<Waiting>, jobs: &mut impl Iterator<Item = JobRow>) -> Vec<JobRow> {
    let mut unsent = Vec::new();
    for waiting in polls {
        let share: Vec<JobRow> =
            jobs.by_ref().take(usize::try_from(waiting.claim.max).unwrap_or(0)).collect();
        if let Err(Ok(share)) = waiting.reply.send(Ok(share)) {
            unsent.extend(share);
        }
    }
    unsent
}

/// Puts jobs claimed for polls that left back in the queue, as if never claimed, in one
/// transaction (what `Store::release_jobs` does), and announces their queues so that polls
/// waiting on them, in this process or another, wake; a job not released here returns when
/// its lease ends.
async fn release(pool: &AnyPool, jobs: &[JobRow], now: i64) -> Result<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    let mut tx = crate::Tx::on_pool(pool).await?;
    let mut queues = std::collections::BTreeSet::new();
    for job in jobs {
        let Some(nonce) = job.nonce.as_deref() else { continue };
        sql::query(crate::jobs::RELEASE).bind(job.id.as_str()).bind(nonce).bind(now).execute(&mut tx).await?;
        queues.insert(job.queue_key.as_str());
    }
    for queue in queues {
        crate::jobs::announce_in(&mut tx, crate::Backend::Postgres, queue).await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::job::JobStatus;

    fn job(id: &str) -> JobRow {
        JobRow {
            id: id.into(),
            queue_key: "q".into(),
            tenant: "t".into(),
            status: JobStatus::Dispatched,
            nonce: Some(format!("nonce-{id}")),
            lease_until: Some(10),
            attempt: 1,
            continuation_token: None,
            data: "{}".into(),
            execution_id: None,
            step_id: None,
            error: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn poll(max: i64) -> (Waiting, oneshot::Receiver<std::result::Result<Vec<JobRow>, String>>) {
        let (reply, answer) = oneshot::channel();
        let claim = Claim { queue_key: "q".into(), tenant: "t".into(), max, lease_until: 10, now: 0 };
        (Waiting { claim, reply }, answer)
    }

    fn ids(jobs: &[JobRow]) -> Vec<&str> {
        jobs.iter().map(|job| job.id.as_str()).collect()
    }

    #[test]
    fn a_poll_that_left_gives_its_share_back_and_the_others_keep_theirs() {
        let (first, mut first_answer) = poll(2);
        let (gone, gone_answer) = poll(2);
        let (last, mut last_answer) = poll(2);
        drop(gone_answer);
        let mut jobs = ["a", "b", "c", "d", "e"].map(job).into_iter();
        let unsent = hand_out(vec![first, gone, last], &mut jobs);
        assert_eq!(ids(&unsent), ["c", "d"]);
        assert_eq!(ids(&first_answer.try_recv().unwrap().unwrap()), ["a", "b"]);
        assert_eq!(ids(&last_answer.try_recv().unwrap().unwrap()), ["e"]);
        assert!(jobs.next().is_none());
    }

    /// Jobs put back for polls that left are queued as before their claim, and their queue is
    /// announced (real PostgreSQL; the claims task exists only there).
    #[tokio::test]
    async fn released_jobs_are_queued_again_and_their_queue_announced() {
        use crate::testing::{
            create_postgres_database, drop_postgres_database, postgres_admin_url, with_database,
        };
        let name = create_postgres_database("sluice_claims").await;
        let store = crate::Store::open(&with_database(&postgres_admin_url(), &name)).await.unwrap();
        let mut tx = store.begin().await.unwrap();
        for (id, at) in [("r1", 1), ("r2", 2)] {
            let job = crate::jobs::NewJob {
                id,
                queue_key: "q-release",
                tenant: "t",
                data: "{}",
                execution_id: None,
                step_id: None,
                continuation_token: None,
                timeout_millis: None,
                at,
            };
            crate::jobs::insert(&mut tx, &job).await.unwrap();
        }
        tx.commit().await.unwrap();
        let claimed = store.claim_jobs("q-release", "t", 2, 9_000, 5).await.unwrap();
        assert_eq!(ids(&claimed), ["r1", "r2"]);
        let mut listener = store.announcements().await.unwrap().expect("PostgreSQL announces");

        release(store.pool(), &claimed, 6).await.unwrap();

        let note = tokio::time::timeout(std::time::Duration::from_secs(5), listener.recv()).await;
        let note = note.expect("an announcement within 5 s").unwrap();
        assert_eq!((note.channel(), note.payload()), (crate::jobs::ANNOUNCE_CHANNEL, "q-release"));
        for id in ["r1", "r2"] {
            let job = store.job(id).await.unwrap().unwrap();
            assert_eq!((job.status, job.nonce, job.attempt), (JobStatus::Queued, None, 0), "{id}");
        }
        let again = store.claim_jobs("q-release", "t", 2, 9_000, 7).await.unwrap();
        assert_eq!(ids(&again), ["r1", "r2"], "released jobs can be claimed again");
        store.close().await;
        drop_postgres_database(&name).await;
    }
}
