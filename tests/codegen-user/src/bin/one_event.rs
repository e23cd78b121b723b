//! A small application binary: it includes the generated events in a private module and uses
//! one of them. With warnings denied, it proves that the registry items it leaves unused
//! (`AnyEvent`, `Events`, `categories`) do not warn in a binary crate.
#![deny(warnings)]
// A lint of this workspace, not one of rustc's defaults: an application does not have it.
#![allow(unreachable_pub)]

mod events {
    eventodb_kit::include_events!();
}

fn main() {
    println!("{}", <events::UserDeleted as eventodb_kit::Event>::TYPE);
}
