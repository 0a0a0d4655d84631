//! The deployment recipes under `deploy/` (SCALING.md) keep the promises a
//! society depends on: one supervisor per society, started as `society
//! --root DIR supervise` on a volume one machine mounts, stopped with more
//! time than the agents' `grace`, and not restarted when restarting cannot
//! help (exit codes 2-5). Read without a network or a cluster; every
//! command line in them is handed to the binary under test with `--help`,
//! so a renamed flag or subcommand fails here, not on a server.

use crate::support::BIN;
use society_runtime::exit::Code;
use society_testkit::Society;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use yaml_rust2::{Yaml, YamlLoader};

/// The text of `deploy/REL`.
fn recipe(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `argv` runs society, and society accepts its arguments (`--help` after
/// them: parsed, nothing done).
fn assert_runs_society(what: &str, argv: &[String]) {
    let program = argv.first().map(String::as_str).unwrap_or("");
    assert!(
        program == "society" || program.ends_with("/society"),
        "{what}: runs {program:?}, not society"
    );
    let out = Command::new(BIN)
        .args(&argv[1..])
        .arg("--help")
        .env_remove("SOCIETY_ROOT")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{what}: society does not accept `{}`: {}",
        argv[1..].join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The argument after `--root`.
fn root_of<'a>(what: &str, argv: &'a [String]) -> &'a str {
    let at = argv.iter().position(|a| a == "--root");
    match at.and_then(|i| argv.get(i + 1)) {
        Some(root) => root.as_str(),
        None => panic!("{what}: {argv:?} names no --root"),
    }
}

fn of_kind<'a>(docs: &'a [Yaml], kind: &str) -> Vec<&'a Yaml> {
    docs.iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect()
}

fn strings(list: &Yaml) -> Vec<String> {
    list.as_vec()
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn toml_str<'a>(table: &'a toml::Table, section: &str, key: &str) -> Option<&'a str> {
    table.get(section)?.get(key)?.as_str()
}

#[test]
fn kubernetes_runs_each_society_once_on_a_single_node_volume() {
    let text = recipe("kubernetes/society.yaml");
    let docs = YamlLoader::load_from_str(&text).expect("deploy/kubernetes/society.yaml parses");
    let (sets, configs) = (of_kind(&docs, "StatefulSet"), of_kind(&docs, "ConfigMap"));
    assert!(
        !sets.is_empty(),
        "no StatefulSet in {} documents",
        docs.len()
    );
    let mut societies = BTreeSet::new();
    for set in sets {
        let name = set["metadata"]["name"]
            .as_str()
            .unwrap_or("a StatefulSet without a name");
        let spec = &set["spec"];
        assert_eq!(
            spec["replicas"].as_i64(),
            Some(1),
            "{name}: replicas must be 1 (a second pod is a second supervisor)"
        );
        let pod = &spec["template"]["spec"];
        let grace = pod["terminationGracePeriodSeconds"].as_i64();
        assert!(
            grace.is_some_and(|g| g >= 30),
            "{name}: terminationGracePeriodSeconds {grace:?}, want >= 30 (above the agents' grace)"
        );

        let claims = spec["volumeClaimTemplates"]
            .as_vec()
            .cloned()
            .unwrap_or_default();
        assert!(!claims.is_empty(), "{name}: no volumeClaimTemplates");
        for claim in &claims {
            let modes = strings(&claim["spec"]["accessModes"]);
            assert_eq!(
                modes,
                ["ReadWriteOnce"],
                "{name}: accessModes of claim {:?} (one node's local filesystem, never shared)",
                claim["metadata"]["name"].as_str()
            );
        }

        let containers = pod["containers"].as_vec().cloned().unwrap_or_default();
        let supervisor = containers
            .iter()
            .find(|c| {
                strings(&c["command"])
                    .last()
                    .is_some_and(|a| a == "supervise")
            })
            .unwrap_or_else(|| panic!("{name}: no container whose command ends in `supervise`"));
        let command = strings(&supervisor["command"]);
        assert_runs_society(name, &command);
        let root = root_of(name, &command);
        let mounts = supervisor["volumeMounts"]
            .as_vec()
            .cloned()
            .unwrap_or_default();
        let on_root = mounts
            .iter()
            .find(|m| m["mountPath"].as_str() == Some(root));
        let on_root = on_root.and_then(|m| m["name"].as_str());
        assert!(
            claims
                .iter()
                .any(|c| c["metadata"]["name"].as_str() == on_root),
            "{name}: the society root {root} is not on a claim (mounted there: {on_root:?})"
        );
        let secret_env = supervisor["envFrom"]
            .as_vec()
            .is_some_and(|v| v.iter().any(|e| !e["secretRef"]["name"].is_badvalue()))
            || supervisor["env"].as_vec().is_some_and(|v| {
                v.iter()
                    .any(|e| !e["valueFrom"]["secretKeyRef"].is_badvalue())
            });
        assert!(
            secret_env,
            "{name}: NATS credentials do not come from a Secret through env"
        );

        let config = pod["volumes"]
            .as_vec()
            .and_then(|v| v.iter().find_map(|vol| vol["configMap"]["name"].as_str()))
            .unwrap_or_else(|| panic!("{name}: mounts no ConfigMap"));
        let map = configs
            .iter()
            .find(|c| c["metadata"]["name"].as_str() == Some(config))
            .unwrap_or_else(|| panic!("{name}: ConfigMap {config} is not in the file"));
        let toml_text = map["data"]["society.toml"]
            .as_str()
            .unwrap_or_else(|| panic!("ConfigMap {config}: no society.toml"));
        let table: toml::Table = toml::from_str(toml_text)
            .unwrap_or_else(|e| panic!("ConfigMap {config}: society.toml: {e}"));
        let society = toml_str(&table, "society", "name")
            .unwrap_or_else(|| panic!("ConfigMap {config}: society.toml has no [society] name"));
        let url = toml_str(&table, "federation", "nats_url").unwrap_or("");
        assert!(
            url.starts_with("nats://") || url.starts_with("tls://"),
            "ConfigMap {config}: [federation] nats_url {url:?}"
        );
        assert!(
            societies.insert(society.to_string()),
            "{name}: society {society} runs in two StatefulSets"
        );
        // The binary under test reads it as the supervisor will.
        let checked = Society::new(BIN, toml_text).run(&["check"]);
        assert!(
            checked.status.success(),
            "ConfigMap {config}: `society check`: {}",
            String::from_utf8_lossy(&checked.stderr)
        );
    }
}

/// `Key=Value` lines of one `[section]` of a unit file, in order.
fn unit_section<'a>(text: &'a str, section: &str) -> Vec<(&'a str, &'a str)> {
    let header = format!("[{section}]");
    text.lines()
        .map(str::trim)
        .skip_while(|l| *l != header)
        .skip(1)
        .take_while(|l| !l.starts_with('['))
        .filter(|l| !l.starts_with('#') && !l.starts_with(';'))
        .filter_map(|l| l.split_once('='))
        .collect()
}

#[test]
fn systemd_unit_supervises_and_gives_up_only_when_restarting_cannot_help() {
    let text = recipe("systemd/society@.service");
    let service = unit_section(&text, "Service");
    let value = |key: &str| {
        let last = service.iter().rev().find(|(k, _)| *k == key);
        last.map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("society@.service: no {key}="))
    };
    let argv = |key: &str| -> Vec<String> {
        value(key)
            .split_whitespace()
            .map(|a| a.replace("%i", "north"))
            .collect()
    };
    let start = argv("ExecStart");
    assert_eq!(
        start.last().map(String::as_str),
        Some("supervise"),
        "ExecStart {start:?}"
    );
    assert_runs_society("ExecStart", &start);
    assert_eq!(
        root_of("ExecStart", &start),
        "/var/lib/society/north",
        "ExecStart {start:?}"
    );
    assert_runs_society("ExecReload", &argv("ExecReload"));
    assert_eq!(value("KillMode"), "mixed", "KillMode");
    assert_eq!(value("Restart"), "on-failure", "Restart");
    let prevented: BTreeSet<i32> = value("RestartPreventExitStatus")
        .split_whitespace()
        .map(|c| {
            c.parse()
                .unwrap_or_else(|_| panic!("RestartPreventExitStatus: {c:?}"))
        })
        .collect();
    let hopeless: BTreeSet<i32> = [Code::Usage, Code::Locked, Code::NotFound, Code::Invalid]
        .iter()
        .map(|c| c.code())
        .collect();
    assert_eq!(
        prevented, hopeless,
        "RestartPreventExitStatus (usage, in use, no society, invalid)"
    );
    let stop = value("TimeoutStopSec");
    let secs: u64 = stop
        .strip_suffix('s')
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("TimeoutStopSec={stop}: expected seconds, e.g. 30s"));
    assert!(
        secs >= 30,
        "TimeoutStopSec={stop}: want >= 30s (above the agents' grace)"
    );
    systemd_analyze_verify(&text);
}

/// `systemd-analyze verify` on a copy named for an instance, whose binary
/// is the one under test (verify wants the program to exist); skipped where
/// the program is missing.
fn systemd_analyze_verify(text: &str) {
    let found = Command::new("systemd-analyze").arg("--version").output();
    if !found.is_ok_and(|o| o.status.success()) {
        eprintln!("note: systemd-analyze not found; society@.service was not verified by systemd");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("society@deploytest.service");
    assert!(
        text.contains("/usr/local/bin/society "),
        "ExecStart moved: update this test"
    );
    std::fs::write(
        &unit,
        text.replace("/usr/local/bin/society ", &format!("{BIN} ")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Only what it says of this unit: the machine's own units are not ours.
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("society@deploytest"))
        .collect();
    assert!(
        out.status.success() && ours.is_empty(),
        "systemd-analyze verify society@.service ({}):\n{stderr}",
        out.status
    );
}

#[test]
fn nomad_job_runs_each_society_with_exec_on_a_host_volume() {
    let text = recipe("nomad/society.nomad.hcl");
    // Code only, each line's spaces collapsed: `driver = "exec"`.
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("//"))
        .collect();
    let starts: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("group \""))
        .collect();
    assert!(!starts.is_empty(), "no group in the job");
    for (n, &at) in starts.iter().enumerate() {
        let group = &lines[at..starts.get(n + 1).copied().unwrap_or(lines.len())];
        let name = &group[0];
        let has = |line: &str| group.iter().any(|l| l == line);
        assert!(
            has("count = 1"),
            "{name}: count must be 1 (one supervisor per society)"
        );
        assert!(
            has("driver = \"exec\""),
            "{name}: no task with driver = \"exec\""
        );
        assert!(has("restart {"), "{name}: no restart block");
        assert!(
            has("mode = \"delay\""),
            "{name}: restart mode is not \"delay\""
        );
        assert!(has("type = \"host\""), "{name}: no host volume");
        assert!(
            has("kill_timeout = \"30s\""),
            "{name}: kill_timeout is not 30s"
        );

        let field = |key: &str| group.iter().find(|l| l.starts_with(&format!("{key} = ")));
        let mut argv = field("command").map(|l| quoted(l)).unwrap_or_default();
        argv.extend(field("args").map(|l| quoted(l)).unwrap_or_default());
        assert_eq!(
            argv.last().map(String::as_str),
            Some("supervise"),
            "{name}: runs {argv:?}"
        );
        assert_runs_society(name, &argv);
        let mount = group.iter().skip_while(|l| *l != "volume_mount {");
        let destination = mount.take_while(|l| *l != "}").find_map(|l| {
            l.strip_prefix("destination = ")
                .map(|d| d.trim_matches('"'))
        });
        assert_eq!(
            destination,
            Some(root_of(name, &argv)),
            "{name}: the host volume is not mounted at the society root"
        );
    }
}

/// The strings quoted on one line: `args = ["--root", "/x"]` gives both.
fn quoted(line: &str) -> Vec<String> {
    line.split('"')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect()
}
