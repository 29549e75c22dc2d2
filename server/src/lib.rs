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
//! pooled connections `queries` runs node queries over); `state` is what handlers and tasks
//! share; `app` wires it all and serves one listener; `config` reads flags, env
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
pub mod reachability;
pub mod s3;
pub mod secrets;
pub mod ssh;
pub mod state;
pub mod store;
pub mod tls;
pub mod ui;
pub mod uploads;

pub use app::App;
pub use config::Config;
pub use state::AppState;

/// The layering, checked from the sources: no two top-level modules depend on each other,
/// directly or through others (`crate::<module>` paths outside tests, per top-level module).
#[cfg(test)]
mod layering_tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    /// Top-level module -> the top-level modules its non-test code names.
    fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (path, code) in sources() {
            let top = path
                .split('/')
                .next()
                .map(|name| name.trim_end_matches(".rs").to_owned())
                .expect("a name");
            if top == "lib" || top == "main" {
                continue;
            }
            let names = graph.entry(top.clone()).or_default();
            for (at, _) in code.match_indices("crate::") {
                let name: String = code[at + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name != top {
                    names.insert(name);
                }
            }
        }
        graph
    }

    /// Every source file's path under `src` and its non-test code.
    fn sources() -> Vec<(String, String)> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        let mut dirs = vec![src.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("src") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let relative = path.strip_prefix(&src).expect("under src");
                let text = std::fs::read_to_string(&path).expect("source");
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                files.push((relative.display().to_string(), code.to_owned()));
            }
        }
        files
    }

    #[test]
    fn only_the_wiring_holds_the_whole_state() {
        // The worker, scheduler, queries, operations and each RPC service take the narrow parts
        // they use; only the code that builds them from the opened state names it.
        let wiring = ["state.rs", "app.rs", "api/mod.rs", "lib.rs", "main.rs"];
        let holders: Vec<String> = sources()
            .into_iter()
            .filter(|(path, code)| code.contains("AppState") && !wiring.contains(&path.as_str()))
            .map(|(path, _)| path)
            .collect();
        assert!(
            holders.is_empty(),
            "these modules reach for AppState: {holders:?}"
        );
        assert!(sources().len() > 40, "the source walk found the sources");
    }

    #[test]
    fn top_level_modules_form_no_cycle() {
        let graph = dependencies();
        assert!(
            graph.contains_key("queue") && graph.contains_key("state"),
            "{graph:?}"
        );
        // Every module reachable from each module; a module reaching itself is in a cycle.
        for start in graph.keys() {
            let mut seen = BTreeSet::new();
            let mut next: Vec<&String> = graph[start].iter().collect();
            while let Some(module) = next.pop() {
                assert!(
                    module != start,
                    "{start} depends on itself through {seen:?}: the layering has a cycle"
                );
                if seen.insert(module.clone()) {
                    next.extend(graph.get(module).into_iter().flatten());
                }
            }
        }
    }
}
