//! `society`: a filesystem-native runtime for societies of agents.
//! The binary is thin: parse, set up logging, run a command, map errors to
//! documented exit codes (see `cli::exit`).

mod cli;

fn main() {
    let code = cli::main();
    std::process::exit(code);
}
