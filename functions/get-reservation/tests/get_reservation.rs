use domain::ReservationId;
use domain::{Caller, Role};
use get_reservation::{GetReservationError, get_reservation};
use testkit::{TestStack, user};

fn caller(name: &str, role: Role) -> Caller {
    Caller {
        user: user(name),
        role,
    }
}

#[tokio::test]
async fn the_owner_and_admins_see_it_others_do_not() {
    let stack = TestStack::new(60);
    let (event_id, floor) = stack.category(10, None).await;
    let held = stack.hold(event_id, &floor, "ann", 1).await;
    let ctx = &stack.embedded.context;

    let own = get_reservation(ctx, &caller("ann", Role::User), held.id)
        .await
        .unwrap();
    let admin = get_reservation(ctx, &caller("ops", Role::Admin), held.id)
        .await
        .unwrap();
    let stranger = get_reservation(ctx, &caller("bob", Role::User), held.id).await;
    let unknown = get_reservation(ctx, &caller("ann", Role::User), ReservationId::generate()).await;

    assert_eq!(own, held);
    assert_eq!(admin, held);
    assert!(matches!(stranger, Err(GetReservationError::NotFound)));
    assert!(matches!(unknown, Err(GetReservationError::NotFound)));
}
