//! A compound stream id: `class_membership-{class_id}+{student_id}`.
use eventodb_kit::Event;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Serialize, Deserialize, Event)]
#[event(
    category = "class_membership",
    stream = "class_membership-{class_id}+{student_id}"
)]
struct ClassMembershipRequested {
    student_id: Uuid,
    class_id: String,
    r#type: String,
}

/// Raw identifiers, repeated placeholders and placeholders in any order.
#[derive(Serialize, Deserialize, Event)]
#[event(category = "x:command", stream = "x:command-{type}+{r#type}+{n}")]
struct Raw {
    r#type: char,
    n: i32,
}

fn main() {
    let student = Uuid::nil();
    let event = ClassMembershipRequested {
        student_id: student,
        class_id: "c-7".into(),
        r#type: "t".into(),
    };
    assert_eq!(
        event.stream_name(),
        "class_membership-c-7+00000000-0000-0000-0000-000000000000"
    );
    assert_eq!(Raw { r#type: 'q', n: -3 }.stream_name(), "x:command-q+q+-3");
    assert_eq!(Raw::CATEGORY, "x:command");
}
