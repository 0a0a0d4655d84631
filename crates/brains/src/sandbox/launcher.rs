//! `society sandbox-exec -- PROGRAM ARGS…` (hidden): the process that
//! confines itself and becomes the program. It reads its plan from the
//! environment, removes it, and fails with exit status 126 and one line on
//! stderr (`society sandbox: …`) when it cannot do what the plan says.

use super::{Plan, LAUNCH_FAILED, PLAN_ENV};
use landlock::{
    path_beneath_rules, Access, AccessFs, AccessNet, Ruleset, RulesetAttr, RulesetCreatedAttr,
    RulesetStatus, Scope, ABI,
};
use nix::sys::resource::{setrlimit, Resource};
use std::os::unix::process::CommandExt;

/// The newest ABI this build knows; the crate downgrades to the kernel's.
const ABI_WANTED: ABI = ABI::V7;

/// `args`: what follows `sandbox-exec` on the command line. Returns only on
/// failure (the exit status).
pub fn launcher_main(args: &[std::ffi::OsString]) -> i32 {
    let fail = |what: String| {
        eprintln!("society sandbox: {what}");
        LAUNCH_FAILED
    };
    let args = match args.first().and_then(|a| a.to_str()) {
        Some("--") => &args[1..],
        _ => args,
    };
    let Some((program, rest)) = args.split_first() else {
        return fail("usage: society sandbox-exec -- PROGRAM [ARGS…] (started by agents)".into());
    };
    let Some(raw) = std::env::var_os(PLAN_ENV) else {
        return fail(format!(
            "{PLAN_ENV} is not set (this command is started by agents)"
        ));
    };
    std::env::remove_var(PLAN_ENV);
    let plan: Plan = match serde_json::from_slice(raw.as_encoded_bytes()) {
        Ok(p) => p,
        Err(e) => return fail(format!("invalid plan: {e}")),
    };
    if let Err(e) = confine(&plan) {
        return fail(e);
    }
    let err = std::process::Command::new(program).args(rest).exec();
    fail(format!(
        "could not start {}: {err}",
        program.to_string_lossy()
    ))
}

fn confine(plan: &Plan) -> Result<(), String> {
    // A session of its own: the program leads its process group, and has no
    // controlling terminal to reach the agent's through.
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    // Out of the agent's process group, so the supervisor's kill of a hung
    // agent does not reach it: it dies with the agent instead.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| format!("prctl(PR_SET_PDEATHSIG): {e}"))?;
    if let Some(procs) = &plan.cgroup_procs {
        std::fs::write(procs, std::process::id().to_string())
            .map_err(|e| format!("cannot join the cgroup {}: {e}", procs.display()))?;
    }
    let limits = [
        (Resource::RLIMIT_AS, plan.memory, "memory"),
        (Resource::RLIMIT_CPU, plan.cpu_secs, "cpu"),
        (Resource::RLIMIT_NOFILE, plan.open_files, "open_files"),
        (Resource::RLIMIT_FSIZE, plan.file_size, "file_size"),
    ];
    for (resource, value, name) in limits {
        setrlimit(resource, value, value).map_err(|e| format!("limit {name} = {value}: {e}"))?;
    }
    // Counted per user: what this user runs now plus the allowance. Root is
    // exempt (the pids cgroup is what limits it there).
    if plan.cgroup_procs.is_none() {
        let nproc = user_processes().saturating_add(plan.processes);
        setrlimit(Resource::RLIMIT_NPROC, nproc, nproc)
            .map_err(|e| format!("limit processes = {}: {e}", plan.processes))?;
    }
    // Run as root, the program would keep every capability across exec:
    // CAP_SYS_PTRACE alone reads the agent's environment (API keys) through
    // /proc. An empty bounding set leaves it none.
    let permitted =
        caps::read(None, caps::CapSet::Permitted).map_err(|e| format!("capabilities: {e}"))?;
    if !permitted.is_empty() {
        for set in [
            caps::CapSet::Bounding,
            caps::CapSet::Ambient,
            caps::CapSet::Inheritable,
        ] {
            caps::clear(None, set).map_err(|e| format!("dropping capabilities ({set:?}): {e}"))?;
        }
    }
    if !plan.landlock {
        return Ok(());
    }
    let status = landlock(plan).map_err(|e| format!("Landlock: {e}"))?;
    if plan.required && status == RulesetStatus::NotEnforced {
        return Err("mode \"required\" but Landlock is not enforced on this kernel".into());
    }
    Ok(())
}

fn landlock(plan: &Plan) -> Result<RulesetStatus, landlock::RulesetError> {
    // Best effort: each right the kernel lacks is dropped, the rest applied
    // ("required" checks the outcome below).
    let abi = ABI_WANTED;
    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))?
        .scope(Scope::from_all(abi))?;
    if !plan.network {
        ruleset = ruleset.handle_access(AccessNet::from_all(abi))?;
    }
    let status = ruleset
        .create()?
        .add_rules(path_beneath_rules(&plan.read, AccessFs::from_read(abi)))?
        .add_rules(path_beneath_rules(&plan.write, AccessFs::from_all(abi)))?
        .add_rules(path_beneath_rules(["/dev/null"], AccessFs::from_all(abi)))?
        .restrict_self()?;
    Ok(status.ruleset)
}

/// Processes of this user now (for RLIMIT_NPROC, which counts them all).
fn user_processes() -> u64 {
    use std::os::unix::fs::MetadataExt;
    let uid = nix::unistd::getuid().as_raw();
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .is_some_and(|n| n.parse::<u32>().is_ok())
                })
                .filter(|e| e.metadata().is_ok_and(|m| m.uid() == uid))
                .count() as u64
        })
        .unwrap_or(0)
}

/// The kernel's Landlock ABI, probed by restricting a throwaway thread (a
/// ruleset applies to the calling thread only).
pub(super) fn landlock_abi() -> Option<i32> {
    std::thread::spawn(|| {
        let status = Ruleset::default()
            .handle_access(AccessFs::from_all(ABI_WANTED))
            .ok()?
            .create()
            .ok()?
            .restrict_self()
            .ok()?;
        match status.landlock {
            landlock::LandlockStatus::Available {
                effective_abi,
                kernel_abi,
            } => Some(kernel_abi.unwrap_or(effective_abi as i32)),
            _ => None,
        }
    })
    .join()
    .ok()
    .flatten()
}
