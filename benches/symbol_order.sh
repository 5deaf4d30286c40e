#!/usr/bin/env bash
# Regenerates benches/symbol-order.txt: the functions the release server runs from start-up to
# answering discovery, JWKS, client_credentials (RS256, ES256, EdDSA), the sign-in page and the
# health checks, then a sign-in, code flows, a refresh, userinfo and introspection, as callgrind
# sees them. build.rs hands the list to the linker, which lays these functions out together, so
# a start-up maps less of the binary's code (docs/PERFORMANCE.md, "Idle memory"). Run it as the
# last step of any code change: even a small one gives many generic instantiations new names
# (making one method test-only renamed 2 097). A stale list still works (missing names are
# skipped), it only packs less well.
#   usage: benches/symbol_order.sh [--no-build]
#          benches/symbol_order.sh --check   how many of the listed names the release binary
#                                           (as built) still defines; a warning under 95 %
#                                           (CI runs it after the benchmark; never fails).
#                                           At 89 % the idle RSS was already 2 MB higher.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/guichet-target}"
BIN=$CARGO_TARGET_DIR/release/guichet
if [[ ${1:-} == --check ]]; then
    [[ -x $BIN ]] || { echo "symbol_order: no release build at $BIN" >&2; exit 0; }
    listed=$(wc -l <"$ROOT/benches/symbol-order.txt")
    found=$(nm --defined-only "$BIN" | awk '$2 ~ /^[tTwW]$/ {print $3}' \
        | awk 'NR==FNR {d[$0]=1; next} ($0 in d)' - "$ROOT/benches/symbol-order.txt" | wc -l)
    pct=$((listed > 0 ? found * 100 / listed : 0))
    echo "symbol_order: $found of $listed functions of benches/symbol-order.txt are in the binary ($pct %)"
    if ((pct < 95)); then
        echo "symbol_order: warning: the list is stale; start-up maps more code (idle RSS up)." \
            "Regenerate it: benches/symbol_order.sh" >&2
    fi
    exit 0
fi
[[ ${1:-} == --no-build ]] || (cd "$ROOT" && cargo build --release --bin guichet)
command -v valgrind >/dev/null || { echo "symbol_order: install valgrind" >&2; exit 1; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/guichet-order.XXXXXX")
VP=
cleanup() { [[ -n $VP ]] && kill "$VP" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE=http://127.0.0.1:$PORT
export DATABASE_URL="sqlite://$TMP/g.db" GUICHET_KEYS__DIR="$TMP/keys" GUICHET_SERVER__LISTEN="127.0.0.1:$PORT" \
    GUICHET_SERVER__ISSUER="$BASE" GUICHET_SERVER__METRICS_LISTEN=127.0.0.1:0 MALLOC_MMAP_THRESHOLD_=131072
unset REDIS_URL
# A fresh database and key directory, as a first start: migrations and key generation included.
(cd "$TMP" && exec valgrind --tool=callgrind --demangle=no --dump-instr=no --compress-strings=no \
    --callgrind-out-file="$TMP/cg.out" "$BIN" serve >"$TMP/server.log" 2>&1) &
VP=$!
for _ in $(seq 600); do curl -sf "$BASE/readyz" >/dev/null && break; sleep 0.5; done
curl -sf "$BASE/readyz" >/dev/null || { cat "$TMP/server.log" >&2; exit 1; }
for alg in RS256 ES256 EdDSA; do
    c=$("$BIN" client create --name "order $alg" --grant client_credentials --id-token-signed-response-alg "$alg" --json)
    id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["client_id"])' "$c")
    secret=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["client_secret"])' "$c")
    for _ in 1 2 3; do curl -sf -o /dev/null -u "$id:$secret" -d grant_type=client_credentials "$BASE/token"; done
done
for p in /.well-known/openid-configuration /jwks /login /healthz /readyz /no-such-page; do
    for _ in 1 2; do curl -s -o /dev/null "$BASE$p"; done
done
# Then what a browser and a relying party do, laid out after it: a sign-in through the form,
# code flows with their code exchange, a refresh, userinfo and introspection (the benchmark's
# helper, standard library only). Without them a server that has served sign-ins kept 4-6 MB
# more of its code resident.
printf '%s' 'order-password-1' | "$BIN" user create --email order@example.com --name Order --password-stdin --json >/dev/null
c=$("$BIN" client create --name "order web" --first-party --redirect-uri http://127.0.0.1:9/cb --json)
id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["client_id"])' "$c")
secret=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["client_secret"])' "$c")
t=$(python3 "$ROOT/benches/side_by_side.py" tokens --base "$BASE" --client-id="$id" --secret="$secret" \
    --redirect-uri http://127.0.0.1:9/cb --email order@example.com --password order-password-1 --count 2)
at=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["access_token"])' "$t")
for _ in 1 2; do
    curl -sf -o /dev/null -H "Authorization: Bearer $at" "$BASE/userinfo"
    curl -sf -o /dev/null -u "$id:$secret" --data-urlencode "token=$at" "$BASE/introspect"
done
kill -INT "$VP"; wait "$VP" 2>/dev/null || true; VP=
# Every function callgrind saw, first appearance first, kept if the binary defines it.
nm --defined-only "$BIN" | awk '$2 ~ /^[tTwW]$/ {print $3}' | sort -u >"$TMP/defined"
cat "$TMP"/cg.out* | sed -n -E 's/^c?fn=(\([0-9]+\) )?//p' | awk '!seen[$0]++' \
    | awk 'NR==FNR {d[$0]=1; next} ($0 in d)' "$TMP/defined" - >"$ROOT/benches/symbol-order.txt"
echo "symbol_order: $(wc -l <"$ROOT/benches/symbol-order.txt") functions in benches/symbol-order.txt"
