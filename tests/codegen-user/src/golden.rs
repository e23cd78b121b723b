//! Each golden file of `eventodb-kit-codegen/tests/golden/` as a module.

/// `golden/workspace.rs`: the workspace schemas.
pub mod workspace {
    include!("../../../eventodb-kit-codegen/tests/golden/workspace.rs");
}

/// `golden/basics.rs`.
pub mod basics {
    include!("../../../eventodb-kit-codegen/tests/golden/basics.rs");
}

/// `golden/names.rs`: names that are not identifiers, keywords, types named like the prelude's.
pub mod names {
    include!("../../../eventodb-kit-codegen/tests/golden/names.rs");
}

/// `golden/order.rs`: output that must not depend on serde_json's `preserve_order`.
pub mod order {
    include!("../../../eventodb-kit-codegen/tests/golden/order.rs");
}
