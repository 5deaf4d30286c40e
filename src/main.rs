//! `guichet` binary: parse the command line, hand over to [`guichet::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    tune_malloc_for_serve();
    guichet::cli::main()
}

/// Each argon2id hash allocates `password.argon2_memory_kib` (19 MiB by default). glibc's
/// malloc raises its mmap threshold after the first such block is freed, and from then on keeps
/// these blocks in its heaps: after a burst of sign-ins the idle RSS stays near 80 MB instead of
/// 20 MB. A fixed `MALLOC_MMAP_THRESHOLD_` keeps large blocks on mmap, returned to the OS when
/// freed (docs/PERFORMANCE.md). The variable must be set before the process starts, so `serve`
/// re-executes itself once with it (same PID, same arguments, same stdio). Setting the variable
/// yourself — to any value — disables this.
fn tune_malloc_for_serve() {
    use std::os::unix::process::CommandExt;
    const VAR: &str = "MALLOC_MMAP_THRESHOLD_";
    if !cfg!(target_os = "linux") || std::env::var_os(VAR).is_some() || !std::env::args_os().any(|a| a == "serve") {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    // exec only returns on failure; then carry on untuned.
    let _ = std::process::Command::new(&exe).arg0(arg0).args(args).env(VAR, "131072").exec();
}
