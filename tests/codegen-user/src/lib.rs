//! An application crate's view of eventodb-kit-codegen: `build.rs` turns the workspace's
//! `schemas/` into events, included here; the golden files of the codegen tests are compiled
//! too, all with warnings denied.
#![deny(warnings)]

/// The events generated from `schemas/` by `build.rs`.
pub mod events {
    eventodb_kit::include_events!();
}

/// The codegen golden files, compiled to prove they build without warnings.
pub mod golden;
