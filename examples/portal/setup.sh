#!/usr/bin/env bash
# Sets up the demo portal against the Guichet of `make run` (same working directory: its SQLite
# database and key directory), then prints the portal's settings as `export` lines:
#   eval "$(examples/portal/setup.sh)"
# Creates Alice (alice@example.com, password "correct horse battery staple") in Acme, the portal
# as a first-party client with orders:read, galleries:read and billing:read, a role "buyer" with
# the first two granted to Alice, and a read-only developer key of Acme (live revocation).
# Safe to run once per fresh database. Logs go to stderr; only the exports go to stdout.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BASE=${PORTAL_BASE_URL:-http://127.0.0.1:7070}
ISSUER=${PORTAL_ISSUER:-http://localhost:8080}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/guichet-target}"
cargo build -q --bin guichet >&2
G="$CARGO_TARGET_DIR/debug/guichet"
field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

printf '%s' 'correct horse battery staple' | "$G" user create --email alice@example.com --name Alice --password-stdin >&2
"$G" org create --name "Acme Corp" --slug acme --owner alice@example.com >&2
client=$("$G" client create --name "Customer portal" --first-party --redirect-uri "$BASE/callback" \
    --post-logout-redirect-uri "$BASE/" --backchannel-logout-uri "$BASE/backchannel-logout" --json)
id=$(field client_id <<<"$client")
secret=$(field client_secret <<<"$client")
"$G" permission add --client "$id" orders:read galleries:read billing:read >&2
"$G" role create --client "$id" --name buyer --permission orders:read galleries:read >&2
"$G" role grant --org acme --email alice@example.com --role buyer --client "$id" >&2
key=$("$G" devkey create --org acme --name portal --scope read --json)
echo "export PORTAL_ISSUER=$ISSUER PORTAL_BASE_URL=$BASE PORTAL_CLIENT_ID=$id PORTAL_CLIENT_SECRET=$secret"
echo "export PORTAL_DEVKEY=$(field key <<<"$key") PORTAL_DEVSECRET=$(field secret <<<"$key")"
