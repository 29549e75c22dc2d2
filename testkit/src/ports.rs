//! The machine's own listening ports (shared by the tests and the overhead bench).

/// TCP ports this machine already serves beyond loopback (its own management port, say):
/// the test node's firewall keeps them open through configuration, as an operator would.
pub fn machine_public_ports() -> &'static [u16] {
    static PORTS: std::sync::OnceLock<Vec<u16>> = std::sync::OnceLock::new();
    PORTS.get_or_init(|| {
        let out = std::process::Command::new("ss")
            .args(["-Hltn"])
            .output()
            .expect("ss lists listening sockets");
        let mut ports: Vec<u16> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().nth(3))
            .filter(|local| !local.starts_with("127.") && !local.starts_with("[::1]"))
            .filter_map(|local| local.rsplit(':').next()?.parse().ok())
            .filter(|p| ![22, 80, 443].contains(p))
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports
    })
}
