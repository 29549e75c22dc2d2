//! Following a job to its end: `job watch`, `job logs [--follow]` and `--wait` on the
//! commands that start a job.
//!
//! WatchJob replays the job's history, then streams live events, and ends when the job has
//! ended. The events are shown in one of four views:
//!
//! ```text
//! bar    a terminal (no -o json, no NO_COLOR): a progress bar whose message is the current
//!        step; state changes (and, with --logs, log lines) are printed above it
//! plain  no terminal: one line per state change and step start (log lines with --logs)
//! json   -o json: one JSON object per event (NDJSON)
//! logs   job logs: the log lines under "== [3/7] step" headers
//! ```
//!
//! A state change that ends the job prints no line of its own: the outcome follows, "job ID
//! succeeded in 12.3s" on stdout (exit 0), or "error: job ID failed: CODE: message" on
//! stderr (exit 7). Ctrl-C stops watching, never the job (exit 130).

use std::io::IsTerminal as _;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pressluft_client::Clients;
use pressluft_client::labels::label;
use pressluft_proto::v1::job_event::Event;
use pressluft_proto::v1::{
    GetJobRequest, Job, JobEvent, JobStateChange, JobStatus, JobStep, JobStepStatus,
    ListJobEventsRequest, WatchJobRequest,
};
use prost_types::Timestamp;
use serde_json::Value;

use crate::error::CliError;
use crate::global::{Ctx, OutputFormat, print_stdout};
use crate::output::{clean, message};

/// Events per ListJobEvents page (the server's maximum).
const EVENTS_PAGE_SIZE: i32 = 1000;

/// How often the progress bar's spinner moves.
const TICK: Duration = Duration::from_millis(120);

/// `--wait` and `--logs`, flattened into every command that starts a job.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// Follow the job until it ends, like pressluft job watch (exit 7 if it fails or is
    /// cancelled)
    #[arg(long)]
    pub wait: bool,
    /// With --wait, also print the playbook's output lines
    #[arg(long, requires = "wait")]
    pub logs: bool,
}

impl WaitArgs {
    /// Prints what the command returned and, with --wait, follows `job_id` to its end.
    ///
    /// With --wait and -o json the result is one compact line, so the whole output is NDJSON.
    pub async fn finish(
        &self,
        ctx: &Ctx,
        clients: &mut Clients,
        job_id: &str,
        table: impl FnOnce() -> String,
        json: impl FnOnce() -> Value,
    ) -> Result<(), CliError> {
        if !self.wait {
            return ctx.emit(table, json);
        }
        // A blank line between the result and the job's progress.
        ctx.emit_line(|| table() + "\n", json)?;
        if job_id.is_empty() {
            return Err(CliError::other("the server returned no job to wait for"));
        }
        follow(clients, job_id, View::for_watch(ctx), self.logs).await
    }
}

/// How a job's events are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// A progress bar on a terminal.
    Bar,
    /// One line per state change and step start.
    Plain,
    /// One JSON object per event.
    Json,
    /// Log lines under step headers.
    Logs,
}

impl View {
    /// The view of `job watch` and `--wait`: JSON, else a bar on a terminal, else plain.
    pub fn for_watch(ctx: &Ctx) -> View {
        if ctx.output == OutputFormat::Json {
            View::Json
        } else if fancy_terminal() {
            View::Bar
        } else {
            View::Plain
        }
    }

    /// The view of `job logs`: JSON or log lines.
    pub fn for_logs(ctx: &Ctx) -> View {
        match ctx.output {
            OutputFormat::Json => View::Json,
            OutputFormat::Table | OutputFormat::Wide | OutputFormat::Yaml => View::Logs,
        }
    }
}

/// Whether stdout is a terminal that may show a progress bar: not NO_COLOR, not TERM=dumb.
fn fancy_terminal() -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|value| !value.is_empty());
    std::io::stdout().is_terminal()
        && !set("NO_COLOR")
        && std::env::var_os("TERM").is_none_or(|term| term != "dumb")
}

/// Follows job `id` until it ends, then reports the outcome (see the module doc).
pub async fn follow(
    clients: &mut Clients,
    id: &str,
    view: View,
    logs: bool,
) -> Result<(), CliError> {
    let mut printer = Printer::new(view, logs);
    let streamed = stream_events(clients, id, &mut printer).await;
    printer.clear();
    let first_start = streamed?;
    // The stream's own job snapshots can lag behind its last event: ask for the final job.
    let job = clients
        .job
        .get_job(GetJobRequest {
            job_id: id.to_owned(),
        })
        .await?
        .into_inner()
        .job
        .unwrap_or_default();
    let line = outcome(&job, first_start.as_ref())?;
    if view == View::Json {
        Ok(())
    } else {
        print_stdout(&format!("{line}\n"))
    }
}

/// Prints the recorded history of job `id` (ListJobEvents, page by page).
pub async fn history(clients: &mut Clients, id: &str, view: View) -> Result<(), CliError> {
    let mut printer = Printer::new(view, true);
    let mut page_token = String::new();
    loop {
        let page = clients
            .job
            .list_job_events(ListJobEventsRequest {
                job_id: id.to_owned(),
                page_size: EVENTS_PAGE_SIZE,
                page_token,
            })
            .await?
            .into_inner();
        for event in &page.events {
            printer.event(event)?;
        }
        if page.next_page_token.is_empty() {
            return Ok(());
        }
        page_token = page.next_page_token;
    }
}

/// Shows the WatchJob stream until it ends; returns when the first attempt started.
async fn stream_events(
    clients: &mut Clients,
    id: &str,
    printer: &mut Printer,
) -> Result<Option<Timestamp>, CliError> {
    let mut stream = clients
        .job
        .watch_job(WatchJobRequest {
            job_id: id.to_owned(),
            after_sequence: 0,
        })
        .await?
        .into_inner();
    let id = clean(id);
    let interrupt = ctrl_c();
    tokio::pin!(interrupt);
    let mut first_start = None;
    loop {
        let message = tokio::select! {
            // Polled first, so the handler is installed before the first line is printed.
            biased;
            () = &mut interrupt => {
                return Err(CliError::interrupted(format!(
                    "stopped watching; the job keeps running (pressluft job watch {id} to \
                     resume, pressluft job cancel {id} to stop it)"
                )));
            }
            message = stream.message() => message,
        };
        let response = message.map_err(|status| {
            CliError::from(status).with_hint(Some(&format!(
                "the job may still be running: `pressluft job watch {id}` resumes watching"
            )))
        })?;
        let Some(response) = response else {
            return Ok(first_start);
        };
        let Some(event) = response.event else {
            continue;
        };
        if first_start.is_none()
            && let Some(Event::StateChange(change)) = &event.event
            && change.status == JobStatus::Running as i32
        {
            first_start = event.time;
        }
        printer.event(&event)?;
    }
}

/// Resolves on Ctrl-C; never, if the handler cannot be installed.
async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Shows events in one view.
struct Printer {
    view: View,
    logs: bool,
    bar: Option<ProgressBar>,
}

impl Printer {
    fn new(view: View, logs: bool) -> Printer {
        let bar = (view == View::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
            bar.set_style(style(SPINNER_TEMPLATE));
            bar.set_message("waiting for the job");
            bar.enable_steady_tick(TICK);
            bar
        });
        Printer { view, logs, bar }
    }

    fn event(&mut self, event: &JobEvent) -> Result<(), CliError> {
        match (&self.bar, self.view) {
            (_, View::Json) => print_stdout(&format!("{}\n", message(event))),
            (Some(bar), _) => {
                update_bar(bar, event);
                if !matches!(event.event, Some(Event::Step(_)))
                    && let Some(line) = text_line(View::Plain, self.logs, event)
                {
                    bar.println(line);
                }
                Ok(())
            }
            (None, view) => match text_line(view, self.logs, event) {
                Some(line) => print_stdout(&format!("{line}\n")),
                None => Ok(()),
            },
        }
    }

    /// Removes the progress bar, if any, before the outcome or an error is printed.
    fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

const SPINNER_TEMPLATE: &str = "{spinner:.cyan} {wide_msg}";
const BAR_TEMPLATE: &str = "{spinner:.cyan} [{bar:30.cyan/blue}] {pos}/{len} {wide_msg}";

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
        .progress_chars("=> ")
}

/// Moves the bar: a started step sets the position (and the length, when known) and the
/// message; a new attempt starts over.
fn update_bar(bar: &ProgressBar, event: &JobEvent) {
    match &event.event {
        Some(Event::Step(step)) if step.status == JobStepStatus::Started as i32 => {
            match u64::try_from(step.total) {
                Ok(total) if total > 0 => {
                    if bar.length() != Some(total) {
                        bar.set_style(style(BAR_TEMPLATE));
                        bar.set_length(total);
                    }
                }
                _ => {
                    if bar.length().is_some() {
                        bar.set_style(style(SPINNER_TEMPLATE));
                        bar.unset_length();
                    }
                }
            }
            bar.set_position(u64::try_from(step.index).unwrap_or_default());
            bar.set_message(clean(&step.name));
        }
        Some(Event::StateChange(change)) => {
            if change.status == JobStatus::Running as i32 {
                bar.set_position(0);
            }
            if let Some(text) = state_text(change) {
                bar.set_message(text);
            }
        }
        _ => {}
    }
}

/// The line an event prints in a text view (plain or logs), if any.
///
/// Plain: state changes that do not end the job, step starts as "[3/7] name", and log lines
/// when `logs`. Logs: log lines, step starts as "== [3/7] name", and "== attempt N started"
/// from the second attempt on (steps count from 1 again).
pub fn text_line(view: View, logs: bool, event: &JobEvent) -> Option<String> {
    let started = |step: &JobStep| step.status == JobStepStatus::Started as i32;
    match (view, event.event.as_ref()?) {
        (View::Logs, Event::LogLine(line)) => Some(clean(&line.text)),
        (View::Logs, Event::Step(step)) if started(step) => {
            Some(format!("== {}", step_label(step)))
        }
        (View::Logs, Event::StateChange(change))
            if change.status == JobStatus::Running as i32 && change.attempt > 1 =>
        {
            Some(format!("== attempt {} started", change.attempt))
        }
        (View::Plain | View::Bar, Event::LogLine(line)) if logs => Some(clean(&line.text)),
        (View::Plain | View::Bar, Event::Step(step)) if started(step) => Some(step_label(step)),
        (View::Plain | View::Bar, Event::StateChange(change)) => state_text(change),
        _ => None,
    }
}

/// "[3/7] Install WordPress", or "[3] ..." when the total is unknown.
fn step_label(step: &JobStep) -> String {
    let name = clean(&step.name);
    if step.total > 0 {
        format!("[{}/{}] {name}", step.index, step.total)
    } else {
        format!("[{}] {name}", step.index)
    }
}

/// A state change as a line; `None` for the end of the job (the outcome reports it).
fn state_text(change: &JobStateChange) -> Option<String> {
    let code = clean(&change.error_code);
    let message = clean(&change.message);
    let status = JobStatus::try_from(change.status).unwrap_or(JobStatus::Unspecified);
    match status {
        JobStatus::Queued if !code.is_empty() => Some(joined("retrying", &code, &message)),
        JobStatus::Queued if message.is_empty() => Some("queued".to_owned()),
        JobStatus::Running if message.is_empty() => {
            Some(format!("attempt {} started", change.attempt))
        }
        JobStatus::Queued | JobStatus::Running => Some(message),
        JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled => None,
        JobStatus::Unspecified => Some(joined(&label::<JobStatus>(change.status), &code, &message)),
    }
}

/// "head: code: message", leaving out empty parts.
fn joined(head: &str, code: &str, message: &str) -> String {
    [head, code, message]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(": ")
}

/// How a followed job ended: the line to print when it succeeded, else the error (exit 7;
/// exit 6 when the stream stopped before the job ended). `first_start` is when its first
/// attempt started, if the stream showed it.
pub fn outcome(job: &Job, first_start: Option<&Timestamp>) -> Result<String, CliError> {
    let id = clean(&job.id);
    let code = clean(&job.error_code);
    let message = clean(&job.error_message);
    match JobStatus::try_from(job.status).unwrap_or(JobStatus::Unspecified) {
        JobStatus::Succeeded => {
            let from = first_start.or(job.start_time.as_ref());
            Ok(match elapsed(from, job.finish_time.as_ref()) {
                Some(took) => format!("job {id} succeeded in {took}"),
                None => format!("job {id} succeeded"),
            })
        }
        JobStatus::Failed => {
            Err(
                CliError::job_failed(joined(&format!("job {id} failed"), &code, &message))
                    .with_hint(Some(&format!(
                        "see its output with `pressluft job logs {id}`"
                    ))),
            )
        }
        JobStatus::Cancelled => Err(CliError::job_failed(joined(
            &format!("job {id} was cancelled"),
            "",
            &message,
        ))),
        JobStatus::Queued | JobStatus::Running | JobStatus::Unspecified => {
            Err(CliError::unavailable(format!(
                "the server stopped streaming before job {id} ended (it is {})",
                label::<JobStatus>(job.status)
            ))
            .with_hint(Some(&format!(
                "`pressluft job watch {id}` resumes watching"
            ))))
        }
    }
}

/// The time between two timestamps, e.g. "12.3s", "4m05s", "1h02m".
fn elapsed(from: Option<&Timestamp>, to: Option<&Timestamp>) -> Option<String> {
    let (from, to) = (from?, to?);
    let millis = (to.seconds - from.seconds) * 1000 + i64::from(to.nanos - from.nanos) / 1_000_000;
    (millis >= 0).then(|| duration_text(millis))
}

fn duration_text(millis: i64) -> String {
    let tenths = (millis + 50) / 100;
    let secs = (millis + 500) / 1000;
    if tenths < 600 {
        format!("{}.{}s", tenths / 10, tenths % 10)
    } else if secs < 3600 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h{:02}m", secs / 3600, secs % 3600 / 60)
    }
}

#[cfg(test)]
mod tests {
    use pressluft_proto::v1::JobLogLine;

    use super::*;

    fn at(seconds: i64, nanos: i32) -> Timestamp {
        Timestamp { seconds, nanos }
    }

    fn event(sequence: i64, event: Event) -> JobEvent {
        JobEvent {
            sequence,
            time: Some(at(1_764_091_743 + sequence, 0)),
            event: Some(event),
        }
    }

    fn state(status: JobStatus, attempt: i32, code: &str, message: &str) -> Event {
        Event::StateChange(JobStateChange {
            status: status as i32,
            attempt,
            error_code: code.into(),
            message: message.into(),
        })
    }

    fn step(index: i32, total: i32, name: &str, status: JobStepStatus) -> Event {
        Event::Step(JobStep {
            index,
            total,
            name: name.into(),
            status: status as i32,
        })
    }

    fn log(text: &str) -> Event {
        Event::LogLine(JobLogLine { text: text.into() })
    }

    /// A job that fails once, is retried and succeeds, as the server records it.
    fn history() -> Vec<JobEvent> {
        use JobStatus::{Queued, Running, Succeeded};
        use JobStepStatus::{Changed, Failed, Ok, Started};
        [
            state(Queued, 0, "", "queued"),
            state(Running, 1, "", "attempt 1 started"),
            step(1, 2, "Check the node", Started),
            log("pong"),
            step(1, 2, "Check the node", Ok),
            step(2, 2, "Install \u{1b}[31mnginx", Started),
            log("task failed: Install nginx"),
            step(2, 2, "Install \u{1b}[31mnginx", Failed),
            state(Queued, 1, "PLAYBOOK_FAILED", "attempt 1 failed; retrying"),
            state(Running, 2, "", "attempt 2 started"),
            step(1, 0, "Check the node", Started),
            step(1, 0, "Check the node", Changed),
            state(Succeeded, 2, "", "succeeded"),
        ]
        .into_iter()
        .zip(1..)
        .map(|(kind, sequence)| event(sequence, kind))
        .collect()
    }

    fn render(view: View, logs: bool) -> String {
        history()
            .iter()
            .filter_map(|event| text_line(view, logs, event))
            .map(|line| line + "\n")
            .collect()
    }

    #[test]
    fn plain_view_prints_state_changes_and_step_starts() {
        assert_eq!(
            render(View::Plain, false),
            "queued\n\
             attempt 1 started\n\
             [1/2] Check the node\n\
             [2/2] Install  [31mnginx\n\
             retrying: PLAYBOOK_FAILED: attempt 1 failed; retrying\n\
             attempt 2 started\n\
             [1] Check the node\n"
        );
    }

    #[test]
    fn plain_view_adds_log_lines_with_logs() {
        let text = render(View::Plain, true);
        assert!(text.contains("[1/2] Check the node\npong\n[2/2]"), "{text}");
        assert!(
            text.contains("\ntask failed: Install nginx\nretrying"),
            "{text}"
        );
    }

    #[test]
    fn logs_view_prints_log_lines_under_step_headers() {
        assert_eq!(
            render(View::Logs, false),
            "== [1/2] Check the node\n\
             pong\n\
             == [2/2] Install  [31mnginx\n\
             task failed: Install nginx\n\
             == attempt 2 started\n\
             == [1] Check the node\n"
        );
    }

    #[test]
    fn state_changes_without_a_message_still_say_something() {
        let line = |event| text_line(View::Plain, false, &self::event(1, event));
        assert_eq!(
            line(state(JobStatus::Running, 3, "", "")).as_deref(),
            Some("attempt 3 started")
        );
        assert_eq!(
            line(state(JobStatus::Queued, 0, "", "")).as_deref(),
            Some("queued")
        );
        assert_eq!(
            line(state(JobStatus::Failed, 1, "PLAYBOOK_FAILED", "boom")),
            None,
            "the outcome reports the end"
        );
        assert_eq!(
            text_line(View::Plain, false, &JobEvent::default()),
            None,
            "an unknown event kind"
        );
    }

    #[test]
    fn json_view_has_one_object_per_event() {
        let lines: Vec<String> = history()
            .iter()
            .map(|event| message(event).to_string())
            .collect();
        assert_eq!(lines.len(), 13);
        assert_eq!(
            lines[0],
            r#"{"sequence":1,"state_change":{"message":"queued","status":"JOB_STATUS_QUEUED"},"time":"2025-11-25T17:29:04Z"}"#
        );
        assert_eq!(
            lines[2],
            r#"{"sequence":3,"step":{"index":1,"name":"Check the node","status":"JOB_STEP_STATUS_STARTED","total":2},"time":"2025-11-25T17:29:06Z"}"#
        );
        assert_eq!(
            lines[3],
            r#"{"log_line":{"text":"pong"},"sequence":4,"time":"2025-11-25T17:29:07Z"}"#
        );
        let retry = message(&history()[8]);
        assert_eq!(retry["state_change"]["error_code"], "PLAYBOOK_FAILED");
        assert_eq!(retry["state_change"]["status"], "JOB_STATUS_QUEUED");
        assert_eq!(
            message(&history()[7])["step"]["status"],
            "JOB_STEP_STATUS_FAILED"
        );
        // JSON keeps the raw text; only the terminal views clean it.
        assert_eq!(
            message(&history()[5])["step"]["name"],
            "Install \u{1b}[31mnginx"
        );
        assert_eq!(message(&JobEvent::default()), serde_json::json!({}));
    }

    fn ended(status: JobStatus) -> Job {
        Job {
            id: "j1".into(),
            status: status as i32,
            start_time: Some(at(1_764_091_800, 0)),
            finish_time: Some(at(1_764_091_812, 340_000_000)),
            ..Job::default()
        }
    }

    #[test]
    fn a_success_reports_the_time_since_the_first_attempt_started() {
        let job = ended(JobStatus::Succeeded);
        assert_eq!(
            outcome(&job, None).expect("succeeded"),
            "job j1 succeeded in 12.3s"
        );
        assert_eq!(
            outcome(&job, Some(&at(1_764_091_700, 0))).expect("succeeded"),
            "job j1 succeeded in 1m52s"
        );
        let untimed = Job {
            finish_time: None,
            ..job
        };
        assert_eq!(outcome(&untimed, None).expect("ok"), "job j1 succeeded");
    }

    #[test]
    fn a_failure_or_cancel_exits_with_7() {
        let failed = Job {
            error_code: "PLAYBOOK_FAILED".into(),
            error_message: "task Install nginx failed\n(giving up after 3 attempts)".into(),
            ..ended(JobStatus::Failed)
        };
        let err = outcome(&failed, None).expect_err("failed");
        assert_eq!(err.exit_code(), 7);
        assert_eq!(
            err.report(),
            "error: job j1 failed: PLAYBOOK_FAILED: task Install nginx failed (giving up after \
             3 attempts)\nhint: see its output with `pressluft job logs j1`\n"
        );

        let cancelled = Job {
            error_code: "CANCELLED".into(),
            error_message: "cancelled by ada@example.com".into(),
            ..ended(JobStatus::Cancelled)
        };
        let err = outcome(&cancelled, None).expect_err("cancelled");
        assert_eq!(err.exit_code(), 7);
        assert_eq!(
            err.to_string(),
            "job j1 was cancelled: cancelled by ada@example.com"
        );

        let err = outcome(&ended(JobStatus::Running), None).expect_err("not ended");
        assert_eq!(err.exit_code(), 6);
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(duration_text(0), "0.0s");
        assert_eq!(duration_text(12_349), "12.3s");
        assert_eq!(duration_text(59_960), "1m00s");
        assert_eq!(duration_text(125_000), "2m05s");
        assert_eq!(duration_text(3_723_000), "1h02m");
        assert_eq!(elapsed(Some(&at(10, 0)), Some(&at(9, 0))), None);
    }
}
