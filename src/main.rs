//! `guichet` binary: parse the command line, hand over to [`guichet::cli`].

use std::process::ExitCode;

/// mimalloc (its v2 line) instead of glibc's malloc: Tokio moves tasks between worker threads,
/// so memory allocated on one thread is often freed on the other, and glibc then takes the
/// owning arena's lock (about one futex call per request under load). mimalloc frees across
/// threads without locks: 8-10 % less CPU per token request, for about the same idle RSS with
/// the options `serve` sets below (docs/PERFORMANCE.md, "The allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tune_malloc_for_serve();
    guichet::cli::main()
}

/// The allocators' settings for a long-running server. They must be in the environment before
/// the process starts, so `serve` re-executes itself once with them (same PID, same arguments,
/// same stdio). Setting `MALLOC_MMAP_THRESHOLD_` yourself — to any value — disables this; a
/// `MIMALLOC_*` variable you set is kept.
///
/// - mimalloc gives freed memory back to the OS at once (`MIMALLOC_PURGE_DELAY=0`; by default it
///   waits, and the idle RSS after start-up stayed 10-20 MB higher), does not ask for transparent
///   huge pages (`MIMALLOC_ALLOW_THP=0`: with them a few touched bytes keep 2 MiB resident), and
///   frees a block whose thread has exited right away (`MIMALLOC_ABANDONED_RECLAIM_ON_FREE=1`):
///   argon2's working memory is allocated on a blocking thread and released from another once
///   sign-ins stop, often after that thread has gone; without it 50 MB stayed resident for half
///   a minute after a burst of sign-ins.
/// - glibc's malloc still serves the C libraries (OpenSSL, SQLite, libxml2); a fixed
///   `MALLOC_MMAP_THRESHOLD_` keeps its large blocks on mmap, returned when freed (glibc raises
///   its threshold after the first large free and then keeps such blocks in its heaps).
fn tune_malloc_for_serve() {
    use std::os::unix::process::CommandExt;
    const VAR: &str = "MALLOC_MMAP_THRESHOLD_";
    if !cfg!(target_os = "linux") || std::env::var_os(VAR).is_some() || !std::env::args_os().any(|a| a == "serve") {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    let mut cmd = std::process::Command::new(&exe);
    cmd.arg0(arg0).args(args).env(VAR, "131072");
    for (k, v) in MIMALLOC_OPTIONS {
        if std::env::var_os(k).is_none() {
            cmd.env(k, v);
        }
    }
    // exec only returns on failure; then carry on untuned.
    let _ = cmd.exec();
}

const MIMALLOC_OPTIONS: [(&str, &str); 3] =
    [("MIMALLOC_PURGE_DELAY", "0"), ("MIMALLOC_ALLOW_THP", "0"), ("MIMALLOC_ABANDONED_RECLAIM_ON_FREE", "1")];
