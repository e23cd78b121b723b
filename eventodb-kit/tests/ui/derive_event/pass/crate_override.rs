//! `crate = "..."` for a renamed or re-exported eventodb-kit.
mod reexported {
    pub use eventodb_kit as kit;
}

extern crate eventodb_kit as renamed;

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, renamed::Event)]
#[event(crate = "renamed", category = "order", stream = "order-{order_id}")]
struct OrderPlaced {
    order_id: u32,
}

#[derive(Serialize, Deserialize, reexported::kit::Event)]
#[event(
    crate = "crate::reexported::kit",
    category = "order",
    stream = "order-{order_id}"
)]
struct OrderShipped {
    order_id: u32,
}

fn main() {
    use renamed::Event as _;
    assert_eq!(OrderPlaced { order_id: 1 }.stream_name(), "order-1");
    assert_eq!(OrderShipped { order_id: 2 }.stream_name(), "order-2");
}
