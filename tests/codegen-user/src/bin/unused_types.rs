//! A binary that includes generated code and uses none of it: with warnings denied, it proves
//! that unused generated types (a shared type no event refers to, events the binary never
//! names) and their helper methods do not warn in a binary crate.
#![deny(warnings)]
// A lint of this workspace, not one of rustc's defaults: an application does not have it.
#![allow(unreachable_pub)]

mod basics {
    include!("../../../../eventodb-kit-codegen/tests/golden/basics.rs");
}

fn main() {}
