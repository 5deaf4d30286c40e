//! Link options for the `guichet` binary on Linux; nothing else is built here. Each is used
//! only when rustc links a test program with it, so another toolchain or system builds the same
//! binary without it (docs/PERFORMANCE.md, "Idle memory").
//!
//! - `-z pack-relative-relocs` (DT_RELR; glibc ≥ 2.36): the ~38 000 relative relocations of the
//!   position-independent binary take 11 KB instead of 920 KB, which the loader read, and kept
//!   resident, at every start.
//! - `--symbol-ordering-file=benches/symbol-order.txt` (lld, rustc's default linker on
//!   x86_64 Linux): the functions that start-up and the request path run, laid out together at
//!   the start of the code. The kernel maps code in 64–128 KB windows around each page run, so
//!   with those functions spread over the 21 MB of code, a start-up mapped 15 MB of it; packed,
//!   4.4 MB. The names carry hashes that change with the code and the build's settings:
//!   `benches/symbol_order.sh` regenerates the list from the release build (names that no
//!   longer exist are skipped, so a stale list links and only packs less well).

use std::path::{Path, PathBuf};
use std::process::Command;

const ORDER: &str = "benches/symbol-order.txt";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={ORDER}");
    let target = std::env::var("TARGET").unwrap_or_default();
    if !target.contains("linux-gnu") {
        return;
    }
    if links(&["-Wl,-z,pack-relative-relocs"], Path::new(".")) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    // The path stays relative, resolved where cargo runs rustc: the workspace root, which is this
    // package's directory (the binaries are only linked when it is the package built, never as
    // a dependency). An absolute path would tie the output of this script to one checkout:
    // cargo keeps that output in the shared target directory and reuses it for another clone of
    // the repository, which then failed to link once the first clone was gone.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from).unwrap_or_default();
    if manifest_dir.join(ORDER).is_file() {
        let args = [format!("-Wl,--symbol-ordering-file={ORDER}"), "-Wl,--no-warn-symbol-ordering".into()];
        if links(&args.each_ref().map(String::as_str), &manifest_dir) {
            for a in args {
                println!("cargo:rustc-link-arg-bins={a}");
            }
        }
    }
}

/// Whether rustc, with the linker it uses for this build, links and runs an empty program
/// given `args` as link arguments, run from `dir`.
fn links(args: &[&str], dir: &Path) -> bool {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_else(|| ".".into()));
    let src = out.join("probe.rs");
    let exe = out.join("probe");
    if std::fs::write(&src, "fn main() {}\n").is_err() {
        return false;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let mut cmd = Command::new(rustc);
    cmd.current_dir(dir).arg(&src).arg("-o").arg(&exe);
    for a in args {
        cmd.arg("-C").arg(format!("link-arg={a}"));
    }
    cmd.output().is_ok_and(|o| o.status.success()) && Command::new(&exe).status().is_ok_and(|s| s.success())
}
