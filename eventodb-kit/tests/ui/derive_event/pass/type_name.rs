//! `type` defaults to the type's name (raw identifiers without `r#`) and can be overridden;
//! generic events work.
use eventodb_kit::Event;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(type = "user.created.v2", category = "user", stream = "user-{id}")]
struct UserCreatedV2 {
    id: u8,
}

#[allow(non_camel_case_types)]
#[derive(Serialize, Deserialize, Event)]
#[event(category = "misc", stream = "misc-{id}")]
struct r#match {
    id: u8,
}

#[derive(Serialize, Deserialize, Event)]
#[serde(bound = "")]
#[event(category = "box", stream = "box-{id}")]
struct Boxed<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    id: u8,
    value: T,
}

fn main() {
    assert_eq!(UserCreatedV2::TYPE, "user.created.v2");
    assert_eq!(r#match::TYPE, "match");
    assert_eq!(<Boxed<bool>>::TYPE, "Boxed");
    assert_eq!(Boxed { id: 9, value: true }.stream_name(), "box-9");
}
