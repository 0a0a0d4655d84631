//! The sandbox every program an agent runs is started in: a `command`
//! brain's program, an `llm` brain's own tools and its MCP servers.
//!
//! ```toml
//! [sandbox]                 # society-wide; a brain's `sandbox = { … }` wins key by key
//! mode = "on"               # "on" (default): what the kernel offers; "required": refuse
//!                           # to run a program without Landlock; "off"
//! network = false           # TCP connect/bind (Landlock ABI ≥ 4)
//! read = ["/opt/models"]    # more read-only paths (relative: to the society root)
//! write = []                # more read-write paths
//! pass_env = ["LANG"]       # variables passed through from the runtime's environment
//! memory = "8GiB"           # address space (RLIMIT_AS)
//! cpu = "10m"               # CPU time (RLIMIT_CPU)
//! processes = 256           # processes at once (pids cgroup; else RLIMIT_NPROC)
//! open_files = 1024         # RLIMIT_NOFILE
//! file_size = "1GiB"        # largest file written (RLIMIT_FSIZE)
//! ```
//!
//! Theory of operation: the program is not started directly but through
//! `society sandbox-exec` ([`launcher_main`]), a fresh single-threaded
//! process that applies everything to itself and then `exec`s the program —
//! so nothing runs between `fork` and `exec` of the (multi-threaded) agent,
//! and the crate needs no `unsafe`. The launcher starts a new session (the
//! program leads its own session and process group), joins a `pids` cgroup
//! of its own where the runtime could make one, sets the resource limits,
//! and restricts itself with Landlock: read-write in the agent's
//! `workspace/`, read-only in its own folder, the shared context, the
//! program's own directory and the system's paths; no TCP unless allowed;
//! no signals to and no abstract sockets of processes outside (ABI ≥ 6).
//! The environment is rebuilt from nothing ([`environment`]): no API key of
//! an `llm` brain reaches a program unless the config names it.
//!
//! After every run the runtime kills what the program left behind
//! ([`Jail::end`]): the whole cgroup where there is one, else every process
//! still carrying the agent folder's marker in its environment (a program
//! that called `setsid` left the process group, not that).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

mod cgroup;
mod launcher;
pub mod procfs;

pub use launcher::launcher_main;

/// The hidden subcommand of `society` that starts a program sandboxed.
pub const LAUNCHER_COMMAND: &str = "sandbox-exec";
/// The plan handed to the launcher (JSON), removed before the program starts.
const PLAN_ENV: &str = "SOCIETY_SANDBOX_PLAN";
/// Exit status of the launcher when it could not sandbox or start the program.
pub const LAUNCH_FAILED: i32 = 126;

/// `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Landlock and the limits where the kernel has them.
    #[default]
    On,
    /// As `on`, but a program is not started without Landlock.
    Required,
    /// No Landlock and no limits (the environment is still rebuilt).
    Off,
}

/// The `[sandbox]` table, merged: society-wide, then the brain's own.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub mode: Mode,
    pub network: bool,
    pub read: Vec<PathBuf>,
    pub write: Vec<PathBuf>,
    pub pass_env: Vec<String>,
    #[serde(with = "size_str")]
    pub memory: u64,
    #[serde(with = "society_core::time::duration_str")]
    pub cpu: Duration,
    pub processes: u64,
    pub open_files: u64,
    #[serde(with = "size_str")]
    pub file_size: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mode: Mode::On,
            network: false,
            read: Vec::new(),
            write: Vec::new(),
            pass_env: Vec::new(),
            memory: 8 << 30,
            cpu: Duration::from_secs(600),
            processes: 256,
            open_files: 1024,
            file_size: 1 << 30,
        }
    }
}

impl Settings {
    /// The brain config's `society_sandbox` (injected from `[sandbox]`) with
    /// its own `sandbox` table over it.
    pub fn from_brain(brain: &serde_json::Value) -> Result<Settings, String> {
        let mut merged = serde_json::Map::new();
        for key in ["society_sandbox", "sandbox"] {
            match brain.get(key) {
                None | Some(serde_json::Value::Null) => {}
                Some(serde_json::Value::Object(table)) => merged.extend(table.clone()),
                Some(other) => {
                    return Err(format!(
                        "`sandbox` must be a table, e.g. sandbox = {{ mode = \"required\" }}; got {other}"
                    ))
                }
            }
        }
        let s: Settings = serde_json::from_value(serde_json::Value::Object(merged))
            .map_err(|e| format!("sandbox: {e}"))?;
        s.check()?;
        Ok(s)
    }

    fn check(&self) -> Result<(), String> {
        check_names("sandbox.pass_env", &self.pass_env)?;
        for (what, v) in [
            ("memory", self.memory),
            ("processes", self.processes),
            ("open_files", self.open_files),
            ("file_size", self.file_size),
        ] {
            if v == 0 {
                return Err(format!("sandbox.{what} must be more than zero"));
            }
        }
        if self.cpu.as_secs() == 0 {
            return Err("sandbox.cpu must be at least one second".into());
        }
        Ok(())
    }
}

/// Environment variable names a program can be given or passed.
pub(crate) fn check_names<'a>(
    what: &str,
    names: impl IntoIterator<Item = &'a String>,
) -> Result<(), String> {
    match names
        .into_iter()
        .find(|k| k.is_empty() || k.contains(['=', '\0']))
    {
        Some(key) => Err(format!("{what}: invalid environment variable name {key:?}")),
        None => Ok(()),
    }
}

/// Byte sizes: a number of bytes, or a string such as `"512MiB"`, `"8G"`.
mod size_str {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(*v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(n),
            Raw::S(s) => super::parse_size(&s).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "invalid size {s:?}: a number of bytes, or e.g. \"512MiB\", \"8GiB\""
                ))
            }),
        }
    }
}

fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let shift = match unit.trim().trim_end_matches("iB").trim_end_matches('B') {
        "" => 0,
        "K" | "k" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

/// `cpu` for a program that lives as long as the agent (an MCP server).
pub(crate) const NO_CPU_LIMIT: Duration = Duration::MAX;

/// What the launcher applies: everything resolved to absolute paths.
#[derive(Debug, Serialize, Deserialize)]
struct Plan {
    required: bool,
    landlock: bool,
    network: bool,
    /// Read-write.
    write: Vec<PathBuf>,
    /// Read and execute.
    read: Vec<PathBuf>,
    memory: u64,
    cpu_secs: u64,
    processes: u64,
    open_files: u64,
    file_size: u64,
    /// `cgroup.procs` of the run's pids cgroup, when there is one.
    cgroup_procs: Option<PathBuf>,
}

static LAUNCHER: OnceLock<PathBuf> = OnceLock::new();

/// Called once by the agent process: the `society` binary that starts
/// programs sandboxed. Without it (a brain used as a library, in unit
/// tests) programs run with the rebuilt environment but no sandbox, and
/// `mode = "required"` refuses them.
pub fn set_launcher(exe: PathBuf) {
    let _ = LAUNCHER.set(exe);
}

/// Process ids whose sessions are long-lived programs of this agent (MCP
/// servers): the sweep after a run leaves them alone.
static KEEP: Mutex<Vec<i32>> = Mutex::new(Vec::new());

fn keep(pid: i32, alive: bool) {
    let mut keep = KEEP.lock().unwrap_or_else(|e| e.into_inner());
    keep.retain(|p| *p != pid);
    if alive {
        keep.push(pid);
    }
}

/// What the kernel offers, probed once per process.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// The Landlock ABI version; `None`: the kernel has no Landlock.
    pub landlock_abi: Option<i32>,
    /// Per-run pids cgroups can be made; else process counts rely on
    /// RLIMIT_NPROC and leftovers on the folder marker.
    pub cgroup: bool,
    /// RLIMIT_NPROC is not enforced for root.
    pub nproc_enforced: bool,
}

impl Probe {
    /// One line for `status`/doctor output when something is missing.
    pub fn shortfall(&self) -> Option<String> {
        let mut missing = Vec::new();
        if self.landlock_abi.is_none() {
            missing.push(
                "this kernel has no Landlock: programs agents run are not confined to their workspace \
                 (mode = \"required\" refuses to run them)",
            );
        } else if self.landlock_abi < Some(4) {
            missing.push("Landlock below ABI 4: programs' TCP access is not restricted");
        }
        if !self.cgroup && !self.nproc_enforced {
            missing.push(
                "no pids cgroup and running as root: a program's process count is not limited",
            );
        }
        (!missing.is_empty()).then(|| missing.join("; "))
    }
}

pub fn probe() -> &'static Probe {
    static PROBE: OnceLock<Probe> = OnceLock::new();
    PROBE.get_or_init(|| Probe {
        landlock_abi: launcher::landlock_abi(),
        cgroup: cgroup::available(),
        nproc_enforced: !nix::unistd::geteuid().is_root(),
    })
}

/// The minimal environment a program gets: `PATH`, `HOME` and `TMPDIR` (the
/// workspace), the locale and time zone, the names in `pass_env` from the
/// runtime's own environment, then the config's `env`.
pub(crate) fn environment(
    workspace: &Path,
    pass_env: &[String],
    env: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    out.insert(
        "PATH".to_string(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
    );
    let ws = workspace.to_string_lossy().into_owned();
    out.insert("HOME".into(), ws.clone());
    out.insert("TMPDIR".into(), ws);
    let always = ["LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM"];
    for name in always
        .iter()
        .copied()
        .chain(pass_env.iter().map(String::as_str))
    {
        if let Ok(v) = std::env::var(name) {
            if crate::secrets::secret_name(name) {
                crate::secrets::remember(&v);
            }
            out.insert(name.to_string(), v);
        }
    }
    out.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

/// Where one program runs.
pub(crate) struct Place<'a> {
    pub program: &'a Path,
    pub args: &'a [String],
    pub folder: &'a Path,
    pub workspace: &'a Path,
    pub root: &'a Path,
}

/// A program about to run, and what must be cleaned up after it.
pub(crate) struct Jail {
    cgroup: Option<cgroup::Cgroup>,
    marker: Vec<u8>,
    /// A long-lived program's session, spared by other runs' sweeps.
    kept: Option<i32>,
    /// For the activity record: what was applied.
    pub summary: serde_json::Value,
}

/// What [`Jail::end`] found and killed.
#[derive(Debug, Default)]
pub(crate) struct Contained {
    /// Processes left running after the program's group was killed.
    pub leftovers: Vec<i32>,
    /// Times a fork failed at the process limit (pids cgroup only).
    pub process_limit_hits: u64,
}

impl Contained {
    pub fn any(&self) -> bool {
        !self.leftovers.is_empty() || self.process_limit_hits > 0
    }
}

/// Builds the command for one program: through the launcher when there is
/// one and the sandbox is not off, with the environment rebuilt either way.
/// The caller wires the pipes. `Err`: the program must not run (the text
/// says why).
pub(crate) fn command(
    settings: &Settings,
    place: &Place<'_>,
    env: BTreeMap<String, String>,
    name: &str,
) -> Result<(std::process::Command, Jail), String> {
    let mut marker = format!("{}=", crate::command::FOLDER_ENV).into_bytes();
    marker.extend_from_slice(place.folder.as_os_str().as_encoded_bytes());
    // Landlock's rules name paths: a `workspace/` that is a link would
    // open the sandbox on wherever it points.
    if let Err(link) = society_core::confine::check(place.workspace) {
        return Err(format!(
            "{name} not started: workspace/ cannot be used: {link}"
        ));
    }
    let launcher = LAUNCHER.get().filter(|_| settings.mode != Mode::Off);
    let probe = probe();
    if settings.mode == Mode::Required && (launcher.is_none() || probe.landlock_abi.is_none()) {
        return Err(format!(
            "sandbox mode \"required\": {name} not started because {}",
            if launcher.is_none() {
                "no sandbox launcher is set in this process"
            } else {
                "this kernel has no Landlock"
            }
        ));
    }
    let Some(launcher) = launcher else {
        let mut cmd = std::process::Command::new(place.program);
        cmd.args(place.args)
            .current_dir(place.workspace)
            .env_clear()
            .envs(env);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let summary = serde_json::json!({"mode": "off"});
        return Ok((
            cmd,
            Jail {
                cgroup: None,
                marker,
                kept: None,
                summary,
            },
        ));
    };
    let cgroup = cgroup::base().and_then(|base| cgroup::Cgroup::make(base, settings.processes));
    let plan = Plan {
        required: settings.mode == Mode::Required,
        landlock: probe.landlock_abi.is_some(),
        network: settings.network,
        write: writable(settings, place),
        read: readable(settings, place),
        memory: settings.memory,
        cpu_secs: if settings.cpu == NO_CPU_LIMIT {
            nix::sys::resource::RLIM_INFINITY
        } else {
            settings.cpu.as_secs()
        },
        processes: settings.processes,
        open_files: settings.open_files,
        file_size: settings.file_size,
        cgroup_procs: cgroup.as_ref().map(cgroup::Cgroup::procs),
    };
    let summary = serde_json::json!({
        "mode": settings.mode,
        "landlock_abi": probe.landlock_abi,
        "network": settings.network,
        "cgroup": cgroup.is_some(),
        "write": plan.write,
    });
    let mut cmd = std::process::Command::new(launcher);
    cmd.arg(LAUNCHER_COMMAND)
        .arg("--")
        .arg(place.program)
        .args(place.args)
        .current_dir(place.workspace)
        .env_clear()
        .envs(env)
        .env(
            PLAN_ENV,
            serde_json::to_string(&plan).expect("a plan always serialises"),
        );
    Ok((
        cmd,
        Jail {
            cgroup,
            marker,
            kept: None,
            summary,
        },
    ))
}

/// Read-write: the workspace and the configured `write` paths.
fn writable(settings: &Settings, place: &Place<'_>) -> Vec<PathBuf> {
    let mut out = vec![place.workspace.to_path_buf()];
    out.extend(settings.write.iter().map(|p| place.root.join(p)));
    out
}

/// Read-only: the system, the agent's own folder, the shared context, the
/// program's directory (its file alone when that directory holds the
/// society's state), the `society` binary, `PATH`, the configured `read`.
fn readable(settings: &Settings, place: &Place<'_>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = [
        "/usr",
        "/bin",
        "/sbin",
        "/lib",
        "/lib32",
        "/lib64",
        "/etc",
        "/opt",
        "/proc",
        "/sys",
        "/dev/urandom",
        "/dev/random",
        "/dev/zero",
        "/dev/full",
        "/dev/fd",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    out.push(place.folder.to_path_buf());
    let state = place.root.join(society_core::layout::STATE_DIR);
    out.push(state.join("shared"));
    // `"$SOCIETY_BIN" memory "$SOCIETY_AGENT" query …` checks the format.
    out.push(state.join("format.json"));
    let program = if place.program.is_absolute() || place.program.components().count() > 1 {
        Some(place.program.to_path_buf())
    } else {
        None
    };
    if let Some(program) = program.and_then(|p| p.canonicalize().ok()) {
        match program.parent() {
            Some(dir) if !state.starts_with(dir) && dir != Path::new("/") => {
                out.push(dir.to_path_buf())
            }
            _ => out.push(program),
        }
    }
    if let Some(exe) = LAUNCHER.get() {
        out.push(exe.clone());
    }
    if let Some(path) = std::env::var_os("PATH") {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        for dir in std::env::split_paths(&path) {
            // A PATH entry that would open up the home directory, the root or
            // the society itself is not made readable.
            let wide = dir == Path::new("/")
                || home.as_deref() == Some(dir.as_path())
                || state.starts_with(&dir);
            if !dir.is_absolute() || wide {
                continue;
            }
            // Version managers (pyenv, rbenv, asdf) put `shims/` on PATH
            // that run their own tree: `~/.pyenv/shims` needs `~/.pyenv`.
            if dir.file_name().is_some_and(|n| n == "shims") {
                let tool = dir.ancestors().find(|a| {
                    a.file_name()
                        .is_some_and(|n| n.as_encoded_bytes().starts_with(b"."))
                });
                if let Some(tool) = tool.filter(|t| Some(*t) != home.as_deref()) {
                    out.push(tool.to_path_buf());
                }
            }
            out.push(dir);
        }
    }
    out.extend(settings.read.iter().map(|p| place.root.join(p)));
    out
}

impl Jail {
    /// The program runs on across other runs (an MCP server): the sweeps
    /// after those leave its session alone.
    pub fn keep_session(&mut self, pid: i32) {
        keep(pid, true);
        self.kept = Some(pid);
    }

    /// After the program's group was killed: kills whatever it left
    /// running — the cgroup's members, or every process carrying the
    /// agent's marker outside the sessions of its live MCP servers — and
    /// waits (up to 2 s) until they are gone.
    pub fn end(self) -> Contained {
        let mut out = Contained::default();
        match &self.cgroup {
            Some(cg) => {
                out.leftovers = cg.kill_all();
                out.process_limit_hits = cg.limit_hits();
            }
            None => {
                let keep = KEEP.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let deadline = Instant::now() + Duration::from_secs(2);
                loop {
                    let found = cgroup::carrying(&self.marker, &keep);
                    if found.is_empty() || Instant::now() >= deadline {
                        break;
                    }
                    for pid in &found {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(*pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                        if !out.leftovers.contains(pid) {
                            out.leftovers.push(*pid);
                        }
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
        out
    }
}

impl Drop for Jail {
    fn drop(&mut self) {
        if let Some(pid) = self.kept.take() {
            keep(pid, false);
        }
        if let Some(cg) = self.cgroup.take() {
            cg.kill_all();
            cg.remove();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn required_mode_refuses_to_start_a_program_it_cannot_confine() {
        // No launcher is set in a unit test: nothing could confine it.
        let settings = Settings {
            mode: Mode::Required,
            ..Settings::default()
        };
        let place = Place {
            program: Path::new("/bin/true"),
            args: &[],
            folder: Path::new("/nonexistent/agent-a"),
            workspace: Path::new("/nonexistent/agent-a/workspace"),
            root: Path::new("/nonexistent"),
        };
        let err = command(&settings, &place, BTreeMap::new(), "tools/x.sh")
            .err()
            .unwrap();
        assert!(
            err.contains("sandbox mode \"required\": tools/x.sh not started"),
            "{err}"
        );
        // `on` runs it, with the environment rebuilt and no sandbox.
        let on = Settings::default();
        let (_, jail) = command(&on, &place, BTreeMap::new(), "tools/x.sh").unwrap();
        assert_eq!(jail.summary["mode"], "off");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("8G"), Some(8 << 30));
        assert_eq!(parse_size("100"), Some(100));
        assert_eq!(parse_size("1kB"), Some(1024));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("99999999999999T"), None);
    }

    #[test]
    fn the_brain_table_wins_key_by_key_and_mistakes_are_named() {
        let brain = serde_json::json!({
            "society_sandbox": {"mode": "required", "memory": "1GiB"},
            "sandbox": {"memory": "2GiB", "network": true},
        });
        let s = Settings::from_brain(&brain).unwrap();
        assert_eq!(s.mode, Mode::Required);
        assert_eq!(s.memory, 2 << 30);
        assert!(s.network);
        let bad = serde_json::json!({"sandbox": {"netwrok": true}});
        let err = Settings::from_brain(&bad).unwrap_err();
        assert!(err.contains("netwrok"), "{err}");
        let bad = serde_json::json!({"sandbox": {"memory": "lots"}});
        assert!(Settings::from_brain(&bad).unwrap_err().contains("\"lots\""));
        let bad = serde_json::json!({"sandbox": {"pass_env": ["A=B"]}});
        assert!(Settings::from_brain(&bad).unwrap_err().contains("A=B"));
    }

    #[test]
    fn the_environment_is_rebuilt_from_nothing() {
        std::env::set_var("SOCIETY_TEST_SECRET_KEY", "sk-very-secret");
        std::env::set_var("SOCIETY_TEST_PASSED", "yes");
        let env = environment(
            Path::new("/ws"),
            &["SOCIETY_TEST_PASSED".into()],
            &BTreeMap::from([("MODEL".to_string(), "small".to_string())]),
        );
        assert!(!env.contains_key("SOCIETY_TEST_SECRET_KEY"));
        assert_eq!(env["SOCIETY_TEST_PASSED"], "yes");
        assert_eq!(env["MODEL"], "small");
        assert_eq!(env["HOME"], "/ws");
        assert!(env.contains_key("PATH"));
    }
}
