#!/usr/bin/env bash
# Instructions per request of the release server, counted by callgrind (repeatable whatever
# else the machine does; docs/PERFORMANCE.md, "Instruction counts per request").
#
#   benches/callgrind.sh [cc-es256|cc-rs256|cc-eddsa|jwks|discovery] [REQUESTS] [--no-build]
#
# Starts `guichet serve` (release, SQLite, a scratch directory) under valgrind, sends 50
# warm-up requests on one keep-alive connection, zeroes the counters, sends REQUESTS (default
# 1000), dumps the counters and prints the instructions per request and the top functions
# (inclusive), then the top functions by their own instructions (exclusive). CALLGRIND_OUT=FILE
# keeps the dump for callgrind_annotate. The server logs at its default level (RUST_LOG=info: the
# access log on); RUST_LOG=warn counts a request without its log line. Needs valgrind (apt-get install valgrind), python3 with requests, curl.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/guichet-target}"
WHAT=${1:-cc-es256}
N=${2:-1000}
[[ ${3:-} == --no-build ]] || (cd "$ROOT" && cargo build --release --bin guichet)
command -v valgrind >/dev/null || { echo "callgrind: install valgrind" >&2; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/guichet-callgrind.XXXXXX")
VP=
cleanup() { [[ -n $VP ]] && kill "$VP" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BIN=$TMP/guichet
cp "$CARGO_TARGET_DIR/release/guichet" "$BIN"
export DATABASE_URL="sqlite://$TMP/g.db" GUICHET_KEYS__DIR="$TMP/keys" GUICHET_SERVER__LISTEN="127.0.0.1:$PORT" \
    GUICHET_SERVER__ISSUER="http://127.0.0.1:$PORT" GUICHET_SERVER__METRICS_LISTEN=127.0.0.1:0 RUST_LOG=${RUST_LOG:-info} \
    MALLOC_MMAP_THRESHOLD_=131072
unset REDIS_URL
"$BIN" migrate --json >/dev/null
ALG=ES256
[[ $WHAT == cc-rs256 ]] && ALG=RS256
[[ $WHAT == cc-eddsa ]] && ALG=EdDSA
"$BIN" client create --name callgrind --grant client_credentials --id-token-signed-response-alg "$ALG" --json >"$TMP/client.json"
valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.out" "$BIN" serve >"$TMP/server.log" 2>&1 &
VP=$!
for _ in $(seq 240); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.5; done
python3 - "$TMP" "$PORT" "$WHAT" "$N" <<'PY'
import json, subprocess, sys
import requests
tmp, port, what, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
c = json.load(open(f"{tmp}/client.json"))
s = requests.Session()
base = f"http://127.0.0.1:{port}"
def one():
    if what.startswith("cc-"):
        r = s.post(base + "/token", data={"grant_type": "client_credentials"}, auth=(c["client_id"], c["client_secret"]))
    elif what == "jwks":
        r = s.get(base + "/jwks")
    else:
        r = s.get(base + "/.well-known/openid-configuration")
    if r.status_code != 200:
        sys.exit(f"callgrind: {r.status_code} {r.text[:200]}")
for _ in range(50):
    one()
subprocess.run(["callgrind_control", "-z"], check=True, capture_output=True)
for _ in range(n):
    one()
subprocess.run(["callgrind_control", "-d"], check=True, capture_output=True)
PY
kill "$VP"; wait "$VP" 2>/dev/null || true; VP=
DUMP=$(ls "$TMP"/cg.out.* | sort | tail -n 1)
TOTAL=$(callgrind_annotate "$DUMP" 2>/dev/null | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}')
echo "$WHAT: $((TOTAL / N)) instructions per request ($N requests)"
[[ -z ${CALLGRIND_OUT:-} ]] || cp "$DUMP" "$CALLGRIND_OUT"
callgrind_annotate --inclusive=yes "$DUMP" 2>/dev/null | grep -E '^ *[0-9,]+ ' | grep -E 'guichet|libcrypto' | grep -v '???:0x' | sed -n '1,40p' | cut -c1-170
echo "-- exclusive"
callgrind_annotate --threshold=100 "$DUMP" 2>/dev/null | grep -E '^ *[0-9,]+ ' | grep -v 'PROGRAM TOTALS' | sed -n '1,30p' | cut -c1-170
