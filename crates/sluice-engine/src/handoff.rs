//! Direct hand-off of pipeline jobs to long polls waiting in this process.
//!
//! A long poll that finds its queue empty registers here, and stays registered only while it
//! waits (registered while claiming for itself, it would be handed jobs it must put back). A
//! transition that queues a job on that queue takes the registration, inserts the job already
//! claimed for it (no separate claim statement) and, once its transaction has committed, sends
//! the claimed jobs to the poll. The job is started and handed out with one commit instead of
//! two (the start's, then the poll's claim), which is most of a job's pickup latency on a
//! machine where a durable commit costs about a millisecond.
//!
//! Nothing is handed out before its commit. A poll that stopped waiting (it timed out, woke to
//! claim again, or its client went away) has dropped its receiver; jobs claimed for it in the
//! meantime are put back in the queue ([`Engine::release_jobs`]) as if never claimed.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::pipeline_jobs::JobView;
use crate::Engine;

/// A waiting long poll: how many jobs it takes, and where to send them.
#[derive(Debug)]
pub(crate) struct Waiter {
    pub max: i64,
    reply: oneshot::Sender<Vec<JobView>>,
}

impl Waiter {
    /// Sends claimed jobs to the poll; gives them back if the poll is gone.
    pub fn deliver(self, views: Vec<JobView>) -> std::result::Result<(), Vec<JobView>> {
        self.reply.send(views)
    }
}

/// Waiting long polls by tenant and queue, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    queues: Mutex<HashMap<String, VecDeque<Waiter>>>,
}

fn slot(tenant: &str, queue: &str) -> String {
    format!("{tenant}\n{queue}")
}

impl Waiters {
    /// Registers a poll for up to `max` jobs; the receiver gets the jobs claimed for it, or an
    /// error if a transition took the registration and then failed (the poll registers again).
    pub fn register(&self, tenant: &str, queue: &str, max: i64) -> oneshot::Receiver<Vec<JobView>> {
        let (reply, receiver) = oneshot::channel();
        let mut queues = self.queues.lock().expect("waiters");
        let waiting = queues.entry(slot(tenant, queue)).or_default();
        waiting.retain(|w| !w.reply.is_closed());
        waiting.push_back(Waiter { max, reply });
        receiver
    }

    /// The oldest poll of a queue that is still waiting.
    pub fn take(&self, tenant: &str, queue: &str) -> Option<Waiter> {
        let mut queues = self.queues.lock().expect("waiters");
        let key = slot(tenant, queue);
        let waiting = queues.get_mut(&key)?;
        let mut found = None;
        while let Some(waiter) = waiting.pop_front() {
            if !waiter.reply.is_closed() {
                found = Some(waiter);
                break;
            }
        }
        if waiting.is_empty() {
            queues.remove(&key);
        }
        found
    }

    /// Drops the registrations of a queue whose polls stopped waiting, and the queue's entry
    /// once none is left: queue keys include workers' query values, so entries must not pile up.
    pub fn forget_closed(&self, tenant: &str, queue: &str) {
        let mut queues = self.queues.lock().expect("waiters");
        let key = slot(tenant, queue);
        if let Some(waiting) = queues.get_mut(&key) {
            waiting.retain(|w| !w.reply.is_closed());
            if waiting.is_empty() {
                queues.remove(&key);
            }
        }
    }

    /// How many queues have an entry (for tests).
    #[cfg(test)]
    fn queue_count(&self) -> usize {
        self.queues.lock().expect("waiters").len()
    }

    /// Puts back a registration that was taken but got no jobs, first in line again.
    pub fn put_back(&self, tenant: &str, queue: &str, waiter: Waiter) {
        let mut queues = self.queues.lock().expect("waiters");
        queues.entry(slot(tenant, queue)).or_default().push_front(waiter);
    }
}

/// A poll's registration as seen by the poll, held only while the poll waits. Jobs sent to it
/// after the poll stopped looking (it timed out, or was dropped with its request) are not lost:
/// they go back to the queue.
pub(crate) struct Registration {
    receiver: oneshot::Receiver<Vec<JobView>>,
    engine: Engine,
    queue: String,
}

impl Registration {
    pub fn new(engine: &Engine, queue: &str, max: i64) -> Self {
        let receiver = engine.waiters.register(&engine.account().account_id, queue, max);
        Registration { receiver, engine: engine.clone(), queue: queue.to_string() }
    }

    /// Waits for jobs; None if the transition that took the registration failed (the poll then
    /// claims again and registers anew).
    pub async fn handed(&mut self) -> Option<Vec<JobView>> {
        (&mut self.receiver).await.ok()
    }

    /// Stops the registration; returns jobs that were sent to it and not yet received.
    pub fn close(&mut self) -> Option<Vec<JobView>> {
        self.receiver.close();
        self.engine.waiters.forget_closed(&self.engine.account().account_id, &self.queue);
        self.receiver.try_recv().ok()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(views) = self.close() {
            let (engine, queue) = (self.engine.clone(), self.queue.clone());
            tokio::spawn(async move {
                if let Err(err) = engine.release_jobs(&queue, &views).await {
                    tracing::warn!(error = %err, queue, "putting back jobs of a poll that left failed");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_oldest_live_poll_of_its_own_tenant_and_queue() {
        let waiters = Waiters::default();
        let gone = waiters.register("t1", "q", 1);
        let first = waiters.register("t1", "q", 5);
        let _second = waiters.register("t1", "q", 1);
        let _other_tenant = waiters.register("t2", "q", 1);
        drop(gone);
        drop(first);
        let taken = waiters.take("t1", "q").expect("a live poll");
        assert_eq!(taken.max, 1);
        assert!(waiters.take("t1", "q").is_none());
        assert!(waiters.take("t1", "other").is_none());
        assert!(waiters.take("t2", "q").is_some());
    }

    #[test]
    fn a_poll_that_is_gone_gives_its_jobs_back() {
        let waiters = Waiters::default();
        let receiver = waiters.register("t", "q", 1);
        let waiter = waiters.take("t", "q").expect("registered");
        drop(receiver);
        assert_eq!(waiter.deliver(Vec::new()).expect_err("nobody listens").len(), 0);
    }

    #[test]
    fn queues_without_waiting_polls_leave_no_entry() {
        let waiters = Waiters::default();
        let mut gone = waiters.register("t", "q|Branch=a", 1);
        let _taken = waiters.register("t", "q|Branch=b", 1);
        gone.close();
        waiters.forget_closed("t", "q|Branch=a");
        assert!(waiters.take("t", "q|Branch=b").is_some());
        assert_eq!(waiters.queue_count(), 0);
    }

    #[test]
    fn a_put_back_poll_is_first_again() {
        let waiters = Waiters::default();
        let _a = waiters.register("t", "q", 1);
        let _b = waiters.register("t", "q", 2);
        let a = waiters.take("t", "q").expect("a");
        waiters.put_back("t", "q", a);
        assert_eq!(waiters.take("t", "q").expect("a again").max, 1);
    }
}
