//! The generated events as an application uses them: construction, stream names, validation
//! with JSON pointers, the registry.

use eventodb_kit::Event;
use eventodb_kit::registry::{DecodeError, EventRegistry, missing_type};
use eventodb_kit_codegen_user::events::{self, AnyEvent, Events, categories};
use serde_json::json;

fn order() -> serde_json::Value {
    json!({
        "order_id": "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f",
        "customer_id": "9a7b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d",
        "lines": [
            { "sku": "ABC-0001", "quantity": 2, "unit_price": { "amount_minor": 1999, "currency": "EUR" } }
        ],
        "total": { "amount_minor": 3998, "currency": "EUR" },
        "payment": { "method": "card", "last4": "4242", "brand": "visa" },
        "placed_at": "2026-11-26T14:00:00Z"
    })
}

#[test]
fn stream_names_come_from_the_templates() {
    let joined = events::ClassJoinRequested {
        class_id: "class-9".into(),
        student_id: "student-3".into(),
        join_code: "JOIN42".into(),
        requested_at: "2026-11-26T08:00:00Z".parse().expect("time"),
    };
    assert_eq!(joined.stream_name(), "class_membership-class-9+student-3");
    assert_eq!(events::ClassJoinRequested::TYPE, "ClassJoinRequested");
    assert_eq!(events::ClassJoinRequested::CATEGORY, "class_membership");
    assert_eq!(
        events::ClassJoinRequested::STREAM_TEMPLATE,
        "class_membership-{class_id}+{student_id}"
    );
    let order = events::OrderPlaced::decode(&order()).expect("valid");
    assert_eq!(
        order.stream_name(),
        "order-c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"
    );
}

#[test]
fn decode_reports_every_violation_with_its_pointer() {
    let mut data = order();
    data["lines"][0]["sku"] = json!("abc");
    data["lines"][0]["quantity"] = json!(0);
    data["lines"][0]["discount_percent"] = json!(100);
    data["payment"] = json!({ "method": "invoice", "due_days": 3 });
    data["coupon_codes"] = json!(["SAVE10", "SAVE10", "x"]);
    data["attributes"] = json!({ "a/b": "y".repeat(101) });
    data["shipping_address"] =
        json!({ "street": "", "city": "Paris", "postal_code": "75002", "country": "fr" });
    let error = events::OrderPlaced::decode(&data).expect_err("invalid");
    let found: Vec<(String, String)> = error
        .violations()
        .iter()
        .map(|v| (v.pointer.clone(), v.message.clone()))
        .collect();
    let expected = [
        ("/attributes/a~1b", "must be at most 100 characters long"),
        ("/coupon_codes", "must not contain duplicate items"),
        (
            "/coupon_codes/2",
            "must match the pattern `^[A-Z0-9]{4,16}$`",
        ),
        ("/lines/0/discount_percent", "must be less than 100"),
        ("/lines/0/quantity", "must be at least 1"),
        (
            "/lines/0/sku",
            "must match the pattern `^[A-Z]{3}-[0-9]{4}$`",
        ),
        ("/payment/due_days", "must be at least 7"),
        (
            "/shipping_address/country",
            "must match the pattern `^[A-Z]{2}$`",
        ),
        ("/shipping_address/street", "must not be empty"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(p, m)| (p.to_string(), m.to_string()))
        .collect();
    assert_eq!(found, expected);
    assert!(
        error
            .to_string()
            .starts_with("invalid event: /attributes/a~1b: must be at most")
    );
}

#[test]
fn serde_errors_are_violations_too() {
    let mut data = order();
    data["payment"] = json!({ "method": "cash" });
    let error = events::OrderPlaced::decode(&data).expect_err("unknown tag");
    assert!(error.violations()[0].message.contains("cash"), "{error}");
    let mut data = order();
    data["surprise"] = json!(1);
    let error = events::OrderPlaced::decode(&data).expect_err("unknown field");
    assert!(
        error.violations()[0].message.contains("surprise"),
        "{error}"
    );
}

#[test]
fn validate_checks_events_built_in_code() {
    let mut event = events::UserEmailChanged::decode(&json!({
        "user_id": "9a7b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d",
        "old_email": "ada@example.com",
        "new_email": "ada@lovelace.example",
        "changed_at": "2026-11-26T13:00:00Z"
    }))
    .expect("valid");
    assert_eq!(event.validate(), Ok(()));
    event.new_email = "nope".into();
    let error = event.validate().expect_err("invalid email");
    assert_eq!(error.violations()[0].pointer, "/new_email");
    assert_eq!(error.violations()[0].message, "must be an email address");
}

#[test]
fn defaults_fill_in_absent_properties() {
    let user = events::UserCreated::decode(&json!({
        "user_id": "9a7b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d",
        "email": "ada@example.com",
        "created_at": "2026-11-26T12:00:00Z"
    }))
    .expect("valid");
    assert_eq!(user.plan, events::UserCreatedPlan::Free);
    assert!(!user.marketing_opt_in);
    assert_eq!(user.address, None);
    // A required nullable property must be present, and may be null.
    let missing = json!({ "user_id": "9a7b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d", "deleted_at": "2026-11-30T00:00:00Z" });
    assert!(events::UserDeleted::decode(&missing).is_err());
    // An optional, non-nullable property refuses null.
    let null_address = json!({
        "user_id": "9a7b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d", "email": "a@b.co",
        "created_at": "2026-11-26T12:00:00Z", "address": null
    });
    assert!(events::UserCreated::decode(&null_address).is_err());
}

#[test]
fn the_registry_knows_every_type_and_category() {
    assert_eq!(Events::TYPES.len(), 13);
    assert!(
        Events::TYPES.windows(2).all(|pair| pair[0] < pair[1]),
        "sorted"
    );
    assert_eq!(Events::category_of("OrderShipped"), Some("order"));
    assert_eq!(Events::category_of("Nope"), None);
    assert_eq!(
        Events::types_in("class_membership"),
        [
            "ClassJoinRequested",
            "ClassMembershipAccepted",
            "ClassMembershipRejected"
        ]
    );
    assert_eq!(
        categories::USER,
        ["UserCreated", "UserDeleted", "UserEmailChanged"]
    );
    assert_eq!(Events::types_in("nope"), [] as [&str; 0]);
    let categories: Vec<&str> = Events::CATEGORIES.iter().map(|c| c.category).collect();
    assert_eq!(
        categories,
        [
            "class_membership",
            "content_error",
            "order",
            "partnership",
            "partnership_application",
            "student_progress",
            "user"
        ]
    );
}

#[test]
fn the_registry_decodes_into_any_event() {
    let event = Events::decode("OrderPlaced", &order()).expect("decodes");
    assert!(matches!(event, AnyEvent::OrderPlaced(_)));
    assert_eq!(event.event_type(), "OrderPlaced");
    assert_eq!(event.category(), "order");
    assert_eq!(
        event.stream_name(),
        "order-c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"
    );
    assert_eq!(event.to_data().expect("json"), order());
    match Events::decode("Nope", &order()) {
        Err(DecodeError::UnknownType { event_type }) => assert_eq!(event_type, "Nope"),
        other => panic!("expected an unknown type, got {other:?}"),
    }
    match Events::decode("UserCreated", &order()) {
        Err(DecodeError::Invalid { event_type, source }) => {
            assert_eq!(event_type, "UserCreated");
            assert!(!source.violations().is_empty());
        }
        other => panic!("expected an invalid event, got {other:?}"),
    }
}

// A consumer-style compile-time check: every `user` event has a handler.
const HANDLED: &[&str] = &[
    <events::UserCreated as Event>::TYPE,
    <events::UserDeleted as Event>::TYPE,
    <events::UserEmailChanged as Event>::TYPE,
];
const _: () = if let Some(event_type) = missing_type(categories::USER, HANDLED) {
    panic!("{}", event_type)
};

#[test]
fn missing_type_names_the_unhandled_event() {
    assert_eq!(missing_type(categories::USER, HANDLED), None);
    assert_eq!(
        missing_type(categories::USER, &HANDLED[..2]),
        Some("UserEmailChanged")
    );
}

#[test]
fn nullable_references_decode_null() {
    use eventodb_kit_codegen_user::golden::basics::{NullableRefsSet, Place, Plan};
    // Each property is required; `null` is the value for a reference to a nullable type
    // (`Plan`, `Address`) and for the `oneOf`/`anyOf` spelling of a nullable reference.
    let nulls = json!({ "id": "n1", "plan": null, "home": null, "work": null, "holiday": null });
    let event = NullableRefsSet::decode(&nulls).expect("null is allowed");
    assert_eq!(
        (event.plan, event.home, event.work, event.holiday),
        (None, None, None, None)
    );
    let set = json!({
        "id": "n2", "plan": "pro", "home": { "zip": "1000" }, "work": { "x": 1.0, "y": 2.0 },
        "holiday": { "name": "Lisbon" }, "visits": [null, { "name": "Porto" }]
    });
    let event = NullableRefsSet::decode(&set).expect("values are allowed");
    assert_eq!(event.plan, Some(Plan::Pro));
    assert_eq!(
        event.visits,
        Some(vec![
            None,
            Some(Place {
                name: "Porto".into()
            })
        ])
    );
    // Still required: the key must be there.
    let missing = json!({ "id": "n3", "home": null, "work": null, "holiday": null });
    assert!(NullableRefsSet::decode(&missing).is_err());
    // And the referenced type's rules still apply through the `Option`.
    let empty =
        json!({ "id": "n4", "plan": null, "home": null, "work": null, "holiday": { "name": "" } });
    assert!(NullableRefsSet::decode(&empty).is_err());
}

/// `base` with the properties of `extra` added or replaced.
fn merged(base: &serde_json::Value, extra: &serde_json::Value) -> serde_json::Value {
    let mut data = base.clone();
    data.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    data
}

#[test]
fn integer_enums_read_and_write_their_numbers() {
    use eventodb_kit_codegen_user::golden::basics::{
        KitchenSinkRecorded, KitchenSinkRecordedOffset, KitchenSinkRecordedPriority,
    };
    let base = json!({
        "sink_id": 7, "name": "abc", "count": 3, "ratio": 0.5, "flag": true,
        "nullable_required": null
    });
    let with = |extra: serde_json::Value| merged(&base, &extra);
    // Absent: the default (2); the optional one stays absent on the way back.
    let event = KitchenSinkRecorded::decode(&base).expect("valid");
    assert_eq!(event.priority, KitchenSinkRecordedPriority::Value2);
    assert_eq!(event.offset, None);
    let written = serde_json::to_value(&event).unwrap();
    assert_eq!(written["priority"], json!(2));
    assert!(written.get("offset").is_none());
    // Named by `x-enum-varnames`, written as the number.
    let event =
        KitchenSinkRecorded::decode(&with(json!({ "priority": 3, "offset": -1 }))).expect("valid");
    assert_eq!(event.priority.value(), 3);
    assert_eq!(event.offset, Some(KitchenSinkRecordedOffset::Before));
    assert_eq!(serde_json::to_value(&event).unwrap()["offset"], json!(-1));
    // A number that is not listed, and a name instead of a number, are refused.
    let error = KitchenSinkRecorded::decode(&with(json!({ "priority": 4 }))).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("4 is not one of the values of `KitchenSinkRecordedPriority`: 1, 2, 3"),
        "{error}"
    );
    assert!(KitchenSinkRecorded::decode(&with(json!({ "priority": "Value3" }))).is_err());
}

#[test]
fn integer_and_number_formats_choose_the_rust_type() {
    use eventodb_kit_codegen_user::golden::basics::SizedNumbersRecorded;
    let base = json!({
        "reading_id": -7, "small": -128, "level": 255, "port": 8080, "total": 9_000_000_000_i64
    });
    let with = |extra: serde_json::Value| merged(&base, &extra);
    let event = SizedNumbersRecorded::decode(&base).expect("valid");
    let (reading_id, small, level, port): (i32, i8, u8, u16) =
        (event.reading_id, event.small, event.level, event.port);
    assert_eq!((reading_id, small, level, port), (-7, -128, 255, 8080));
    let total: i64 = event.total;
    assert_eq!(total, 9_000_000_000);
    // The defaults, each at an end of its type's range, and a float.
    let (count, offset, ratio): (u32, i16, f32) = (event.count, event.offset, event.ratio);
    assert_eq!((count, offset, ratio), (u32::MAX, i16::MIN, 0.25));
    assert_eq!(event.limit, None::<u64>);
    assert_eq!(event.stream_name(), "sized--7");
    // Written back as the numbers they were.
    let written = serde_json::to_value(&event).unwrap();
    assert_eq!(written["small"], json!(-128));
    assert_eq!(written["count"], json!(4_294_967_295_u32));

    // A value past the type's range is refused when read, naming the type.
    for (extra, expected) in [
        (json!({ "small": -129 }), "integer `-129`, expected i8"),
        (json!({ "reading_id": 2_147_483_648_i64 }), "expected i32"),
        (json!({ "port": -1 }), "integer `-1`, expected u16"),
        (json!({ "count": 4_294_967_296_i64 }), "expected u32"),
    ] {
        let error = SizedNumbersRecorded::decode(&with(extra.clone())).expect_err("out of range");
        assert!(error.to_string().contains(expected), "{extra}: {error}");
    }
    // The schema's own bounds still apply, compared at full width.
    let error =
        SizedNumbersRecorded::decode(&with(json!({ "small": 101, "port": 1023, "total": -1 })))
            .expect_err("past the bounds");
    let shown = error.to_string();
    for pointer in ["/small", "/port", "/total"] {
        assert!(shown.contains(pointer), "{pointer} missing from {shown}");
    }
    assert!(SizedNumbersRecorded::decode(&with(json!({ "port": 1025 }))).is_err());
    assert!(SizedNumbersRecorded::decode(&with(json!({ "level": 254 }))).is_err());
    assert!(SizedNumbersRecorded::decode(&with(json!({ "ratio": -2.0 }))).is_err());
    // An `f32`'s bounds are compared as `f32`: 0.1 read as an `f32` is above the `f64` 0.1.
    let event = SizedNumbersRecorded::decode(&with(json!({ "share": 0.1 }))).expect("at 0.1");
    assert_eq!(event.share, Some(0.1_f32));
    assert!(SizedNumbersRecorded::decode(&with(json!({ "share": 0.7 }))).is_ok());
    assert!(SizedNumbersRecorded::decode(&with(json!({ "share": 0.099 }))).is_err());
    assert!(SizedNumbersRecorded::decode(&with(json!({ "share": 0.701 }))).is_err());
    let event = SizedNumbersRecorded::decode(&with(json!({ "limit": 0, "ratio": -1.5 })))
        .expect("at the bounds");
    assert_eq!((event.limit, event.ratio), (Some(0), -1.5));
}
