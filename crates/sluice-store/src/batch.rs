//! Requests that wait for one task which runs them in batches ([`crate::acks`],
//! [`crate::claims`]): the task takes the first request, then those already waiting, and
//! leaves for a later batch what does not fit.

use tokio::sync::mpsc;

/// The requests a batching task has received and not yet run.
pub(crate) struct Pending<T> {
    receiver: mpsc::UnboundedReceiver<T>,
    /// Requests that did not fit into an earlier batch, oldest first.
    carried: Vec<T>,
}

impl<T> Pending<T> {
    pub(crate) fn new(receiver: mpsc::UnboundedReceiver<T>) -> Pending<T> {
        Pending { receiver, carried: Vec::new() }
    }

    /// The next batch: the carried requests, then those that have arrived, at most `most`,
    /// each only if `admit` takes it (the others wait for a later batch). Waits for a request
    /// when none is pending; None once every sender is gone.
    pub(crate) async fn next(&mut self, most: usize, mut admit: impl FnMut(&T) -> bool) -> Option<Vec<T>> {
        if self.carried.is_empty() {
            self.carried.push(self.receiver.recv().await?);
        }
        let (mut batch, mut later) = (Vec::new(), Vec::new());
        let mut place = |request: T| {
            if batch.len() < most && admit(&request) {
                batch.push(request);
            } else {
                later.push(request);
            }
        };
        std::mem::take(&mut self.carried).into_iter().for_each(&mut place);
        while let Ok(request) = self.receiver.try_recv() {
            place(request);
        }
        self.carried = later;
        Some(batch)
    }
}
