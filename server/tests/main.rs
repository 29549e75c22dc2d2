//! The server's one integration-test binary: API tests against a real server (hermetic), and
//! real-node tests by feature that run real `ansible-playbook` against the loopback node
//! (`#[ignore = "real node: ..."]`: `cargo test` lists them as ignored; scripts/test.sh runs
//! them with --include-ignored).

// Tests favour plain, linear assertions over pedantic style.
#![allow(
    clippy::unwrap_used,
    clippy::too_many_lines,
    clippy::similar_names,
    clippy::items_after_statements,
    clippy::format_push_string,
    clippy::match_same_arms
)]

mod admin;
mod api;
mod backups;
mod caching;
mod deploys;
mod domains;
mod engine;
mod fleet;
mod promotion;
mod provision;
mod queries;
mod recovery;
mod security;
mod sites;
mod updates;

/// The fixtures shared with the benchmarks (`crate::support::...` in every module).
use pressluft_server_testkit as support;
mod web;
