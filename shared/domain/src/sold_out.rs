//! What this process last heard the stock store say about sold-out categories, so that the
//! herd arriving after a sell-out is answered without a store round trip.
//!
//! A hint is only ever a short-lived copy of a store answer: "a request for `qty` tickets was
//! refused at `at`". It is believed for [`SOLD_OUT_HINT_LIFETIME`]; then one request asks the
//! store again while the others keep the old answer for at most [`RECHECK_GRACE`] more, so
//! the herd does not rush the store together each time a hint is due. Stock that comes back
//! (a cancel, an expired hold) is seen by every process within 225 ms with no message between
//! processes, and each process asks the store about once a lifetime per sold-out category.
//! A new hold of as many tickets as were refused ends the hint at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use chrono::{DateTime, Duration, Utc};

use crate::{CategoryName, EventId, Qty};
use rustc_hash::FxBuildHasher;

/// How long a store's "sold out" is believed: under the 250 ms in which returning stock must
/// be seen everywhere, with room for the store call that refreshes it.
pub const SOLD_OUT_HINT_LIFETIME: Duration = Duration::milliseconds(200);

/// How long the other requests keep a hint that is due while one request asks the store again:
/// about a store round trip, with a wide margin. With the lifetime, under 250 ms.
pub const RECHECK_GRACE: Duration = Duration::milliseconds(25);

/// Below this many categories the map is never swept.
const SWEEP_FLOOR: usize = 64;

/// Recent sold-out answers, by category. Reads (every reserve) share a lock; writes happen
/// only when the store refuses, which the hint itself makes rare.
pub struct SoldOutHints {
    lifetime: Duration,
    state: RwLock<State>,
}

/// Hashed fast: a hint is stored only for a category the store refused, so it exists.
type Map<K, V> = HashMap<K, V, FxBuildHasher>;

#[derive(Default)]
struct State {
    hints: Map<EventId, Map<CategoryName, Hint>>,
    /// Categories held in `hints`, and how many there may be before the stale ones are swept:
    /// twice what a sweep left, so sweeping costs O(1) a write on average.
    len: usize,
    sweep_at: usize,
}

struct Hint {
    /// The smallest quantity refused: fewer may still be there, so they still ask the store.
    smallest_refused: Qty,
    /// When the store refused it.
    at: DateTime<Utc>,
    /// When a request last set out to ask the store again, in microseconds since the epoch
    /// (`NOT_ASKING`: none since `at`).
    asking_since: AtomicI64,
}

const NOT_ASKING: i64 = i64::MIN;

impl Hint {
    fn new(smallest_refused: Qty, at: DateTime<Utc>) -> Self {
        Self {
            smallest_refused,
            at,
            asking_since: AtomicI64::new(NOT_ASKING),
        }
    }

    /// Whether a request for `qty` at `now` is answered from this hint: while it is live, and
    /// once it is due, unless this request is the one to ask the store again.
    fn answers(&self, qty: Qty, now: DateTime<Utc>, lifetime: Duration) -> bool {
        if qty < self.smallest_refused || now < self.at {
            return false;
        }
        if now - self.at < lifetime {
            return true;
        }
        let now_micros = now.timestamp_micros();
        let asking = self.asking_since.load(Ordering::Relaxed);
        let grace = RECHECK_GRACE.num_microseconds().unwrap_or(i64::MAX);
        if asking != NOT_ASKING && (asking..asking.saturating_add(grace)).contains(&now_micros) {
            return true;
        }
        // Due, and nobody asking (or the one who did has not come back): this request asks,
        // unless another one took the turn first.
        let turn = self.asking_since.compare_exchange(
            asking,
            now_micros,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        turn.is_err()
    }

    /// Live from `at` for the lifetime; a clock set back before `at` ends it too, so a hint
    /// can never outlive its lifetime.
    fn is_live(&self, now: DateTime<Utc>, lifetime: Duration) -> bool {
        self.at <= now && now - self.at < lifetime
    }
}

impl Default for SoldOutHints {
    fn default() -> Self {
        Self::new(SOLD_OUT_HINT_LIFETIME)
    }
}

impl SoldOutHints {
    pub fn new(lifetime: Duration) -> Self {
        Self {
            lifetime,
            state: RwLock::new(State {
                sweep_at: SWEEP_FLOOR,
                ..State::default()
            }),
        }
    }

    /// How long a hint is believed.
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// Whether a request for `qty` tickets at `now` is answered "sold out" without asking the
    /// store: the store refused as few or fewer less than a lifetime ago, or the hint is due
    /// and another request is asking the store again. `false` for the one request that asks.
    pub fn is_sold_out(
        &self,
        event: EventId,
        category: &CategoryName,
        qty: Qty,
        now: DateTime<Utc>,
    ) -> bool {
        let state = self.read();
        let Some(hint) = state
            .hints
            .get(&event)
            .and_then(|names| names.get(category))
        else {
            return false;
        };
        hint.answers(qty, now, self.lifetime)
    }

    /// Records that the store refused `qty` tickets of this category at `now`. A live hint of
    /// as few or fewer tickets says as much and is kept.
    pub fn refused(&self, event: EventId, category: &CategoryName, qty: Qty, now: DateTime<Utc>) {
        let new = || Hint::new(qty, now);
        let replaces = |old: &Hint| qty < old.smallest_refused || !old.is_live(now, self.lifetime);
        // Most refusals come from requests that were already in flight when the first one set
        // the hint: a read lock tells them there is nothing to add.
        let needs_write = match self
            .read()
            .hints
            .get(&event)
            .and_then(|names| names.get(category))
        {
            Some(old) => replaces(old),
            None => true,
        };
        if !needs_write {
            return;
        }
        let mut state = self.write();
        let State {
            hints,
            len,
            sweep_at,
        } = &mut *state;
        let names = hints.entry(event).or_default();
        match names.get_mut(category) {
            Some(old) if replaces(old) => *old = new(),
            Some(_) => {}
            None => {
                names.insert(category.clone(), new());
                *len += 1;
            }
        }
        if *len >= *sweep_at {
            hints.retain(|_, names| {
                names.retain(|_, hint| hint.is_live(now, self.lifetime));
                !names.is_empty()
            });
            *len = hints.values().map(Map::len).sum();
            *sweep_at = (*len * 2).max(SWEEP_FLOOR);
        }
    }

    /// Records that the store just held `qty` tickets of this category: a hint that as many
    /// were refused is wrong now, and goes.
    pub fn held(&self, event: EventId, category: &CategoryName, qty: Qty) {
        let contradicted = |hint: &Hint| hint.smallest_refused <= qty;
        let found = self
            .read()
            .hints
            .get(&event)
            .and_then(|names| names.get(category))
            .is_some_and(contradicted);
        if !found {
            return;
        }
        let mut state = self.write();
        let Some(names) = state.hints.get_mut(&event) else {
            return;
        };
        if names.get(category).is_some_and(contradicted) {
            names.remove(category);
            if names.is_empty() {
                state.hints.remove(&event);
            }
            state.len -= 1;
        }
    }

    /// Categories with a hint, live or not yet swept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.read().len
    }

    // A panic never leaves `State` half-changed (the sweep recounts `len`), so a poisoned lock
    // is still good to use.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn start() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
    }

    fn qty(n: i64) -> Qty {
        Qty::new(n).unwrap()
    }

    fn floor() -> CategoryName {
        CategoryName::parse("Floor").unwrap()
    }

    #[test]
    fn a_refusal_covers_as_many_or_more_for_its_lifetime() {
        let hints = SoldOutHints::default();
        let (event, floor, t0) = (EventId::generate(), floor(), start());
        assert!(!hints.is_sold_out(event, &floor, qty(1), t0));

        hints.refused(event, &floor, qty(4), t0);

        assert!(hints.is_sold_out(event, &floor, qty(4), t0));
        assert!(hints.is_sold_out(event, &floor, qty(9), t0 + Duration::milliseconds(199)));
        assert!(!hints.is_sold_out(event, &floor, qty(3), t0));
        assert!(!hints.is_sold_out(event, &floor, qty(4), t0 + SOLD_OUT_HINT_LIFETIME));
        let other = CategoryName::parse("Balcony").unwrap();
        assert!(!hints.is_sold_out(event, &other, qty(4), t0));
        assert!(!hints.is_sold_out(EventId::generate(), &floor, qty(4), t0));
    }

    #[test]
    fn a_smaller_refusal_widens_the_hint_and_a_larger_one_does_not() {
        let hints = SoldOutHints::default();
        let (event, floor, t0) = (EventId::generate(), floor(), start());
        hints.refused(event, &floor, qty(4), t0);
        hints.refused(event, &floor, qty(6), t0 + Duration::milliseconds(10));
        assert!(!hints.is_sold_out(event, &floor, qty(3), t0));

        let t1 = t0 + Duration::milliseconds(150);
        hints.refused(event, &floor, qty(2), t1);

        assert!(hints.is_sold_out(event, &floor, qty(2), t1));
        // Renewed from the later refusal.
        assert!(hints.is_sold_out(event, &floor, qty(4), t0 + Duration::milliseconds(300)));
        assert!(!hints.is_sold_out(event, &floor, qty(2), t1 + SOLD_OUT_HINT_LIFETIME));
    }

    #[test]
    fn a_stale_hint_is_replaced_by_any_refusal() {
        let hints = SoldOutHints::default();
        let (event, floor, t0) = (EventId::generate(), floor(), start());
        hints.refused(event, &floor, qty(1), t0);
        let later = t0 + Duration::seconds(1);

        hints.refused(event, &floor, qty(5), later);

        assert!(hints.is_sold_out(event, &floor, qty(5), later));
        assert!(!hints.is_sold_out(event, &floor, qty(4), later));
    }

    #[test]
    fn a_due_hint_sends_one_request_to_the_store_and_answers_the_rest() {
        let hints = SoldOutHints::default();
        let (event, floor, t0) = (EventId::generate(), floor(), start());
        hints.refused(event, &floor, qty(1), t0);
        let due = t0 + SOLD_OUT_HINT_LIFETIME;

        let asks = !hints.is_sold_out(event, &floor, qty(1), due);
        let others = (1..10)
            .all(|ms| hints.is_sold_out(event, &floor, qty(1), due + Duration::milliseconds(ms)));
        // The one who asked never came back (a store error, say): after the grace, another asks.
        let asks_again = !hints.is_sold_out(event, &floor, qty(1), due + RECHECK_GRACE);

        assert!(asks && others && asks_again);
        assert!(hints.is_sold_out(event, &floor, qty(1), due + RECHECK_GRACE));
        // Its answer renews the hint.
        let renewed = due + RECHECK_GRACE + Duration::milliseconds(1);
        hints.refused(event, &floor, qty(1), renewed);
        assert!(hints.is_sold_out(event, &floor, qty(1), renewed + Duration::milliseconds(199)));
    }

    #[test]
    fn a_hold_of_as_many_as_were_refused_ends_the_hint() {
        let hints = SoldOutHints::default();
        let (event, floor, t0) = (EventId::generate(), floor(), start());
        hints.refused(event, &floor, qty(3), t0);

        hints.held(event, &floor, qty(2));
        assert!(hints.is_sold_out(event, &floor, qty(3), t0));
        hints.held(event, &floor, qty(3));

        assert!(!hints.is_sold_out(event, &floor, qty(3), t0));
        assert_eq!(hints.len(), 0);
    }

    #[test]
    fn a_clock_set_back_ends_a_hint() {
        let hints = SoldOutHints::default();
        let (event, floor, t0) = (EventId::generate(), floor(), start());
        hints.refused(event, &floor, qty(1), t0);
        assert!(!hints.is_sold_out(event, &floor, qty(1), t0 - Duration::hours(1)));
    }

    #[test]
    fn stale_hints_are_swept_as_the_map_grows() {
        let hints = SoldOutHints::default();
        let floor = floor();
        let mut now = start();
        for _ in 0..10 * SWEEP_FLOOR {
            hints.refused(EventId::generate(), &floor, qty(1), now);
            now += SOLD_OUT_HINT_LIFETIME;
        }
        assert!(hints.len() <= SWEEP_FLOOR, "{} hints kept", hints.len());
    }
}
