#!/usr/bin/env bash
# Guichet at scale, on this machine, in one run (loopback only): one node on SQLite, one node on
# PostgreSQL + Redis, two nodes on PostgreSQL + Redis behind haproxy (and, by default, the last
# two again with the nodes pinned to CPUs).
#
#   benches/scale.sh [--short] [--out DIR] [--no-build] [--duration S] [--connections N]
#                    [--workers N] [--users N] [--configs a,b,c,b1,c1] [--workloads LIST]
#                    [--balance roundrobin|leastconn|random]
#
#   --short        CI: configurations a, b, c; 2 s per workload (1 s wrk warm-up); 4 users;
#                  400 SAML Responses. About 1.5 minutes, plus the build.
#                  Default: a, b, c, b1, c1; 10 s per workload after 2 s; 16 users. About
#                  9-10 minutes, plus the build.
#   --out DIR      where results go (default: a new temp dir, printed at the end)
#   --no-build     use the release binary already in $CARGO_TARGET_DIR
#   --duration S   seconds per workload (overrides the mode's)
#   --connections N  wrk connections (default 16; the refresh chain uses N threads x 1)
#   --workers N    Python workers of the browser flows, SAML and mixed loads (default 4)
#   --users N      accounts created per configuration (the flows cycle through them)
#   --configs L    a = 1 node, SQLite; b = 1 node, PostgreSQL + Redis; c = 2 nodes, PostgreSQL +
#                  Redis, haproxy round robin; b1 / c1 = b / c with the nodes pinned (taskset)
#                  to CPU 0 / CPUs 0 and 1
#   --workloads L  codeflow,refresh,introspection,signin,saml_acs,mixed (default: all)
#   --balance A    haproxy's algorithm for c and c1 (default roundrobin; keep-alive either way)
#   BENCH_KEEP_TMP=1 keeps the scratch dir (database, keys, haproxy.cfg) for inspection
#
# Starts its own PostgreSQL cluster (initdb on a free port, as the postgres user when root, with
# pg_stat_statements) and its own redis-server on a free port — never the machine's — so their
# CPU is measured alone. Per workload and configuration: req/s overall and per node (each node's
# /metrics), p50/p99, Guichet CPU-s per node (/proc/PID/stat), requests per Guichet CPU-second,
# PostgreSQL CPU-s (all the cluster's processes), Redis and haproxy CPU-s, the load generator's
# CPU-s, the CPU used by anything else on the machine ("foreign": a large figure means a
# disturbed run), SQL statements and Redis commands per unit, errors; and
# the growth from one node to two. Before measuring two nodes it checks that they share state.
# Results: a summary on stdout; results.md, results.json and the nodes' logs in --out DIR.
# Exits non-zero only on errors (a setup step that failed, a non-2xx/303 answer, a socket error,
# a 4xx/5xx in the nodes' /metrics), never on figures.
#
# Installs what is missing: haproxy, wrk, xmlsec1, redis-server, a PostgreSQL server (apt-get,
# when root); argon2-cffi, requests, authlib, joserfc, dnslib, pysaml2 into the venv $BENCH_VENV
# (default ~/.cache/guichet-bench-venv). Runs scripts/bootstrap.sh, then builds Guichet in release
# mode into $CARGO_TARGET_DIR (default ~/.cache/guichet-target), retrying a failed build a few
# times a minute apart (BENCH_BUILD_ATTEMPTS, default 5). Everything it starts is stopped on exit.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
cd "$ROOT"

usage() { sed -n '2,/^set -euo/p' "$HERE/scale.sh" | sed '$d; s/^# \{0,1\}//'; }

BUILD=1
PY_ARGS=()
while (($#)); do
    case $1 in
        --short) PY_ARGS+=(--short) ;;
        --out) PY_ARGS+=(--out "${2:?--out needs a directory}"); shift ;;
        --out=*) PY_ARGS+=(--out "${1#--out=}") ;;
        --no-build) BUILD=0 ;;
        --duration | --connections | --workers | --users | --configs | --workloads | --balance)
            [[ -n ${2:-} ]] || { echo "scale: $1 needs a value" >&2; exit 2; }
            PY_ARGS+=("$1" "$2"); shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "scale: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/guichet-target}"
VENV="${BENCH_VENV:-$HOME/.cache/guichet-bench-venv}"
T_START=$SECONDS
log() { printf '[%3ds] %s\n' $((SECONDS - T_START)) "$*"; }
die() { echo "scale: $*" >&2; exit 1; }
# shellcheck source=benches/lib.sh
source "$HERE/lib.sh"

# ------------------------------------------------------------------ what it needs
apt_install() { # apt_install PACKAGE...: as root only
    if ((EUID == 0)); then
        log "installing $*"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 \
            --no-install-recommends "$@" >/dev/null
    else
        die "missing: $* — run: sudo apt-get install -y $*"
    fi
}
missing=()
for tool in haproxy wrk xmlsec1 curl taskset; do
    command -v $tool >/dev/null || missing+=("$([[ $tool == taskset ]] && echo util-linux || echo $tool)")
done
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || missing+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || [[ -n ${PG_BIN:-} ]] || missing+=(postgresql)
command -v python3 >/dev/null || missing+=(python3)
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv)
((${#missing[@]} == 0)) || apt_install "${missing[@]}"

PY=$(ensure_venv "$VENV")
if ! "$PY" -c 'import argon2, requests, authlib, joserfc, dnslib, saml2' 2>/dev/null; then
    log "installing argon2-cffi requests authlib joserfc dnslib pysaml2 into $VENV"
    "$PY" -m pip install -q --disable-pip-version-check argon2-cffi requests authlib joserfc dnslib pysaml2 ||
        die "pip install into $VENV failed"
fi

# ------------------------------------------------------------------ Guichet release build
BIN="$CARGO_TARGET_DIR/release/guichet"
if ((BUILD)); then
    bash "$ROOT/scripts/bootstrap.sh" # the C libraries the build needs (libclang, libxmlsec1-dev...)
    build_release "${TMPDIR:-/tmp}/guichet-scale-build.log"
fi
[[ -x $BIN ]] || die "$BIN missing (build it, or drop --no-build)"
# A copy: immune to a rebuild of the shared target dir during the run.
BIN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/guichet-scale-bin.XXXXXX")
trap 'rm -rf "$BIN_DIR"' EXIT
cp "$BIN" "$BIN_DIR/guichet"
chmod 755 "$BIN_DIR"
VERSION=$("$BIN_DIR/guichet" --version 2>/dev/null | head -n1 || true)
VERSION="${VERSION:-guichet} (release), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(
    git -C "$ROOT" diff --quiet 2>/dev/null || echo ' + uncommitted edits')"
log "measuring $VERSION"

keep=()
[[ -z ${BENCH_KEEP_TMP:-} ]] || keep=(--keep-tmp)
rc=0
"$PY" "$HERE/scale.py" --bin "$BIN_DIR/guichet" --version-note "$VERSION" "${keep[@]}" "${PY_ARGS[@]}" || rc=$?
log "done in $((SECONDS - T_START)) s"
exit "$rc"
