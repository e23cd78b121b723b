//! Runtime behaviour of `#[derive(Event)]`: the constants, `stream_name()`, and `decode()`
//! running serde and then the `validate` function.

use eventodb_kit::{Event, ValidationError, Violation};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, PartialEq, Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}", validate = "check_email")]
struct UserCreated {
    user_id: String,
    email: String,
}

fn check_email(event: &UserCreated) -> Result<(), ValidationError> {
    if event.email.contains('@') {
        Ok(())
    } else {
        Err(ValidationError::new(vec![Violation {
            pointer: "/email".into(),
            message: "not an email address".into(),
        }]))
    }
}

#[derive(Debug, Serialize, Deserialize, Event)]
#[event(
    type = "ClassMembership",
    category = "class_membership",
    stream = "class_membership-{class_id}+{student_id}"
)]
#[serde(tag = "status", rename_all = "snake_case")]
enum ClassMembership {
    Requested {
        class_id: u32,
        student_id: String,
    },
    Rejected {
        student_id: String,
        class_id: u32,
        reason: Option<String>,
    },
}

#[test]
fn constants() {
    assert_eq!(UserCreated::TYPE, "UserCreated");
    assert_eq!(UserCreated::CATEGORY, "user");
    assert_eq!(UserCreated::STREAM_TEMPLATE, "user-{user_id}");
    assert_eq!(ClassMembership::TYPE, "ClassMembership");
    assert_eq!(ClassMembership::CATEGORY, "class_membership");
    assert_eq!(
        ClassMembership::STREAM_TEMPLATE,
        "class_membership-{class_id}+{student_id}"
    );
}

#[test]
fn stream_names_come_from_the_fields() {
    let event = UserCreated {
        user_id: "7f3c-9a".into(),
        email: "a@example.com".into(),
    };
    assert_eq!(event.stream_name(), "user-7f3c-9a");

    let requested = ClassMembership::Requested {
        class_id: 12,
        student_id: "s-4".into(),
    };
    let rejected = ClassMembership::Rejected {
        student_id: "s-5".into(),
        class_id: 13,
        reason: None,
    };
    assert_eq!(requested.stream_name(), "class_membership-12+s-4");
    assert_eq!(rejected.stream_name(), "class_membership-13+s-5");
}

#[test]
fn decode_runs_serde_then_validate() {
    let good = json!({ "user_id": "1", "email": "a@example.com" });
    assert_eq!(
        UserCreated::decode(&good),
        Ok(UserCreated {
            user_id: "1".into(),
            email: "a@example.com".into()
        })
    );

    let invalid = json!({ "user_id": "1", "email": "nope" });
    let error = UserCreated::decode(&invalid).unwrap_err();
    assert_eq!(
        error.violations(),
        [Violation {
            pointer: "/email".into(),
            message: "not an email address".into()
        }]
    );

    let malformed = json!({ "user_id": 1 });
    let error = UserCreated::decode(&malformed).unwrap_err();
    assert_eq!(error.violations().len(), 1);
    assert_eq!(error.violations()[0].pointer, "");
}

#[test]
fn without_validate_everything_is_valid() {
    let data = json!({ "status": "rejected", "class_id": 3, "student_id": "s", "reason": null });
    let event = ClassMembership::decode(&data).unwrap();
    assert_eq!(event.validate(), Ok(()));
    assert_eq!(event.stream_name(), "class_membership-3+s");
}
