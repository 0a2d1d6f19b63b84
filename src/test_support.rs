//! Helpers that the unit tests of several modules share.

/// Fails, listing them all, when any case of a corpus failed: `failures` holds one description
/// per failed case, `what` names the corpus.
#[track_caller]
pub(crate) fn assert_no_failures(failures: &[String], what: &str) {
    assert!(
        failures.is_empty(),
        "{} {what} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
