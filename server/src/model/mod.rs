//! Domain types shared by the store, the queue and the API: typed ids, state enums whose
//! strings match the migrations' CHECK constraints, and the pure state-transition functions.

pub mod drift;
pub mod guard;
mod ids;
pub mod job;
pub mod placement;
pub mod report;
mod status;
pub mod validate;

pub use ids::*;
pub use status::*;

/// Current time as unix milliseconds, the representation every table uses.
pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}
