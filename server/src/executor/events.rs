//! Parses the callback plugin's output into executor events.

/// What the executor reports while a playbook runs.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecEvent {
    /// The playbook process started (its process group id, for crash clean-up).
    Spawned { pid: u32 },
    /// A task started or finished. `status` is started, ok, changed, failed or skipped.
    Step {
        index: i64,
        total: i64,
        name: String,
        status: String,
    },
    /// A redacted output line.
    Log(String),
    /// A `pressluft_result` fact set by the playbook.
    Result(serde_json::Value),
}

pub const PREFIX: &str = "PRESSLUFT_EVENT ";

/// Turns one (already redacted) output line into an event; `None` for lines to drop.
pub fn parse_line(line: &str) -> Option<ExecEvent> {
    let Some(json) = line.strip_prefix(PREFIX) else {
        return Some(ExecEvent::Log(line.to_owned()));
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
        return Some(ExecEvent::Log(line.to_owned()));
    };
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    match v["event"].as_str() {
        Some("task_start") => Some(ExecEvent::Step {
            index: v["index"].as_i64().unwrap_or(0),
            total: v["total"].as_i64().unwrap_or(0),
            name: text("name"),
            status: "started".to_owned(),
        }),
        Some("task_end") => Some(ExecEvent::Step {
            index: v["index"].as_i64().unwrap_or(0),
            total: v["total"].as_i64().unwrap_or(0),
            name: text("name"),
            status: text("status"),
        }),
        Some("result") => Some(ExecEvent::Result(v["data"].clone())),
        // Play headers and the final stats carry nothing the job history needs.
        Some("play" | "stats") => None,
        _ => Some(ExecEvent::Log(line.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_events() {
        assert_eq!(parse_line("hello"), Some(ExecEvent::Log("hello".into())));
        assert_eq!(
            parse_line(
                r#"PRESSLUFT_EVENT {"event":"task_start","index":2,"total":5,"name":"copy"}"#
            ),
            Some(ExecEvent::Step {
                index: 2,
                total: 5,
                name: "copy".into(),
                status: "started".into()
            })
        );
        assert_eq!(
            parse_line(
                r#"PRESSLUFT_EVENT {"event":"task_end","index":2,"total":5,"name":"copy","status":"changed"}"#
            ),
            Some(ExecEvent::Step {
                index: 2,
                total: 5,
                name: "copy".into(),
                status: "changed".into()
            })
        );
        assert_eq!(
            parse_line(r#"PRESSLUFT_EVENT {"event":"result","data":{"rolled_back":true}}"#),
            Some(ExecEvent::Result(serde_json::json!({"rolled_back": true})))
        );
        assert_eq!(parse_line(r#"PRESSLUFT_EVENT {"event":"stats"}"#), None);
        assert!(matches!(
            parse_line("PRESSLUFT_EVENT {broken"),
            Some(ExecEvent::Log(_))
        ));
    }
}
