//! Database connections handed out fairly between tenants.
//!
//! A node's pool is shared by every tenant it serves. Handed out first come, first served,
//! one tenant with many calls queued in front of the pool makes every other tenant wait
//! behind all of them. The gate holds as many permits as the pool has connections; a call
//! takes one before it takes a connection and keeps it while it holds the connection. When
//! a permit comes free and calls are waiting, it goes to the waiting tenant that holds the
//! fewest permits (the longest waiting call among equals), so a tenant's call waits for at
//! most one connection to come free, whatever another tenant sends.
//!
//! The tenant is the caller's, set for the call's task by [`with_lane`] (the backends' call
//! layer does it from the forwarded principal); work outside a call (relays, jobs,
//! migrations) runs in the [`SYSTEM_LANE`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::error::StorageError;

/// The lane of work done by the node itself rather than for a caller.
pub const SYSTEM_LANE: &str = "system";

tokio::task_local! {
    static LANE: Arc<str>;
}

/// `fut` with its database work counted to `lane` (a tenant code, `public`, …).
pub fn with_lane<F: Future>(
    lane: Arc<str>,
    fut: F,
) -> tokio::task::futures::TaskLocalFuture<Arc<str>, F> {
    LANE.scope(lane, fut)
}

/// The lane of the current task's call, or the system's.
pub fn current_lane() -> Arc<str> {
    LANE.try_with(Arc::clone)
        .unwrap_or_else(|_| Arc::from(SYSTEM_LANE))
}

pub struct FairGate {
    state: Mutex<State>,
    capacity: usize,
    wait_limit: Duration,
}

#[derive(Default)]
struct State {
    free: usize,
    held: HashMap<Arc<str>, usize>,
    waiting: HashMap<Arc<str>, VecDeque<Waiter>>,
    arrivals: u64,
}

struct Waiter {
    arrived: u64,
    send: oneshot::Sender<Permit>,
}

/// A place at the pool, given back (to the next waiting tenant) when dropped.
pub struct Permit {
    gate: Arc<FairGate>,
    lane: Arc<str>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.gate.release(&self.lane);
    }
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit").field("lane", &self.lane).finish()
    }
}

impl FairGate {
    pub fn new(capacity: usize, wait_limit: Duration) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                free: capacity,
                ..State::default()
            }),
            capacity,
            wait_limit,
        })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// A permit for `lane`, waiting (at most the gate's wait limit) for one to come free.
    pub async fn acquire(self: &Arc<Self>, lane: Arc<str>) -> Result<Permit, StorageError> {
        let receive = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if state.free > 0 {
                state.free -= 1;
                *state.held.entry(lane.clone()).or_default() += 1;
                return Ok(Permit {
                    gate: self.clone(),
                    lane,
                });
            }
            let (send, receive) = oneshot::channel();
            state.arrivals += 1;
            let arrived = state.arrivals;
            state
                .waiting
                .entry(lane)
                .or_default()
                .push_back(Waiter { arrived, send });
            receive
        };
        match tokio::time::timeout(self.wait_limit, receive).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(StorageError::Unavailable("connection gate closed".into())),
            Err(_) => Err(StorageError::Unavailable(format!(
                "no database connection came free within {} ms",
                self.wait_limit.as_millis()
            ))),
        }
    }

    fn release(self: &Arc<Self>, lane: &Arc<str>) {
        let mut next = None;
        {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = state.held.get_mut(lane) {
                *n -= 1;
                if *n == 0 {
                    state.held.remove(lane);
                }
            }
            while let Some((lane, waiter)) = state.next_waiter() {
                if waiter.send.is_closed() {
                    continue;
                }
                *state.held.entry(lane.clone()).or_default() += 1;
                next = Some((lane, waiter));
                break;
            }
            if next.is_none() {
                state.free += 1;
            }
        }
        // Handed over outside the lock: a waiter that gave up in between drops the permit,
        // which comes back here for the next one.
        if let Some((lane, waiter)) = next {
            let _ = waiter.send.send(Permit {
                gate: self.clone(),
                lane,
            });
        }
    }

    /// Permits held per lane and calls waiting per lane, for tests and diagnostics.
    pub fn snapshot(&self) -> (HashMap<String, usize>, HashMap<String, usize>) {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let held = state
            .held
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        let waiting = state
            .waiting
            .iter()
            .map(|(k, v)| (k.to_string(), v.len()))
            .collect();
        (held, waiting)
    }
}

impl State {
    /// Takes the longest-waiting call of the waiting lane holding the fewest permits.
    fn next_waiter(&mut self) -> Option<(Arc<str>, Waiter)> {
        let lane = self
            .waiting
            .iter()
            .filter_map(|(lane, queue)| {
                let first = queue.front()?;
                let held = self.held.get(lane).copied().unwrap_or(0);
                Some(((held, first.arrived), lane))
            })
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, lane)| lane.clone())?;
        let queue = self.waiting.get_mut(&lane)?;
        let waiter = queue.pop_front()?;
        if queue.is_empty() {
            self.waiting.remove(&lane);
        }
        Some((lane, waiter))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lane(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    #[tokio::test]
    async fn a_freed_permit_goes_to_the_waiting_tenant_holding_fewest() {
        let gate = FairGate::new(2, Duration::from_secs(5));
        let a1 = gate.acquire(lane("a")).await.unwrap();
        let a2 = gate.acquire(lane("a")).await.unwrap();
        // Tenant a queues three more calls, then tenant b one.
        let mut queued_a = Vec::new();
        for _ in 0..3 {
            let g = gate.clone();
            queued_a.push(tokio::spawn(async move { g.acquire(lane("a")).await }));
            tokio::task::yield_now().await;
        }
        let g = gate.clone();
        let b = tokio::spawn(async move { g.acquire(lane("b")).await });
        while gate.snapshot().1.values().sum::<usize>() < 4 {
            tokio::task::yield_now().await;
        }
        drop(a1);
        let b = b.await.unwrap().unwrap();
        let (held, waiting) = gate.snapshot();
        assert_eq!(
            held.get("b"),
            Some(&1),
            "b is served before a's earlier calls"
        );
        assert_eq!(held.get("a"), Some(&1));
        assert_eq!(waiting.get("a"), Some(&3));
        drop(b);
        drop(a2);
        for q in queued_a {
            drop(q.await.unwrap().unwrap());
        }
        let (held, waiting) = gate.snapshot();
        assert!(
            held.is_empty() && waiting.is_empty(),
            "{held:?} {waiting:?}"
        );
        assert!(gate.acquire(lane("c")).await.is_ok());
    }

    #[tokio::test]
    async fn among_equals_the_longest_waiting_call_goes_first() {
        let gate = FairGate::new(1, Duration::from_secs(5));
        let held = gate.acquire(lane("x")).await.unwrap();
        let (g1, g2) = (gate.clone(), gate.clone());
        let first = tokio::spawn(async move { g1.acquire(lane("b")).await });
        while gate.snapshot().1.is_empty() {
            tokio::task::yield_now().await;
        }
        let second = tokio::spawn(async move { g2.acquire(lane("c")).await });
        while gate.snapshot().1.len() < 2 {
            tokio::task::yield_now().await;
        }
        drop(held);
        let p = first.await.unwrap().unwrap();
        assert_eq!(&*p.lane, "b");
        drop(p);
        assert_eq!(&*second.await.unwrap().unwrap().lane, "c");
    }

    #[tokio::test]
    async fn a_waiter_that_gave_up_passes_its_turn_on() {
        let gate = FairGate::new(1, Duration::from_millis(50));
        let held = gate.acquire(lane("a")).await.unwrap();
        let err = gate.acquire(lane("b")).await.unwrap_err();
        assert!(err.to_string().contains("within 50 ms"), "{err}");
        let g = gate.clone();
        let c = tokio::spawn(async move { g.acquire(lane("c")).await });
        while !gate.snapshot().1.contains_key("c") {
            tokio::task::yield_now().await;
        }
        drop(held);
        let c = c.await.unwrap().unwrap();
        assert_eq!(&*c.lane, "c");
        drop(c);
        let (held, waiting) = gate.snapshot();
        assert!(held.is_empty() && waiting.is_empty());
        // All capacity is back.
        let _p = gate.acquire(lane("d")).await.unwrap();
    }

    #[tokio::test]
    async fn the_lane_is_the_calls_or_the_systems() {
        assert_eq!(&*current_lane(), SYSTEM_LANE);
        let inside = with_lane(lane("653100"), async { current_lane() }).await;
        assert_eq!(&*inside, "653100");
    }
}
