//! Compile-time checks of `#[cache]`: what compiles, and the error each
//! mistake gets (snapshots in tests/ui/fail/*.stderr).

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
