//! Property tests of request decoding: whatever arrives, decoding never panics, and it accepts
//! exactly what the documented rules accept.

use std::time::Duration;

use auth::Jwt;
use domain::Role;
use domain::{EventId, IdempotencyKey, MAX_QTY_PER_REQUEST, ReservationId, UserId};
use proptest::prelude::*;
use serde_json::{Value, json};

fn qty_is_valid(qty: &Value) -> bool {
    qty.as_i64()
        .is_some_and(|qty| (1..=i64::from(MAX_QTY_PER_REQUEST)).contains(&qty))
}

fn category_is_valid(category: &Value) -> bool {
    category.as_str().is_some_and(|name| {
        let name = name.trim();
        !name.is_empty() && name.chars().count() <= 64 && !name.chars().any(char::is_control)
    })
}

fn event_id_is_valid(id: &Value) -> bool {
    id.as_str()
        .is_some_and(|id| uuid::Uuid::try_parse(id).is_ok())
}

/// A JSON value of any of the shapes a client might send in one field.
fn field() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        (-3i64..15).prop_map(Value::from),
        any::<f64>().prop_map(|x| json!(x)),
        any::<bool>().prop_map(Value::from),
        ".{0,80}".prop_map(Value::from),
        Just(Value::from(uuid::Uuid::now_v7().to_string())),
        Just(Value::Null),
        Just(json!([1, 2])),
    ]
}

proptest! {
    #[test]
    fn any_bytes_decode_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = serde_json::from_slice::<reserve::ReserveRequest>(&bytes);
        let _ = serde_json::from_slice::<confirm::ConfirmRequest>(&bytes);
        let _ = serde_json::from_slice::<create_event::CreateEvent>(&bytes);
        let _ = serde_json::from_slice::<add_ticket_category::AddTicketCategory>(&bytes);
    }

    #[test]
    fn a_reservation_body_is_accepted_exactly_when_every_field_is_valid(
        event_id in field(),
        category in field(),
        qty in field(),
        extra in proptest::option::of(field()),
    ) {
        let mut body = json!({"event_id": event_id, "category": category, "qty": qty});
        if let Some(extra) = &extra {
            body["unexpected"] = extra.clone();
        }
        let decoded = serde_json::from_value::<reserve::ReserveRequest>(body.clone());
        let valid = event_id_is_valid(&event_id)
            && category_is_valid(&category)
            && qty_is_valid(&qty)
            && extra.is_none();
        prop_assert_eq!(decoded.is_ok(), valid, "{}", body);
    }

    #[test]
    fn path_ids_and_keys_parse_exactly_when_well_formed(raw in ".{0,60}") {
        let is_uuid = uuid::Uuid::try_parse(&raw).is_ok();
        prop_assert_eq!(EventId::parse(&raw).is_ok(), is_uuid);
        prop_assert_eq!(ReservationId::parse(&raw).is_ok(), is_uuid);
        let key_ok = !raw.is_empty() && raw.len() <= 128 && raw.chars().all(|c| c.is_ascii_graphic());
        prop_assert_eq!(IdempotencyKey::parse(&raw).is_ok(), key_ok);
    }

    #[test]
    fn only_the_token_as_signed_verifies(position in any::<prop::sample::Index>(), replacement in "[A-Za-z0-9_.-]") {
        let jwt = Jwt::new(b"decoding-test-secret-of-32-bytes!!");
        let token = jwt
            .issue(Role::User, &UserId::parse("ann").unwrap(), Duration::from_secs(60))
            .unwrap();
        let at = position.index(token.len());
        let mut altered = token.clone();
        altered.replace_range(at..=at, &replacement);
        let verified = Jwt::new(b"decoding-test-secret-of-32-bytes!!").verify(&altered);
        // Changing a character to itself is the one alteration that may pass.
        prop_assert_eq!(verified.is_ok(), altered == token, "{} -> {}", token, altered);
    }

    #[test]
    fn arbitrary_tokens_never_verify(raw in ".{0,300}") {
        let jwt = Jwt::new(b"decoding-test-secret-of-32-bytes!!");
        prop_assert!(jwt.verify(&raw).is_err());
        prop_assert!(jwt.verify_header(Some(raw.as_bytes())).is_err());
    }
}
