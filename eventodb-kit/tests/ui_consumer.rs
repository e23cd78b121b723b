//! Compile tests of `#[consumer]`: each file of `tests/ui/consumer/pass` must build and run,
//! each file of `tests/ui/consumer/fail` must fail with the committed `.stderr`.
//!
//! Regenerate the `.stderr` files after a compiler or message change with
//! `TRYBUILD=overwrite cargo test -p eventodb-kit --test ui_consumer`, then read the diff: the
//! caret must be on the token that is wrong, and each file must show one error.

#[test]
fn consumer() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/consumer/pass/*.rs");
    cases.compile_fail("tests/ui/consumer/fail/*.rs");
}
