//! The request-body budget: the bytes of request bodies held in memory at
//! once, across every connection and stream, never exceed one global figure.
//!
//! A request takes a [`Lease`] and grows it before it buffers more bytes
//! (by its declared `content-length` up front, else chunk by chunk). When the
//! budget is spent, older leases still receiving their body are revoked to
//! make room, oldest first: those larger than the newcomer's, and any still
//! arriving after [`SLOW_AFTER`]. A trickled or stalled body thus loses its
//! share, while a well-behaved client, whose body arrives in milliseconds,
//! is neither old nor slow. When that does not make room (every leased byte
//! belongs to a complete body being reviewed, or to a recent body no larger
//! than the newcomer's), the newcomer is refused at once, never queued.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// The global body budget, shared by every request.
#[derive(Debug)]
pub(crate) struct Budget {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    used: usize,
    next_id: u64,
    /// Leases still receiving their body, oldest first (ids grow).
    receiving: BTreeMap<u64, Held>,
    /// Bytes of leases whose body is complete, by id.
    complete: BTreeMap<u64, usize>,
}

#[derive(Debug)]
struct Held {
    bytes: usize,
    since: Instant,
    revoked: Arc<Notify>,
}

/// A body still arriving after this long may be revoked by any newcomer;
/// before, only by a smaller one. Bodies of well-behaved clients arrive in
/// milliseconds; a maximum-size body refused for want of budget is cheap,
/// where revoking another one would make the server read it all.
pub(crate) const SLOW_AFTER: Duration = Duration::from_secs(1);

/// Not enough budget, and nothing left to revoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exhausted;

impl Budget {
    /// A budget of `capacity` bytes.
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            capacity,
            state: Mutex::new(State::default()),
        })
    }

    /// The capacity, bytes.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes currently leased.
    #[cfg(test)]
    fn used(&self) -> usize {
        self.lock().used
    }

    /// A new, empty lease for one request body.
    pub(crate) fn lease(self: &Arc<Self>) -> Lease {
        let revoked = Arc::new(Notify::new());
        let mut s = self.lock();
        let id = s.next_id;
        s.next_id += 1;
        s.receiving.insert(
            id,
            Held {
                bytes: 0,
                since: Instant::now(),
                revoked: revoked.clone(),
            },
        );
        Lease {
            budget: self.clone(),
            id,
            revoked,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One request's share of the budget, given back on drop.
#[derive(Debug)]
pub(crate) struct Lease {
    budget: Arc<Budget>,
    id: u64,
    revoked: Arc<Notify>,
}

impl Lease {
    /// Grows the lease to `total` bytes (no-op when it holds as much),
    /// revoking older receiving leases if the budget is spent: those larger
    /// than `total`, and those receiving for [`SLOW_AFTER`] already. Fails,
    /// changing nothing, when even that does not make room or this lease was
    /// revoked.
    pub(crate) fn grow_to(&self, total: usize) -> Result<(), Exhausted> {
        let mut s = self.budget.lock();
        let held = match s.receiving.get(&self.id) {
            Some(h) => h.bytes,
            None => return Err(Exhausted),
        };
        if total <= held {
            return Ok(());
        }
        let extra = total - held;
        let free = self.budget.capacity - s.used;
        if extra > free {
            let now = Instant::now();
            let mut victims = Vec::new();
            let mut freed = 0;
            for (id, h) in s.receiving.range(..self.id) {
                if freed >= extra - free {
                    break;
                }
                if h.bytes > 0 && (h.bytes > total || now - h.since >= SLOW_AFTER) {
                    victims.push(*id);
                    freed += h.bytes;
                }
            }
            if free + freed < extra {
                return Err(Exhausted);
            }
            for id in victims {
                let v = s.receiving.remove(&id).expect("present");
                s.used -= v.bytes;
                v.revoked.notify_one();
            }
        }
        s.used += extra;
        s.receiving.get_mut(&self.id).expect("present").bytes = total;
        Ok(())
    }

    /// Resolves once another request has taken this lease's bytes: the body
    /// must then be dropped.
    pub(crate) async fn revoked(&self) {
        self.revoked.notified().await
    }

    /// The body is complete: its bytes can no longer be revoked.
    pub(crate) fn complete(&self) {
        let mut s = self.budget.lock();
        if let Some(h) = s.receiving.remove(&self.id) {
            s.complete.insert(self.id, h.bytes);
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut s = self.budget.lock();
        let bytes = match s.receiving.remove(&self.id) {
            Some(h) => h.bytes,
            None => s.complete.remove(&self.id).unwrap_or(0),
        };
        s.used -= bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_share_the_capacity_and_give_it_back_on_drop() {
        let b = Budget::new(100);
        let a = b.lease();
        a.grow_to(60).unwrap();
        a.complete();
        let c = b.lease();
        assert_eq!(c.grow_to(50), Err(Exhausted), "60 complete + 50 > 100");
        c.grow_to(40).unwrap();
        assert_eq!(b.used(), 100);
        drop(a);
        assert_eq!(b.used(), 40);
        drop(c);
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn the_oldest_receiving_body_yields_to_a_newcomer() {
        let b = Budget::new(100);
        let old = b.lease();
        old.grow_to(50).unwrap();
        let mid = b.lease();
        mid.grow_to(50).unwrap();
        let new = b.lease();
        new.grow_to(10).unwrap();
        // `old` lost its bytes, `mid` kept them.
        assert_eq!(b.used(), 60);
        assert_eq!(
            old.grow_to(51),
            Err(Exhausted),
            "a revoked lease stays revoked"
        );
        mid.grow_to(50).unwrap();
        drop(old);
        assert_eq!(b.used(), 60, "dropping a revoked lease frees nothing twice");
    }

    #[test]
    fn a_revoked_lease_is_told() {
        let b = Budget::new(10);
        let old = b.lease();
        old.grow_to(10).unwrap();
        let new = b.lease();
        new.grow_to(5).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(1), old.revoked())
                .await
                .expect("notified");
        });
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_no_smaller_than_the_newcomers_yields_only_once_slow() {
        let b = Budget::new(100);
        let old = b.lease();
        old.grow_to(100).unwrap();
        let same = b.lease();
        assert_eq!(same.grow_to(100), Err(Exhausted), "recent and not larger");
        tokio::time::advance(SLOW_AFTER).await;
        same.grow_to(100).unwrap();
        assert_eq!(b.used(), 100);
        assert_eq!(old.grow_to(100), Err(Exhausted), "revoked");
    }

    #[test]
    fn complete_bodies_are_never_revoked_so_a_newcomer_is_refused() {
        let b = Budget::new(100);
        let done = b.lease();
        done.grow_to(90).unwrap();
        done.complete();
        let new = b.lease();
        assert_eq!(new.grow_to(20), Err(Exhausted));
        assert_eq!(b.used(), 90, "a refusal changes nothing");
        new.grow_to(10).unwrap();
    }

    #[test]
    fn more_than_the_capacity_is_refused_without_revoking_anyone() {
        let b = Budget::new(100);
        let a = b.lease();
        a.grow_to(50).unwrap();
        let big = b.lease();
        assert_eq!(big.grow_to(101), Err(Exhausted));
        a.grow_to(50).unwrap();
        assert_eq!(b.used(), 50);
    }
}
