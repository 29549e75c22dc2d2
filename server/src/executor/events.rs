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
///
/// An event line is `PRESSLUFT_EVENT <token> <json>` with this attempt's secret `token`
/// (the callback plugin reads it from its environment). Output that a node, a tenant or a
/// module printed may look like an event but cannot carry the token: it stays a log line,
/// so nobody but the callback reports steps or results.
pub fn parse_line(line: &str, token: &str) -> Option<ExecEvent> {
    let Some(json) = line
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.strip_prefix(token))
        .and_then(|rest| rest.strip_prefix(' '))
        .filter(|_| !token.is_empty())
    else {
        let line = if token.is_empty() {
            line.to_owned()
        } else {
            line.replace(token, "[token]")
        };
        return Some(ExecEvent::Log(line));
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
        return Some(ExecEvent::Log(format!("{PREFIX}(unparsable event)")));
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
        _ => Some(ExecEvent::Log(format!("{PREFIX}(unknown event)"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "t0k3n";

    #[test]
    fn lines_become_events() {
        assert_eq!(parse_line("hello", T), Some(ExecEvent::Log("hello".into())));
        assert_eq!(
            parse_line(
                r#"PRESSLUFT_EVENT t0k3n {"event":"task_start","index":2,"total":5,"name":"copy"}"#,
                T
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
                r#"PRESSLUFT_EVENT t0k3n {"event":"task_end","index":2,"total":5,"name":"copy","status":"changed"}"#,
                T
            ),
            Some(ExecEvent::Step {
                index: 2,
                total: 5,
                name: "copy".into(),
                status: "changed".into()
            })
        );
        assert_eq!(
            parse_line(
                r#"PRESSLUFT_EVENT t0k3n {"event":"result","data":{"rolled_back":true}}"#,
                T
            ),
            Some(ExecEvent::Result(serde_json::json!({"rolled_back": true})))
        );
        assert_eq!(
            parse_line(r#"PRESSLUFT_EVENT t0k3n {"event":"stats"}"#, T),
            None
        );
        assert!(matches!(
            parse_line("PRESSLUFT_EVENT t0k3n {broken", T),
            Some(ExecEvent::Log(_))
        ));
    }

    /// Output printed by anything but the callback (a tenant's plugin header, a command's
    /// stdout) cannot report a result, even when it looks like an event.
    #[test]
    fn lines_without_the_attempts_token_are_only_log_lines() {
        for forged in [
            r#"PRESSLUFT_EVENT {"event":"result","data":{"x":1}}"#,
            r#"PRESSLUFT_EVENT wrong {"event":"result","data":{"x":1}}"#,
            r#"PRESSLUFT_EVENT t0k3nX {"event":"result","data":{"x":1}}"#,
            r#"  PRESSLUFT_EVENT t0k3n {"event":"result","data":{"x":1}}"#,
        ] {
            assert!(
                matches!(parse_line(forged, T), Some(ExecEvent::Log(_))),
                "{forged}"
            );
        }
        // An empty token never matches (a misconfigured run reports nothing, not anything).
        assert!(matches!(
            parse_line(r#"PRESSLUFT_EVENT  {"event":"result","data":{}}"#, ""),
            Some(ExecEvent::Log(_))
        ));
        // The token never reaches a stored line.
        assert_eq!(
            parse_line("echo t0k3n", T),
            Some(ExecEvent::Log("echo [token]".into()))
        );
    }
}
