//! What a sink keeps of what arrives. Tests keep every message and read them back. The bench
//! keeps counts (atomics, nothing per message) and at most the last few messages, so that a
//! million messages cost no memory. A [`Watch`] counts the messages that carry a marker; one
//! watch may be given to several sinks, to count an alert across every channel at once.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex, RwLock, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use memchr::memmem;

/// How many received messages a sink keeps for reading back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Keep {
    /// Every one (tests).
    #[default]
    All,
    /// Only the most recent ones; `Last(0)` keeps none and only counts (the bench).
    Last(usize),
}

pub(crate) struct Tally<T> {
    keep: Keep,
    count: AtomicU64,
    kept: Mutex<VecDeque<T>>,
    watches: RwLock<Vec<Weak<Watch>>>,
}

impl<T: Clone> Tally<T> {
    pub(crate) fn new(keep: Keep) -> Tally<T> {
        Tally { keep, count: AtomicU64::new(0), kept: Mutex::new(VecDeque::new()), watches: RwLock::new(Vec::new()) }
    }

    /// Count one message and return its number (from 1). Watches look for their marker in
    /// `haystack`; `item` is built only when the message is kept.
    pub(crate) fn record(&self, haystack: &[u8], item: impl FnOnce() -> T) -> u64 {
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        self.offer_to_watches(haystack);
        let limit = match self.keep {
            Keep::All => usize::MAX,
            Keep::Last(0) => return n,
            Keep::Last(k) => k,
        };
        let mut kept = lock(&self.kept);
        if kept.len() == limit {
            kept.pop_front();
        }
        kept.push_back(item());
        n
    }

    /// Count one message that is never kept (the push receiver's undecrypted ones).
    pub(crate) fn record_unkept(&self, haystack: &[u8]) -> u64 {
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        self.offer_to_watches(haystack);
        n
    }

    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub(crate) fn kept(&self) -> Vec<T> {
        lock(&self.kept).iter().cloned().collect()
    }

    /// From now on, count matching messages into `watch` too, for as long as it lives.
    pub(crate) fn add_watch(&self, watch: &Arc<Watch>) {
        let mut watches = self.watches.write().unwrap_or_else(|p| p.into_inner());
        watches.retain(|w| w.strong_count() > 0);
        watches.push(Arc::downgrade(watch));
    }

    fn offer_to_watches(&self, haystack: &[u8]) {
        let watches = self.watches.read().unwrap_or_else(|p| p.into_inner());
        if watches.is_empty() {
            return;
        }
        let now = Instant::now();
        for watch in watches.iter().filter_map(Weak::upgrade) {
            watch.offer(haystack, now);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Only pushes and pops happen under these locks; a poisoned list is still a valid list.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Counts the messages that contain a marker, and when the first (and the n-th) arrived.
pub struct Watch {
    finder: memmem::Finder<'static>,
    milestone: u64,
    count: AtomicU64,
    first_at: std::sync::OnceLock<Instant>,
    milestone_at: std::sync::OnceLock<Instant>,
}

impl Watch {
    pub fn new(marker: &[u8]) -> Arc<Watch> {
        Watch::with_milestone(marker, u64::MAX)
    }

    /// A watch that also notes when its `milestone`-th match arrived.
    pub fn with_milestone(marker: &[u8], milestone: u64) -> Arc<Watch> {
        Arc::new(Watch {
            finder: memmem::Finder::new(marker).into_owned(),
            milestone,
            count: AtomicU64::new(0),
            first_at: Default::default(),
            milestone_at: Default::default(),
        })
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn first_at(&self) -> Option<Instant> {
        self.first_at.get().copied()
    }

    pub fn milestone_at(&self) -> Option<Instant> {
        self.milestone_at.get().copied()
    }

    fn offer(&self, haystack: &[u8], now: Instant) {
        if self.finder.find(haystack).is_none() {
            return;
        }
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        if n == 1 {
            let _ = self.first_at.set(now);
        }
        if n == self.milestone {
            let _ = self.milestone_at.set(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeping_all_keeps_every_message_in_order() {
        let tally = Tally::new(Keep::All);
        for i in 0..5 {
            tally.record(b"", || i);
        }
        assert_eq!((tally.count(), tally.kept()), (5, vec![0, 1, 2, 3, 4]));
    }

    #[test]
    fn keeping_the_last_k_counts_everything_and_keeps_only_k() {
        let (none, two) = (Tally::new(Keep::Last(0)), Tally::new(Keep::Last(2)));
        for i in 0..5 {
            none.record(b"", || -> i32 { unreachable!("nothing is kept, so nothing is built") });
            two.record(b"", || i);
        }
        assert_eq!((none.count(), none.kept()), (5, vec![]));
        assert_eq!((two.count(), two.kept()), (5, vec![3, 4]));
    }

    #[test]
    fn a_watch_counts_matches_across_sinks_and_notes_its_milestone() {
        let (a, b) = (Tally::new(Keep::Last(0)), Tally::new(Keep::Last(0)));
        let watch = Watch::with_milestone(b"ALARM-7", 2);
        a.add_watch(&watch);
        b.add_watch(&watch);
        a.record(b"routine", || ());
        assert_eq!((watch.count(), watch.first_at()), (0, None));
        a.record(b"{\"text\":\"ALARM-7 flood\"}", || ());
        b.record(b"Subject: ALARM-7", || ());
        assert_eq!(watch.count(), 2);
        assert!(watch.first_at().unwrap() <= watch.milestone_at().unwrap());
    }

    #[test]
    fn a_dropped_watch_stops_being_offered_messages() {
        let tally = Tally::new(Keep::Last(0));
        tally.add_watch(&Watch::new(b"x"));
        tally.record(b"x", || ());
        tally.add_watch(&Watch::new(b"y"));
        assert_eq!(tally.watches.read().unwrap().len(), 1, "the first, dropped, was pruned");
    }
}
