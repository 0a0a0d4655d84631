//! Release binaries keep their line tables (a backtrace names file and line)
//! but compressed: std's and the dependencies' DWARF is most of an
//! uncompressed binary. Both GNU ld and lld take the flag, and std's
//! backtrace reads zlib-compressed sections. Elsewhere (macOS) it is left out.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if release && linux {
        println!("cargo:rustc-link-arg-bins=-Wl,--compress-debug-sections=zlib");
    }
}
