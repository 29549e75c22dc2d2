//! `backup create|list|show|restore|schedule`.

use clap::{Args, Subcommand, ValueEnum};
use pressluft_client::labels::{label, short_time};
use pressluft_proto::v1::{
    Backup, BackupSchedule, BackupScope, BackupStatus, BackupTrigger, CreateBackupRequest,
    GetBackupRequest, ListBackupsRequest, RestoreBackupRequest, UpdateBackupScheduleRequest,
};
use serde_json::json;

use crate::all_pages;
use crate::env::bytes;
use crate::error::CliError;
use crate::global::Ctx;
use crate::job::started;
use crate::output::{Details, Table, message, or_dash};
use crate::watch::WaitArgs;

const PAGE_SIZE: i32 = 500;

/// Subcommands of `pressluft backup`.
#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Back up an environment now
    ///
    /// Example: pressluft backup create ENV --scope full --wait
    Create {
        /// Environment id
        env: String,
        /// What to back up
        #[arg(long, value_enum, default_value_t = Scope::Full)]
        scope: Scope,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// List the backups of an environment (or of every environment of a site with --site)
    List {
        /// Environment id
        #[arg(required_unless_present = "site")]
        env: Option<String>,
        /// Site id instead of an environment
        #[arg(long, value_name = "ID", conflicts_with = "env")]
        site: Option<String>,
    },
    /// Show one backup
    Show {
        /// Backup id
        id: String,
    },
    /// Restore a backup (a pre-restore backup is taken first; the checksum is verified)
    ///
    /// Example: pressluft backup restore BACKUP --wait
    Restore {
        /// Backup id
        id: String,
        /// Environment to restore into [default: the backup's own]
        #[arg(long, value_name = "ENV")]
        to: Option<String>,
        /// Allow restoring production's backup into another environment
        #[arg(long)]
        allow_from_production: bool,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Set or turn off an environment's backup schedule
    ///
    /// Example: pressluft backup schedule ENV --every 24h --keep 14d --scope full
    Schedule(ScheduleArgs),
}

/// What a backup holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scope {
    /// The database only
    Db,
    /// Files (wp-content, uploads) only
    Files,
    /// Database and files
    Full,
}

impl Scope {
    fn proto(self) -> i32 {
        match self {
            Scope::Db => BackupScope::Db as i32,
            Scope::Files => BackupScope::Files as i32,
            Scope::Full => BackupScope::Full as i32,
        }
    }
}

/// Arguments of `pressluft backup schedule`.
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// Environment id
    pub env: String,
    /// How often, e.g. 6h, 1d
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, required_unless_present = "off")]
    pub every: Option<u64>,
    /// How long each backup is kept, e.g. 14d
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, required_unless_present = "off")]
    pub keep: Option<u64>,
    /// What to back up
    #[arg(long, value_enum, default_value_t = Scope::Full)]
    pub scope: Scope,
    /// Turn scheduled backups off
    #[arg(long, conflicts_with_all = ["every", "keep"])]
    pub off: bool,
}

/// Runs a `backup` subcommand.
pub async fn run(ctx: &Ctx, command: BackupCommand) -> Result<(), CliError> {
    let mut clients = ctx.clients().await?;
    match command {
        BackupCommand::Create { env, scope, wait } => {
            let response = clients
                .site
                .create_backup(CreateBackupRequest {
                    environment_id: env,
                    scope: scope.proto(),
                })
                .await?
                .into_inner();
            started(ctx, &mut clients, &wait, response.job).await
        }
        BackupCommand::List { env, site } => {
            let backups = all_pages!(
                |token| clients.site.list_backups(ListBackupsRequest {
                    environment_id: env.clone().unwrap_or_default(),
                    site_id: site.clone().unwrap_or_default(),
                    page_size: PAGE_SIZE,
                    page_token: token,
                }),
                backups
            );
            ctx.emit(
                || backups_table(&backups, ctx.wide()),
                || json!({ "backups": backups.iter().map(message).collect::<Vec<_>>() }),
            )
        }
        BackupCommand::Show { id } => {
            let backup = get(&mut clients, id).await?;
            ctx.emit(|| backup_details(&backup), || message(&backup))
        }
        BackupCommand::Restore {
            id,
            to,
            allow_from_production,
            wait,
        } => {
            let target = match to {
                Some(env) => env,
                None => get(&mut clients, id.clone()).await?.environment_id,
            };
            let job = clients
                .site
                .restore_backup(RestoreBackupRequest {
                    environment_id: target,
                    expected_version: 0,
                    backup_id: id,
                    allow_from_production,
                })
                .await?
                .into_inner()
                .job;
            started(ctx, &mut clients, &wait, job).await
        }
        BackupCommand::Schedule(args) => {
            let seconds = |s: Option<u64>| {
                s.map(|s| prost_types::Duration {
                    seconds: i64::try_from(s).unwrap_or(i64::MAX),
                    nanos: 0,
                })
            };
            let env = clients
                .site
                .update_backup_schedule(UpdateBackupScheduleRequest {
                    environment_id: args.env,
                    expected_version: 0,
                    schedule: Some(BackupSchedule {
                        enabled: !args.off,
                        interval: seconds(args.every),
                        scope: args.scope.proto(),
                        retention: seconds(args.keep),
                    }),
                })
                .await?
                .into_inner()
                .environment
                .unwrap_or_default();
            let schedule = env.backup_schedule.unwrap_or_default();
            ctx.emit(
                || schedule_text(&schedule),
                || {
                    json!({
                        "environment_id": env.id,
                        "enabled": schedule.enabled,
                        "interval_secs": schedule.interval.map(|d| d.seconds),
                        "retention_secs": schedule.retention.map(|d| d.seconds),
                        "scope": label::<BackupScope>(schedule.scope),
                    })
                },
            )
        }
    }
}

async fn get(clients: &mut pressluft_client::Clients, id: String) -> Result<Backup, CliError> {
    Ok(clients
        .site
        .get_backup(GetBackupRequest { backup_id: id })
        .await?
        .into_inner()
        .backup
        .unwrap_or_default())
}

/// "30m", "6h", "14d", "90s" or plain seconds, as seconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30m, 6h or 14d"))?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(format!("{text:?}: the unit must be s, m, h, d or w")),
    };
    value
        .checked_mul(factor)
        .filter(|s| *s > 0)
        .ok_or_else(|| format!("{text:?} is out of range"))
}

/// A duration the way `parse_duration` reads it ("1d", "6h", "90s").
pub fn duration_text(duration: Option<&prost_types::Duration>) -> String {
    let Some(secs) = duration.map(|d| d.seconds) else {
        return "-".to_owned();
    };
    for (unit, size) in [("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs >= size && secs % size == 0 {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

fn schedule_text(schedule: &BackupSchedule) -> String {
    if !schedule.enabled {
        return "Scheduled backups: off\n".to_owned();
    }
    format!(
        "Scheduled backups: {} every {}, kept {}\n",
        label::<BackupScope>(schedule.scope),
        duration_text(schedule.interval.as_ref()),
        duration_text(schedule.retention.as_ref())
    )
}

fn backups_table(backups: &[Backup], wide: bool) -> String {
    let mut table = if wide {
        Table::new([
            "ID",
            "SCOPE",
            "STATUS",
            "TRIGGER",
            "SIZE",
            "CREATED",
            "EXPIRES",
            "ENVIRONMENT",
            "SHA256",
        ])
    } else {
        Table::new([
            "ID", "SCOPE", "STATUS", "TRIGGER", "SIZE", "CREATED", "EXPIRES", "", "",
        ])
    };
    for b in backups {
        table.row([
            b.id.clone(),
            label::<BackupScope>(b.scope),
            label::<BackupStatus>(b.status),
            label::<BackupTrigger>(b.trigger),
            if b.size_bytes > 0 {
                bytes(b.size_bytes)
            } else {
                "-".to_owned()
            },
            short_time(b.create_time.as_ref()),
            short_time(b.expire_time.as_ref()),
            if wide {
                b.environment_id.clone()
            } else {
                String::new()
            },
            if wide {
                or_dash(&b.sha256)
            } else {
                String::new()
            },
        ]);
    }
    table.render()
}

fn backup_details(b: &Backup) -> String {
    Details::new()
        .field("ID", &b.id)
        .field("Environment", &b.environment_id)
        .field("Scope", label::<BackupScope>(b.scope))
        .field("Status", label::<BackupStatus>(b.status))
        .field("Trigger", label::<BackupTrigger>(b.trigger))
        .field("Size", bytes(b.size_bytes))
        .field("SHA-256", or_dash(&b.sha256))
        .field("Object", or_dash(&b.object_key))
        .field("Job", or_dash(&b.job_id))
        .field("Created", short_time(b.create_time.as_ref()))
        .field("Completed", short_time(b.complete_time.as_ref()))
        .field("Expires", short_time(b.expire_time.as_ref()))
        .render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_print_back() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("30m"), Ok(1_800));
        assert_eq!(parse_duration("6h"), Ok(21_600));
        assert_eq!(parse_duration("14d"), Ok(1_209_600));
        assert!(parse_duration("0h").is_err());
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("h").is_err());
        let d = |seconds| prost_types::Duration { seconds, nanos: 0 };
        assert_eq!(duration_text(Some(&d(86_400))), "1d");
        assert_eq!(duration_text(Some(&d(21_600))), "6h");
        assert_eq!(duration_text(Some(&d(90))), "90s");
        assert_eq!(duration_text(None), "-");
    }
}
