#!/usr/bin/env bash
# Runs Guichet's cargo-fuzz targets (docs/FUZZING.md).
#
#   fuzz/run.sh [--short] [--time SECONDS] [--sanitizer address|none] [TARGET...]
#
# Default: every target, 300 s each, AddressSanitizer. --short (CI): 20 s per target without a
# sanitizer (here: rebuilds in about half the time of ASan and runs 4 to 15 times more inputs;
# a Rust panic needs no sanitizer to be seen). The committed seeds (fuzz/seeds/<target>/) and
# regressions are copied into a scratch corpus (fuzz/corpus/<target>/, kept between runs, not
# committed); fuzz/seeds is never written to. A crash, timeout, out-of-memory or leak is copied
# into fuzz/regressions/<target>/ (commit it: tests/fuzz_regressions.rs replays it on stable),
# and the script exits 1 once every target has run. docs/FUZZING.md has the details.
set -euo pipefail
# cargo fuzz runs from the repository root (it finds fuzz/ there).
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ALL=(saml_response jws callback_url authorize_request config)
secs=300
sanitizer=address
short=
targets=()
while (($#)); do
    case $1 in
        --short) short=1 secs=20 sanitizer=none ;;
        --time) secs=${2:?--time needs seconds}; shift ;;
        --sanitizer) sanitizer=${2:?--sanitizer needs address or none}; shift ;;
        -h|--help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *)
            if [[ " ${ALL[*]} " != *" $1 "* ]]; then
                echo "unknown target $1 (one of: ${ALL[*]})" >&2
                exit 2
            fi
            targets+=("$1") ;;
    esac
    shift
done
((${#targets[@]})) || targets=("${ALL[@]}")

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/guichet-target}"
if [[ -d $HOME/.cargo/bin && ":$PATH:" != *":$HOME/.cargo/bin:"* ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzzing needs a nightly Rust toolchain (rustup toolchain install nightly)" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz (crates.io)"
    cargo install cargo-fuzz --locked
fi

# sqlite3.c (bundled by libsqlite3-sys) defines two static tables of one name: a false ODR
# violation for ASan.
export ASAN_OPTIONS="detect_odr_violation=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
flags=(--sanitizer "$sanitizer")
mkdir -p fuzz/artifacts
echo "== building the fuzz targets (nightly, sanitizer: $sanitizer)"
start=$SECONDS
if ! cargo +nightly fuzz build "${flags[@]}" >fuzz/artifacts/build.log 2>&1; then
    tail -n 60 fuzz/artifacts/build.log >&2
    echo "!! the fuzz targets do not build (log: fuzz/artifacts/build.log)" >&2
    exit 1
fi
echo "   built in $((SECONDS - start)) s"

failed=()
for t in "${targets[@]}"; do
    corpus=fuzz/corpus/$t
    artifacts=fuzz/artifacts/$t
    mkdir -p "$corpus" "$artifacts" "fuzz/regressions/$t"
    cp -n fuzz/seeds/"$t"/* "$corpus"/ 2>/dev/null || true
    cp -n fuzz/regressions/"$t"/* "$corpus"/ 2>/dev/null || true
    before=$(ls "$artifacts" | sort)
    echo "== $t: ${secs} s from $(ls "$corpus" | wc -l) inputs"
    log=$artifacts/last-run.log
    set +e
    # -timeout: one input taking over 10 s is a hang; -rss_limit_mb: a leak or a bomb.
    cargo +nightly fuzz run "${flags[@]}" "$t" "$corpus" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" >"$log" 2>&1
    rc=$?
    set -e
    grep -E '^(#[0-9]+\s+DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' "$log" || true
    grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -n 1 || true
    new=$(comm -13 <(echo "$before") <(ls "$artifacts" | sort) | grep -E '^(crash|timeout|oom|leak)-' || true)
    if ((rc != 0)) || [[ -n $new ]]; then
        failed+=("$t")
        echo "!! $t failed (exit $rc); its log: $log" >&2
        grep -E -A 30 "panicked at|==[0-9]+== ?ERROR|^ERROR: libFuzzer" "$log" | head -n 40 >&2 || true
        for f in $new; do
            cp "$artifacts/$f" "fuzz/regressions/$t/$f"
            echo "   kept as fuzz/regressions/$t/$f (commit it); reproduce from the repository root with:" >&2
            echo "     cargo +nightly fuzz run --sanitizer $sanitizer $t fuzz/regressions/$t/$f" >&2
            echo "     cargo nextest run --test fuzz_regressions $t    (stable: replays every regression)" >&2
        done
    fi
done

if ((${#failed[@]})); then
    echo "fuzzing found problems in: ${failed[*]}" >&2
    exit 1
fi
echo "fuzzing: ${#targets[@]} targets, ${secs} s each, no crash"
