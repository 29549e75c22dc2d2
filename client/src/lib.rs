//! Connection helpers shared by the `pressluft` CLI and `pressluft-tui`.
//!
//! ```text
//! config   the contexts file (~/.config/pressluft/config.toml, like kubectl contexts)
//! target   which server and token to use: flags > PRESSLUFT_* env > current context
//! connect  one tonic channel with the bearer token, and every typed service client on it
//! error    one error type; a gRPC status becomes a one-line message and an ErrorKind
//! labels   short names for proto enums ("active", "node_provision") and timestamps
//! ```
//!
//! The clients depend only on `pressluft-proto` and this crate, never on server internals.

pub mod config;
pub mod connect;
pub mod error;
pub mod labels;
pub mod target;

pub use config::{Config, Context, Token};
pub use connect::{AuthChannel, BearerAuth, Clients, connect, connect_lazy, endpoint};
pub use error::{Error, ErrorKind};
pub use target::{ConnectArgs, DEFAULT_SERVER, Env, Overrides, Target};
