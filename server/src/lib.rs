//! # pressluft-server
//!
//! The control plane. A request flows through these modules:
//!
//! ```text
//!  client ──gRPC / grpc-web──▶ api/        thin tonic handlers: validate (model::validate),
//!                               │           convert (api::convert), authenticate (bearer layer)
//!                               ▼
//!                              ops, auth    domain decisions: defaults, secrets, credentials
//!                               │
//!                               ▼
//!                              store/       every SQL statement; state changes in one
//!                               │           BEGIN IMMEDIATE transaction, row versions checked
//!                               ▼
//!                              SQLite       source of truth and job queue
//! ```
//!
//! `model` holds typed ids, state enums (matching the schema's CHECK constraints) and the pure
//! state-transition functions; `error` maps every failure to one gRPC code and a stable
//! reason; `secrets` seals secrets at rest; `ssh` talks to nodes directly (host-key scans and the
//! pooled connections `queries` runs node queries over); `app` wires it all and serves one listener; `config` reads flags, env
//! and TOML.

pub mod api;
pub mod app;
pub mod auth;
pub mod config;
pub mod dbcopy;
pub mod domains;
pub mod egress;
pub mod error;
pub mod executor;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod queries;
pub mod queue;
pub mod s3;
pub mod secrets;
pub mod ssh;
pub mod store;
pub mod tls;
pub mod ui;
pub mod uploads;

pub use app::{App, AppState};
pub use config::Config;
