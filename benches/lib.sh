# Shared by the benchmark scripts (sourced; the caller defines log and die).

# build_release LOG: `cargo build --release --bin guichet` into $CARGO_TARGET_DIR, retried a few
# times a minute apart when it fails (the sources may be mid-edit): BENCH_BUILD_ATTEMPTS
# (default 5; 1 in CI, where a failed build is a failure at once). Each attempt's output goes to
# LOG; the end of it is shown when an attempt fails.
build_release() {
    local out=$1 attempt attempts=${BENCH_BUILD_ATTEMPTS:-5}
    for ((attempt = 1; attempt <= attempts; attempt++)); do
        log "cargo build --release --bin guichet (attempt $attempt)"
        if cargo build --release --bin guichet >"$out" 2>&1; then
            return 0
        fi
        tail -n 15 "$out"
        ((attempt < attempts)) && { log "build failed (the sources may be mid-edit); retrying in 60 s"; sleep 60; }
    done
    die "cargo build --release failed ($attempts attempt(s))"
}

# ensure_venv DIR: a Python venv at DIR (made when missing or broken); prints its python.
ensure_venv() {
    local venv=$1
    if ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
        log "creating venv $venv" >&2
        rm -rf "$venv"
        python3 -m venv "$venv" >&2 || die "python3 -m venv $venv failed"
    fi
    echo "$venv/bin/python"
}
