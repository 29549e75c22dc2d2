//! Drawing. [`draw`] only reads the [`App`]; every change goes through `App::update`.
//! Colour is only ever an addition: with `NO_COLOR` (or a monochrome terminal) states are told
//! apart by words and bold/dim/reversed text.

use pressluft_proto::v1::{
    AuditEvent, AuditResult, DriftStatus, Environment, EnvironmentStatus, Job, JobStatus, JobType,
    Node, NodeStatus, ReleaseHealth, Site, SiteStatus, TlsStatus,
};
use std::fmt::Write as _;

use pressluft_client::labels::{label, short_time};
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize as _};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Table, TableState, Tabs, Wrap};

use crate::app::{App, Connection, JobView, Overlay, Stream, Tab, View, short_id};
use crate::keys::HELP;
use crate::lists::{Item, List, LoadState};

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App) {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    draw_header(frame, header, app);
    match &app.view {
        View::List(Tab::Nodes) => {
            draw_list(frame, body, "Nodes", &app.nodes, NODE_COLUMNS, |n| {
                node_row(app, n)
            });
        }
        View::List(Tab::Sites) => {
            draw_list(frame, body, "Sites", &app.sites, SITE_COLUMNS, |s| {
                site_row(app, s)
            });
        }
        View::List(Tab::Jobs) => {
            draw_list(frame, body, "Jobs", &app.jobs, JOB_COLUMNS, |j| {
                job_row(app, j)
            });
        }
        View::List(Tab::Activity) => {
            draw_list(frame, body, "Activity", &app.audit, AUDIT_COLUMNS, |e| {
                audit_row(app, e)
            });
        }
        View::Site { .. } => draw_site(frame, body, app),
        View::Job(view) => draw_job(frame, body, app, view),
    }
    draw_footer(frame, footer, app);
    if let Some(overlay) = &app.overlay {
        draw_overlay(frame, body, overlay);
    }
}

fn tint(app: &App, color: Color) -> Style {
    if app.color {
        Style::new().fg(color)
    } else {
        Style::new()
    }
}

fn draw_header(frame: &mut Frame, area: Rect, app: &App) {
    let status = match &app.connection {
        Connection::Connecting => Span::styled("connecting…", tint(app, Color::Yellow)),
        Connection::Live => Span::styled("● live", tint(app, Color::Green)),
        Connection::Disconnected { retry_in, .. } => Span::styled(
            format!("disconnected, retrying in {}s", retry_in.as_secs().max(1)),
            tint(app, Color::Red).add_modifier(Modifier::BOLD),
        ),
    };
    // The server's address only where it fits beside the tabs.
    let right = if area.width >= 100 {
        Line::from(vec![
            status,
            Span::raw("  "),
            Span::raw(clean(&app.server)).dim(),
        ])
    } else {
        Line::from(status)
    };
    let width = u16::try_from(right.width()).unwrap_or(u16::MAX);
    let [tabs_area, status_area] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(width)]).areas(area);
    let titles = Tab::ALL.iter().map(|tab| {
        let count = match tab {
            Tab::Nodes => app.nodes.visible.len(),
            Tab::Sites => app.sites.visible.len(),
            Tab::Jobs => app.jobs.visible.len(),
            Tab::Activity => app.audit.visible.len(),
        };
        format!("{} {} ({count})", tab.index() + 1, tab.title())
    });
    let tabs = Tabs::new(titles)
        .select(app.tab.index())
        .highlight_style(Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED));
    frame.render_widget(tabs, tabs_area);
    frame.render_widget(right.alignment(Alignment::Right), status_area);
}

fn key_hint(app: &App) -> &'static str {
    match app.view {
        View::List(Tab::Nodes) => "? help  / filter  s sort  P provision  r reload  q quit",
        View::List(Tab::Sites) => "? help  / filter  s sort  enter open  r reload  q quit",
        View::List(Tab::Jobs) => "? help  / filter  s sort  enter follow  x cancel  q quit",
        View::List(Tab::Activity) => "? help  / filter  r reload  q quit",
        View::Site { .. } => "d deploy u rollback b backup R restore c clone p promote m login esc",
        View::Job(_) => "x cancel  esc back  ? help  q quit",
    }
}

fn draw_footer(frame: &mut Frame, area: Rect, app: &App) {
    let load_error = match app.view {
        View::List(Tab::Nodes) => failure(&app.nodes),
        View::List(Tab::Sites) | View::Site { .. } => failure(&app.sites),
        View::List(Tab::Jobs) | View::Job(_) => failure(&app.jobs),
        View::List(Tab::Activity) => failure(&app.audit),
    };
    let line = if app.filtering {
        Line::from(vec![
            Span::raw("/").bold(),
            Span::raw(clean(app.current_filter().unwrap_or_default())),
            Span::raw("▏"),
            Span::raw("  enter keep · esc clear").dim(),
        ])
    } else if let Connection::Disconnected { error, .. } = &app.connection {
        Line::styled(
            format!("job stream: {}", clean(error)),
            tint(app, Color::Red),
        )
    } else if let Some(error) = load_error {
        Line::styled(
            format!("could not load: {}", clean(error)),
            tint(app, Color::Red),
        )
    } else if let Some(notice) = &app.notice {
        Line::raw(clean(notice)).bold()
    } else {
        Line::raw(key_hint(app)).dim()
    };
    frame.render_widget(line, area);
}

fn failure<T>(list: &List<T>) -> Option<&str> {
    match &list.state {
        LoadState::Failed(error) => Some(error),
        LoadState::Loading | LoadState::Loaded => None,
    }
}

/// Column titles and widths of one table.
type Columns = &'static [(&'static str, Constraint)];

const NODE_COLUMNS: Columns = &[
    ("NAME", Constraint::Min(10)),
    ("HOSTNAME", Constraint::Min(14)),
    ("STATUS", Constraint::Length(14)),
    ("PHP", Constraint::Length(8)),
    ("FREE", Constraint::Length(9)),
    ("LAST SEEN", Constraint::Length(20)),
];

const SITE_COLUMNS: Columns = &[
    ("SLUG", Constraint::Min(10)),
    ("NAME", Constraint::Min(12)),
    ("STATUS", Constraint::Length(9)),
    ("ENVS", Constraint::Length(4)),
    ("URL", Constraint::Fill(1)),
];

const JOB_COLUMNS: Columns = &[
    ("ID", Constraint::Length(8)),
    ("TYPE", Constraint::Length(15)),
    ("STATUS", Constraint::Length(9)),
    ("STEP", Constraint::Length(5)),
    ("TIME", Constraint::Length(6)),
    ("CREATED", Constraint::Length(11)),
    ("SUMMARY", Constraint::Fill(1)),
];

const AUDIT_COLUMNS: Columns = &[
    ("TIME", Constraint::Length(11)),
    ("ACTOR", Constraint::Min(17)),
    ("ACTION", Constraint::Min(11)),
    ("RESOURCE", Constraint::Length(20)),
    ("RESULT", Constraint::Length(9)),
    ("DETAIL", Constraint::Fill(1)),
];

fn draw_list<T: Item + Clone>(
    frame: &mut Frame,
    area: Rect,
    title: &str,
    list: &List<T>,
    columns: Columns,
    row: impl Fn(&T) -> Row<'static>,
) {
    let mut heading = format!(" {title} · sort: {} ", list.sort_name());
    if !list.filter.is_empty() {
        let _ = write!(heading, "· filter: {} ", clean(&list.filter));
    }
    let block = Block::bordered().title(heading);
    if list.visible.is_empty() {
        let message = match &list.state {
            LoadState::Loading => format!("Loading {}…", title.to_lowercase()),
            LoadState::Failed(error) => {
                format!("Could not load {}: {}", title.to_lowercase(), clean(error))
            }
            LoadState::Loaded if !list.filter.is_empty() => {
                format!(
                    "Nothing matches \"{}\" (esc clears the filter).",
                    clean(&list.filter)
                )
            }
            LoadState::Loaded => empty_message(title).to_owned(),
        };
        let paragraph = Paragraph::new(message)
            .block(block)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true });
        frame.render_widget(paragraph, area);
        return;
    }
    let header = Row::new(columns.iter().map(|(title, _)| *title)).bold();
    let table = Table::new(list.shown().map(row), columns.iter().map(|(_, w)| *w))
        .header(header)
        .block(block)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("> ");
    // A fresh state per frame keeps drawing read-only; ratatui scrolls to the selection.
    let mut state = TableState::new().with_selected(Some(list.selected));
    frame.render_stateful_widget(table, area, &mut state);
}

fn empty_message(title: &str) -> &'static str {
    match title {
        "Nodes" => "No nodes yet. Register one with `pressluft node add`.",
        "Sites" => "No sites yet. Create one with `pressluft site create`.",
        "Jobs" => "No jobs yet.",
        _ => "Nothing recorded yet.",
    }
}

fn status_style(app: &App, status: &str) -> Style {
    let (color, modifier) = match status {
        "active" | "succeeded" | "healthy" | "clean" => (Color::Green, Modifier::empty()),
        "failed" | "unreachable" | "unhealthy" | "drifted" | "denied" => {
            (Color::Red, Modifier::BOLD)
        }
        "queued" | "pending" => (Color::Cyan, Modifier::empty()),
        "cancelled" | "decommissioned" | "deleted" => (Color::DarkGray, Modifier::DIM),
        _ => (Color::Yellow, Modifier::empty()),
    };
    tint(app, color).add_modifier(modifier)
}

fn node_row(app: &App, node: &Node) -> Row<'static> {
    let status = label::<NodeStatus>(node.status);
    let free = app
        .node_free
        .get(&node.id)
        .map_or_else(|| "-".to_owned(), |b| bytes(*b));
    Row::new([
        Cell::from(clean(&node.name)),
        Cell::from(clean(&node.hostname)),
        Cell::from(status.clone()).style(status_style(app, &status)),
        Cell::from(or_dash(&clean(&node.php_versions.join(",")))),
        Cell::from(free),
        Cell::from(short_time(node.last_seen_time.as_ref())),
    ])
}

fn site_row(app: &App, site: &Site) -> Row<'static> {
    let status = label::<SiteStatus>(site.status);
    let url = site
        .environments
        .iter()
        .find(|env| env.id == site.production_environment_id)
        .map_or("", |env| env.url.as_str());
    Row::new([
        Cell::from(clean(&site.slug)),
        Cell::from(clean(&site.name)),
        Cell::from(status.clone()).style(status_style(app, &status)),
        Cell::from(site.environments.len().to_string()),
        Cell::from(or_dash(&clean(url))),
    ])
}

fn job_row(app: &App, job: &Job) -> Row<'static> {
    let status = label::<JobStatus>(job.status);
    let step = match &job.progress {
        Some(p) if p.current_step > 0 && p.total_steps > 0 => {
            format!("{}/{}", p.current_step, p.total_steps)
        }
        _ => "-".to_owned(),
    };
    Row::new([
        Cell::from(short_id(&job.id)),
        Cell::from(label::<JobType>(job.r#type)),
        Cell::from(status.clone()).style(status_style(app, &status)),
        Cell::from(step),
        Cell::from(duration(app, job)),
        Cell::from(compact_time(job.create_time.as_ref())),
        Cell::from(or_dash(&clean(&job.summary))),
    ])
}

/// How long a job ran (or has been running).
fn duration(app: &App, job: &Job) -> String {
    let Some(start) = job.start_time else {
        return "-".to_owned();
    };
    let end = job.finish_time.unwrap_or(app.now);
    let secs = (end.seconds - start.seconds).max(0);
    if end.seconds == 0 {
        return "-".to_owned();
    }
    if secs >= 3600 {
        format!("{}h{:02}m", secs / 3600, secs % 3600 / 60)
    } else if secs >= 60 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{secs}s")
    }
}

fn audit_row(app: &App, event: &AuditEvent) -> Row<'static> {
    let result = match AuditResult::try_from(event.result) {
        Ok(AuditResult::Succeeded) => "succeeded",
        Ok(AuditResult::Failed) => "failed",
        Ok(AuditResult::Accepted) => "accepted",
        Ok(AuditResult::Denied) => "denied",
        _ => "-",
    };
    Row::new([
        Cell::from(compact_time(event.time.as_ref())),
        Cell::from(clean(&event.actor)),
        Cell::from(clean(&event.action)),
        Cell::from(format!(
            "{} {}",
            event.resource_type,
            short_id(&event.resource_id)
        )),
        Cell::from(result).style(status_style(app, result)),
        Cell::from(clean(&event.detail)),
    ])
}

fn draw_site(frame: &mut Frame, area: Rect, app: &App) {
    let Some(site) = app.current_site() else {
        frame.render_widget(
            Paragraph::new("This site is gone (esc goes back).").block(Block::bordered()),
            area,
        );
        return;
    };
    let env_rows = u16::try_from(site.environments.len()).unwrap_or(8).min(8);
    let [envs_area, domains_area] =
        Layout::vertical([Constraint::Length(env_rows + 3), Constraint::Min(3)]).areas(area);
    let title = format!(
        " {} · {} · {} ",
        clean(&site.slug),
        clean(&site.name),
        label::<SiteStatus>(site.status)
    );
    let rows = site.environments.iter().map(|env| env_row(app, env));
    let table = Table::new(
        rows,
        [
            Constraint::Length(11),
            Constraint::Length(10),
            Constraint::Length(9),
            Constraint::Length(10),
            Constraint::Length(9),
            Constraint::Length(7),
            Constraint::Length(11),
            Constraint::Fill(1),
        ],
    )
    .header(
        Row::new([
            "NAME", "KIND", "STATUS", "NODE", "RELEASE", "DRIFT", "BACKUP", "URL",
        ])
        .bold(),
    )
    .block(Block::bordered().title(title))
    .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
    .highlight_symbol("> ");
    let selected = match app.view {
        View::Site { env, .. } => env,
        _ => 0,
    };
    let mut state = TableState::new().with_selected(Some(selected));
    frame.render_stateful_widget(table, envs_area, &mut state);
    draw_domains(frame, domains_area, app);
}

fn env_row(app: &App, env: &Environment) -> Row<'static> {
    let status = label::<EnvironmentStatus>(env.status);
    let node = app
        .nodes
        .items
        .iter()
        .find(|n| n.id == env.node_id)
        .map_or_else(|| short_id(&env.node_id), |n| n.name.clone());
    let release = match app.releases.get(&env.id) {
        Some(Ok(releases)) => releases
            .iter()
            .find(|r| r.is_current)
            .map_or_else(|| "-".to_owned(), |r| label::<ReleaseHealth>(r.health)),
        _ if env.current_release_id.is_empty() => "-".to_owned(),
        _ => "…".to_owned(),
    };
    let drift = label::<DriftStatus>(env.drift_status);
    let backup = env.last_backup_time.as_ref().map_or_else(
        || "never".to_owned(),
        |t| short_time(Some(t)).chars().take(10).collect(),
    );
    Row::new([
        Cell::from(clean(&env.name)),
        Cell::from(App::env_kind(env.kind)),
        Cell::from(status.clone()).style(status_style(app, &status)),
        Cell::from(clean(&node)),
        Cell::from(release.clone()).style(status_style(app, &release)),
        Cell::from(drift.clone()).style(status_style(app, &drift)),
        Cell::from(backup),
        Cell::from(or_dash(&clean(&env.url))),
    ])
}

fn draw_domains(frame: &mut Frame, area: Rect, app: &App) {
    let Some(env) = app.current_env() else {
        return;
    };
    let block = Block::bordered().title(format!(" Domains of {} ", clean(&env.name)));
    let message = match app.domains.get(&env.id) {
        None => Some("Loading domains…".to_owned()),
        Some(Err(error)) => Some(format!("Could not load domains: {}", clean(error))),
        Some(Ok(domains)) if domains.is_empty() => Some(format!(
            "No custom domains; served at {} (pressluft domain add).",
            clean(&env.url)
        )),
        Some(Ok(_)) => None,
    };
    if let Some(message) = message {
        frame.render_widget(
            Paragraph::new(message)
                .block(block)
                .wrap(Wrap { trim: true }),
            area,
        );
        return;
    }
    let Some(Ok(domains)) = app.domains.get(&env.id) else {
        return;
    };
    let rows = domains.iter().map(|d| {
        let mut tls = label::<TlsStatus>(d.tls_status);
        if d.tls_expires_soon {
            tls.push_str(" EXPIRES SOON");
        }
        Row::new([
            Cell::from(clean(&d.hostname)),
            Cell::from(if d.is_primary { "primary" } else { "redirect" }),
            Cell::from(tls.clone()).style(status_style(
                app,
                if d.tls_expires_soon {
                    "failed"
                } else {
                    tls.as_str()
                },
            )),
            Cell::from(short_time(d.tls_expire_time.as_ref())),
            Cell::from(clean(&d.tls_message)),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Min(20),
            Constraint::Length(8),
            Constraint::Length(20),
            Constraint::Length(20),
            Constraint::Fill(1),
        ],
    )
    .header(Row::new(["HOSTNAME", "ROLE", "TLS", "EXPIRES", "MESSAGE"]).bold())
    .block(block);
    frame.render_widget(table, area);
}

fn draw_job(frame: &mut Frame, area: Rect, app: &App, view: &JobView) {
    let job = app.jobs.items.iter().find(|j| j.id == view.job_id);
    let status = job.map_or_else(|| "…".to_owned(), |j| label::<JobStatus>(j.status));
    let mut head = vec![Line::from(vec![
        Span::raw(job.map_or_else(|| "job".to_owned(), |j| label::<JobType>(j.r#type))).bold(),
        Span::raw(" "),
        Span::styled(status.clone(), status_style(app, &status)),
        Span::raw(format!(
            "  {}  attempt {}/{}  {}",
            view.job_id,
            job.map_or(0, |j| j.attempt),
            job.map_or(0, |j| j.max_attempts),
            job.map_or_else(String::new, |j| duration(app, j)),
        )),
    ])];
    if let Some(job) = job {
        head.push(Line::raw(clean(&job.summary)));
        if !job.error_code.is_empty() {
            head.push(Line::styled(
                format!("{}: {}", job.error_code, clean(&job.error_message)),
                tint(app, Color::Red).add_modifier(Modifier::BOLD),
            ));
        }
    }
    match &view.stream {
        Stream::Broke(error) => head.push(Line::styled(
            format!("stream broke: {}", clean(error)),
            tint(app, Color::Red),
        )),
        Stream::Finished => head.push(Line::raw("finished").dim()),
        Stream::Following => {}
    }
    let head_height = u16::try_from(head.len()).unwrap_or(4);
    let steps_height = u16::try_from(view.steps.len().min(8)).unwrap_or(8) + 2;
    let [head_area, steps_area, log_area] = Layout::vertical([
        Constraint::Length(head_height),
        Constraint::Length(steps_height),
        Constraint::Min(3),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(head), head_area);
    // The newest steps that fit.
    let shown = view.steps.iter().rev().take(8).rev().map(|s| {
        let took = match (s.started, s.finished) {
            (Some(a), Some(b)) => format!("{}s", (b.seconds - a.seconds).max(0)),
            _ => String::new(),
        };
        Row::new([
            Cell::from(format!("{}/{}", s.index, s.total)),
            Cell::from(clean(&s.name)),
            Cell::from(s.status.clone()).style(status_style(app, step_word(&s.status))),
            Cell::from(took),
        ])
    });
    let steps = Table::new(
        shown,
        [
            Constraint::Length(6),
            Constraint::Fill(1),
            Constraint::Length(8),
            Constraint::Length(6),
        ],
    )
    .block(Block::bordered().title(format!(" Steps ({}) ", view.steps.len())));
    frame.render_widget(steps, steps_area);
    let capacity = usize::from(log_area.height.saturating_sub(2));
    let start = view.log.len().saturating_sub(capacity);
    let lines: Vec<Line> = view.log[start..]
        .iter()
        .map(|l| Line::raw(clean(l)))
        .collect();
    let log = Paragraph::new(lines).block(Block::bordered().title(" Log "));
    frame.render_widget(log, log_area);
}

fn step_word(status: &str) -> &str {
    match status {
        "ok" | "changed" => "succeeded",
        "started" => "running",
        other => other,
    }
}

fn draw_overlay(frame: &mut Frame, area: Rect, overlay: &Overlay) {
    let (title, lines, hint): (String, Vec<Line>, &str) = match overlay {
        Overlay::Help => (
            "Keys".into(),
            HELP.iter()
                .map(|(keys, what)| {
                    Line::from(vec![
                        Span::raw(format!("{keys:>20}  ")).bold(),
                        Span::raw(*what),
                    ])
                })
                .collect(),
            "esc close",
        ),
        Overlay::Confirm { title, lines, .. } => (
            title.clone(),
            lines.iter().map(|l| Line::raw(clean(l))).collect(),
            "y / enter: do it    n / esc: cancel",
        ),
        Overlay::Choose {
            title,
            choices,
            selected,
        } => (
            title.clone(),
            choices
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i == *selected {
                        Line::raw(format!("> {}", clean(&c.label))).reversed()
                    } else {
                        Line::raw(format!("  {}", clean(&c.label)))
                    }
                })
                .collect(),
            "j/k move · enter pick · esc cancel",
        ),
        Overlay::Input {
            title,
            label,
            value,
            ..
        } => (
            title.clone(),
            vec![
                Line::raw(clean(label)),
                Line::from(vec![Span::raw(clean(value)).bold(), Span::raw("▏")]),
            ],
            "enter ok · esc cancel",
        ),
        Overlay::Message { title, lines } => (
            title.clone(),
            lines.iter().map(|l| Line::raw(clean(l))).collect(),
            "esc close",
        ),
        Overlay::Busy(text) => (
            "Please wait".into(),
            vec![Line::raw(clean(text))],
            "esc stop waiting",
        ),
    };
    let width = area.width.saturating_sub(4).min(76);
    let height = (u16::try_from(lines.len()).unwrap_or(20) + 4).min(area.height);
    let popup = area.centered(Constraint::Length(width), Constraint::Length(height));
    frame.render_widget(Clear, popup);
    let block = Block::bordered()
        .title(format!(" {} ", clean(&title)))
        .title_bottom(Line::raw(format!(" {hint} ")).dim());
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        popup,
    );
}

/// A byte count as people read it.
fn bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n.unsigned_abs();
    let mut unit = 0;
    while value >= 10 * 1024 && unit + 1 < UNITS.len() {
        value /= 1024;
        unit += 1;
    }
    format!("{value} {}", UNITS[unit])
}

/// "MM-DD hh:mm" (UTC), or "-": fits narrow columns.
fn compact_time(time: Option<&prost_types::Timestamp>) -> String {
    let full = short_time(time);
    match (full.get(5..10), full.get(11..16)) {
        (Some(day), Some(clock)) => format!("{day} {clock}"),
        _ => full,
    }
}

/// Replaces control characters so server data cannot inject terminal escapes.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use pressluft_proto::v1::{
        AuditEvent, Domain, Environment, EnvironmentStatus, JobEvent, JobProgress, JobStatus,
        JobStep, JobStepStatus, JobType, NodeStatus, SiteStatus, TlsStatus, job_event,
    };
    use prost_types::Timestamp;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::app::Action;
    use crate::app::tests::{app, job, site};
    use crate::event::Update;
    use crate::lists::Move;

    /// The screen as text, at the smallest supported size unless said otherwise.
    fn render_at(app: &App, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
        terminal.draw(|frame| draw(frame, app)).expect("draw");
        let buffer = terminal.backend().buffer();
        buffer
            .content()
            .chunks(usize::from(buffer.area.width))
            .map(|row| {
                row.iter()
                    .map(ratatui::buffer::Cell::symbol)
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn render(app: &App) -> String {
        render_at(app, 80, 24)
    }

    fn node() -> Node {
        Node {
            id: "n1".into(),
            name: "web-1".into(),
            hostname: "10.0.0.5".into(),
            status: NodeStatus::Active as i32,
            php_versions: vec!["8.3".into()],
            ..Node::default()
        }
    }

    #[test]
    fn nodes_show_status_php_and_free_disk() {
        let mut app = app();
        app.update(Action::Server(Update::Nodes(Ok(vec![node()]))));
        app.update(Action::Server(Update::NodeFree {
            node_id: "n1".into(),
            bytes: 40 << 30,
        }));
        let screen = render(&app);
        for text in [
            "1 Nodes (1)",
            "● live",
            "> web-1",
            "10.0.0.5",
            "active",
            "8.3",
            "40 GiB",
            "P provision",
        ] {
            assert!(screen.contains(text), "{text}:\n{screen}");
        }
    }

    #[test]
    fn empty_loading_and_filtered_states_say_so() {
        let mut app = app();
        assert!(render(&app).contains("Loading nodes…"));
        app.update(Action::Server(Update::Nodes(Ok(Vec::new()))));
        assert!(render(&app).contains("No nodes yet."));
        for (tab, text) in [
            (Tab::Sites, "No sites yet."),
            (Tab::Jobs, "No jobs yet."),
            (Tab::Activity, "Nothing recorded yet."),
        ] {
            app.update(Action::Show(tab));
            app.update(Action::Server(match tab {
                Tab::Sites => Update::Sites(Ok(Vec::new())),
                Tab::Jobs => Update::Jobs(Ok(Vec::new())),
                _ => Update::Audit(Ok(Vec::new())),
            }));
            assert!(render(&app).contains(text), "{tab:?}");
        }
        app.update(Action::Show(Tab::Nodes));
        app.update(Action::Server(Update::Nodes(Ok(vec![node()]))));
        app.update(Action::StartFilter);
        for c in "zzz".chars() {
            app.update(Action::Type(c));
        }
        let screen = render(&app);
        assert!(screen.contains("Nothing matches \"zzz\""), "{screen}");
        assert!(
            screen.contains("/zzz"),
            "the footer shows the filter: {screen}"
        );
    }

    #[test]
    fn disconnected_and_error_states_are_on_screen() {
        let mut app = App::new("http://127.0.0.1:8443");
        app.update(Action::Server(Update::WatchDown {
            error: "cannot connect: connection refused".into(),
            retry_in: Duration::from_secs(4),
        }));
        app.update(Action::Server(Update::Nodes(Err(
            "connection refused".into()
        ))));
        let screen = render(&app);
        assert!(screen.contains("disconnected, retrying in 4s"), "{screen}");
        assert!(screen.contains("job stream: cannot connect"), "{screen}");
        assert!(
            screen.contains("Could not load nodes: connection refused"),
            "{screen}"
        );
    }

    #[test]
    fn sites_and_the_site_view_with_environments_and_domains() {
        let mut app = app();
        let mut shop = site();
        shop.status = SiteStatus::Active as i32;
        shop.environments[0].status = EnvironmentStatus::Active as i32;
        shop.environments[0].url = "https://shop.example".into();
        shop.environments[0].node_id = "n1".into();
        app.update(Action::Server(Update::Nodes(Ok(vec![node()]))));
        app.update(Action::Server(Update::Sites(Ok(vec![shop]))));
        app.update(Action::Show(Tab::Sites));
        let screen = render(&app);
        assert!(screen.contains("> shop"), "{screen}");
        assert!(screen.contains("https://shop.example"), "{screen}");
        app.update(Action::Open);
        assert!(render(&app).contains("Loading domains…"));
        app.update(Action::Server(Update::Domains {
            env_id: "e1".into(),
            result: Ok(vec![Domain {
                hostname: "shop.example".into(),
                is_primary: true,
                tls_status: TlsStatus::Active as i32,
                tls_expires_soon: true,
                ..Domain::default()
            }]),
        }));
        let screen = render(&app);
        for text in [
            "production",
            "staging",
            "web-1",
            "shop.example",
            "primary",
            "EXPIRES SOON",
            "d deploy",
        ] {
            assert!(screen.contains(text), "{text}:\n{screen}");
        }
        app.update(Action::Move(Move::Down));
        app.update(Action::Server(Update::Domains {
            env_id: "e2".into(),
            result: Ok(Vec::new()),
        }));
        assert!(render(&app).contains("No custom domains"));
    }

    #[test]
    fn jobs_update_live_and_the_job_view_streams_steps_and_log() {
        let mut app = app();
        app.update(Action::Show(Tab::Jobs));
        app.update(Action::Server(Update::Jobs(Ok(Vec::new()))));
        let mut running = job("0123456789abcdef", 1_764_091_743, JobStatus::Running, 2);
        running.r#type = JobType::NodeProvision as i32;
        running.summary = "provision web-1".into();
        running.start_time = Some(Timestamp {
            seconds: 1_764_091_743,
            nanos: 0,
        });
        running.progress = Some(JobProgress {
            current_step: 3,
            total_steps: 12,
            step_name: "install nginx".into(),
        });
        app.update(Action::Server(Update::JobChanged(Box::new(running))));
        app.update(Action::Tick(Timestamp {
            seconds: 1_764_091_743 + 75,
            nanos: 0,
        }));
        let screen = render(&app);
        for text in [
            "3 Jobs (1)",
            "> 01234567",
            "node_provision",
            "running",
            "3/12",
            "1m15s",
            "11-25 17:29",
            "provision",
        ] {
            assert!(screen.contains(text), "{text}:\n{screen}");
        }
        app.update(Action::Open);
        for event in [
            job_event::Event::Step(JobStep {
                index: 4,
                total: 12,
                name: "Nginx answers unknown hosts".into(),
                status: JobStepStatus::Started as i32,
            }),
            job_event::Event::LogLine(pressluft_proto::v1::JobLogLine {
                text: "changed: [node]".into(),
            }),
        ] {
            app.update(Action::Server(Update::JobEvent {
                job_id: "0123456789abcdef".into(),
                event: Box::new(JobEvent {
                    event: Some(event),
                    ..JobEvent::default()
                }),
                job: None,
            }));
        }
        let screen = render(&app);
        for text in [
            "node_provision running",
            "Steps (1)",
            "4/12",
            "Nginx answers unknown hosts",
            "changed: [node]",
            "x cancel",
        ] {
            assert!(screen.contains(text), "{text}:\n{screen}");
        }
    }

    #[test]
    fn activity_lists_the_audit_log() {
        let mut app = app();
        app.update(Action::Show(Tab::Activity));
        app.update(Action::Server(Update::Audit(Ok(vec![AuditEvent {
            id: 1,
            actor: "admin@example.com".into(),
            action: "magic login".into(),
            resource_type: "environment".into(),
            resource_id: "0123456789".into(),
            result: AuditResult::Succeeded as i32,
            ..AuditEvent::default()
        }]))));
        let screen = render(&app);
        for text in [
            "4 Activity (1)",
            "admin@example.com",
            "magic login",
            "environment 01234567",
            "succeeded",
        ] {
            assert!(screen.contains(text), "{text}:\n{screen}");
        }
    }

    #[test]
    fn overlays_help_confirm_and_message() {
        let mut app = app();
        app.update(Action::ToggleHelp);
        let screen = render_at(&app, 80, 30);
        assert!(screen.contains(" Keys "), "{screen}");
        assert!(screen.contains("restore a backup"), "{screen}");
        app.update(Action::Back);
        app.update(Action::Server(Update::Nodes(Ok(vec![node()]))));
        app.update(Action::Provision);
        let screen = render(&app);
        assert!(screen.contains(" Provision node "), "{screen}");
        assert!(screen.contains("Provision node web-1"), "{screen}");
        assert!(screen.contains("y / enter: do it"), "{screen}");
        app.update(Action::Back);
        app.update(Action::Server(Update::Done(Err(
            "node web-1 is provisioning (NODE_BUSY)".into(),
        ))));
        let screen = render(&app);
        assert!(screen.contains(" Not done "), "{screen}");
        assert!(screen.contains("NODE_BUSY"), "{screen}");
    }

    #[test]
    fn monochrome_draws_no_colour_and_a_large_terminal_scales() {
        let mut app = app();
        app.color = false;
        let mut failed = node();
        failed.status = NodeStatus::Failed as i32;
        app.update(Action::Server(Update::Nodes(Ok(vec![failed]))));
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
        terminal.draw(|frame| draw(frame, &app)).expect("draw");
        let colours: Vec<_> = terminal
            .backend()
            .buffer()
            .content()
            .iter()
            .filter(|c| c.fg != Color::Reset || c.bg != Color::Reset)
            .map(|c| c.symbol().to_owned())
            .collect();
        assert!(colours.is_empty(), "no colour with NO_COLOR: {colours:?}");
        let screen = render_at(&app, 200, 60);
        assert!(screen.contains("failed"), "{screen}");
        assert_eq!(screen.lines().count(), 60);
    }

    #[test]
    fn control_characters_are_not_drawn() {
        let mut app = app();
        app.update(Action::Server(Update::Nodes(Ok(vec![Node {
            name: "evil\u{1b}[2J".into(),
            ..Node::default()
        }]))));
        let screen = render(&app);
        assert!(screen.contains("evil [2J"), "{screen}");
        assert!(!screen.contains('\u{1b}'), "{screen}");
    }

    #[test]
    fn environment_rows_show_release_health() {
        let mut app = app();
        let mut shop = site();
        shop.environments[0].current_release_id = "r1".into();
        app.update(Action::Server(Update::Sites(Ok(vec![shop]))));
        app.update(Action::Show(Tab::Sites));
        app.update(Action::Open);
        app.update(Action::Server(Update::Releases {
            env_id: "e1".into(),
            result: Ok(vec![pressluft_proto::v1::Release {
                id: "r1".into(),
                is_current: true,
                health: pressluft_proto::v1::ReleaseHealth::Healthy as i32,
                ..Default::default()
            }]),
        }));
        assert!(render(&app).contains("healthy"));
        let _ = Environment::default();
    }
}
