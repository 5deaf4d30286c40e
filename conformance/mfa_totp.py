#!/usr/bin/env python3
"""Two-step verification judged by an independent TOTP implementation (PyPI pyotp, RFC 6238):
enrol an authenticator app through the pages, check the otpauth:// URI pyotp parses, sign in
with pyotp's codes, and check replay, drift, wrong codes and recovery codes.

Usage: mfa_totp.py --base URL --bin PATH (creates its own user with `guichet user create`)."""

from __future__ import annotations

import argparse
import re
import secrets
import subprocess
import sys
import time
from urllib.parse import urljoin

import pyotp
import requests

from checks import Checks, describe

PASSWORD = "mfa-conformance-" + secrets.token_hex(6)


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]*)"', html)
    return m.group(1) if m else ""


def unescape(s: str) -> str:
    return (s.replace("&#x2F;", "/").replace("&#x27;", "'").replace("&quot;", '"')
            .replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))


class Browser:
    def __init__(self, base: str) -> None:
        self.base = base
        self.s = requests.Session()

    def get(self, path: str) -> requests.Response:
        return self.s.get(urljoin(self.base + "/", path.lstrip("/")), allow_redirects=False, timeout=10)

    def post(self, path: str, data: dict[str, str]) -> requests.Response:
        return self.s.post(urljoin(self.base + "/", path.lstrip("/")), data=data, allow_redirects=False, timeout=10)

    def password(self, email: str) -> requests.Response:
        page = self.get("/login")
        return self.post("/login", {"email": email, "password": PASSWORD, "csrf_token": csrf_of(page.text)})

    def second_factor(self, code: str) -> requests.Response:
        page = self.get("/login/second-factor")
        return self.post("/login/second-factor", {"code": code, "csrf_token": csrf_of(page.text)})


def sign_in(c: Checks, base: str, email: str, code: str) -> requests.Response:
    b = Browser(base)
    r = b.password(email)
    c.require("the password step asks for the second factor (303 /login/second-factor)",
              r.status_code == 303 and r.headers.get("Location") == "/login/second-factor", describe(r))
    return b.second_factor(code)


def scenario(c: Checks, base: str, binary: str) -> None:
    email = f"mfa-{secrets.token_hex(4)}@example.com"
    p = subprocess.run([binary, "user", "create", "--email", email, "--password-stdin", "--json"],
                       input=PASSWORD, capture_output=True, text=True, timeout=60)
    c.require("guichet user create", p.returncode == 0, p.stderr.strip())

    b = Browser(base)
    r = b.password(email)
    c.require("sign in with the password (no factor yet: 303 /)", r.status_code == 303 and r.headers.get("Location") == "/",
              describe(r))
    page = b.get("/account/security/totp")
    c.require("GET /account/security/totp -> 200", page.status_code == 200, describe(page))
    m = re.search(r'id="totp-uri" href="([^"]+)"', page.text)
    c.require("the page gives an otpauth:// URI", m is not None, page.text[:300])
    uri = unescape(m.group(1))
    totp = pyotp.parse_uri(uri)
    c.check("pyotp parses it: 6 digits, 30 s, SHA-1", totp.digits == 6 and totp.interval == 30
            and totp.digest().name == "sha1", uri)
    shown = re.search(r'id="totp-secret">([A-Z2-7=]+)<', page.text)
    c.check("the key shown as text is the URI's", shown is not None and shown.group(1) == totp.secret, uri)
    c.check("a 160-bit key (pyotp refuses shorter)", len(totp.byte_secret()) == 20, str(len(totp.byte_secret())))
    c.check("the QR code is inline SVG", "<svg" in page.text, "no <svg")

    wrong = b.post("/account/security/totp", {"code": "000000" if totp.now() != "000000" else "111111",
                                              "csrf_token": csrf_of(page.text)})
    c.check("a wrong enrolment code is refused (400)", wrong.status_code == 400, describe(wrong))
    ok = b.post("/account/security/totp", {"code": totp.now(), "csrf_token": csrf_of(page.text)})
    c.require("pyotp's current code turns TOTP on (200)", ok.status_code == 200, describe(ok))
    codes = re.findall(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>", ok.text)
    c.check("ten recovery codes are shown once", len(codes) == 10, str(codes))

    # The enrolment spent the current step; the next one (drift of +1 step) signs in.
    ahead = totp.at(time.time() + 30)
    r = sign_in(c, base, email, ahead)
    c.check("pyotp's next-step code signs in (drift of one step: 303)", r.status_code == 303, describe(r))
    r = sign_in(c, base, email, ahead)
    c.check("the same step again is refused (replay: 401)", r.status_code == 401, describe(r))
    r = sign_in(c, base, email, totp.at(time.time() + 120))
    c.check("a code four steps ahead is refused (401)", r.status_code == 401, describe(r))
    if codes:
        r = sign_in(c, base, email, codes[0])
        c.check("a recovery code signs in (303)", r.status_code == 303, describe(r))
        r = sign_in(c, base, email, codes[0])
        c.check("a recovery code works once (401)", r.status_code == 401, describe(r))
    d = requests.get(base + "/.well-known/openid-configuration", timeout=10).json()
    c.check("discovery lists urn:guichet:acr:mfa", "urn:guichet:acr:mfa" in d.get("acr_values_supported", []),
            str(d.get("acr_values_supported")))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--bin", required=True)
    a = ap.parse_args()
    c = Checks()
    c.scenario("TOTP with pyotp", scenario, c, a.base.rstrip("/"), a.bin)
    print(f"{c.passed} passed, {c.failed} failed")
    return 0 if c.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
