//! The integration tests of `society-core`, in one test binary (STYLE.md
//! "Tests"): real processes appending to real files, property tests of the
//! JSONL reader, and rotation into segments.
//!
//! Tests that re-execute this binary as a child process name their entry
//! point by its full path in here (`module::test`), with `--exact`.

mod concurrent_append;
mod jsonl_props;
mod oversized_lines;
mod segments;
