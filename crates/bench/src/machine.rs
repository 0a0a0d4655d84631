//! Facts about the machine the numbers were measured on.

fn first_line(path: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find(|l| l.starts_with(key))
        .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
}

fn cmd(program: &str, args: &[&str]) -> String {
    std::process::Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// `nats_server`: the binary of the JetStream peer, asked for its version.
pub fn facts(nats_server: &std::path::Path) -> Vec<(String, String)> {
    let tmp = std::env::temp_dir();
    let fs = cmd(
        "df",
        &["-T", "--output=fstype,source", &tmp.to_string_lossy()],
    )
    .lines()
    .last()
    .unwrap_or("unknown")
    .split_whitespace()
    .collect::<Vec<_>>()
    .join(" ");
    vec![
        (
            "CPU".into(),
            first_line("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown".into()),
        ),
        (
            "cores".into(),
            std::thread::available_parallelism()
                .map_or(0, |n| n.get())
                .to_string(),
        ),
        (
            "memory".into(),
            first_line("/proc/meminfo", "MemTotal").unwrap_or_else(|| "unknown".into()),
        ),
        ("kernel".into(), cmd("uname", &["-r"])),
        (
            "temp dir filesystem".into(),
            format!("{} ({fs})", tmp.display()),
        ),
        ("rustc".into(), cmd("rustc", &["--version"])),
        ("redis".into(), cmd("redis-server", &["--version"])),
        (
            "nats-server".into(),
            format!(
                "{} (JetStream, `sync_interval: always`)",
                cmd(&nats_server.to_string_lossy(), &["--version"])
                    .trim_start_matches("nats-server: ")
            ),
        ),
        (
            "s6".into(),
            if cmd("sh", &["-c", "command -v s6-supervise"]) == "unknown" {
                "not installed".into()
            } else {
                "s6-supervise (Debian package s6)".into()
            },
        ),
        ("date".into(), society_core::time::now_rfc3339()),
    ]
}
