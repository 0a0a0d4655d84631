//! `society shared put FILE [--as NAME] | list | show NAME [--version N] |
//! log`: the shared context every agent may read (`.society-agent/shared/`),
//! changed only here, each change a logged version (see
//! `society_runtime::client::shared`).

use super::exit::Code;
use super::output::{self, OutputArgs, Table};
use super::{table, when};
use society_core::Layout;
use society_runtime::client::shared::{self, SharedError, Version};
use society_runtime::client::ClientError;
use std::io::Write as _;
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Publish a file of the society as the next version of a shared file; prints NAME vN.
    ///
    /// FILE must be a regular file inside the society's root (symlinks are
    /// resolved first); NAME defaults to its file name. The previous
    /// versions stay readable with `show --version`.
    #[command(after_help = examples!(
        "society shared put docs/bible.md",
        "society shared put agent-writer/workspace/output/schedule.json --as schedule.json"
    ))]
    Put(PutArgs),
    /// The shared files: name, latest version, size, who put it and when.
    #[command(after_help = examples!("society shared list", "society shared list -o json | jq -r '.[].name'"))]
    List(ListArgs),
    /// A shared file's content (the latest version, or --version N).
    #[command(after_help = examples!(
        "society shared show bible.md",
        "society shared show bible.md --version 1 | diff - .society-agent/shared/bible.md",
        "society shared show bible.md -o json | jq .version"
    ))]
    Show(ShowArgs),
    /// Every version ever put, oldest first.
    #[command(after_help = examples!("society shared log", "society shared log -o jsonl | jq -c 'select(.name == \"bible.md\")'"))]
    Log(ListArgs),
}

#[derive(Debug, clap::Args)]
pub struct PutArgs {
    /// The file to publish (inside the society).
    file: PathBuf,
    /// The shared file's name (default: FILE's name).
    #[arg(long = "as", value_name = "NAME")]
    name: Option<String>,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The shared file's name.
    name: String,
    /// A past version (default: the latest).
    #[arg(long, value_name = "N")]
    version: Option<u32>,
    /// Without -o: the content as it is. With -o json: the version's record
    /// with the content as `content` (UTF-8, lossy).
    #[command(flatten)]
    output: OutputArgs,
}

pub fn run(layout: &Layout, cmd: Command) -> anyhow::Result<Code> {
    match cmd {
        Command::Put(args) => {
            let v = coded(shared::put(
                layout,
                &args.file,
                args.name.as_deref(),
                "orchestrator",
            ))?;
            if args.output.is_json() {
                output::report(&v, args.output.format())?;
            } else {
                outln!("{} v{}", v.name, v.version);
            }
        }
        Command::List(args) => versions(&coded(shared::list(layout))?, args, "no shared files")?,
        Command::Log(args) => versions(&coded(shared::log(layout))?, args, "no shared versions")?,
        Command::Show(args) => {
            let (v, content) = coded(shared::show(layout, &args.name, args.version))?;
            if args.output.is_json() {
                let mut doc = serde_json::to_value(&v)?;
                doc["content"] = String::from_utf8_lossy(&content).into_owned().into();
                output::report(&doc, args.output.format())?;
            } else {
                let mut out = std::io::stdout().lock();
                if let Err(e) = out.write_all(&content).and_then(|()| out.flush()) {
                    if e.kind() != std::io::ErrorKind::BrokenPipe {
                        return Err(e.into());
                    }
                }
            }
        }
    }
    Ok(Code::Ok)
}

/// The error as the client's, which carries its exit code and hint.
fn coded<T>(r: Result<T, SharedError>) -> Result<T, ClientError> {
    r.map_err(ClientError::from)
}

fn versions(items: &[Version], args: ListArgs, none: &str) -> anyhow::Result<()> {
    let format = args.output.format();
    if args.output.is_json() {
        return output::list(items, format);
    }
    if items.is_empty() {
        outln!("{none}");
        return Ok(());
    }
    let mut t = Table::new(
        &["NAME", "VERSION", "BYTES", "BY", "AGE", "WHEN", "SHA256"],
        format,
    );
    t.wide_only(&[5, 6]);
    for v in items {
        t.row(vec![
            v.name.clone(),
            format!("v{}", v.version),
            v.bytes.to_string(),
            v.by.clone(),
            table::age(&v.ts),
            when::stamp(&v.ts),
            v.sha256.clone(),
        ]);
    }
    out!("{}", t.render());
    Ok(())
}
