//! The integration tests of `society`, in one test binary (STYLE.md "Tests"):
//! each module drives the real binary as a user would, in a temp directory,
//! with real processes, real signals and real files. The helpers they share
//! live in `support`.

#![allow(clippy::unwrap_used)]

mod support;

mod bad_input;
mod broadcast_ack;
mod capability_routing;
mod cases_approvals;
mod cli_cases;
mod cli_describe;
mod cli_format;
mod cli_help;
mod cli_logs;
mod cli_output;
mod cli_races;
mod cli_start;
mod closed_stdout;
mod command_brain;
mod config_reload;
mod corruption;
mod crash_delivery;
mod dashboard;
mod dashboard_http;
mod deadletter;
mod debate;
mod decisions;
mod deploy;
mod examples;
mod faults;
mod federation;
mod film_crew;
mod fixtures;
mod fsck;
mod gates;
mod governance_cli;
mod group_commit;
mod hierarchy;
mod idle;
mod lifecycle;
mod limits;
mod llm_brain;
mod logging;
mod loops;
mod memory;
mod races;
mod readme_teams;
mod readme_tour;
mod retention;
mod reuse;
mod roundtrip;
mod routing_policy;
mod sandbox;
mod scale;
mod selftest;
mod shared_context;
mod symlinks;
