//! The orchestrator's governance commands against hand-written files:
//! `policy show|set`, `review` (list and verdict) and `metrics`, whose
//! figures are computed by hand for a small fixture (`fixture.rs`).

mod fixture;
mod metrics;
mod policy;
mod review;
