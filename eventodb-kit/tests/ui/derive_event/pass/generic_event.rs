//! A generic event: the impl once had no bounds on the type parameters, so rustc reported
//! the supertraits (`Serialize`, `DeserializeOwned`, `Send`, ...) and the placeholder's
//! `Display` as unsatisfied. The impl requires them of the type it is for.
use eventodb_kit::Event;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{user_id}")]
struct Envelope<T> {
    user_id: u64,
    payload: T,
}

/// A parameter that fills a placeholder must be `Display`.
#[derive(Serialize, Deserialize, Event)]
#[event(category = "user", stream = "user-{id}")]
struct Keyed<K, V>
where
    V: Clone,
{
    id: K,
    value: V,
}

fn is_event<E: Event>(_: &E) {}

fn main() {
    let envelope = Envelope {
        user_id: 1,
        payload: 5u8,
    };
    is_event(&envelope);
    assert_eq!(envelope.stream_name(), "user-1");
    let keyed = Keyed {
        id: "a".to_owned(),
        value: vec![1u8],
    };
    is_event(&keyed);
    assert_eq!(keyed.stream_name(), "user-a");
}
