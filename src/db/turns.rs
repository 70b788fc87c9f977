//! Turns at the database for writes: leases first, labels in the background.
//!
//! A person waits for the next item (the UI sends a label in the background
//! and shows the next item at once), never for a label's write: so a lease
//! never queues behind labels.
//!
//! SQLite has a single writer, so under labelling every `queue/next` lease
//! waits for the writes queued before it — with 8 annotators, several label
//! transactions of 4–6 statements and a durable commit each. There a lease
//! takes the next turn ahead of waiting labels. Labels are not starved:
//! after [`URGENT_RUN`] leases in a row while a label waits, the label goes.
//!
//! On PostgreSQL every caller gets its own pooled connection, so a lease
//! goes at once; but a crowd of label transactions (6 round trips and a
//! commit each) running side by side takes the shared cores from the
//! leases, and in a busy queue a lease waited for them (1M pool, 8
//! annotators labelling flat out on 2 cores: `queue/next` p99 11–13 ms).
//! So a replica writes at most [`PG_LABEL_WRITES`] labels at a time and
//! leases go past them (p99 5–8 ms on the same machine, at 290–360
//! labels/s a replica: dozens of times what 8 people send).
use std::collections::VecDeque;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// Leases served in a row, at most, while a label waits.
const URGENT_RUN: u32 = 8;

/// Label transactions a PostgreSQL replica runs at once.
pub const PG_LABEL_WRITES: u32 = 1;

/// Who is asking for a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Someone waits for it: a lease of the next item.
    Urgent,
    /// Written in the background: a label.
    Normal,
}

pub struct WriteTurns {
    shared_writer: bool,
    /// Turns held at once, at most: 1 for SQLite's one writer (leases and
    /// labels alike); on PostgreSQL, label writes only.
    capacity: u32,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    running: u32,
    urgent: VecDeque<oneshot::Sender<()>>,
    normal: VecDeque<oneshot::Sender<()>>,
    urgent_run: u32,
}

/// Holds a turn until dropped; the next waiter goes then.
#[must_use = "the turn ends when this is dropped"]
pub struct Held<'a> {
    turns: Option<&'a WriteTurns>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.turns {
            t.hand_over();
        }
    }
}

/// A waiter dropped before its turn came (its request was cancelled) gives
/// back a turn handed to it meanwhile.
struct Waiting<'a> {
    turns: &'a WriteTurns,
    rx: Option<oneshot::Receiver<()>>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            rx.close();
            if rx.try_recv().is_ok() {
                self.turns.hand_over();
            }
        }
    }
}

impl WriteTurns {
    /// Turns at SQLite's one writer connection (`shared_writer`), or on
    /// PostgreSQL: leases at once, [`PG_LABEL_WRITES`] labels at a time.
    pub fn new(shared_writer: bool) -> Self {
        Self::with_label_writes(shared_writer, PG_LABEL_WRITES)
    }

    fn with_label_writes(shared_writer: bool, label_writes: u32) -> Self {
        WriteTurns {
            shared_writer,
            capacity: if shared_writer {
                1
            } else {
                label_writes.max(1)
            },
            state: Mutex::new(State::default()),
        }
    }

    /// Waits for a turn (at once when one is free).
    pub async fn take(&self, kind: Turn) -> Held<'_> {
        if !self.shared_writer && kind == Turn::Urgent {
            return Held { turns: None };
        }
        let rx = {
            let mut s = self.state.lock().expect("write turns lock");
            if s.running < self.capacity {
                s.running += 1;
                s.urgent_run = if kind == Turn::Urgent { 1 } else { 0 };
                return Held { turns: Some(self) };
            }
            let (tx, rx) = oneshot::channel();
            match kind {
                Turn::Urgent => s.urgent.push_back(tx),
                Turn::Normal => s.normal.push_back(tx),
            }
            rx
        };
        let mut waiting = Waiting {
            turns: self,
            rx: Some(rx),
        };
        // The sender is only dropped after a send: Ok is the one outcome.
        let _ = waiting.rx.as_mut().expect("receiver").await;
        waiting.rx = None;
        Held { turns: Some(self) }
    }

    /// Ends a turn and gives it to the next live waiter: urgent ones first,
    /// but a waiting normal one after [`URGENT_RUN`] urgent turns in a row.
    fn hand_over(&self) {
        let mut s = self.state.lock().expect("write turns lock");
        s.running -= 1;
        loop {
            let normal_due = s.urgent_run >= URGENT_RUN && !s.normal.is_empty();
            let next = if !normal_due && !s.urgent.is_empty() {
                s.urgent_run += 1;
                s.urgent.pop_front()
            } else if let Some(tx) = s.normal.pop_front() {
                s.urgent_run = 0;
                Some(tx)
            } else {
                None
            };
            let Some(tx) = next else {
                if s.running == 0 {
                    s.urgent_run = 0;
                }
                return;
            };
            // A waiter whose request went away is passed over.
            if tx.send(()).is_ok() {
                s.running += 1;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Order in which the waiters of `kinds` get the turn, all queued behind
    /// one holder.
    async fn order(kinds: &[Turn]) -> Vec<usize> {
        let turns = Arc::new(WriteTurns::new(true));
        let first = turns.take(Turn::Normal).await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = vec![];
        for (i, &k) in kinds.iter().enumerate() {
            let (turns, tx) = (turns.clone(), tx.clone());
            tasks.push(tokio::spawn(async move {
                let _held = turns.take(k).await;
                tx.send(i).unwrap();
            }));
            // Queued in this order.
            tokio::task::yield_now().await;
        }
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        drop(tx);
        let mut got = vec![];
        while let Some(i) = rx.recv().await {
            got.push(i);
        }
        got
    }

    #[tokio::test(flavor = "current_thread")]
    async fn urgent_turns_go_first_in_arrival_order() {
        use Turn::*;
        assert_eq!(
            order(&[Normal, Urgent, Normal, Urgent]).await,
            vec![1, 3, 0, 2]
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_waiting_normal_turn_goes_after_a_run_of_urgent_ones() {
        let mut kinds = vec![Turn::Normal];
        kinds.extend(std::iter::repeat_n(Turn::Urgent, URGENT_RUN as usize + 2));
        let got = order(&kinds).await;
        // URGENT_RUN urgent turns (the first counted when the holder drops),
        // then the normal one, then the rest.
        let normal_at = got.iter().position(|&i| i == 0).unwrap();
        assert_eq!(normal_at, URGENT_RUN as usize);
        assert_eq!(got.len(), kinds.len());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_cancelled_waiter_does_not_keep_the_turn() {
        let turns = WriteTurns::new(true);
        let held = turns.take(Turn::Normal).await;
        {
            let fut = turns.take(Turn::Urgent);
            tokio::pin!(fut);
            // Queued, then the turn is handed to it, then it is dropped
            // before it is polled again.
            assert!(futures_util::poll!(fut.as_mut()).is_pending());
            drop(held);
        }
        // The turn came back: a new taker gets it at once.
        let again =
            tokio::time::timeout(std::time::Duration::from_secs(1), turns.take(Turn::Normal)).await;
        assert!(again.is_ok());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn without_a_shared_writer_leases_go_at_once_and_labels_take_turns() {
        let turns = WriteTurns::with_label_writes(false, 2);
        let a = turns.take(Turn::Normal).await;
        let _b = turns.take(Turn::Normal).await;
        // Leases never wait, however many labels are being written.
        let _leases: Vec<_> =
            futures_util::future::join_all((0..5).map(|_| turns.take(Turn::Urgent))).await;
        // A third label waits for one of the two turns to end.
        let third = turns.take(Turn::Normal);
        tokio::pin!(third);
        assert!(futures_util::poll!(third.as_mut()).is_pending());
        drop(a);
        let got = tokio::time::timeout(std::time::Duration::from_secs(1), third).await;
        assert!(got.is_ok());
    }
}
