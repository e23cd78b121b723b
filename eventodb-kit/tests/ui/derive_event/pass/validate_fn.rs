//! `validate = "path"`: `Event::validate` and `Event::decode` run the function.
use eventodb_kit::{Event, ValidationError, Violation};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}", validate = "check_email")]
struct EmailChanged {
    user_id: u64,
    email: String,
}

fn check_email(event: &EmailChanged) -> Result<(), ValidationError> {
    if event.email.contains('@') {
        Ok(())
    } else {
        Err(ValidationError::new(vec![Violation {
            pointer: "/email".into(),
            message: "not an email address".into(),
        }]))
    }
}

/// A method works too.
#[derive(Debug, Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}", validate = "Self::check")]
struct UserRenamed {
    user_id: u64,
    name: String,
}

impl UserRenamed {
    fn check(&self) -> Result<(), ValidationError> {
        if self.name.is_empty() {
            Err(ValidationError::new(vec![Violation {
                pointer: "/name".into(),
                message: "empty".into(),
            }]))
        } else {
            Ok(())
        }
    }
}

fn main() {
    let good = serde_json::json!({ "user_id": 1, "email": "a@example.com" });
    assert_eq!(EmailChanged::decode(&good).unwrap().email, "a@example.com");

    let bad = serde_json::json!({ "user_id": 1, "email": "nope" });
    let error = EmailChanged::decode(&bad).unwrap_err();
    assert_eq!(error.violations()[0].pointer, "/email");

    let event = UserRenamed {
        user_id: 3,
        name: String::new(),
    };
    assert_eq!(
        event.validate().unwrap_err().violations()[0].pointer,
        "/name"
    );
    let renamed = serde_json::json!({ "user_id": 3, "name": "bo" });
    assert_eq!(UserRenamed::decode(&renamed).unwrap().name, "bo");
}
