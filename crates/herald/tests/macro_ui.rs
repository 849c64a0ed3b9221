//! Compiler-message tests for `#[webhook]`: good declarations compile, bad ones fail with a
//! message that says what to fix. Regenerate expectations with `TRYBUILD=overwrite`.

#[test]
fn webhook_attribute() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
