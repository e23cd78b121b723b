//! An enum event: one message type whose variants all carry the stream's fields.
use eventodb_kit::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[serde(tag = "kind")]
#[event(
    type = "AccountChanged",
    category = "account",
    stream = "account-{account_id}"
)]
enum AccountChanged {
    Opened { account_id: String, owner: String },
    Renamed { name: String, account_id: String },
    Closed { account_id: String },
}

/// An enum whose template has no placeholders may have any variants.
#[derive(Serialize, Deserialize, Event)]
#[event(category = "settings", stream = "settings-global")]
enum SettingChanged {
    Theme(String),
    Reset,
}

fn main() {
    assert_eq!(AccountChanged::TYPE, "AccountChanged");
    let opened = AccountChanged::Opened {
        account_id: "a1".into(),
        owner: "ann".into(),
    };
    let renamed = AccountChanged::Renamed {
        name: "x".into(),
        account_id: "a2".into(),
    };
    let closed = AccountChanged::Closed {
        account_id: "a3".into(),
    };
    assert_eq!(opened.stream_name(), "account-a1");
    assert_eq!(renamed.stream_name(), "account-a2");
    assert_eq!(closed.stream_name(), "account-a3");
    assert_eq!(SettingChanged::Reset.stream_name(), "settings-global");
    assert_eq!(
        SettingChanged::Theme("dark".into()).stream_name(),
        "settings-global"
    );
}
