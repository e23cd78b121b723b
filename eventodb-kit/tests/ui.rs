//! Compile tests of the macros: `tests/ui/<macro>/pass` must build and run, each file of
//! `tests/ui/<macro>/fail` must fail with the committed `.stderr`.
//!
//! Regenerate the `.stderr` files after a compiler or message change with
//! `TRYBUILD=overwrite cargo test -p eventodb-kit --test ui`, then read the diff: the caret
//! must be on the token that is wrong.

#[test]
fn derive_event() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/derive_event/pass/*.rs");
    cases.compile_fail("tests/ui/derive_event/fail/*.rs");
}
