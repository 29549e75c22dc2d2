//! Flags every command shares, and the context a command runs in.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use pressluft_client::{Clients, Config, ConnectArgs, Env, Overrides, Target};

use crate::error::CliError;

/// How results are printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people
    #[default]
    Table,
    /// Like table, with more columns where there are more worth seeing
    Wide,
    /// JSON for scripts: one document (one object per line for job events)
    Json,
    /// YAML, the same fields as JSON
    Yaml,
}

/// Global flags, flattened once into the top-level command.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Output format
    #[arg(short, long, global = true, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// Everything a command needs besides its own arguments.
#[derive(Debug)]
pub struct Ctx {
    /// How to print results.
    pub output: OutputFormat,
    /// Connection flags given on the command line.
    pub flags: Overrides,
    /// `PRESSLUFT_SERVER` / `PRESSLUFT_TOKEN`.
    pub env: Env,
    /// The config file, when a location is known.
    pub config_path: Option<PathBuf>,
    /// Its contents (empty when it does not exist).
    pub config: Config,
}

impl Ctx {
    /// Reads the environment and the config file.
    pub fn load(global: &GlobalArgs) -> Result<Ctx, CliError> {
        let config_path = Config::default_path();
        let config = match &config_path {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        Ok(Ctx {
            output: global.output,
            flags: global.connect.overrides(),
            env: Env::from_process(),
            config_path,
            config,
        })
    }

    /// The config file's path for messages.
    pub fn path_for_messages(&self) -> &Path {
        self.config_path
            .as_deref()
            .unwrap_or_else(|| Path::new("(no config file)"))
    }

    /// The server and token to use.
    pub fn target(&self) -> Result<Target, CliError> {
        Ok(Target::resolve(
            &self.flags,
            &self.env,
            &self.config,
            self.path_for_messages(),
        )?)
    }

    /// Connects to the resolved target.
    pub async fn clients(&self) -> Result<Clients, CliError> {
        Ok(pressluft_client::connect(&self.target()?).await?)
    }

    /// Writes the config file back.
    pub fn save_config(&self) -> Result<(), CliError> {
        let path = self
            .config_path
            .as_deref()
            .ok_or(pressluft_client::Error::NoConfigPath)?;
        Ok(self.config.save(path)?)
    }

    /// Whether tables show their wide columns (`-o wide`).
    pub fn wide(&self) -> bool {
        self.output == OutputFormat::Wide
    }

    /// Prints a result in the chosen format; each closure runs only when needed.
    pub fn emit(
        &self,
        table: impl FnOnce() -> String,
        json: impl FnOnce() -> serde_json::Value,
    ) -> Result<(), CliError> {
        let text = match self.output {
            OutputFormat::Table | OutputFormat::Wide => table(),
            OutputFormat::Json => {
                let mut text = serde_json::to_string_pretty(&json())
                    .map_err(|err| CliError::other(format!("cannot encode JSON: {err}")))?;
                text.push('\n');
                text
            }
            OutputFormat::Yaml => crate::output::yaml(&json()),
        };
        print_stdout(&text)
    }

    /// Like [`Ctx::emit`], but JSON is one compact line, so that the NDJSON events of a
    /// followed job (`--wait`) can come after it.
    pub fn emit_line(
        &self,
        table: impl FnOnce() -> String,
        json: impl FnOnce() -> serde_json::Value,
    ) -> Result<(), CliError> {
        match self.output {
            OutputFormat::Table | OutputFormat::Wide => print_stdout(&table()),
            OutputFormat::Json => print_stdout(&format!("{}\n", json())),
            OutputFormat::Yaml => print_stdout(&crate::output::yaml(&json())),
        }
    }
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
pub fn print_stdout(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::other(format!("cannot write output: {err}")))
        }
        _ => Ok(()),
    }
}
