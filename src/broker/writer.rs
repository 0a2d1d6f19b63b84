//! The batch writer: one thread, fed by a bounded channel, that commits queued items to the store
//! in groups. The audit trail (`audit.rs`) and the MFA replay guard (`mfa_guard.rs`) are both
//! built on it; they differ only in the store operation, the bounds and the pause.
//!
//! The thread takes everything queued, up to the batch bound, runs the store operation once for
//! the whole batch (one transaction, one fsync), and only then answers: each item that waits for
//! its answer gets it, and each [`BatchWriter::flush`] queued among the items resolves. If the
//! operation fails, or answers a different number of items than it was given, every waiter of the
//! batch gets [`WriteError::NotCommitted`]: a failed commit accepts nothing. Items of one batch are
//! handed over in the order they were queued.
//!
//! Optionally the thread pauses after a commit that nobody waited for, so that under load it
//! commits at most once per pause instead of once per handful of items (the audit trail uses this).
//! A waiting item, a flush or a close is never delayed by it: queueing one wakes the thread
//! from its pause (`std::thread::park_timeout`, woken by `unpark`), so it is committed at once,
//! with whatever unwaited items are queued before it.
//!
//! [`BatchWriter::close`] stops the queue taking new items; the thread still commits and answers
//! everything queued before it, then ends. It also ends, once drained, when every handle is gone.
//! [`WriterThread::join`] waits for that.

use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How a writer is sized and named.
#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// The thread's name (also in logs).
    pub name: &'static str,
    /// Items queued before submitters wait.
    pub channel_capacity: usize,
    /// The most items committed together.
    pub max_batch: usize,
    /// The pause after a commit nobody waited for.
    pub pause_when_unwaited: Option<Duration>,
}

/// Why an item got no answer from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteError {
    /// The writer is closed or has stopped; the item was not taken.
    Stopped,
    /// The item's batch did not commit; nothing in it is accepted.
    NotCommitted,
}

type Reply<A> = oneshot::Sender<Result<A, WriteError>>;

enum Msg<T, A> {
    Item(T, Option<Reply<A>>),
    Flush(oneshot::Sender<()>),
    Close,
}

/// A handle for queueing items; clones share the writer.
pub struct BatchWriter<T, A> {
    tx: mpsc::Sender<Msg<T, A>>,
    /// The writer's thread, to wake from its pause when someone waits.
    thread: Option<std::thread::Thread>,
}

impl<T, A> Clone for BatchWriter<T, A> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            thread: self.thread.clone(),
        }
    }
}

/// The answer to an item queued with [`BatchWriter::enqueue`].
#[derive(Debug)]
pub struct Pending<A>(oneshot::Receiver<Result<A, WriteError>>);

impl<A> Pending<A> {
    /// Resolves once the item's batch has committed (or failed).
    pub async fn answer(self) -> Result<A, WriteError> {
        self.0.await.unwrap_or(Err(WriteError::Stopped))
    }
}

/// The writer's thread, to be joined at shutdown.
#[derive(Debug)]
pub struct WriterThread {
    name: &'static str,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl WriterThread {
    /// Waits for the thread to end (after [`BatchWriter::close`], or once every handle is gone).
    /// Returns whether it ended normally (an abnormal end is also logged).
    pub async fn join(self) -> bool {
        let Some(handle) = self.handle else {
            return false;
        };
        let joined = tokio::task::spawn_blocking(move || handle.join()).await;
        let normal = matches!(joined, Ok(Ok(())));
        if !normal {
            tracing::error!(writer = self.name, "the writer thread ended abnormally");
        }
        normal
    }
}

impl<T: Send + 'static, A: Send + 'static> BatchWriter<T, A> {
    /// Starts the thread. `commit` runs once per batch and must answer every item in order, or
    /// fail as a whole. If the thread cannot start, every submission fails with
    /// [`WriteError::Stopped`].
    pub fn start<E, F>(config: WriterConfig, commit: F) -> (Self, WriterThread)
    where
        E: std::fmt::Display,
        F: FnMut(&mut [T]) -> Result<Vec<A>, E> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(config.channel_capacity);
        let handle = std::thread::Builder::new()
            .name(config.name.into())
            .spawn(move || run(config, rx, commit));
        let handle = match handle {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::error!(writer = config.name, error = %e, "cannot start the writer thread");
                None
            }
        };
        let wake = handle.as_ref().map(|h| h.thread().clone());
        let thread = WriterThread {
            name: config.name,
            handle,
        };
        (Self { tx, thread: wake }, thread)
    }

    /// Ends the thread's pause, if it is in one: someone now waits for a commit.
    fn wake(&self) {
        if let Some(t) = &self.thread {
            t.unpark();
        }
    }

    /// Queues `item` and resolves with its answer once its batch has committed.
    pub async fn submit(&self, item: T) -> Result<A, WriteError> {
        self.enqueue(item).await?.answer().await
    }

    /// Queues `item`; its answer comes from the returned [`Pending`] once its batch has committed.
    pub async fn enqueue(&self, item: T) -> Result<Pending<A>, WriteError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Item(item, Some(tx)))
            .await
            .map_err(|_| WriteError::Stopped)?;
        self.wake();
        Ok(Pending(rx))
    }

    /// Queues `item` without waiting for its commit; waits only while the queue is full.
    pub async fn send(&self, item: T) -> Result<(), WriteError> {
        self.tx
            .send(Msg::Item(item, None))
            .await
            .map_err(|_| WriteError::Stopped)
    }

    /// Resolves once every item queued before this call has been through a commit.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            self.wake();
            let _ = rx.await;
        }
    }

    /// Refuses new items; the thread commits and answers what was queued before, then ends.
    pub async fn close(&self) {
        if self.tx.send(Msg::Close).await.is_ok() {
            self.wake();
        }
    }
}

/// What the thread has taken for the next commit.
struct Batch<T, A> {
    items: Vec<T>,
    replies: Vec<Option<Reply<A>>>,
    flushes: Vec<oneshot::Sender<()>>,
}

impl<T, A> Batch<T, A> {
    fn someone_waits(&self) -> bool {
        !self.flushes.is_empty() || self.replies.iter().any(Option::is_some)
    }
}

fn run<T, A, E, F>(config: WriterConfig, mut rx: mpsc::Receiver<Msg<T, A>>, mut commit: F)
where
    E: std::fmt::Display,
    F: FnMut(&mut [T]) -> Result<Vec<A>, E>,
{
    let mut batch = Batch {
        items: Vec::with_capacity(config.max_batch),
        replies: Vec::with_capacity(config.max_batch),
        flushes: Vec::new(),
    };
    let mut closing = false;
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Item(item, reply) => {
                    batch.items.push(item);
                    batch.replies.push(reply);
                }
                Msg::Flush(w) => batch.flushes.push(w),
                // No new items; those already queued are still committed, by this loop.
                Msg::Close => {
                    rx.close();
                    closing = true;
                }
            }
            if batch.items.len() < config.max_batch {
                next = rx.try_recv().ok();
            }
        }
        let waited = batch.someone_waits();
        commit_and_answer(config.name, &mut batch, &mut commit);
        if let Some(pause) = config.pause_when_unwaited
            && !waited
            && !closing
        {
            // Woken early by anyone who queues a waiting item, a flush or a close (an early or
            // spurious wake only commits sooner).
            std::thread::park_timeout(pause);
        }
    }
}

/// Runs one commit and answers the batch, only after the commit returned.
fn commit_and_answer<T, A, E, F>(name: &'static str, batch: &mut Batch<T, A>, commit: &mut F)
where
    E: std::fmt::Display,
    F: FnMut(&mut [T]) -> Result<Vec<A>, E>,
{
    let n = batch.items.len();
    let outcome = if n == 0 {
        Ok(Vec::new())
    } else {
        commit(&mut batch.items)
    };
    // Dropping the items here (before anyone is answered) zeroizes what they hold.
    batch.items.clear();
    match outcome {
        Ok(answers) if answers.len() == n => {
            for (reply, answer) in batch.replies.drain(..).zip(answers) {
                if let Some(reply) = reply {
                    // The submitter may have gone; its item is committed all the same.
                    let _ = reply.send(Ok(answer));
                }
            }
        }
        outcome => {
            match outcome {
                Err(e) => tracing::error!(writer = name, error = %e, items = n,
                    "the batch did not commit; none of its items is accepted"),
                Ok(answers) => tracing::error!(
                    writer = name,
                    items = n,
                    answers = answers.len(),
                    "the batch answered the wrong number of items; none is accepted"
                ),
            }
            for reply in batch.replies.drain(..).flatten() {
                let _ = reply.send(Err(WriteError::NotCommitted));
            }
        }
    }
    for w in batch.flushes.drain(..) {
        let _ = w.send(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    const CONFIG: WriterConfig = WriterConfig {
        name: "test-writer",
        channel_capacity: 64,
        max_batch: 4,
        pause_when_unwaited: None,
    };

    /// Every batch a test writer was given.
    type Seen = Arc<Mutex<Vec<Vec<u32>>>>;

    /// A writer that records each batch it was given and answers each item with its double.
    fn doubling(fail_on: Option<u32>) -> (BatchWriter<u32, u32>, WriterThread, Seen) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let (w, t) = BatchWriter::start(CONFIG, move |items: &mut [u32]| {
            log.lock().unwrap().push(items.to_vec());
            if fail_on.is_some_and(|f| items.contains(&f)) {
                return Err("refused");
            }
            Ok(items.iter().map(|i| i * 2).collect())
        });
        (w, t, seen)
    }

    /// Queues `items` (waiting for answers) before the thread can take them, then closes.
    async fn queue_then_close(w: &BatchWriter<u32, u32>, items: &[u32]) -> Vec<Pending<u32>> {
        let mut pending = Vec::new();
        for &i in items {
            pending.push(w.enqueue(i).await.unwrap());
        }
        w.close().await;
        pending
    }

    #[tokio::test]
    async fn close_commits_what_was_queued_in_bounded_batches_then_refuses() {
        let (w, t, seen) = doubling(None);
        let pending = queue_then_close(&w, &[1, 2, 3, 4, 5, 6]).await;
        assert!(t.join().await);
        let mut answers = Vec::new();
        for p in pending {
            answers.push(p.answer().await);
        }
        assert_eq!(answers, [2, 4, 6, 8, 10, 12].map(Ok));
        let batches = seen.lock().unwrap().clone();
        assert_eq!(batches.concat(), [1, 2, 3, 4, 5, 6], "in queue order");
        assert!(batches.iter().all(|b| b.len() <= CONFIG.max_batch));
        assert_eq!(w.submit(7).await, Err(WriteError::Stopped));
        assert_eq!(w.send(7).await, Err(WriteError::Stopped));
    }

    #[tokio::test]
    async fn a_failed_commit_accepts_nothing_of_its_batch() {
        let (w, t, seen) = doubling(Some(2));
        let pending = queue_then_close(&w, &[1, 2, 3]).await;
        assert!(t.join().await);
        assert_eq!(seen.lock().unwrap().clone(), [vec![1, 2, 3]]);
        for p in pending {
            assert_eq!(p.answer().await, Err(WriteError::NotCommitted));
        }
    }

    #[tokio::test]
    async fn a_wrong_number_of_answers_accepts_nothing() {
        let (w, t) = BatchWriter::start(CONFIG, |items: &mut [u32]| {
            Ok::<_, &str>(vec![0; items.len() + 1])
        });
        assert_eq!(w.submit(1).await, Err(WriteError::NotCommitted));
        w.close().await;
        assert!(t.join().await);
    }

    #[tokio::test]
    async fn flush_resolves_after_the_items_before_it_committed() {
        let (w, t, seen) = doubling(None);
        for i in 0..10 {
            w.send(i).await.unwrap();
        }
        w.flush().await;
        assert_eq!(seen.lock().unwrap().concat(), (0..10).collect::<Vec<_>>());
        drop(w);
        assert!(t.join().await);
    }

    #[tokio::test]
    async fn a_waiting_item_is_not_held_back_by_the_pause_after_an_unwaited_commit() {
        // A pause far longer than the test's guard: the waiting item can only be answered if
        // queueing it ends the pause.
        const PAUSING: WriterConfig = WriterConfig {
            pause_when_unwaited: Some(Duration::from_secs(3600)),
            ..CONFIG
        };
        let (committed_tx, committed_rx) = std::sync::mpsc::channel();
        let (w, t) = BatchWriter::start(PAUSING, move |items: &mut [u32]| {
            let _ = committed_tx.send(items.to_vec());
            Ok::<_, &str>(items.iter().map(|i| i * 2).collect())
        });
        w.send(1).await.unwrap();
        let first = tokio::task::spawn_blocking(move || {
            let first = committed_rx.recv().unwrap();
            (first, committed_rx)
        });
        let (first, _committed_rx) = first.await.unwrap();
        assert_eq!(
            first,
            [1],
            "an unwaited commit, after which the thread pauses"
        );
        let answer = tokio::time::timeout(Duration::from_secs(60), w.submit(2)).await;
        assert_eq!(answer, Ok(Ok(4)), "answered without waiting out the pause");
        w.close().await;
        assert!(t.join().await);
    }

    #[tokio::test]
    async fn the_thread_ends_when_every_handle_is_gone() {
        let (w, t, seen) = doubling(None);
        w.send(1).await.unwrap();
        drop(w);
        assert!(t.join().await);
        assert_eq!(seen.lock().unwrap().concat(), [1]);
    }
}
