//! How long tests wait, from one setting.
//!
//! Every deadline in the test suites is one of the [`limit`]s (or a [`scaled`] duration),
//! multiplied by `PRESSLUFT_TEST_PATIENCE` (default 1; set 3 on a slow or shared machine).
//! Deadlines are generous, because a wait that runs out on a busy machine fails CI for
//! everyone; polling is quick, so a fast machine stays fast: a passing test never sleeps
//! to its deadline.

pub mod cli;
pub mod ports;
pub mod uids;

use std::future::Future;
use std::time::{Duration, Instant};

/// The environment variable that scales every deadline.
pub const PATIENCE_VAR: &str = "PRESSLUFT_TEST_PATIENCE";

/// How often waits look again.
pub const POLL: Duration = Duration::from_millis(100);

/// The unscaled deadlines, one per kind of wait.
pub mod limit {
    use std::time::Duration;

    /// Provisioning a node or creating a site: installs packages, downloads, restarts.
    pub const PROVISION: Duration = Duration::from_mins(20);
    /// Any other job from queued to its end.
    pub const JOB: Duration = Duration::from_mins(10);
    /// A process or service starting to answer (a server, an sshd, a listener).
    pub const START: Duration = Duration::from_mins(2);
    /// One step of a running thing becoming visible (a log line, a screen, a stream message).
    pub const STEP: Duration = Duration::from_mins(5);
}

/// The patience factor: `PRESSLUFT_TEST_PATIENCE` as a positive number, or 1.
///
/// # Panics
/// When the variable is set but is not a positive number: a typo must not shorten waits.
pub fn scale() -> f64 {
    match std::env::var(PATIENCE_VAR) {
        Err(_) => 1.0,
        Ok(text) => match text.trim().parse::<f64>() {
            Ok(value) if value.is_finite() && value > 0.0 => value,
            _ => panic!("{PATIENCE_VAR}={text:?} is not a positive number"),
        },
    }
}

/// `base` multiplied by the patience factor.
pub fn scaled(base: Duration) -> Duration {
    base.mul_f64(scale())
}

/// Polls `check` every [`POLL`] until it returns `Some`, for at most `scaled(limit)`.
///
/// # Panics
/// With `what` and the waited time when the deadline passes.
pub async fn until<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let limit = scaled(limit);
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "waited {limit:?} for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// [`until`] for synchronous checks (threads, child processes).
///
/// # Panics
/// With `what` and the waited time when the deadline passes.
pub fn until_sync<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let limit = scaled(limit);
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "waited {limit:?} for {what}");
        std::thread::sleep(POLL);
    }
}

/// Runs `future` for at most `scaled(limit)`.
///
/// # Panics
/// With `what` when the deadline passes.
pub async fn within<T>(what: &str, limit: Duration, future: impl Future<Output = T>) -> T {
    let limit = scaled(limit);
    match tokio::time::timeout(limit, future).await {
        Ok(value) => value,
        Err(elapsed) => panic!("waited {limit:?} for {what} ({elapsed})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_that_holds_returns_at_once() {
        let started = Instant::now();
        let value = until_sync("a value", limit::STEP, || Some(7));
        assert_eq!(value, 7);
        assert!(started.elapsed() < limit::STEP);
    }

    #[test]
    #[should_panic(expected = "waited")]
    fn a_check_that_never_holds_fails_at_its_deadline() {
        until_sync::<()>("nothing", Duration::from_millis(300), || None);
    }
}
