//! Acknowledgements on PostgreSQL, merged across concurrent requests. Each acknowledgement is a
//! commit of its own, and on PostgreSQL a commit (its WAL flush and the wake-ups around it) costs
//! more than its statement. So one task takes the acknowledgements that wait for it and runs them
//! as one statement that commits on its own, then answers each request: nothing is answered
//! before it is durable, and a request waits at most for the batch before its own. SQLite has its
//! own group commit (`sqlite_writer`) and does not use this.

use std::collections::HashSet;

use sluice_core::job::JobStatus;
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use crate::batch::Pending;
use crate::{sql, Error, Result};

/// The most acknowledgements one statement carries.
const MOST: usize = 64;

/// One acknowledgement: the job, the nonce its poll got, the tenant that must own it, the time,
/// and the run timeout of a job queued without one.
#[derive(Debug, Clone)]
pub(crate) struct Ack {
    pub id: String,
    pub nonce: String,
    pub tenant: String,
    pub now: i64,
    pub default_timeout: i64,
}

/// An acknowledgement and where its answer goes: whether it matched a job, or the error text.
struct Waiting {
    ack: Ack,
    reply: oneshot::Sender<std::result::Result<bool, String>>,
}

/// The sending side of the acknowledging task; the task ends when every sender is gone.
#[derive(Debug)]
pub(crate) struct Acks {
    sender: mpsc::UnboundedSender<Waiting>,
}

impl Acks {
    /// Starts the task that runs acknowledgements on `pool`.
    pub(crate) fn start(pool: AnyPool) -> Acks {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, receiver));
        Acks { sender }
    }

    /// Acknowledges a dispatched job with its nonce, committed when this returns; false if no
    /// job matched (not dispatched, another nonce or tenant, or no such job).
    pub(crate) async fn acknowledge(&self, ack: Ack) -> Result<bool> {
        let (reply, answer) = oneshot::channel();
        let stopped = || Error::Corrupt("the acknowledging task stopped".into());
        self.sender.send(Waiting { ack, reply }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?.map_err(Error::Shared)
    }
}

async fn run(pool: AnyPool, receiver: mpsc::UnboundedReceiver<Waiting>) {
    let mut pending = Pending::new(receiver);
    loop {
        // One acknowledgement per job in a batch: a second one goes in a later batch, as if it
        // had come after the first committed.
        let mut jobs = HashSet::new();
        let Some(batch) = pending.next(MOST, |waiting| jobs.insert(waiting.ack.id.clone())).await else {
            return;
        };
        let acks: Vec<&Ack> = batch.iter().map(|waiting| &waiting.ack).collect();
        let outcome = acknowledge_all(&pool, &acks).await;
        for waiting in batch {
            let answer = match &outcome {
                Ok(done) => Ok(done.contains(&waiting.ack.id)),
                Err(err) => Err(err.to_string()),
            };
            // A request that stopped waiting has no one to answer; its acknowledgement stands.
            let _ = waiting.reply.send(answer);
        }
    }
}

/// Runs the acknowledgements as one statement that commits on its own; the ids of the jobs it
/// acknowledged. (The status is a parameter so that a generic plan finds each job by its key.)
async fn acknowledge_all(pool: &AnyPool, acks: &[&Ack]) -> Result<HashSet<String>> {
    let rows: Vec<String> = (0..acks.len())
        .map(|i| {
            let n = 2 + i * 5;
            format!("(${n}, ${}, ${}, ${}::BIGINT, ${}::BIGINT)", n + 1, n + 2, n + 3, n + 4)
        })
        .collect();
    let statement = format!(
        "UPDATE jobs SET status = 'InProgress', lease_until = a.now + COALESCE(jobs.timeout_millis, a.fallback),
             updated_at = a.now
         FROM (VALUES {}) AS a (id, nonce, tenant, now, fallback)
         WHERE jobs.id = a.id AND jobs.nonce = a.nonce AND jobs.tenant = a.tenant AND jobs.status = $1
         RETURNING jobs.id",
        rows.join(", ")
    );
    let mut query = sql::query_owned(statement).bind(JobStatus::Dispatched.as_str());
    for ack in acks {
        query = query
            .bind(ack.id.as_str())
            .bind(ack.nonce.as_str())
            .bind(ack.tenant.as_str())
            .bind(ack.now)
            .bind(ack.default_timeout);
    }
    let rows = query.fetch_all(pool).await?;
    rows.iter().map(|row| row.try_get::<String>(0)).collect()
}
