//! What the admit timer tells Prometheus about a room: its queue, whether it is open yet, and
//! its admissions; nothing once the room is turned off.

use admit_fans::admit_fans;
use chrono::Duration;
use domain::waiting_room::{AdmissionTtl, AdmitRate, WaitingRoomSettings};
use telemetry::{WAITING_ROOM_ADMITTED, WAITING_ROOM_OPEN, WAITING_ROOM_QUEUED};
use testkit::{TestStack, user};

/// (queued, open, admitted) of the event's series, `None` where this process has none.
fn reported(event: &str) -> (Option<i64>, Option<i64>, Option<u64>) {
    let label = [event];
    (
        WAITING_ROOM_QUEUED
            .get_metric_with_label_values(&label)
            .ok()
            .map(|gauge| gauge.get()),
        WAITING_ROOM_OPEN
            .get_metric_with_label_values(&label)
            .ok()
            .map(|gauge| gauge.get()),
        WAITING_ROOM_ADMITTED
            .get_metric_with_label_values(&label)
            .ok()
            .map(|counter| counter.get()),
    )
}

#[tokio::test]
async fn a_room_is_reported_closed_then_admitting_and_forgotten_once_off() {
    let stack = TestStack::new(600);
    let ctx = &stack.embedded.context;
    let (event, _) = stack.category(10, None).await;
    let mut settings = WaitingRoomSettings {
        enabled: true,
        admit_per_second: AdmitRate::new(2).unwrap(),
        admission_ttl: AdmissionTtl::new(60).unwrap(),
        opens_at: Some(stack.now() + Duration::seconds(30)),
    };
    ctx.waiting_room.configure(event, &settings).await.unwrap();
    for fan in ["ann", "bob", "cat", "dan"] {
        ctx.waiting_room
            .join(event, &user(fan), 0.5, stack.now())
            .await
            .unwrap();
    }
    let label = event.to_string();

    // Before opens_at: everyone waits, the room says it is not open, nobody is admitted.
    admit_fans(ctx).await.unwrap();
    assert_eq!(reported(&label), (Some(4), Some(0), Some(0)));

    stack.clock.advance(Duration::seconds(31));
    admit_fans(ctx).await.unwrap();
    assert_eq!(reported(&label), (Some(2), Some(1), Some(2)));

    settings.enabled = false;
    ctx.waiting_room.configure(event, &settings).await.unwrap();
    admit_fans(ctx).await.unwrap();
    assert!(
        !telemetry::render().contains(&label),
        "{label} still reported"
    );
}
