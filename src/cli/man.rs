//! `society man [--dir DIR]`: the manual, generated from the clap definition
//! with clap_mangen. Without `--dir`, the page of `society` itself on stdout
//! (`society man | man -l -`); with it, one page per visible command, nested
//! ones included (society.1, society-status.1, society-case-new.1, ...).
//!
//! clap_mangen would put the help's closing text in one filled paragraph,
//! which runs the examples together: that text is rendered here instead, a
//! section per heading, examples unfilled.

use super::exit::Code;
use super::StdoutError;
use anyhow::Context;
use clap::Command;
use clap_mangen::Man;
use roff::{roman, Roff};
use std::io::Write as _;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write one page per command into DIR (created if missing) and print their paths.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<Code> {
    let mut cmd = without_help(super::help::command());
    cmd.build();
    let Some(dir) = args.dir else {
        std::io::stdout()
            .write_all(&page(&cmd)?)
            .map_err(StdoutError)?;
        return Ok(Code::Ok);
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    for path in write_pages(&cmd, &dir)? {
        outln!("{}", path.display());
    }
    Ok(Code::Ok)
}

/// `cmd` and its subcommands without clap's `help` subcommand, which has no
/// page of its own (`society help X` is `society X --help`).
fn without_help(cmd: Command) -> Command {
    cmd.disable_help_subcommand(true)
        .mut_subcommands(without_help)
}

/// Writes the pages of `cmd` and of its visible subcommands, depth first.
fn write_pages(cmd: &Command, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let man = Man::new(cmd.clone());
    let path = dir.join(man.get_filename());
    std::fs::write(&path, page(cmd)?)
        .with_context(|| format!("failed to write {}", path.display()))?;
    let mut written = vec![path];
    for sub in cmd.get_subcommands().filter(|c| !c.is_hide_set()) {
        written.extend(write_pages(sub, dir)?);
    }
    Ok(written)
}

/// One page: clap_mangen's sections, with the help's closing text as
/// sections of their own (EXAMPLES, EXIT CODES) before VERSION.
fn page(cmd: &Command) -> anyhow::Result<Vec<u8>> {
    let man = Man::new(cmd.clone()).source(format!("society {}", env!("CARGO_PKG_VERSION")));
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut out)?;
    }
    if cmd.get_subcommands().any(|c| !c.is_hide_set()) {
        man.render_subcommands_section(&mut out)?;
    }
    if let Some(text) = cmd.get_after_long_help().or(cmd.get_after_help()) {
        closing(&text.to_string()).to_writer(&mut out)?;
    }
    if cmd.get_version().is_some() {
        man.render_version_section(&mut out)?;
    }
    Ok(out)
}

/// The help's closing text as roff: a block of `Heading:` and indented
/// lines becomes a section of unfilled lines (the examples); a block of
/// `Heading: text` a section with that paragraph (the exit codes).
fn closing(text: &str) -> Roff {
    let mut roff = Roff::new();
    for block in text.split("\n\n") {
        let mut lines = block.lines();
        let Some(first) = lines.next() else { continue };
        match first.split_once(':') {
            Some((heading, "")) => {
                roff.control("SH", [heading.to_uppercase().as_str()]);
                roff.control("nf", []);
                for line in lines {
                    roff.text([roman(line)]);
                }
                roff.control("fi", []);
            }
            Some((heading, rest)) if heading.len() < 24 && !heading.starts_with(' ') => {
                roff.control("SH", [heading.to_uppercase().as_str()]);
                roff.text([roman(rest.trim())]);
                for line in lines {
                    roff.text([roman(line)]);
                }
            }
            _ => {
                roff.control("PP", []);
                for line in block.lines() {
                    roff.text([roman(line)]);
                }
            }
        }
    }
    roff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_stay_one_a_line_and_the_exit_codes_get_a_section() {
        let text =
            "Examples:\n  society up\n  society status --json | jq .\n\nExit codes: 0 ok, 1 error.";
        let roff = closing(text).to_roff();
        assert!(
            roff.contains(
                ".SH EXAMPLES\n.nf\n  society up\n  society status \\-\\-json | jq .\n.fi\n"
            ),
            "{roff}"
        );
        assert!(
            roff.contains(".SH \"EXIT CODES\"\n0 ok, 1 error.\n"),
            "{roff}"
        );
    }
}
