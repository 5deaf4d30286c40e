#!/usr/bin/env bash
# Token-endpoint throughput (client_credentials, client_secret_basic) per signing alg, with the
# server's CPU time read from /proc so results compare per CPU-second. Loopback only.
#   benches/token_client_credentials.sh [seconds] [connections] [--no-build]
# Needs wrk (apt-get install wrk). Builds the release binary unless --no-build; GUICHET_BIN=PATH
# measures another binary (to compare two builds back to back), ALGS="EdDSA ES256" a subset. The
# server logs at its default level (the access log on, to a file), as deployed. A quick A/B tool;
# the figures of record come from benches/side_by_side.sh (docs/PERFORMANCE.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DURATION=${1:-10}
CONNS=${2:-16}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/guichet-target}
command -v wrk >/dev/null || { echo "wrk missing: apt-get install -y wrk" >&2; exit 1; }
[[ ${3:-} == --no-build ]] || cargo build --release --bin guichet -q
BIN=${GUICHET_BIN:-$CARGO_TARGET_DIR/release/guichet}
TMP=$(mktemp -d); PID=
trap '[[ -n $PID ]] && kill $PID 2>/dev/null; rm -rf "$TMP"' EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export DATABASE_URL="sqlite://$TMP/g.db" GUICHET_KEYS__DIR="$TMP/keys" RUST_LOG=${RUST_LOG:-info}
export GUICHET_SERVER__LISTEN=127.0.0.1:$PORT GUICHET_SERVER__ISSUER=http://127.0.0.1:$PORT GUICHET_SERVER__METRICS_LISTEN=127.0.0.1:0
"$BIN" serve >"$TMP/log" 2>&1 & PID=$!
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do sleep 0.2; done
HZ=$(getconf CLK_TCK)
printf '%-6s %12s %14s %18s\n' alg "req/s" "server CPU s" "req/CPU-second"
for alg in ${ALGS:-ES256 EdDSA RS256}; do
    c=$("$BIN" client create --name "bench $alg" --grant client_credentials --id-token-signed-response-alg $alg --json)
    id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["client_id"])' "$c")
    secret=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["client_secret"])' "$c")
    cat >"$TMP/cc.lua" <<LUA
wrk.method = "POST"
wrk.body = "grant_type=client_credentials"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic $(printf '%s:%s' "$id" "$secret" | base64 -w0)"
LUA
    t0=$(awk '{print $14+$15}' /proc/$PID/stat)
    out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$TMP/cc.lua" "http://127.0.0.1:$PORT/token")
    t1=$(awk '{print $14+$15}' /proc/$PID/stat)
    if grep -q "Non-2xx" <<<"$out"; then echo "$out"; echo "errors during the run" >&2; exit 1; fi
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    python3 -c "import sys; rps=float(sys.argv[1]); cpu=(int(sys.argv[2])-int(sys.argv[3]))/int(sys.argv[4]); d=float(sys.argv[5]); print(f'{sys.argv[6]:<6} {rps:12.0f} {cpu:14.2f} {rps*d/cpu:18.0f}')" "$rps" "$t1" "$t0" "$HZ" "$DURATION" "$alg"
done
