//! End to end: the real `pressluft-tui` in tmux against a real server whose jobs run real
//! `ansible-playbook` (test playbooks) on the loopback test node. The screen is read with
//! `tmux capture-pane`: seeded nodes and sites show, a job started from outside appears and
//! its step progress moves live, a key press starts a job that then appears, the help overlay
//! opens, `q` exits and the shell's screen is back (alternate screen left).

use std::process::Command;
use std::time::Instant;

use pressluft_testkit::cli::{Cli, Playbooks, Server, TestNode, target_binary};

/// A node_provision test playbook with six one-second steps, so progress can be watched.
const SLOW_PROVISION: &str = "\
- name: Provision (test)
  hosts: node
  gather_facts: false
  tasks:
    - name: Step one
      ansible.builtin.command:
        argv: [sleep, '1']
      changed_when: false
    - name: Step two
      ansible.builtin.command:
        argv: [sleep, '1']
      changed_when: false
    - name: Step three
      ansible.builtin.command:
        argv: [sleep, '1']
      changed_when: false
    - name: Step four
      ansible.builtin.command:
        argv: [sleep, '1']
      changed_when: false
    - name: Step five
      ansible.builtin.command:
        argv: [sleep, '1']
      changed_when: false
    - name: Report
      ansible.builtin.set_fact:
        pressluft_result:
          php_versions: ['8.2']
";

/// A site_create test playbook that succeeds at once.
const QUICK_SITE: &str = "\
- name: Site (test)
  hosts: node
  gather_facts: false
  tasks:
    - name: Reach the node
      ansible.builtin.ping:
";

/// A tmux server of its own, killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(env: &[(&str, String)]) -> Tmux {
        let tmux = Tmux {
            socket: format!("pressluft-tui-test-{}", std::process::id()),
        };
        let mut args: Vec<String> = ["new-session", "-d", "-s", "main", "-x", "100", "-y", "30"]
            .iter()
            .map(ToString::to_string)
            .collect();
        for (name, value) in env {
            args.push("-e".into());
            args.push(format!("{name}={value}"));
        }
        args.extend(["bash", "--norc", "--noprofile"].map(String::from));
        tmux.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        tmux
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux (Debian package tmux) runs");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "main"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "main"])
    }

    /// Waits until the screen satisfies `ok`; panics with the screen after the (scaled)
    /// step limit.
    fn wait(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let limit = pressluft_testkit::scaled(pressluft_testkit::limit::STEP);
        let deadline = Instant::now() + limit;
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited {limit:?} for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(pressluft_testkit::POLL);
        }
    }

    fn wait_for(&self, text: &str) -> String {
        self.wait(text, |screen| screen.contains(text))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// The step counters ("3/6") on screen.
fn steps_on(screen: &str) -> Vec<String> {
    screen
        .split_whitespace()
        .filter(|w| {
            w.split_once('/')
                .is_some_and(|(a, b)| a.parse::<u32>().is_ok() && b == "6")
        })
        .map(ToString::to_string)
        .collect()
}

#[test]
#[ignore = "real node: needs the test bed (scripts/test.sh runs it)"]
fn the_dashboard_follows_jobs_live_starts_actions_and_restores_the_terminal() {
    let node = TestNode::from_env();
    let playbooks = Playbooks::new(&[
        ("node_provision.yml", SLOW_PROVISION),
        ("site_create.yml", QUICK_SITE),
    ]);
    let server = Server::start_with_jobs(&playbooks, &node, None);
    let token = server.create_token("tui");
    let cli = Cli::with_token(&server, &token);
    let node_id = pressluft_testkit::cli::add_test_node(&cli, &node, "web-1");
    cli.run(&["node", "provision", &node_id, "--wait"])
        .success();
    cli.run(&[
        "site", "create", "--name", "Shop", "--slug", "shop", "--node", &node_id, "--wait",
    ])
    .success();

    let tui = target_binary("pressluft-tui");
    let tmux = Tmux::start(&[
        ("PRESSLUFT_SERVER", server.url.clone()),
        ("PRESSLUFT_TOKEN", token.clone()),
        ("HOME", cli.home().display().to_string()),
        ("PRESSLUFT_CONFIG", cli.config_path().display().to_string()),
        ("TERM", "xterm-256color".into()),
    ]);
    tmux.keys(&["clear; echo BEFORE-THE-DASHBOARD", "Enter"]);
    tmux.wait_for("BEFORE-THE-DASHBOARD");
    tmux.keys(&[&tui.display().to_string(), "Enter"]);

    // Seeded data, live.
    let screen = tmux.wait("the node list", |s| {
        s.contains("web-1") && s.contains("● live")
    });
    assert!(screen.contains("active"), "{screen}");
    tmux.keys(&["2"]);
    tmux.wait_for("Shop");

    // A job started from outside appears, and its step progress moves while it runs.
    tmux.keys(&["3"]);
    tmux.wait_for("site_create");
    cli.run(&["node", "provision", &node_id]).success();
    let first = tmux.wait("a running provision", |s| {
        s.contains("running") && !steps_on(s).is_empty()
    });
    let before = steps_on(&first);
    tmux.wait("the step counter to move", |s| {
        let now = steps_on(s);
        !now.is_empty() && now != before
    });
    tmux.wait("the provision to succeed", |s| {
        s.lines()
            .any(|l| l.contains("node_provision") && l.contains("succeeded"))
            && !s.contains("running")
    });

    // A key press starts a job (with confirmation), and it appears.
    tmux.keys(&["1"]);
    tmux.wait_for("P provision");
    tmux.keys(&["P"]);
    tmux.wait_for("Provision node web-1");
    tmux.keys(&["y"]);
    tmux.wait_for("queued: provision");
    tmux.keys(&["3"]);
    tmux.wait("the new job in the list", |s| {
        s.lines().filter(|l| l.contains("node_provision")).count() >= 3
    });

    // The job view follows a job's steps and log.
    tmux.keys(&["g", "Enter"]);
    tmux.wait("the job view", |s| {
        s.contains("Steps (") && s.contains(" Log ")
    });
    tmux.keys(&["Escape"]);

    // The site view: environments and domains; deploy offers its sources (cancelled).
    tmux.keys(&["2", "Enter"]);
    tmux.wait_for("No custom domains");
    tmux.keys(&["d"]);
    tmux.wait_for("A git repository");
    tmux.keys(&["Escape", "Escape"]);

    // Help, then quit: the shell's screen is back.
    tmux.keys(&["?"]);
    tmux.wait_for("restore a backup");
    tmux.keys(&["Escape"]);
    tmux.keys(&["q"]);
    let screen = tmux.wait("the shell again", |s| s.contains("BEFORE-THE-DASHBOARD"));
    assert!(
        !screen.contains("● live"),
        "the dashboard is gone: {screen}"
    );
    assert_eq!(
        tmux.run(&["display-message", "-p", "-t", "main", "#{alternate_on}"])
            .trim(),
        "0",
        "the alternate screen was left"
    );
}
