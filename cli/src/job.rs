//! `job list|show|cancel|watch|logs`.
//!
//! `watch` and `logs --follow` exit with 7 when the job failed or was cancelled, and with 130
//! when Ctrl-C stopped them (the job keeps running); see `watch`.

use clap::{Args, Subcommand, ValueEnum};
use pressluft_client::labels::{label, short_time};
use pressluft_proto::v1::{
    CancelJobRequest, GetJobRequest, Job, JobProgress, JobStatus, JobType, ListJobsRequest,
};
use serde_json::json;

use crate::error::CliError;
use crate::global::Ctx;
use crate::output::{Details, Table, message, opt_str, or_dash};
use crate::watch::{self, View};

/// Subcommands of `pressluft job`.
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// List jobs, newest first
    List(ListArgs),
    /// Show one job
    Show {
        /// Job id
        id: String,
    },
    /// Cancel a queued job, or terminate a running one
    Cancel {
        /// Job id
        id: String,
    },
    /// Follow a job until it ends (exit 7 if it fails or is cancelled)
    ///
    /// Shows a progress bar on a terminal, else one line per state change and step start;
    /// -o json prints one JSON object per event instead (NDJSON). Exits 0 when the job
    /// succeeded, 7 when it failed or was cancelled. Ctrl-C stops watching, not the job
    /// (exit 130).
    Watch {
        /// Job id
        id: String,
        /// Also print the playbook's output lines
        #[arg(long)]
        logs: bool,
    },
    /// Print a job's recorded output, under a header per step
    ///
    /// -o json prints every recorded event instead, one JSON object per line. With --follow
    /// it exits like job watch: 0 when the job succeeded, 7 when it failed or was cancelled,
    /// 130 after Ctrl-C.
    Logs {
        /// Job id
        id: String,
        /// Keep printing until the job ends
        #[arg(short, long)]
        follow: bool,
    },
}

/// Arguments of `pressluft job list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only jobs in these statuses (comma-separated or repeated)
    #[arg(long, value_enum, value_delimiter = ',')]
    pub status: Vec<StatusArg>,
    /// Only jobs of these types, e.g. site_create,env_deploy (comma-separated or repeated)
    #[arg(long = "type", value_name = "TYPE", value_delimiter = ',', value_parser = parse_job_type)]
    pub types: Vec<i32>,
    /// Only jobs of this site
    #[arg(long, value_name = "ID")]
    pub site: Option<String>,
    /// Only jobs of this environment
    #[arg(long = "env", value_name = "ID")]
    pub environment: Option<String>,
    /// Only jobs on this node
    #[arg(long, value_name = "ID")]
    pub node: Option<String>,
    /// Maximum number of jobs to show (1-500)
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i32).range(1..=500))]
    pub limit: i32,
}

/// A job type by its playbook name ("site_create").
fn parse_job_type(name: &str) -> Result<i32, String> {
    pressluft_proto::v1::JobType::from_str_name(&format!("JOB_TYPE_{}", name.to_ascii_uppercase()))
        .filter(|t| *t != pressluft_proto::v1::JobType::Unspecified)
        .map(|t| t as i32)
        .ok_or_else(|| {
            format!("{name:?} is not a job type (e.g. site_create, env_deploy, backup_create)")
        })
}

/// A job status filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusArg {
    /// Waiting for a worker
    Queued,
    /// Its playbook is running
    Running,
    /// Finished successfully
    Succeeded,
    /// Finished unsuccessfully
    Failed,
    /// Cancelled by a user
    Cancelled,
}

impl From<StatusArg> for JobStatus {
    fn from(status: StatusArg) -> Self {
        match status {
            StatusArg::Queued => JobStatus::Queued,
            StatusArg::Running => JobStatus::Running,
            StatusArg::Succeeded => JobStatus::Succeeded,
            StatusArg::Failed => JobStatus::Failed,
            StatusArg::Cancelled => JobStatus::Cancelled,
        }
    }
}

/// Runs a `job` subcommand.
pub async fn run(ctx: &Ctx, command: JobCommand) -> Result<(), CliError> {
    let mut clients = ctx.clients().await?;
    match command {
        JobCommand::List(args) => {
            let page = clients
                .job
                .list_jobs(ListJobsRequest {
                    page_size: args.limit,
                    page_token: String::new(),
                    statuses: args
                        .status
                        .iter()
                        .map(|status| JobStatus::from(*status) as i32)
                        .collect(),
                    types: args.types,
                    site_id: args.site.unwrap_or_default(),
                    environment_id: args.environment.unwrap_or_default(),
                    node_id: args.node.unwrap_or_default(),
                })
                .await?
                .into_inner();
            ctx.emit(
                || jobs_table(&page.jobs),
                || {
                    json!({
                        "jobs": page.jobs.iter().map(message).collect::<Vec<_>>(),
                        "next_page_token": opt_str(&page.next_page_token),
                    })
                },
            )
        }
        JobCommand::Show { id } => {
            let job = clients
                .job
                .get_job(GetJobRequest { job_id: id })
                .await?
                .into_inner()
                .job
                .unwrap_or_default();
            ctx.emit(|| job_details(&job), || message(&job))
        }
        JobCommand::Cancel { id } => {
            let job = clients
                .job
                .cancel_job(CancelJobRequest {
                    job_id: id,
                    expected_version: 0,
                })
                .await?
                .into_inner()
                .job
                .unwrap_or_default();
            ctx.emit(|| job_details(&job), || message(&job))
        }
        JobCommand::Watch { id, logs } => {
            watch::follow(&mut clients, &id, View::for_watch(ctx), logs).await
        }
        JobCommand::Logs { id, follow: true } => {
            watch::follow(&mut clients, &id, View::for_logs(ctx), true).await
        }
        JobCommand::Logs { id, follow: false } => {
            watch::history(&mut clients, &id, View::for_logs(ctx)).await
        }
    }
}

/// "3/12" (or "3" when the total is unknown); "-" before the first step.
fn progress(progress: Option<&JobProgress>) -> String {
    match progress {
        Some(p) if p.current_step > 0 && p.total_steps > 0 => {
            format!("{}/{}", p.current_step, p.total_steps)
        }
        Some(p) if p.current_step > 0 => p.current_step.to_string(),
        _ => "-".to_owned(),
    }
}

fn jobs_table(jobs: &[Job]) -> String {
    let mut table = Table::new(["ID", "TYPE", "STATUS", "STEP", "CREATED", "SUMMARY"]);
    for job in jobs {
        table.row([
            job.id.clone(),
            label::<JobType>(job.r#type),
            label::<JobStatus>(job.status),
            progress(job.progress.as_ref()),
            short_time(job.create_time.as_ref()),
            or_dash(&job.summary),
        ]);
    }
    table.render()
}

/// Prints the job a command started (its id at once) and, with --wait, follows it to its end.
pub async fn started(
    ctx: &Ctx,
    clients: &mut pressluft_client::Clients,
    wait: &crate::watch::WaitArgs,
    job: Option<Job>,
) -> Result<(), CliError> {
    let job = job.unwrap_or_default();
    wait.finish(
        ctx,
        clients,
        &job.id,
        || job_details(&job),
        || message(&job),
    )
    .await
}

/// A job as "Key: value" lines.
pub fn job_details(job: &Job) -> String {
    let step = match &job.progress {
        Some(p) if p.current_step > 0 && !p.step_name.is_empty() => {
            format!("{} {}", progress(Some(p)), p.step_name)
        }
        other => progress(other.as_ref()),
    };
    let error = match (job.error_code.as_str(), job.error_message.as_str()) {
        ("", "") => String::new(),
        (code, "") => code.to_owned(),
        ("", message) => message.to_owned(),
        (code, message) => format!("{code}: {message}"),
    };
    let status = if job.cancel_requested && job.status == JobStatus::Running as i32 {
        format!("{} (cancel requested)", label::<JobStatus>(job.status))
    } else {
        label::<JobStatus>(job.status)
    };
    Details::new()
        .field("ID", &job.id)
        .field("Type", label::<JobType>(job.r#type))
        .field("Status", status)
        .field_if("Summary", &job.summary)
        .field_if("Error", error)
        .field_if("Site", &job.site_id)
        .field_if("Environment", &job.environment_id)
        .field_if("Node", &job.node_id)
        .field("Attempt", format!("{}/{}", job.attempt, job.max_attempts))
        .field("Step", step)
        .field("Requested by", or_dash(&job.requested_by))
        .field("Created", short_time(job.create_time.as_ref()))
        .field("Run after", short_time(job.run_after.as_ref()))
        .field("Started", short_time(job.start_time.as_ref()))
        .field("Finished", short_time(job.finish_time.as_ref()))
        .render()
}

#[cfg(test)]
mod tests {
    use pressluft_proto::v1::JobType;
    use prost_types::Timestamp;

    use super::*;

    fn running() -> Job {
        Job {
            id: "j1".into(),
            r#type: JobType::NodeProvision as i32,
            status: JobStatus::Running as i32,
            node_id: "n1".into(),
            summary: "provision web-1".into(),
            attempt: 1,
            max_attempts: 3,
            create_time: Some(Timestamp {
                seconds: 1_764_091_743,
                nanos: 0,
            }),
            start_time: Some(Timestamp {
                seconds: 1_764_091_744,
                nanos: 0,
            }),
            progress: Some(JobProgress {
                current_step: 3,
                total_steps: 12,
                step_name: "install nginx".into(),
            }),
            requested_by: "ada@example.com".into(),
            version: 4,
            ..Job::default()
        }
    }

    fn failed() -> Job {
        Job {
            id: "j2".into(),
            r#type: JobType::SiteCreate as i32,
            status: JobStatus::Failed as i32,
            site_id: "s1".into(),
            error_code: "PLAYBOOK_FAILED".into(),
            error_message: "task failed".into(),
            attempt: 3,
            max_attempts: 3,
            ..Job::default()
        }
    }

    #[test]
    fn table_shows_type_status_and_step() {
        assert_eq!(
            jobs_table(&[running(), failed()]),
            "ID  TYPE            STATUS   STEP  CREATED               SUMMARY\n\
             j1  node_provision  running  3/12  2025-11-25T17:29:03Z  provision web-1\n\
             j2  site_create     failed   -     -                     -\n"
        );
    }

    #[test]
    fn details_show_progress_and_errors() {
        let text = job_details(&running());
        assert!(
            text.contains("Step:          3/12 install nginx\n"),
            "{text}"
        );
        assert!(text.contains("Attempt:       1/3\n"), "{text}");
        assert!(!text.contains("Error"), "{text}");
        assert!(!text.contains("Site:"), "{text}");

        let text = job_details(&failed());
        assert!(
            text.contains("Error:         PLAYBOOK_FAILED: task failed\n"),
            "{text}"
        );
        assert!(text.contains("Step:          -\n"), "{text}");

        let cancelling = Job {
            cancel_requested: true,
            ..running()
        };
        assert!(job_details(&cancelling).contains("Status:        running (cancel requested)\n"));
    }

    #[test]
    fn json_has_typed_fields() {
        let value = message(&running());
        assert_eq!(value["type"], "JOB_TYPE_NODE_PROVISION");
        assert_eq!(value["status"], "JOB_STATUS_RUNNING");
        assert!(value.get("site_id").is_none(), "unset fields are left out");
        assert_eq!(value["node_id"], "n1");
        assert_eq!(value["start_time"], "2025-11-25T17:29:04Z");
        assert!(value.get("finish_time").is_none());
        assert_eq!(value["progress"]["total_steps"], 12);
        assert_eq!(message(&failed())["error_code"], "PLAYBOOK_FAILED");
    }

    #[test]
    fn every_status_filter_maps_to_its_proto_value() {
        for arg in StatusArg::value_variants() {
            let name = arg
                .to_possible_value()
                .expect("visible")
                .get_name()
                .to_owned();
            assert_eq!(label::<JobStatus>(JobStatus::from(*arg) as i32), name);
        }
    }
}
