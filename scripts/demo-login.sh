#!/usr/bin/env bash
# The README's five-minute guide as a script: against a running Guichet, create a user and a
# client with the CLI, sign in through the authorization code flow with PKCE using curl (the
# plain HTML form), exchange the code and print the ID token's claims.
#
#   scripts/demo-login.sh                 # server from `make run` (http://localhost:8080)
#   ISSUER=http://127.0.0.1:9000 GUICHET=/path/to/guichet scripts/demo-login.sh
#
# The CLI must see the server's database and keys (same working directory, or the same
# DATABASE_URL and GUICHET_KEYS__DIR in the environment).
set -euo pipefail

ISSUER=${ISSUER:-http://localhost:8080}
GUICHET=${GUICHET:-${CARGO_TARGET_DIR:-$HOME/.cache/guichet-target}/debug/guichet}
EMAIL=${EMAIL:-demo@example.com}
PASSWORD=${PASSWORD:-correct horse battery staple}
REDIRECT_URI=http://localhost:9999/callback
b64url() { python3 -c 'import base64,sys; print(base64.urlsafe_b64encode(sys.stdin.buffer.read()).rstrip(b"=").decode())'; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# 1. A user (ignore "already exists" on a second run) and a first-party client.
printf '%s' "$PASSWORD" | "$GUICHET" user create --email "$EMAIL" --name "Demo User" --password-stdin >/dev/null 2>&1 || true
client=$("$GUICHET" client create --name "Demo portal" --first-party --redirect-uri "$REDIRECT_URI" --json)
CLIENT_ID=$(echo "$client" | json '["client_id"]')
CLIENT_SECRET=$(echo "$client" | json '["client_secret"]')
echo "client_id: $CLIENT_ID"

# 2. PKCE verifier and challenge (RFC 7636, S256).
VERIFIER=$(head -c 32 /dev/urandom | b64url)
CHALLENGE=$(printf '%s' "$VERIFIER" | python3 -c 'import hashlib,sys; sys.stdout.buffer.write(hashlib.sha256(sys.stdin.buffer.read()).digest())' | b64url)

# 3. The browser part: /authorize redirects to the sign-in form; post it; follow to the client.
jar=$(mktemp); trap 'rm -f "$jar"' EXIT
auth="$ISSUER/authorize?response_type=code&client_id=$CLIENT_ID&scope=openid%20email%20profile&state=xyz&nonce=n-0S6_WzA2Mj&code_challenge=$CHALLENGE&code_challenge_method=S256&redirect_uri=$(python3 -c "import urllib.parse; print(urllib.parse.quote('$REDIRECT_URI', safe=''))")"
login=$(curl -sf -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' "$auth")
page=$(curl -sf -c "$jar" -b "$jar" "$login")
field() { echo "$page" | sed -n "s/.*name=\"$1\" value=\"\([^\"]*\)\".*/\1/p" | head -1 | sed 's/&#x2F;/\//g; s/&amp;/\&/g'; }
next=$(curl -sf -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' \
  --data-urlencode "email=$EMAIL" --data-urlencode "password=$PASSWORD" \
  --data-urlencode "csrf_token=$(field csrf_token)" --data-urlencode "return_to=$(field return_to)" "$ISSUER/login")
callback=$(curl -sf -c "$jar" -b "$jar" -o /dev/null -w '%{redirect_url}' "$next")
CODE=$(python3 -c "import urllib.parse,sys; print(urllib.parse.parse_qs(urllib.parse.urlparse(sys.argv[1]).query)['code'][0])" "$callback")
echo "redirected to the client with a code"

# 4. The back-channel part: exchange the code (client_secret_basic + PKCE verifier).
tokens=$(curl -sf -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=authorization_code -d "code=$CODE" \
  --data-urlencode "redirect_uri=$REDIRECT_URI" -d "code_verifier=$VERIFIER" "$ISSUER/token")
ID_TOKEN=$(echo "$tokens" | json '["id_token"]')
ACCESS_TOKEN=$(echo "$tokens" | json '["access_token"]')

# 5. Read the ID token (a real RP verifies its signature against $ISSUER/jwks first).
echo "ID token claims:"
echo "$ID_TOKEN" | cut -d. -f2 | python3 -c 'import base64,json,sys; s=sys.stdin.read().strip(); print(json.dumps(json.loads(base64.urlsafe_b64decode(s+"="*(-len(s)%4))), indent=2))'
echo "userinfo:"
curl -sf -H "Authorization: Bearer $ACCESS_TOKEN" "$ISSUER/userinfo"; echo
