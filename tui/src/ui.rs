//! Drawing. [`draw`] only reads the [`App`]; every change goes through `App::update`.

use pressluft_client::labels::{job_status, job_type, node_status, short_time, site_status};
use pressluft_proto::v1::{Job, Node, Site};
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize as _};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Clear, Paragraph, Row, Table, TableState, Tabs, Wrap};

use crate::app::{App, Connection, List, LoadState, Tab};

const KEYS_HINT: &str = "q quit  ? help  r refresh  tab/1-3 switch  j/k move";

const HELP: &[(&str, &str)] = &[
    ("tab, l, →", "next view"),
    ("shift-tab, h, ←", "previous view"),
    ("1 2 3", "nodes, sites, jobs"),
    ("j, ↓ / k, ↑", "move down / up"),
    ("g / G", "first / last row"),
    ("r", "reload everything"),
    ("?", "toggle this help"),
    ("esc", "close this help"),
    ("q, ctrl-c", "quit"),
];

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App) {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    draw_header(frame, header, app);
    match app.tab {
        Tab::Nodes => draw_list(frame, body, Tab::Nodes, &app.nodes, node_row, NODE_COLUMNS),
        Tab::Sites => draw_list(frame, body, Tab::Sites, &app.sites, site_row, SITE_COLUMNS),
        Tab::Jobs => draw_list(frame, body, Tab::Jobs, &app.jobs, job_row, JOB_COLUMNS),
    }
    draw_footer(frame, footer, app);
    if app.show_help {
        draw_help(frame, body);
    }
}

fn draw_header(frame: &mut Frame, area: Rect, app: &App) {
    let status = match &app.connection {
        Connection::Connecting => Span::styled("connecting…", Color::Yellow),
        Connection::Live => Span::styled("● live", Color::Green),
        Connection::Disconnected { retry_in, .. } => Span::styled(
            format!("disconnected, retrying in {}s", retry_in.as_secs().max(1)),
            Color::Red,
        ),
    };
    let right = Line::from(vec![
        status,
        Span::raw("  "),
        Span::raw(clean(&app.server)).dim(),
    ]);
    let [tabs_area, status_area] =
        Layout::horizontal([Constraint::Min(0), Constraint::Length(right.width() as u16)])
            .areas(area);

    let titles = Tab::ALL.iter().map(|tab| {
        let count = match tab {
            Tab::Nodes => app.nodes.items.len(),
            Tab::Sites => app.sites.items.len(),
            Tab::Jobs => app.jobs.items.len(),
        };
        format!("{} {} ({count})", tab.index() + 1, tab.title())
    });
    let tabs = Tabs::new(titles)
        .select(app.tab.index())
        .highlight_style(Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED));
    frame.render_widget(tabs, tabs_area);
    frame.render_widget(right.alignment(Alignment::Right), status_area);
}

fn draw_footer(frame: &mut Frame, area: Rect, app: &App) {
    let load_error = match app.tab {
        Tab::Nodes => failure(&app.nodes),
        Tab::Sites => failure(&app.sites),
        Tab::Jobs => failure(&app.jobs),
    };
    let line = if let Connection::Disconnected { error, .. } = &app.connection {
        Line::styled(format!("job stream: {}", clean(error)), Color::Red)
    } else if let Some(error) = load_error {
        Line::styled(format!("could not load: {}", clean(error)), Color::Red)
    } else {
        Line::raw(KEYS_HINT).dim()
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
    ("NAME", Constraint::Min(12)),
    ("HOSTNAME", Constraint::Min(16)),
    ("STATUS", Constraint::Length(14)),
    ("PHP", Constraint::Length(10)),
    ("LAST SEEN", Constraint::Length(20)),
];

const SITE_COLUMNS: Columns = &[
    ("SLUG", Constraint::Min(12)),
    ("NAME", Constraint::Min(16)),
    ("STATUS", Constraint::Length(10)),
    ("URL", Constraint::Fill(1)),
];

const JOB_COLUMNS: Columns = &[
    ("ID", Constraint::Length(8)),
    ("TYPE", Constraint::Length(17)),
    ("STATUS", Constraint::Length(10)),
    ("STEP", Constraint::Length(6)),
    ("CREATED", Constraint::Length(20)),
    ("SUMMARY", Constraint::Fill(1)),
];

fn draw_list<T>(
    frame: &mut Frame,
    area: Rect,
    tab: Tab,
    list: &List<T>,
    row: fn(&T) -> Row<'static>,
    columns: Columns,
) {
    let block = Block::bordered().title(format!(" {} ", tab.title()));
    if list.items.is_empty() {
        let message = match &list.state {
            LoadState::Loading => format!("Loading {}…", tab.title().to_lowercase()),
            LoadState::Failed(error) => {
                format!(
                    "Could not load {}: {}",
                    tab.title().to_lowercase(),
                    clean(error)
                )
            }
            LoadState::Loaded => empty_message(tab).to_owned(),
        };
        let paragraph = Paragraph::new(message)
            .block(block)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true });
        frame.render_widget(paragraph, area);
        return;
    }
    let header = Row::new(columns.iter().map(|(title, _)| *title)).bold();
    let table = Table::new(list.items.iter().map(row), columns.iter().map(|(_, w)| *w))
        .header(header)
        .block(block)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("> ");
    // A fresh state per frame keeps drawing read-only; ratatui scrolls to the selection.
    let mut state = TableState::new().with_selected(Some(list.selected));
    frame.render_stateful_widget(table, area, &mut state);
}

fn empty_message(tab: Tab) -> &'static str {
    match tab {
        Tab::Nodes => "No nodes yet. Register one with `pressluft node add`.",
        Tab::Sites => "No sites yet. Create one with `pressluft site create`.",
        Tab::Jobs => "No jobs yet.",
    }
}

fn node_row(node: &Node) -> Row<'static> {
    let status = node_status(node.status);
    Row::new([
        Cell::from(clean(&node.name)),
        Cell::from(clean(&node.hostname)),
        Cell::from(status.clone()).style(status_style(&status)),
        Cell::from(or_dash(&clean(&node.php_versions.join(",")))),
        Cell::from(short_time(node.last_seen_time.as_ref())),
    ])
}

fn site_row(site: &Site) -> Row<'static> {
    let status = site_status(site.status);
    let url = site
        .environments
        .iter()
        .find(|env| env.id == site.production_environment_id)
        .map_or("", |env| env.url.as_str());
    Row::new([
        Cell::from(clean(&site.slug)),
        Cell::from(clean(&site.name)),
        Cell::from(status.clone()).style(status_style(&status)),
        Cell::from(or_dash(&clean(url))),
    ])
}

fn job_row(job: &Job) -> Row<'static> {
    let status = job_status(job.status);
    let step = match &job.progress {
        Some(p) if p.current_step > 0 && p.total_steps > 0 => {
            format!("{}/{}", p.current_step, p.total_steps)
        }
        _ => "-".to_owned(),
    };
    Row::new([
        Cell::from(job.id.chars().take(8).collect::<String>()),
        Cell::from(job_type(job.r#type)),
        Cell::from(status.clone()).style(status_style(&status)),
        Cell::from(step),
        Cell::from(short_time(job.create_time.as_ref())),
        Cell::from(or_dash(&clean(&job.summary))),
    ])
}

fn status_style(status: &str) -> Style {
    let color = match status {
        "active" | "succeeded" => Color::Green,
        "failed" | "unreachable" => Color::Red,
        "queued" | "pending" => Color::Cyan,
        "cancelled" | "decommissioned" | "deleted" => Color::DarkGray,
        _ => Color::Yellow,
    };
    Style::new().fg(color)
}

fn draw_help(frame: &mut Frame, area: Rect) {
    let lines: Vec<Line> = HELP
        .iter()
        .map(|(keys, what)| {
            Line::from(vec![
                Span::raw(format!("{keys:>16}  ")).bold(),
                Span::raw(*what),
            ])
        })
        .collect();
    let popup = area.centered(
        Constraint::Length(44),
        Constraint::Length(HELP.len() as u16 + 2),
    );
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Help ")),
        popup,
    );
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
        Environment, JobProgress, JobStatus, JobType, NodeStatus, SiteStatus,
    };
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::app::{Action, tests::job};
    use crate::event::Update;

    fn render(app: &App) -> String {
        let mut terminal = Terminal::new(TestBackend::new(100, 16)).expect("terminal");
        terminal.draw(|frame| draw(frame, app)).expect("draw");
        let buffer = terminal.backend().buffer();
        let width = buffer.area.width as usize;
        buffer
            .content()
            .chunks(width)
            .map(|row| {
                row.iter()
                    .map(ratatui::buffer::Cell::symbol)
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn app() -> App {
        let mut app = App::new("http://127.0.0.1:8443");
        app.update(Action::Server(Update::WatchUp));
        app
    }

    #[test]
    fn nodes_tab_lists_nodes_with_status() {
        let mut app = app();
        app.update(Action::Server(Update::Nodes(Ok(vec![Node {
            id: "n1".into(),
            name: "web-1".into(),
            hostname: "10.0.0.5".into(),
            status: NodeStatus::Active as i32,
            php_versions: vec!["8.3".into()],
            ..Node::default()
        }]))));
        let screen = render(&app);
        assert!(screen.contains("1 Nodes (1)"), "{screen}");
        assert!(screen.contains("2 Sites (0)"), "{screen}");
        assert!(screen.contains("● live"), "{screen}");
        assert!(screen.contains("http://127.0.0.1:8443"), "{screen}");
        assert!(screen.contains("HOSTNAME"), "{screen}");
        assert!(screen.contains("> web-1"), "{screen}");
        assert!(screen.contains("10.0.0.5"), "{screen}");
        assert!(screen.contains("active"), "{screen}");
        assert!(screen.contains("q quit"), "{screen}");
    }

    #[test]
    fn empty_and_loading_states_say_so() {
        let mut app = app();
        let screen = render(&app);
        assert!(screen.contains("Loading nodes…"), "{screen}");

        app.update(Action::Server(Update::Nodes(Ok(Vec::new()))));
        let screen = render(&app);
        assert!(screen.contains("No nodes yet."), "{screen}");

        app.update(Action::Show(Tab::Sites));
        app.update(Action::Server(Update::Sites(Ok(Vec::new()))));
        assert!(render(&app).contains("No sites yet."));

        app.update(Action::Show(Tab::Jobs));
        app.update(Action::Server(Update::Jobs(Ok(Vec::new()))));
        assert!(render(&app).contains("No jobs yet."));
    }

    #[test]
    fn sites_tab_shows_the_production_url() {
        let mut app = app();
        app.update(Action::Show(Tab::Sites));
        app.update(Action::Server(Update::Sites(Ok(vec![Site {
            id: "s1".into(),
            slug: "blog".into(),
            name: "My Blog".into(),
            status: SiteStatus::Creating as i32,
            production_environment_id: "e1".into(),
            environments: vec![Environment {
                id: "e1".into(),
                url: "https://blog.example.com".into(),
                ..Environment::default()
            }],
            ..Site::default()
        }]))));
        let screen = render(&app);
        assert!(screen.contains("2 Sites (1)"), "{screen}");
        assert!(screen.contains("> blog"), "{screen}");
        assert!(screen.contains("creating"), "{screen}");
        assert!(screen.contains("https://blog.example.com"), "{screen}");
    }

    #[test]
    fn jobs_tab_shows_live_changes() {
        let mut app = app();
        app.update(Action::Show(Tab::Jobs));
        app.update(Action::Server(Update::Jobs(Ok(Vec::new()))));
        let mut running = job("0123456789abcdef", 1_764_091_743, JobStatus::Running, 2);
        running.r#type = JobType::NodeProvision as i32;
        running.summary = "provision web-1".into();
        running.progress = Some(JobProgress {
            current_step: 3,
            total_steps: 12,
            step_name: "install nginx".into(),
        });
        app.update(Action::Server(Update::JobChanged(Box::new(running))));
        let screen = render(&app);
        assert!(screen.contains("3 Jobs (1)"), "{screen}");
        assert!(screen.contains("> 01234567"), "{screen}");
        assert!(!screen.contains("89abcdef"), "{screen}");
        assert!(screen.contains("node_provision"), "{screen}");
        assert!(screen.contains("running"), "{screen}");
        assert!(screen.contains("3/12"), "{screen}");
        assert!(screen.contains("2025-11-25T17:29:03Z"), "{screen}");
        assert!(screen.contains("provision web-1"), "{screen}");
    }

    #[test]
    fn disconnected_state_shows_the_retry_and_the_error() {
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
        assert!(
            screen.contains("job stream: cannot connect: connection refused"),
            "{screen}"
        );
        assert!(
            screen.contains("Could not load nodes: connection refused"),
            "{screen}"
        );
    }

    #[test]
    fn a_load_error_with_old_data_is_shown_in_the_footer() {
        let mut app = app();
        app.update(Action::Server(Update::Nodes(Ok(vec![Node {
            name: "web-1".into(),
            ..Node::default()
        }]))));
        app.update(Action::Server(Update::Nodes(Err(
            "deadline exceeded".into()
        ))));
        let screen = render(&app);
        assert!(screen.contains("web-1"), "{screen}");
        assert!(
            screen.contains("could not load: deadline exceeded"),
            "{screen}"
        );
    }

    #[test]
    fn help_overlay_lists_the_keys() {
        let mut app = app();
        assert!(!render(&app).contains(" Help "));
        app.update(Action::ToggleHelp);
        let screen = render(&app);
        assert!(screen.contains(" Help "), "{screen}");
        assert!(screen.contains("reload everything"), "{screen}");
        assert!(screen.contains("quit"), "{screen}");
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
}
