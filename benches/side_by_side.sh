#!/usr/bin/env bash
# Guichet and node-oidc-provider 9, side by side, on this machine, in one run (loopback only).
#
#   benches/side_by_side.sh [--short] [--out DIR] [--duration S] [--connections N]
#                           [--workers N] [--no-build] [--only guichet|peer]
#
#   --short        3 s per endpoint after a 1 s warm-up (CI); default 10 s after 2 s
#   --out DIR      where results go (default: a new temp dir, printed at the end)
#   --duration S   seconds per endpoint (overrides the mode's)
#   --connections N  wrk connections (default 16; the refresh chain uses N threads x 1)
#   --workers N    parallel browsers of the code-flow and sign-in loops (default 4)
#   --no-build     use the release binary already in $CARGO_TARGET_DIR
#   --only S       measure one server (to debug a setup); ratios then show as —
#   BENCH_KEEP_TMP=1 keeps the scratch dir (wrk outputs, token pools) for inspection
#   BENCH_ENDPOINTS="refresh userinfo" measures only those endpoints (quick A/B runs; the
#                  others show as —)
#   GUICHET_BIN=PATH measures that Guichet binary (implies --no-build)
#   BENCH_PIN=S:L  runs each server on CPUs S and the load generators on CPUs L (taskset lists,
#                  e.g. 1:0), so that they do not share a core
#   BENCH_SETTLE_S=N reads each server's VmRSS every second for N s after its load (default 16:
#                  past Guichet's 10-15 s window for freeing argon2's working memory)
#   BENCH_PERF=ENDPOINT records Guichet's measured run of that endpoint (discovery, jwks, cc_es256,
#                  refresh, ...) with `perf record -g` into DIR/perf-ENDPOINT.data (its figures
#                  then include perf's own overhead)
#   BENCH_PERFSTAT="jwks cc_es256" counts, for both servers during the measured run of each
#                  listed wrk endpoint, the scheduler's and the kernel's events (`perf stat -p`:
#                  context switches, wake-ups made, reschedule IPIs, futex and epoll_wait calls,
#                  page faults, madvise) and prints them per request; raw counts in
#                  DIR/perfstat-SERVER-ENDPOINT.txt (the window is the run's, to within perf's start)
#
# Measures, for both servers one after the other: discovery, JWKS, client_credentials RS256 /
# ES256 / EdDSA (the peer has no EdDSA: its ES256 run stands in), introspection, userinfo, the
# refresh_token grant (rotating: wrk chains the new token per connection), a full code flow
# through the sign-in form (a Python loop: authorize, form, POST, code, token) and the password
# sign-in alone. For each: req/s, p50/p99 latency, server CPU-seconds (user+system from
# /proc/PID/stat), requests per server CPU-second and the Guichet/peer ratio of that; RSS of
# both idle, at peak, 2 s after the load and BENCH_SETTLE_S s after it; and the machine's limits
# measured in the same run (openssl speed on one core for RS256 / ES256 / EdDSA, argon2id
# hashes/s at Guichet's defaults with argon2-cffi), with each endpoint's distance to its limit.
#
# Modes: default, 10 s per endpoint after a 2 s warm-up (about 5 minutes, plus the build);
# --short, 3 s after 1 s (about 2 min 15 s, plus the build; for CI). Both exit non-zero only on
# errors — a server that did not start, a non-2xx answer (303 inside the browser flows), a
# socket error or timeout — never on figures.
# Results: a summary table on stdout, and results.md, req_per_cpu_second.svg, results.json and
# the servers' logs in --out DIR (default: a new temp dir, printed).
#
# Installs what is missing: wrk (apt-get, when root), oidc-provider@9 with npm into
# $BENCH_NODE_DIR (default ~/.cache/guichet-bench-node), argon2-cffi into the venv
# $BENCH_VENV (default ~/.cache/guichet-bench-venv). Builds Guichet in release mode into
# $CARGO_TARGET_DIR (default ~/.cache/guichet-target), retrying a failed build a few times a
# minute apart (the sources may be mid-edit). Needs Node.js >= 20.19 and npm, python3, openssl,
# curl. Everything it starts is stopped on exit.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
cd "$ROOT"

usage() { sed -n '2,/^set -euo/p' "$HERE/side_by_side.sh" | sed '$d; s/^# \{0,1\}//'; }

MODE=default
OUT=
DURATION=
CONNS=16
WORKERS=4
BUILD=1
ONLY=
while (($#)); do
    case $1 in
        --short) MODE=short ;;
        --out) OUT=${2:?--out needs a directory}; shift ;;
        --out=*) OUT=${1#--out=} ;;
        --duration) DURATION=${2:?}; shift ;;
        --connections) CONNS=${2:?}; shift ;;
        --workers) WORKERS=${2:?}; shift ;;
        --no-build) BUILD=0 ;;
        --only) ONLY=${2:?}; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "side_by_side: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [[ $MODE == short ]]; then
    DURATION=${DURATION:-3} WARMUP=1 OPENSSL_SECS=1 ARGON2_SECS=2
else
    DURATION=${DURATION:-10} WARMUP=2 OPENSSL_SECS=2 ARGON2_SECS=3
fi
[[ $DURATION =~ ^[1-9][0-9]*$ && $CONNS =~ ^[1-9][0-9]*$ && $WORKERS =~ ^[1-9][0-9]*$ ]] ||
    { echo "side_by_side: --duration, --connections and --workers take whole numbers >= 1" >&2; exit 2; }
[[ -z $ONLY || $ONLY == guichet || $ONLY == peer ]] || { echo "side_by_side: --only guichet or --only peer" >&2; exit 2; }
WRK_THREADS=$((CONNS >= 2 ? 2 : 1)) # wrk threads for the fixed-request endpoints
# BENCH_PIN=SERVER_CPUS:LOAD_CPUS (taskset lists, e.g. 1:0): each server on its CPUs, the load
# generators on theirs, so they do not compete for a core
PIN_SERVER= PIN_LOAD=
LOAD=()
if [[ -n ${BENCH_PIN:-} ]]; then
    [[ $BENCH_PIN =~ ^([0-9,-]+):([0-9,-]+)$ ]] || { echo "side_by_side: BENCH_PIN=SERVER_CPUS:LOAD_CPUS, e.g. 1:0" >&2; exit 2; }
    PIN_SERVER=${BASH_REMATCH[1]} PIN_LOAD=${BASH_REMATCH[2]}
    LOAD=(taskset -c "$PIN_LOAD")
fi
pin_server() { [[ -z $PIN_SERVER ]] || taskset -a -p -c "$PIN_SERVER" "$1" >/dev/null; }
SETTLE_S=${BENCH_SETTLE_S:-16}       # seconds of VmRSS readings after each server's load
[[ $SETTLE_S =~ ^[0-9]+$ ]] && ((SETTLE_S >= 2)) || { echo "side_by_side: BENCH_SETTLE_S is a whole number >= 2" >&2; exit 2; }

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/guichet-target}"
NODE_DIR="${BENCH_NODE_DIR:-$HOME/.cache/guichet-bench-node}"
VENV="${BENCH_VENV:-$HOME/.cache/guichet-bench-venv}"
HELPER="$HERE/side_by_side.py"
T_START=$SECONDS

log() { printf '[%3ds] %s\n' $((SECONDS - T_START)) "$*"; }
die() { echo "side_by_side: $*" >&2; exit 1; }
# shellcheck source=benches/lib.sh
source "$HERE/lib.sh"

# ------------------------------------------------------------------ processes and cleanup
TMP=$(mktemp -d "${TMPDIR:-/tmp}/guichet-side-by-side.XXXXXX")
if [[ -z $OUT ]]; then
    OUT=$(mktemp -d "${TMPDIR:-/tmp}/guichet-bench-results.XXXXXX")
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SERVER_PID=   # the server being measured (one at a time)
cleanup() {
    local rc=$?
    if [[ -n $SERVER_PID ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    for f in "$TMP"/guichet/server.log "$TMP"/peer/server.log; do
        [[ -f $f ]] && cp "$f" "$OUT/$(basename "$(dirname "$f")").log"
    done
    if [[ -n ${BENCH_KEEP_TMP:-} ]]; then echo "side_by_side: kept $TMP"; else rm -rf "$TMP"; fi
    ((rc == 0)) || echo "side_by_side: failed (exit $rc); logs and partial results in $OUT" >&2
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# stop_server: SIGTERM, up to 15 s, then SIGKILL — only the PID this script started
stop_server() {
    [[ -n $SERVER_PID ]] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    local i
    for ((i = 0; i < 150; i++)); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

# wait_ready URL NAME LOG: polls URL for a 200 (60 s at most) while the server lives
wait_ready() {
    local url=$1 name=$2 logf=$3 i
    for ((i = 0; i < 300; i++)); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            local rc=0
            wait "$SERVER_PID" || rc=$?
            SERVER_PID=
            echo "---- $name log ----"; tail -n 40 "$logf"
            die "$name exited (status $rc) before $url answered 200"
        fi
        if [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" || true) == 200 ]]; then
            return 0
        fi
        sleep 0.2
    done
    echo "---- $name log ----"; tail -n 40 "$logf"
    die "$name: $url did not answer 200 within 60 s"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# user and system CPU time of a process, in clock ticks (/proc/PID/stat fields 14, 15)
cpu_ticks() {
    local line rest
    read -r line <"/proc/$1/stat"
    rest=${line##*) }
    # shellcheck disable=SC2206
    local -a f=($rest)
    echo "${f[11]} ${f[12]}"
}
# busy CPU time of the whole machine, in clock ticks (/proc/stat: user nice system irq softirq steal)
machine_ticks() {
    local _cpu u n sy _idle _iow irq sirq st _rest
    read -r _cpu u n sy _idle _iow irq sirq st _rest </proc/stat
    echo $((u + n + sy + irq + sirq + st))
}
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
jget() { python3 -c 'import json,sys; v=json.loads(sys.argv[1]); [v:=v[k] for k in sys.argv[2:]]; print(v)' "$@"; }

# ------------------------------------------------------------------ what it needs
apt_install() { # apt_install PACKAGE...: as root only
    if ((EUID == 0)); then
        log "installing $*"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        die "missing: $* — run: sudo apt-get install -y $*"
    fi
}
missing=()
for tool in wrk curl openssl; do command -v $tool >/dev/null || missing+=("$tool"); done
command -v python3 >/dev/null || missing+=(python3)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
((${#missing[@]} == 0)) || apt_install "${missing[@]}"

command -v node >/dev/null && command -v npm >/dev/null ||
    die "node and npm are needed (Node.js >= 20.19 for oidc-provider 9)"
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a==20&&b>=19)?0:1)' ||
    die "node $(node --version) is too old: oidc-provider 9 needs Node.js >= 20.19"
if ! node -e 'process.exit(require(process.argv[1]).version.startsWith("9.") ? 0 : 1)' \
    "$NODE_DIR/node_modules/oidc-provider/package.json" 2>/dev/null; then
    log "installing oidc-provider@9 into $NODE_DIR"
    mkdir -p "$NODE_DIR"
    [[ -f $NODE_DIR/package.json ]] || echo '{ "name": "guichet-bench-node", "private": true }' >"$NODE_DIR/package.json"
    (cd "$NODE_DIR" && npm install --no-audit --no-fund --silent oidc-provider@9) ||
        die "'npm install oidc-provider@9' failed in $NODE_DIR"
fi
PEER_VERSION=$(node -p 'require(process.argv[1]).version' "$NODE_DIR/node_modules/oidc-provider/package.json")

PY=$(ensure_venv "$VENV")
if ! "$PY" -c 'import argon2' 2>/dev/null; then
    log "installing argon2-cffi into $VENV"
    "$PY" -m pip install -q --disable-pip-version-check argon2-cffi ||
        echo "side_by_side: warning: argon2-cffi could not be installed; no argon2 limit" >&2
fi

# ------------------------------------------------------------------ Guichet release build
BIN="${GUICHET_BIN:-$CARGO_TARGET_DIR/release/guichet}"
if ((BUILD)) && [[ $ONLY != peer && -z ${GUICHET_BIN:-} ]]; then
    build_release "$TMP/build.log"
fi
GUICHET_VERSION=
if [[ $ONLY != peer ]]; then
    [[ -x $BIN ]] || die "$BIN missing (build it, or drop --no-build)"
    GUICHET_VERSION=$("$BIN" --version 2>/dev/null | head -n1 || true)
    GUICHET_VERSION=${GUICHET_VERSION:-guichet (no --version)}
    GUICHET_VERSION="$GUICHET_VERSION, commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' + uncommitted edits')"
fi

# ------------------------------------------------------------------ machine limits
read -r LOAD_START _ </proc/loadavg
if python3 -c 'import os,sys; sys.exit(0 if float(sys.argv[1]) > 0.5 * os.cpu_count() else 1)' "$LOAD_START"; then
    echo "side_by_side: warning: load average $LOAD_START before the run — other work on this machine" \
        "will slow req/s (the per-CPU-second figures hold better; see 'others CPU' per endpoint)" >&2
fi
log "machine limits: openssl speed -seconds $OPENSSL_SECS rsa2048 ecdsap256 ed25519; argon2id ${ARGON2_SECS} s"
LIMITS=$("$PY" "$HELPER" limits --seconds "$ARGON2_SECS" --openssl-seconds "$OPENSSL_SECS")
echo "  $LIMITS"

RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
EMAIL=alice@example.com
PASSWORD="bench-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
REDIRECT_URI=http://127.0.0.1:9/cb
declare -A RSS_IDLE=([guichet]= [peer]=) RSS_PEAK=([guichet]= [peer]=) RSS_AFTER=([guichet]= [peer]=) RSS_SETTLED=([guichet]= [peer]=)
declare -A JWTS_CODE=([guichet]= [peer]=) JWTS_REFRESH=([guichet]= [peer]=)

# wanted ENDPOINT: selected by BENCH_ENDPOINTS (all when unset)
wanted() { [[ -z ${BENCH_ENDPOINTS:-} || " $BENCH_ENDPOINTS " == *" $1 "* ]]; }

# The events BENCH_PERFSTAT counts (tracepoints: needs root or perf_event_paranoid <= -1).
PERFSTAT_EVENTS=context-switches,sched:sched_wakeup,irq_vectors:reschedule_entry,syscalls:sys_enter_futex,syscalls:sys_enter_epoll_wait,exceptions:page_fault_user,syscalls:sys_enter_madvise

# perfstat_line SERVER ENDPOINT STAT_FILE WRK_JSON: BENCH_PERFSTAT's counts per request
perfstat_line() {
    "$PY" - "$@" <<'PYEOF' || echo "  perfstat $1 $2: perf stat gave no counts (see $3)"
import json, sys
server, ep, stat_file, wrk_json = sys.argv[1:5]
names = {"context-switches": "context switches", "sched:sched_wakeup": "wake-ups made",
         "irq_vectors:reschedule_entry": "reschedule IPIs", "syscalls:sys_enter_futex": "futex",
         "syscalls:sys_enter_epoll_wait": "epoll_wait", "exceptions:page_fault_user": "page faults",
         "syscalls:sys_enter_madvise": "madvise"}
requests = json.load(open(wrk_json))["requests"]
parts = []
for line in open(stat_file):
    f = line.strip().split(",")
    if len(f) > 2 and f[2] in names and f[0].isdigit():
        parts.append(f"{int(f[0]) / max(requests, 1):.3f} {names[f[2]]}")
if not parts:
    sys.exit(1)
print(f"  perfstat {server:7s} {ep:17s} per request: " + ", ".join(parts))
PYEOF
}

# run_wrk SERVER ENDPOINT URL LUA THREADS [VAR=VALUE...]: warm-up, measured run, result line
run_wrk() {
    local server=$1 ep=$2 url=$3 lua=$4 threads=$5
    wanted "$ep" || return 0
    shift 5
    local base="$TMP/wrk-$server-$ep" c0 c1
    local -a envs=(BENCH_LUA_DIR="$HERE/lua" "$@")
    local conns=$CONNS
    if [[ $ep == refresh ]]; then conns=$threads; fi
    if ((WARMUP > 0)); then
        local -a wenv=("${envs[@]}")
        if [[ $ep == refresh ]]; then wenv+=(BENCH_TOKENS="$TMP/$server-rt-warm"); fi
        env "${wenv[@]}" BENCH_OUT="$base.warm.json" \
            "${LOAD[@]}" wrk -t"$threads" -c"$conns" -d"${WARMUP}s" --timeout 10s -s "$HERE/lua/$lua" "$url" >/dev/null
    fi
    if [[ $ep == refresh ]]; then
        # fresh tokens after the warm-up: the peer's memory adapter (an LRU of 1000 entries)
        # would have evicted tokens made before it
        tokens "$threads" "$TMP/$server-rt" >/dev/null || die "$server: no refresh tokens"
        envs+=(BENCH_TOKENS="$TMP/$server-rt")
    fi
    local m0 m1 perf_pid=
    if [[ ${BENCH_PERF:-} == "$ep" && $server == guichet ]]; then
        perf record -q -F 999 -g -p "$SERVER_PID" -o "$OUT/perf-$ep.data" -- sleep "$DURATION" 2>/dev/null &
        perf_pid=$!
    fi
    local stat_file= stat_pid=
    if [[ " ${BENCH_PERFSTAT:-} " == *" $ep "* ]]; then
        stat_file="$OUT/perfstat-$server-$ep.txt"
        perf stat -x, -e "$PERFSTAT_EVENTS" -p "$SERVER_PID" -o "$stat_file" -- sleep "$DURATION" 2>/dev/null &
        stat_pid=$!
    fi
    m0=$(machine_ticks)
    c0=$(cpu_ticks "$SERVER_PID")
    env "${envs[@]}" BENCH_OUT="$base.json" \
        "${LOAD[@]}" wrk -t"$threads" -c"$conns" -d"${DURATION}s" --timeout 10s -s "$HERE/lua/$lua" "$url" >"$base.txt"
    c1=$(cpu_ticks "$SERVER_PID")
    m1=$(machine_ticks)
    if [[ -n $perf_pid ]]; then wait "$perf_pid" || true; fi
    if [[ -n $stat_pid ]]; then wait "$stat_pid" || true; fi
    if [[ -n $stat_file ]]; then perfstat_line "$server" "$ep" "$stat_file" "$base.json"; fi
    local -a probe=()
    if python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["status"] else 1)' "$base.json" &&
        [[ $lua == static.lua ]]; then
        # show one failing answer: the same request again, with curl
        local -a c=(curl -s -o "$base.probe" -w '%{http_code}' --max-time 10)
        local kv
        for kv in "$@"; do
            case $kv in
                BENCH_BODY=*) c+=(-H 'Content-Type: application/x-www-form-urlencoded' --data-raw "${kv#*=}") ;;
                BENCH_AUTH=*) c+=(-H "Authorization: ${kv#*=}") ;;
            esac
        done
        local code
        code=$("${c[@]}" "$url" || true)
        probe=(--probe-status "${code:-0}" --probe-body "$(head -c 300 "$base.probe" 2>/dev/null || true)")
    fi
    "$PY" "$HELPER" wrk --server "$server" --endpoint "$ep" --wrk-json "$base.json" \
        --warm-json "$base.warm.json" --cpu0 "$c0" --cpu1 "$c1" --machine "$m0 $m1" --results "$RESULTS" \
        --tool "wrk -t$threads -c$conns" "${probe[@]}"
}

# run_loop SERVER ENDPOINT UNIT [extra helper args]: a browser loop (Python workers)
run_loop() {
    local server=$1 ep=$2 unit=$3
    shift 3
    wanted "$ep" || return 0
    "${LOAD[@]}" "$PY" "$HELPER" loop --unit "$unit" --base "$BASE" --client-id="$WEB_ID" --secret="$WEB_SECRET" \
        --redirect-uri "$REDIRECT_URI" --email "$EMAIL" --password "$PASSWORD" --pid "$SERVER_PID" \
        --duration "$DURATION" --workers "$WORKERS" --server "$server" --endpoint "$ep" \
        --results "$RESULTS" "$@"
}

# tokens COUNT [REFRESH_FILE]: one sign-in and COUNT code flows with the web client
tokens() {
    local -a extra=()
    if [[ -n ${2:-} ]]; then extra=(--refresh-file "$2"); fi
    "$PY" "$HELPER" tokens --base "$BASE" --client-id="$WEB_ID" --secret="$WEB_SECRET" \
        --redirect-uri "$REDIRECT_URI" --email "$EMAIL" --password "$PASSWORD" --count "$1" "${extra[@]}"
}

# measure SERVER: every endpoint against the running server ($BASE, $SERVER_PID, clients set)
measure() {
    local s=$1 pid=$SERVER_PID
    local disc tok
    disc=$(curl -sf "$BASE/.well-known/openid-configuration") || die "$s: discovery failed"
    local token_ep jwks_ep intro_ep userinfo_ep
    token_ep=$(jget "$disc" token_endpoint)
    jwks_ep=$(jget "$disc" jwks_uri)
    intro_ep=$(jget "$disc" introspection_endpoint)
    userinfo_ep=$(jget "$disc" userinfo_endpoint)
    local cc_body=grant_type=client_credentials

    run_wrk "$s" discovery "$BASE/.well-known/openid-configuration" static.lua "$WRK_THREADS"
    run_wrk "$s" jwks "$jwks_ep" static.lua "$WRK_THREADS"
    run_wrk "$s" cc_rs256 "$token_ep" static.lua "$WRK_THREADS" BENCH_METHOD=POST BENCH_BODY=$cc_body \
        BENCH_AUTH="Basic $(printf '%s:%s' "$CC_RS_ID" "$CC_RS_SECRET" | base64 -w0)"
    run_wrk "$s" cc_es256 "$token_ep" static.lua "$WRK_THREADS" BENCH_METHOD=POST BENCH_BODY=$cc_body \
        BENCH_AUTH="Basic $(printf '%s:%s' "$CC_ES_ID" "$CC_ES_SECRET" | base64 -w0)"
    if [[ -n ${CC_ED_ID:-} ]]; then
        run_wrk "$s" cc_eddsa "$token_ep" static.lua "$WRK_THREADS" BENCH_METHOD=POST BENCH_BODY=$cc_body \
            BENCH_AUTH="Basic $(printf '%s:%s' "$CC_ED_ID" "$CC_ED_SECRET" | base64 -w0)"
    fi

    # an access token of the code flow (web client): introspected by its client, sent to userinfo
    tok=$(tokens 0) || die "$s: could not sign in and get tokens through the code flow"
    local at
    at=$(jget "$tok" access_token)
    JWTS_CODE[$s]=$(jget "$tok" code_jwts)
    JWTS_REFRESH[$s]=$(jget "$tok" refresh_jwts)
    local web_auth
    web_auth="Basic $(printf '%s:%s' "$WEB_ID" "$WEB_SECRET" | base64 -w0)"
    local active
    active=$(curl -s -u "$WEB_ID:$WEB_SECRET" --data-urlencode "token=$at" "$intro_ep")
    [[ $(jget "$active" active) == True ]] || die "$s: introspection of a fresh access token: $active"
    run_wrk "$s" introspection "$intro_ep" static.lua "$WRK_THREADS" BENCH_METHOD=POST \
        BENCH_BODY="token=$at&token_type_hint=access_token" BENCH_AUTH="$web_auth"
    run_wrk "$s" userinfo "$userinfo_ep" static.lua "$WRK_THREADS" BENCH_AUTH="Bearer $at"

    # refresh_token: one fresh token per connection, for the warm-up and (in run_wrk) the run
    if ((WARMUP > 0)); then
        tokens "$CONNS" "$TMP/$s-rt-warm" >/dev/null || die "$s: no refresh tokens"
    fi
    run_wrk "$s" refresh "$token_ep" refresh_chain.lua "$CONNS" BENCH_AUTH="$web_auth" \
        BENCH_PATH="$(python3 -c 'import sys,urllib.parse; print(urllib.parse.urlsplit(sys.argv[1]).path)' "$token_ep")"

    run_loop "$s" codeflow codeflow
    if [[ $s == guichet ]]; then
        run_loop "$s" signin signin --signin-start login
    else
        run_loop "$s" signin signin --signin-start authorize
    fi
    RSS_PEAK[$s]=$(status_kb "$pid" VmHWM)
    # VmRSS each second after the load: at +2 s, and at +SETTLE_S, past Guichet's window for
    # giving argon2's working memory back (kept while sign-ins go on, freed 10-15 s after the last)
    local t series=()
    for ((t = 1; t <= SETTLE_S; t++)); do
        sleep 1
        series+=("$(status_kb "$pid" VmRSS)")
        if ((t == 2)); then RSS_AFTER[$s]=${series[-1]}; fi
    done
    RSS_SETTLED[$s]=${series[-1]}
    log "$s: VmRSS (kB) each second after the load: ${series[*]}"
}

new_secret() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }

# ------------------------------------------------------------------ Guichet
if [[ $ONLY != peer ]]; then
log "Guichet: starting $BIN serve (release, SQLite, argon2 defaults)"
GDIR="$TMP/guichet"
mkdir -p "$GDIR"
PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
GENV=(env -u REDIS_URL -u MALLOC_MMAP_THRESHOLD_ -u GUICHET_CONFIG -u GUICHET_VENV -u GUICHET_NODE_DIR
    DATABASE_URL="sqlite://$GDIR/guichet.db" GUICHET_KEYS__DIR="$GDIR/keys"
    GUICHET_SERVER__LISTEN="127.0.0.1:$PORT" GUICHET_SERVER__ISSUER="$BASE"
    GUICHET_SERVER__METRICS_LISTEN=127.0.0.1:0 RUST_LOG="${BENCH_RUST_LOG:-info}")
# RUST_LOG=info is the default: the access log (one line per request) is on, as deployed, and
# written to server.log. BENCH_RUST_LOG=warn measures without it. cwd = its own dir: no ./guichet.toml of the developer is read
(cd "$GDIR" && exec "${GENV[@]}" "$BIN" serve >"$GDIR/server.log" 2>&1 </dev/null) &
SERVER_PID=$!
wait_ready "$BASE/readyz" Guichet "$GDIR/server.log"
pin_server "$SERVER_PID"
sleep 1
RSS_IDLE[guichet]=$(status_kb "$SERVER_PID" VmRSS)
log "Guichet ready on $BASE (pid $SERVER_PID), idle RSS ${RSS_IDLE[guichet]} kB; creating a user and clients"
gcli() { (cd "$GDIR" && "${GENV[@]}" "$BIN" "$@"); }
printf '%s' "$PASSWORD" | gcli user create --email "$EMAIL" --name Alice --password-stdin --json >/dev/null
cc() { gcli client create --name "bench cc $1" --grant client_credentials --id-token-signed-response-alg "$1" --json; }
c=$(cc RS256); CC_RS_ID=$(jget "$c" client_id); CC_RS_SECRET=$(jget "$c" client_secret)
c=$(cc ES256); CC_ES_ID=$(jget "$c" client_id); CC_ES_SECRET=$(jget "$c" client_secret)
c=$(cc EdDSA); CC_ED_ID=$(jget "$c" client_id); CC_ED_SECRET=$(jget "$c" client_secret)
c=$(gcli client create --name "bench web" --first-party --redirect-uri "$REDIRECT_URI" --json)
WEB_ID=$(jget "$c" client_id); WEB_SECRET=$(jget "$c" client_secret)
log "Guichet: measuring ($DURATION s per endpoint)"
measure guichet
stop_server
fi

# ------------------------------------------------------------------ node-oidc-provider
if [[ $ONLY != guichet ]]; then
log "peer: starting node-oidc-provider $PEER_VERSION (node $(node --version), NODE_ENV=production)"
PDIR="$TMP/peer"
mkdir -p "$PDIR"
PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
CC_RS_ID=cc-rs256 CC_RS_SECRET=$(new_secret)
CC_ES_ID=cc-es256 CC_ES_SECRET=$(new_secret)
CC_ED_ID= CC_ED_SECRET=
WEB_ID=web WEB_SECRET=$(new_secret)
cat >"$PDIR/clients.json" <<EOF
{ "cc_rs256": { "id": "$CC_RS_ID", "secret": "$CC_RS_SECRET" },
  "cc_es256": { "id": "$CC_ES_ID", "secret": "$CC_ES_SECRET" },
  "web": { "id": "$WEB_ID", "secret": "$WEB_SECRET", "redirect_uri": "$REDIRECT_URI" } }
EOF
(cd "$PDIR" && exec env NODE_ENV=production node "$HERE/peer/provider.mjs" --port "$PORT" \
    --node-dir "$NODE_DIR" --clients "$PDIR/clients.json" --email "$EMAIL" --password "$PASSWORD" \
    >"$PDIR/server.log" 2>&1 </dev/null) &
SERVER_PID=$!
wait_ready "$BASE/.well-known/openid-configuration" node-oidc-provider "$PDIR/server.log"
pin_server "$SERVER_PID"
sleep 1
RSS_IDLE[peer]=$(status_kb "$SERVER_PID" VmRSS)
log "peer ready on $BASE (pid $SERVER_PID), idle RSS ${RSS_IDLE[peer]} kB"
measure peer
stop_server
fi

# ------------------------------------------------------------------ report
ELAPSED=$((SECONDS - T_START))
META="$OUT/meta.json"
python3 - "$META" <<PYEOF
import json, os, platform, sys, time
limits = json.loads('''$LIMITS''')
mb = lambda kb: int(kb or 0) / 1024
num = lambda v, default: int(v) if v.isdigit() else default
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
meta = {
    "mode": "$MODE", "duration": $DURATION, "warmup": $WARMUP, "connections": $CONNS,
    "workers": $WORKERS, "nproc": os.cpu_count(), "cpu": cpu, "host": platform.platform(),
    "date": time.strftime("%Y-%m-%d %H:%M %Z"), "elapsed_s": $ELAPSED,
    "loadavg_start": "$LOAD_START", "loadavg_end": open("/proc/loadavg").read().split()[0],
    "guichet_version": "$GUICHET_VERSION", "peer_version": "$PEER_VERSION",
    "node_version": "$(node --version)", "limits": limits,
    "guichet_jwts": {"code": num("${JWTS_CODE[guichet]:-}", 2), "refresh": num("${JWTS_REFRESH[guichet]:-}", 2)},
    "peer_jwts": {"code": num("${JWTS_CODE[peer]:-}", 1), "refresh": num("${JWTS_REFRESH[peer]:-}", 1)},
    "rss": {
        "guichet": {"idle_mb": mb("${RSS_IDLE[guichet]}"), "peak_mb": mb("${RSS_PEAK[guichet]}"), "after_mb": mb("${RSS_AFTER[guichet]}"), "settled_mb": mb("${RSS_SETTLED[guichet]}"), "settle_s": $SETTLE_S},
        "peer": {"idle_mb": mb("${RSS_IDLE[peer]}"), "peak_mb": mb("${RSS_PEAK[peer]}"), "after_mb": mb("${RSS_AFTER[peer]}"), "settled_mb": mb("${RSS_SETTLED[peer]}"), "settle_s": $SETTLE_S},
    },
}
gj, pj = meta["guichet_jwts"], meta["peer_jwts"]
meta["notes"] = [
    "Sign-in: the peer compares the password as a plain string; Guichet verifies an argon2id hash "
    "(m=19456 KiB, t=2, p=1, its defaults). The sign-in and code-flow ratios measure that choice: "
    "judge Guichet there by its distance to the argon2 limit.",
    "Sign-in unit: Guichet GET /login + POST /login (303); peer GET /auth (opens the interaction) + "
    "GET the form + POST it (303). Code-flow unit, both: authorize, form, POST credentials, authorize "
    "again, code exchange at the token endpoint (5 requests), a new browser (cookie jar) each time. "
    "Latencies of these two rows are per unit.",
    "EdDSA: node-oidc-provider is run without an Ed25519 key here; its EdDSA row is its ES256 run.",
    f"Access tokens of the code flow: Guichet issues RS256 JWTs ({gj['code']} JWTs per code "
    f"exchange, {gj['refresh']} per refresh), so its userinfo and introspection verify a signature; "
    f"the peer issues opaque ones ({pj['code']} JWT per code exchange, {pj['refresh']} per refresh: the "
    "ID token) — it serves userinfo and introspection for opaque tokens only.",
    "client_credentials: JWT access tokens on both (peer: resourceIndicators, accessTokenFormat 'jwt').",
    "refresh_token grant: rotation on every use on both (peer: rotateRefreshToken returns true); "
    "wrk chains each answer's new refresh token on its connection (one connection per wrk thread).",
    "Storage: Guichet writes to a SQLite file; the peer keeps everything in its built-in memory "
    "adapter (an LRU of 1000 entries, nothing persisted).",
    "Limits: openssl speed (one process, CPU-time divisor) and argon2-cffi (one thread). 'limit per "
    "CPU-s' is the crypto floor of Guichet's work for one request; '% of limit' is req per CPU-s "
    "divided by it (only for the client_credentials rows on the peer, where its work is the same).",
    "wrk and the Python workers run on the same CPUs as the server: req/s is shared-machine "
    "throughput; req per server CPU-second is the comparable figure.",
]
json.dump(meta, open(sys.argv[1], "w"), indent=1)
PYEOF
"$PY" "$HELPER" report --results "$RESULTS" --meta "$META" --out "$OUT"
log "done in $((SECONDS - T_START)) s; results in $OUT"

# Errors fail the run (figures never do).
if ! python3 -c 'import json,sys; sys.exit(1 if any(json.loads(l)["errors"] for l in open(sys.argv[1]) if l.strip()) else 0)' "$RESULTS"; then
    echo "side_by_side: errors during the run (see above)" >&2
    exit 1
fi
