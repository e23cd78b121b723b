//! A struct event: the type defaults to the struct's name.
use eventodb_kit::Event;
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct UserCreated {
    user_id: u64,
    email: String,
}

fn main() {
    assert_eq!(UserCreated::TYPE, "UserCreated");
    assert_eq!(UserCreated::CATEGORY, "user");
    assert_eq!(UserCreated::STREAM_TEMPLATE, "user-{user_id}");
    let event = UserCreated {
        user_id: 42,
        email: "a@example.com".into(),
    };
    assert_eq!(event.stream_name(), "user-42");
    assert_eq!(event.validate(), Ok(()));
    let data = serde_json::json!({ "user_id": 7, "email": "b@example.com" });
    assert_eq!(
        UserCreated::decode(&data).unwrap(),
        UserCreated {
            user_id: 7,
            email: "b@example.com".into()
        }
    );
}
