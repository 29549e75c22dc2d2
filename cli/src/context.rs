//! `context list`, `context use`: the named servers of the config file.

use clap::Subcommand;
use pressluft_client::Config;
use serde_json::{Value, json};

use crate::error::CliError;
use crate::global::Ctx;
use crate::output::Table;

/// Subcommands of `pressluft context`.
#[derive(Debug, Subcommand)]
pub enum ContextCommand {
    /// List contexts; the current one is marked with *
    List,
    /// Make a context the current one
    Use {
        /// Context name
        name: String,
    },
}

/// Runs a `context` subcommand (no server involved).
pub fn run(ctx: &mut Ctx, command: ContextCommand) -> Result<(), CliError> {
    match command {
        ContextCommand::List => ctx.emit(
            || contexts_table(&ctx.config),
            || contexts_json(&ctx.config),
        ),
        ContextCommand::Use { name } => {
            let path = ctx.path_for_messages().to_owned();
            ctx.config.use_context(&name, &path)?;
            ctx.save_config()?;
            ctx.emit(
                || format!("Switched to context {name}.\n"),
                || json!({ "current_context": name }),
            )
        }
    }
}

fn contexts_table(config: &Config) -> String {
    let mut table = Table::new(["CURRENT", "NAME", "SERVER", "LOGGED IN"]);
    for (name, context) in &config.contexts {
        let current = config.current_context.as_deref() == Some(name.as_str());
        table.row([
            if current { "*" } else { "" }.to_owned(),
            name.clone(),
            context.server.clone(),
            crate::output::yes_no(context.token.is_some()).to_owned(),
        ]);
    }
    table.render()
}

fn contexts_json(config: &Config) -> Value {
    let contexts: Vec<Value> = config
        .contexts
        .iter()
        .map(|(name, context)| {
            json!({
                "name": name,
                "server": context.server,
                "logged_in": context.token.is_some(),
            })
        })
        .collect();
    json!({ "current_context": config.current_context, "contexts": contexts })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use pressluft_client::Token;

    use super::*;

    fn config() -> Config {
        let path = Path::new("x");
        let mut config = Config::default();
        config.set_server("local", "http://127.0.0.1:8443");
        config
            .set_token("local", Some(Token::new("t")), path)
            .expect("exists");
        config.set_server("prod", "https://cp.example.com");
        config.use_context("local", path).expect("exists");
        config
    }

    #[test]
    fn list_marks_the_current_context_and_never_shows_tokens() {
        let text = contexts_table(&config());
        assert_eq!(
            text,
            "CURRENT  NAME   SERVER                  LOGGED IN\n\
             *        local  http://127.0.0.1:8443   yes\n         \
             prod   https://cp.example.com  no\n"
        );
        let json = contexts_json(&config());
        assert_eq!(json["current_context"], "local");
        assert_eq!(json["contexts"][1]["logged_in"], false);
        assert!(!json.to_string().contains("\"t\""));
    }
}
