//! `GET /events/{id}/queue/stream` (user): the fan's place, pushed as Server-Sent Events on
//! every change: position, admission, sold out.
//!
//! Pushed, not polled per stream: each process reads each watched room's mark once per
//! [`POLL_EVERY`] ([`RoomWatch`]) and hands it to every stream of that room. Only the head of
//! a queue leaves it and, once open, only its tail grows, so a stream computes its fan's new
//! position from the mark alone (`RoomMark`); it reads the fan's place again only when the
//! fan may have been admitted, when an admission runs out, and once at opening (fans who
//! joined before it are drawn into an order then). Ten thousand streams of one room thus
//! cost one store read per tick, plus one per fan admitted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::waiting_room::{
    QueuePlace, QueueStatus, QueueView, RoomMark, WaitingRoom, WaitingRoomSettings, fan_view,
    not_in_queue, open_room,
};
use domain::{ApiError, Context, EventId, UserId};
use telemetry::WAITING_ROOM_STREAMS;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

/// How often a process reads the mark of each room someone watches: sold out reaches every
/// stream well within a second.
pub const POLL_EVERY: Duration = Duration::from_millis(200);
/// A stream with nothing new repeats its last event this often, so that proxies and clients
/// see a live connection.
pub const RESEND_EVERY: Duration = Duration::from_secs(15);
/// A waiting fan's new position is pushed at most this often: in a room admitting many fans
/// a second, each stream then costs one event a second, not one per admit round.
pub const POSITION_EVERY: Duration = Duration::from_secs(1);
/// How long a client waits before reconnecting (SSE `retry:`).
pub const RETRY_MS: u32 = 2_000;

/// One event of a stream: its SSE `id:` (the room's mark version) and the fan's place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEvent {
    pub id: u64,
    pub view: QueueView,
}

type Marks = watch::Receiver<Option<RoomMark>>;

/// The marks of the rooms this process's streams watch, one reader per room.
pub struct RoomWatch {
    store: Arc<dyn WaitingRoom>,
    rooms: Mutex<HashMap<EventId, Marks>>,
    stop: watch::Receiver<bool>,
}

impl RoomWatch {
    /// Streams end, and readers stop, once `stop` turns true (the process is shutting down).
    pub fn new(store: Arc<dyn WaitingRoom>, stop: watch::Receiver<bool>) -> Arc<Self> {
        Arc::new(Self {
            store,
            rooms: Mutex::new(HashMap::new()),
            stop,
        })
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<EventId, Marks>> {
        self.rooms
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The room's marks, starting its reader if no stream watches it yet.
    fn marks(self: &Arc<Self>, event: EventId, first: RoomMark) -> Marks {
        let mut rooms = self.rooms();
        if let Some(marks) = rooms.get(&event) {
            return marks.clone();
        }
        let (sender, marks) = watch::channel(Some(first));
        rooms.insert(event, marks.clone());
        tokio::spawn(self.clone().read_marks(event, sender));
        marks
    }

    async fn read_marks(self: Arc<Self>, event: EventId, sender: watch::Sender<Option<RoomMark>>) {
        let mut stop = self.stop.clone();
        let mut ticks = tokio::time::interval(POLL_EVERY);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.changed() => break,
            }
            {
                // Under the lock that hands out receivers: the map's own is the last one.
                let mut rooms = self.rooms();
                if sender.receiver_count() <= 1 {
                    rooms.remove(&event);
                    return;
                }
            }
            match self.store.mark(event).await {
                Ok(mark) => {
                    sender.send_if_modified(|old| {
                        let changed = *old != mark;
                        *old = mark;
                        changed
                    });
                }
                Err(err) => tracing::warn!(%err, %event, "waiting room: reading the mark failed"),
            }
        }
        self.rooms().remove(&event);
    }
}

/// Opens the fan's stream: 404 if they are not in the queue. Events arrive on the receiver
/// until the client goes, the room is turned off, the admission runs out, or the process
/// stops.
pub async fn watch_queue(
    ctx: &Context,
    rooms: &Arc<RoomWatch>,
    event: EventId,
    user: UserId,
) -> Result<mpsc::Receiver<QueueEvent>, ApiError> {
    let settings = open_room(ctx, event).await?;
    let place = ctx
        .waiting_room
        .place(event, &user, ctx.clock.now())
        .await?
        .ok_or_else(not_in_queue)?;
    let marks = rooms.marks(event, place.mark);
    let (events, receiver) = mpsc::channel(4);
    let follower = Follower {
        ctx: ctx.clone(),
        event,
        user,
        settings,
        base: place,
        read_before_opening: !settings.is_open(ctx.clock.now()),
    };
    tokio::spawn(follower.run(marks, events, rooms.stop.clone()));
    Ok(receiver)
}

/// Counts an open stream for as long as it lives.
struct OpenStream;

impl OpenStream {
    fn new() -> Self {
        WAITING_ROOM_STREAMS.inc();
        Self
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        WAITING_ROOM_STREAMS.dec();
    }
}

/// One fan's stream: the last place read from the store, moved on by the marks since.
struct Follower {
    ctx: Context,
    event: EventId,
    user: UserId,
    settings: WaitingRoomSettings,
    base: QueuePlace,
    read_before_opening: bool,
}

enum Next {
    Send(QueueView),
    ReadAgain,
}

impl Follower {
    async fn run(
        mut self,
        mut marks: Marks,
        events: mpsc::Sender<QueueEvent>,
        mut stop: watch::Receiver<bool>,
    ) {
        let _open = OpenStream::new();
        let mut last = self.view(&self.base);
        let mut seen = self.base.mark;
        loop {
            let event = QueueEvent {
                id: seen.version,
                view: last.clone(),
            };
            if events.send(event).await.is_err() || last.status == QueueStatus::Expired {
                return;
            }
            let sent_at = Instant::now();
            let resend_at = sent_at + RESEND_EVERY;
            // A new position waits out `POSITION_EVERY` since the last event; a new status
            // goes at once.
            let mut pending: Option<QueueView> = None;
            let view = loop {
                let read_at = self.read_again_at();
                let flush_at = match pending {
                    Some(_) => sent_at + POSITION_EVERY,
                    None => resend_at,
                };
                tokio::select! {
                    changed = marks.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                    () = tokio::time::sleep_until(read_at) => {
                        match self.read_again().await {
                            Some(view) => break view,
                            None => return,
                        }
                    }
                    () = tokio::time::sleep_until(flush_at) => {
                        break pending.take().unwrap_or_else(|| last.clone());
                    }
                    () = events.closed() => return,
                    _ = stop.changed() => return,
                }
                let Some(mark) = *marks.borrow_and_update() else {
                    return; // The room was turned off.
                };
                let settings_changed = mark.version != seen.version
                    && (mark.admitted_total, mark.sold_out) == (seen.admitted_total, seen.sold_out);
                seen = mark;
                if settings_changed {
                    match open_room(&self.ctx, self.event).await {
                        Ok(settings) => self.settings = settings,
                        Err(_) => return,
                    }
                }
                let next = match self.next(mark) {
                    Next::Send(view) if !settings_changed => view,
                    _ => match self.read_again().await {
                        Some(view) => view,
                        None => return,
                    },
                };
                if next.status != last.status {
                    break next;
                }
                pending = (next != last).then_some(next);
            };
            last = view;
        }
    }

    /// When the fan's place must be read again, whatever the marks say.
    fn read_again_at(&self) -> Instant {
        let in_a_day = Instant::now() + Duration::from_secs(24 * 60 * 60);
        let at = match (self.base.status, self.settings.opens_at) {
            (QueueStatus::Admitted, _) => self.base.admitted_until,
            // Spread over a second, so that the streams of a room do not all read at once.
            (_, Some(opens_at)) if self.read_before_opening => {
                Some(opens_at + chrono::Duration::milliseconds(spread_ms(&self.user)))
            }
            _ => None,
        };
        // Not sooner than a moment from now: a deadline just past (or a clock a little
        // behind the store's) must not make the stream read in a loop.
        at.map_or(in_a_day, |at| {
            let left = (at - self.ctx.clock.now()).to_std().unwrap_or_default();
            Instant::now() + left.max(Duration::from_millis(250))
        })
    }

    /// The fan's view under a new mark, if the mark alone tells it.
    fn next(&self, mark: RoomMark) -> Next {
        match self.base.status {
            QueueStatus::Waiting | QueueStatus::SoldOut => {
                let gone_ahead = mark
                    .admitted_total
                    .saturating_sub(self.base.mark.admitted_total);
                let position = self.base.position.saturating_sub(gone_ahead);
                if position == 0 {
                    return Next::ReadAgain;
                }
                let status = match mark.sold_out {
                    true => QueueStatus::SoldOut,
                    false => QueueStatus::Waiting,
                };
                Next::Send(self.view(&QueuePlace {
                    status,
                    position,
                    mark,
                    ..self.base
                }))
            }
            QueueStatus::Admitted | QueueStatus::Expired => Next::Send(self.view(&self.base)),
        }
    }

    /// Reads the fan's place; `None` ends the stream (not queued any more, or the room gone).
    async fn read_again(&mut self) -> Option<QueueView> {
        let now = self.ctx.clock.now();
        match self
            .ctx
            .waiting_room
            .place(self.event, &self.user, now)
            .await
        {
            Ok(Some(place)) => {
                self.base = place;
                self.read_before_opening = !self.settings.is_open(now);
                Some(self.view(&place))
            }
            Ok(None) => None,
            Err(err) => {
                tracing::warn!(%err, event = %self.event, "waiting room stream: reading a place failed");
                None
            }
        }
    }

    fn view(&self, place: &QueuePlace) -> QueueView {
        fan_view(&self.ctx, self.event, &self.user, place, &self.settings)
    }
}

/// A fan's own point in a second (FNV-1a of their id), to spread the streams' reads.
fn spread_ms(user: &UserId) -> i64 {
    let hash = user
        .as_str()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    (hash % 1000) as i64
}
