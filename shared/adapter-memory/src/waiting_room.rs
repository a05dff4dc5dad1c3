//! The waiting room in memory: one lock per process, each method one critical section.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use domain::error::StoreError;
use domain::waiting_room::{
    AdmitBudget, Admitted, Joined, LAPSED_ADMISSION_KEPT_MS, QueueError, QueuePlace, QueueStatus,
    RoomMark, WaitingRoom, WaitingRoomSettings,
};
use domain::{EventId, UserId};

#[derive(Default)]
pub struct MemoryWaitingRoom {
    /// Read on every `/reserve` (settings) and by every stream's reader (marks).
    rooms: RwLock<HashMap<EventId, Room>>,
}

struct Room {
    settings: WaitingRoomSettings,
    /// Fans who joined before opening, by their draw: the order they will be served in.
    drawn: BTreeSet<(u64, UserId)>,
    draws: HashMap<UserId, u64>,
    /// Fans in the order they are served, with when they started waiting. A fan's place
    /// is `ordinal - admitted_total`: only the head leaves, only the tail grows.
    queue: VecDeque<(UserId, DateTime<Utc>)>,
    ordinals: HashMap<UserId, u64>,
    next_ordinal: u64,
    admitted: HashMap<UserId, DateTime<Utc>>,
    /// Admissions the pace allows now, up to one second's worth.
    credit: f64,
    last_round: Option<DateTime<Utc>>,
    mark: RoomMark,
}

impl Room {
    fn new(settings: WaitingRoomSettings) -> Self {
        Self {
            settings,
            drawn: BTreeSet::new(),
            draws: HashMap::new(),
            queue: VecDeque::new(),
            ordinals: HashMap::new(),
            next_ordinal: 0,
            admitted: HashMap::new(),
            credit: 0.0,
            last_round: None,
            mark: RoomMark::default(),
        }
    }

    /// Once open, the drawn fans go first, in their draw's order.
    fn open_if_due(&mut self, now: DateTime<Utc>) {
        if self.drawn.is_empty() || !self.settings.is_open(now) {
            return;
        }
        let opened_at = self.settings.opens_at.unwrap_or(now);
        self.draws.clear();
        let mut drawn: VecDeque<_> = std::mem::take(&mut self.drawn)
            .into_iter()
            .map(|(_, user)| (user, opened_at))
            .collect();
        drawn.append(&mut self.queue);
        self.queue = drawn;
        self.ordinals.clear();
        for (at, (user, _)) in self.queue.iter().enumerate() {
            self.ordinals
                .insert(user.clone(), self.mark.admitted_total + at as u64);
        }
        self.next_ordinal = self.mark.admitted_total + self.queue.len() as u64;
    }

    fn place(&self, user: &UserId, now: DateTime<Utc>) -> Option<QueuePlace> {
        let waiting = |position| QueuePlace {
            status: match self.mark.sold_out {
                true => QueueStatus::SoldOut,
                false => QueueStatus::Waiting,
            },
            position,
            admitted_until: None,
            mark: self.mark,
        };
        if let Some(&until) = self.admitted.get(user) {
            let status = match until > now {
                true => QueueStatus::Admitted,
                false => QueueStatus::Expired,
            };
            return Some(QueuePlace {
                status,
                position: 0,
                admitted_until: Some(until),
                mark: self.mark,
            });
        }
        if let Some(ordinal) = self.ordinals.get(user) {
            return Some(waiting(ordinal - self.mark.admitted_total + 1));
        }
        let draw = *self.draws.get(user)?;
        let ahead = self.drawn.range(..(draw, user.clone())).count();
        Some(waiting(ahead as u64 + 1))
    }

    fn admit(&mut self, budget: AdmitBudget, now: DateTime<Utc>) -> Admitted {
        let kept = Duration::milliseconds(LAPSED_ADMISSION_KEPT_MS);
        self.admitted.retain(|_, until| *until + kept > now);
        let live = self.admitted.values().filter(|until| **until > now).count();
        if self.mark.sold_out != budget.sold_out {
            self.mark.sold_out = budget.sold_out;
            self.mark.version += 1;
        }
        let since_last = self
            .last_round
            .map_or(1.0, |last| (now - last).as_seconds_f64().max(0.0));
        self.last_round = Some(now);
        let rate = f64::from(self.settings.admit_per_second.get());
        self.credit = (self.credit + since_last * rate).min(rate);
        let mut admitted = Admitted::default();
        if !budget.sold_out && self.settings.is_open(now) {
            let room_left = budget.max_admitted.saturating_sub(live as u64);
            let count = (self.credit.floor() as u64)
                .min(room_left)
                .min(self.queue.len() as u64);
            let until = now + Duration::seconds(self.settings.admission_ttl.get().into());
            for _ in 0..count {
                let Some((user, since)) = self.queue.pop_front() else {
                    break;
                };
                self.ordinals.remove(&user);
                admitted.waits.push((now - since).as_seconds_f64().max(0.0));
                self.admitted.insert(user, until);
            }
            if count > 0 {
                self.credit -= count as f64;
                self.mark.admitted_total += count;
                self.mark.version += 1;
            }
        }
        admitted.queued = (self.queue.len() + self.drawn.len()) as u64;
        admitted
    }
}

impl MemoryWaitingRoom {
    // Every critical section leaves the rooms whole before anything that could panic.
    fn read(&self) -> RwLockReadGuard<'_, HashMap<EventId, Room>> {
        self.rooms
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, HashMap<EventId, Room>> {
        self.rooms
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

#[async_trait]
impl WaitingRoom for MemoryWaitingRoom {
    async fn configure(
        &self,
        event: EventId,
        settings: &WaitingRoomSettings,
    ) -> Result<(), StoreError> {
        let mut rooms = self.write();
        if !settings.enabled {
            rooms.remove(&event);
            return Ok(());
        }
        let room = rooms.entry(event).or_insert_with(|| Room::new(*settings));
        room.settings = *settings;
        room.mark.version += 1;
        Ok(())
    }

    async fn settings(&self, event: EventId) -> Result<Option<WaitingRoomSettings>, StoreError> {
        Ok(self.read().get(&event).map(|room| room.settings))
    }

    async fn join(
        &self,
        event: EventId,
        user: &UserId,
        draw: f64,
        now: DateTime<Utc>,
    ) -> Result<Joined, QueueError> {
        let mut rooms = self.write();
        let room = rooms.get_mut(&event).ok_or(QueueError::NoWaitingRoom)?;
        room.open_if_due(now);
        if let Some(place) = room.place(user, now)
            && place.status != QueueStatus::Expired
        {
            return Ok(Joined {
                place,
                created: false,
            });
        }
        room.admitted.remove(user);
        if room.settings.is_open(now) {
            room.ordinals.insert(user.clone(), room.next_ordinal);
            room.next_ordinal += 1;
            room.queue.push_back((user.clone(), now));
        } else {
            let draw = (draw.clamp(0.0, 1.0) * u64::MAX as f64) as u64;
            room.drawn.insert((draw, user.clone()));
            room.draws.insert(user.clone(), draw);
        }
        let place = room
            .place(user, now)
            .ok_or_else(|| StoreError("waiting room: a fan just queued has no place".into()))?;
        Ok(Joined {
            place,
            created: true,
        })
    }

    async fn place(
        &self,
        event: EventId,
        user: &UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<QueuePlace>, QueueError> {
        let mut rooms = self.write();
        let room = rooms.get_mut(&event).ok_or(QueueError::NoWaitingRoom)?;
        room.open_if_due(now);
        Ok(room.place(user, now))
    }

    async fn mark(&self, event: EventId) -> Result<Option<RoomMark>, StoreError> {
        Ok(self.read().get(&event).map(|room| room.mark))
    }

    async fn rooms(&self) -> Result<Vec<EventId>, StoreError> {
        Ok(self.read().keys().copied().collect())
    }

    async fn admit(
        &self,
        event: EventId,
        budget: AdmitBudget,
        now: DateTime<Utc>,
    ) -> Result<Admitted, StoreError> {
        let mut rooms = self.write();
        let Some(room) = rooms.get_mut(&event) else {
            return Ok(Admitted::default());
        };
        room.open_if_due(now);
        Ok(room.admit(budget, now))
    }
}
