//! The server's one integration-test binary: API tests against a real server, and job-engine
//! tests that run real `ansible-playbook` against a real OpenSSH server on loopback.

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
mod caching;
mod domains;
mod engine;
mod queries;
mod recovery;
mod security;
mod support;
mod updates;
mod web;
