#!/usr/bin/env python3
"""Black-box check of organizations, RBAC claims, verified domains and home-realm discovery.

Third-party parts only: the `guichet` CLI sets things up as an operator would; authlib runs
the code flow as a relying party (PKCE, client_secret_basic, refresh), joserfc verifies the
tokens against the JWKS, python-requests plays the browser (the login form, the organization
chooser), and dnslib serves the TXT records on loopback for `guichet domain verify`.

Usage: orgs_rbac.py --base URL --bin PATH/TO/guichet
Prints PASS/FAIL lines and ends with `N passed, M failed`; exits 1 when a check failed.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import subprocess
import sys
import threading
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urljoin, urlparse

import requests
from authlib.integrations.requests_client import OAuth2Session
from dnslib import QTYPE, RR, TXT
from dnslib.server import BaseResolver, DNSLogger, DNSServer
from joserfc import jwt
from joserfc.jwk import KeySet

from checks import Checks, describe

TIMEOUT = 15
REDIRECT = "http://127.0.0.1/rp/orgs/callback"
PASSWORD = "orgs-" + secrets.token_hex(8)


# ---------------------------------------------------------------- DNS on loopback (dnslib)


class TxtTable(BaseResolver):
    """Answers TXT queries from a dict the check changes as it goes; NXDOMAIN otherwise."""

    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.queries: list[str] = []

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        self.queries.append(name)
        values = self.records.get(name)
        if values is None:
            reply.header.rcode = 3  # NXDOMAIN
        elif request.q.qtype == QTYPE.TXT:
            for v in values:
                reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(v), ttl=1))
        return reply


def start_dns() -> tuple[TxtTable, str]:
    table = TxtTable()
    server = DNSServer(table, port=0, address="127.0.0.1", logger=DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False))
    server.start_thread()
    port = server.server.server_address[1]
    return table, f"127.0.0.1:{port}"


# ---------------------------------------------------------------- the CLI


class CLI:
    def __init__(self, binary: str, dns: str) -> None:
        self.binary = binary
        self.env = dict(os.environ, GUICHET_DNS_RESOLVER=dns, GUICHET_DNS__TIMEOUT_MS="2000")

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([self.binary, *args], input=stdin, capture_output=True, text=True, timeout=60,
                              env=self.env)

    def json(self, *args: str, stdin: str | None = None) -> dict:
        p = self.run(*args, "--json", stdin=stdin)
        if p.returncode != 0:
            raise RuntimeError(f"guichet {' '.join(args)} failed ({p.returncode}): {p.stderr.strip()}")
        return json.loads(p.stdout)


# ---------------------------------------------------------------- a browser (requests)


class Forms(HTMLParser):
    """Forms with their inputs and buttons (id, name, value)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "id": a.get("id"), "inputs": {}, "buttons": []})
        elif self.forms and tag == "input" and a.get("name"):
            self.forms[-1]["inputs"][a["name"]] = a.get("value", "")
        elif self.forms and tag == "button":
            self.forms[-1]["buttons"].append(a)


def forms(html: str) -> list[dict]:
    p = Forms()
    p.feed(html)
    return p.forms


class Browser:
    def __init__(self, base: str) -> None:
        self.base = base
        self.netloc = urlparse(base).netloc
        self.s = requests.Session()
        self.s.headers["User-Agent"] = "guichet-conformance/1 (python-requests)"

    def follow(self, r: requests.Response) -> requests.Response | str:
        """Follows redirects on Guichet; returns the page, or the off-site URL redirected to."""
        for _ in range(15):
            if not (r.is_redirect and r.headers.get("Location")):
                return r
            target = urljoin(r.url, r.headers["Location"])
            if urlparse(target).netloc != self.netloc:
                return target
            r = self.s.get(target, allow_redirects=False, timeout=TIMEOUT)
        return r

    def get(self, url: str):
        return self.follow(self.s.get(url, allow_redirects=False, timeout=TIMEOUT))

    def post(self, path: str, data: dict):
        url = urljoin(self.base, path)
        return self.follow(self.s.post(url, data=data, headers={"Origin": self.base}, allow_redirects=False,
                                       timeout=TIMEOUT))

    def sign_in(self, page: requests.Response, email: str, password: str):
        f = next(f for f in forms(page.text) if f["action"] == "/login")
        data = dict(f["inputs"], email=email, password=password)
        return self.post("/login", data)


def authorize(b: Browser, url: str, email: str, pick: str | None = None):
    """Drives an authorization through sign-in and, when shown, the organization chooser;
    returns (off-site URL or the last page, chooser slugs seen)."""
    seen: list[str] = []
    r = b.get(url)
    for _ in range(5):
        if isinstance(r, str) or r.status_code != 200:
            return r, seen
        fs = forms(r.text)
        if any(f["action"] == "/login" for f in fs):
            r = b.sign_in(r, email, PASSWORD)
        elif consent := next((f for f in fs if f["action"] == "/authorize/consent"), None):
            seen.append("consent")
            r = b.post("/authorize/consent", dict(consent["inputs"], decision="allow"))
        elif chooser := next((f for f in fs if f["action"] == "/authorize/org"), None):
            seen += [btn.get("id", "").removeprefix("org-") for btn in chooser["buttons"]]
            if pick is None:
                return r, seen
            button = next(btn for btn in chooser["buttons"] if btn.get("id") == f"org-{pick}")
            r = b.post("/authorize/org", dict(chooser["inputs"], org=button["value"]))
        else:
            return r, seen
    return r, seen


# ---------------------------------------------------------------- tokens


def b64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class OP:
    def __init__(self, base: str) -> None:
        self.meta = requests.get(base + "/.well-known/openid-configuration", timeout=TIMEOUT).json()
        self.keys = KeySet.import_key_set(requests.get(self.meta["jwks_uri"], timeout=TIMEOUT).json())

    def verify(self, token: str) -> dict:
        alg = json.loads(b64(token.split(".")[0]))["alg"]
        return jwt.decode(token, self.keys, algorithms=[alg]).claims


def rp(cli: CLI, op: OP, name: str, *extra: str) -> OAuth2Session:
    c = cli.json("client", "create", "--name", name, "--redirect-uri", REDIRECT, "--first-party",
                 "--grant", "authorization_code", "--grant", "refresh_token", *extra)
    s = OAuth2Session(client_id=c["client_id"], client_secret=c["client_secret"],
                      token_endpoint_auth_method="client_secret_basic", redirect_uri=REDIRECT,
                      code_challenge_method="S256", default_timeout=TIMEOUT)
    s.guichet_client_id = c["client_id"]
    return s


def code_flow(op: OP, oauth: OAuth2Session, b: Browser, email: str, scope: str, pick: str | None = None,
              **params) -> tuple[dict | None, object, list[str]]:
    verifier = secrets.token_urlsafe(48)
    url, state = oauth.create_authorization_url(op.meta["authorization_endpoint"], scope=scope,
                                                code_verifier=verifier, nonce=secrets.token_urlsafe(12), **params)
    end, seen = authorize(b, url, email, pick)
    if not isinstance(end, str):
        return None, end, seen
    q = dict(parse_qsl(urlparse(end).query))
    if "code" not in q:
        return None, q, seen
    token = oauth.fetch_token(op.meta["token_endpoint"], authorization_response=end, code_verifier=verifier,
                              state=state)
    return token, q, seen


# ---------------------------------------------------------------- the scenarios


def scenario_claims(c: Checks, cli: CLI, op: OP, base: str, ctx: dict):
    orders = rp(cli, op, "Orders (orgs check)")
    gallery = rp(cli, op, "Gallery (orgs check)")
    ctx["orders"] = orders
    oid, gid = orders.guichet_client_id, gallery.guichet_client_id
    cli.json("permission", "add", "--client", oid, "orders:read", "orders:write", "billing:manage")
    cli.json("permission", "add", "--client", gid, "galleries:view")
    acme = cli.json("org", "create", "--name", "Acme Corp", "--slug", "acme")
    cli.json("org", "create", "--name", "Globex", "--slug", "globex")
    ctx["acme"] = acme
    cli.json("user", "create", "--email", "ann@o1.test", "--name", "Ann", "--password-stdin", stdin=PASSWORD)
    cli.json("user", "create", "--email", "zed@example.net", "--name", "Zed", "--password-stdin", stdin=PASSWORD)
    cli.json("org", "member", "add", "--org", "acme", "--email", "ann@o1.test", "--role", "admin")
    role = cli.json("role", "create", "--client", oid, "--name", "buyer", "--permission", "orders:read",
                    "billing:manage")
    c.check("role create --json prints the role's permissions", role.get("permissions") == ["billing:manage", "orders:read"],
            json.dumps(role))
    cli.json("role", "create", "--client", gid, "--name", "viewer", "--permission", "galleries:view")
    cli.json("role", "grant", "--org", "acme", "--email", "ann@o1.test", "--role", "buyer")
    cli.json("role", "grant", "--org", "acme", "--email", "ann@o1.test", "--role", "viewer")

    c.check("discovery lists the org and roles scopes",
            {"org", "roles"} <= set(op.meta.get("scopes_supported", [])), str(op.meta.get("scopes_supported")))
    b = Browser(base)
    token, q, seen = code_flow(op, orders, b, "ann@o1.test", "openid org roles offline_access")
    c.require("code flow with scope org roles", token is not None, f"ended with {q}")
    c.check("one organization: no chooser (consent for offline access only)", seen == ["consent"], str(seen))
    idt = op.verify(token["id_token"])
    at = op.verify(token["access_token"])
    want = {"id": acme["id"], "slug": "acme", "name": "Acme Corp"}
    c.check("ID token: org {id, slug, name}", idt.get("org") == want, json.dumps(idt.get("org")))
    c.check("ID token: roles of this client only", idt.get("roles") == ["buyer"], json.dumps(idt.get("roles")))
    c.check("ID token: permissions of this client only", idt.get("permissions") == ["billing:manage", "orders:read"],
            json.dumps(idt.get("permissions")))
    c.check("access token (RFC 9068): org, roles, permissions",
            at.get("org") == want and at.get("roles") == ["buyer"] and at.get("permissions") == ["billing:manage", "orders:read"],
            json.dumps({k: at.get(k) for k in ("org", "roles", "permissions")}))
    ui = orders.get(op.meta["userinfo_endpoint"]).json()
    c.check("userinfo: org, roles, permissions",
            ui.get("org") == want and ui.get("roles") == ["buyer"] and ui.get("permissions") == ["billing:manage", "orders:read"],
            json.dumps(ui))
    ctx["refresh_token"] = token.get("refresh_token")

    # A role change shows in the next token (a refresh).
    cli.json("role", "create", "--client", oid, "--name", "writer", "--permission", "orders:write", "--org", "acme")
    cli.json("role", "grant", "--org", "acme", "--email", "ann@o1.test", "--role", "writer")
    t2 = orders.refresh_token(op.meta["token_endpoint"], refresh_token=ctx["refresh_token"])
    at2 = op.verify(t2["access_token"])
    c.check("a granted role is in the next token",
            at2.get("roles") == ["buyer", "writer"] and "orders:write" in at2.get("permissions", []),
            json.dumps({k: at2.get(k) for k in ("roles", "permissions")}))
    ctx["refresh_token"] = t2["refresh_token"]

    # Several organizations: the chooser, or organization= / org_hint.
    cli.json("org", "member", "add", "--org", "globex", "--email", "ann@o1.test")
    b2 = Browser(base)
    token, q, seen = code_flow(op, gallery, b2, "ann@o1.test", "openid org roles", pick="globex")
    c.require("chooser flow", token is not None, f"ended with {q}")
    c.check("the chooser lists both organizations", sorted(seen) == ["acme", "globex"], str(seen))
    c.check("the organization picked is in the ID token", op.verify(token["id_token"]).get("org", {}).get("slug") == "globex",
            json.dumps(op.verify(token["id_token"]).get("org")))
    for param, value, slug in (("organization", "acme", "acme"), ("organization", acme["id"], "acme"), ("org_hint", "globex", "globex")):
        token, q, seen = code_flow(op, gallery, b2, "ann@o1.test", "openid org roles", **{param: value})
        got = op.verify(token["id_token"]).get("org", {}).get("slug") if token else None
        c.check(f"{param}={value[:8]}…: no chooser, org {slug}", token is not None and seen == [] and got == slug,
                f"seen {seen}, org {got}, ended with {q}")
    token, q, seen = code_flow(op, gallery, b2, "ann@o1.test", "openid org", organization="initech")
    c.check("organization= of which the user is not a member: access_denied",
            token is None and isinstance(q, dict) and q.get("error") == "access_denied", str(q))
    token, q, seen = code_flow(op, gallery, b2, "ann@o1.test", "openid org", prompt="none")
    c.check("prompt=none with several organizations: interaction_required",
            token is None and isinstance(q, dict) and q.get("error") == "interaction_required", str(q))

    # A client bound to Acme: its members only.
    bound = rp(cli, op, "Acme payslips (orgs check)", "--org", "acme")
    token, q, _ = code_flow(op, bound, Browser(base), "zed@example.net", "openid org")
    c.check("a client bound to an organization refuses others (access_denied)",
            token is None and isinstance(q, dict) and q.get("error") == "access_denied", str(q))
    token, q, seen = code_flow(op, bound, Browser(base), "ann@o1.test", "openid org")
    c.check("... and acts for its organization without asking",
            token is not None and seen == [] and op.verify(token["id_token"]).get("org", {}).get("slug") == "acme", str(q))


def scenario_domains(c: Checks, cli: CLI, dns: TxtTable):
    d = cli.json("domain", "add", "--org", "acme", "--domain", "o1.test")
    rec = d.get("record", {})
    c.require("domain add prints the TXT record to publish",
              rec.get("type") == "TXT" and rec.get("name") == "_guichet-challenge.o1.test" and len(rec.get("value", "")) > 20,
              json.dumps(d))
    p = cli.run("domain", "verify", "--org", "acme", "--domain", "o1.test", "--json")
    c.check("no record published: not verified (exit 1, said why)", p.returncode == 1 and "no TXT record" in p.stderr,
            f"exit {p.returncode}: {p.stderr.strip()}")
    c.check("the check asked the configured resolver", "_guichet-challenge.o1.test" in dns.queries, str(dns.queries))
    dns.records["_guichet-challenge.o1.test"] = ["guichet-verification=not-this-one"]
    p = cli.run("domain", "verify", "--org", "acme", "--domain", "o1.test", "--json")
    c.check("a wrong value: not verified", p.returncode == 1 and "expected value" in p.stderr, p.stderr.strip())
    dns.records["_guichet-challenge.o1.test"] = ["v=spf1 -all", rec["value"]]
    v = cli.json("domain", "verify", "--org", "acme", "--domain", "o1.test")
    c.check("the right value: verified", v.get("status") == "verified" and v.get("verified") is True, json.dumps(v))
    p = cli.run("domain", "add", "--org", "globex", "--domain", "o1.test", "--json")
    c.check("a domain verified by one organization cannot be claimed by another",
            p.returncode == 1 and "verified by another organization" in p.stderr, p.stderr.strip())


def scenario_realm(c: Checks, cli: CLI, base: str, ctx: dict):
    def post_login(email: str, password: str):
        b = Browser(base)
        page = b.get(base + "/login")
        f = next(f for f in forms(page.text) if f["action"] == "/login")
        return b.s.post(base + "/login", data=dict(f["inputs"], email=email, password=password),
                        headers={"Origin": base}, allow_redirects=False, timeout=TIMEOUT)

    known = post_login("zed@example.net", "")
    unknown = post_login("nobody@example.net", "")
    c.check("identifier first: the email alone gets the password step (200)",
            known.status_code == 200 and 'name="password"' in known.text, describe(known))
    c.check("... the same answer for an unknown address", unknown.status_code == known.status_code
            and unknown.text.replace("nobody@example.net", "X").count("<input") == known.text.replace("zed@example.net", "X").count("<input"),
            describe(unknown))
    ok = post_login("ann@o1.test", PASSWORD)
    c.check("password sign-in works while SSO is not required", ok.status_code == 303, describe(ok))
    cli.json("org", "update", "acme", "--require-sso", "true")
    for email, pw in (("ann@o1.test", PASSWORD), ("someone@o1.test", "x"), ("ann@o1.test", "")):
        r = post_login(email, pw)
        c.check(f"require SSO: password sign-in refused for {email} ({'with' if pw else 'without'} a password)",
                r.status_code == 403 and "Acme Corp" in r.text and "single sign-on" in r.text, describe(r))
    r = Browser(base).get(base + "/login?login_hint=ann%40o1.test")
    c.check("login_hint: the page says where to sign in", r.status_code == 200 and "single sign-on" in r.text, describe(r))
    r = post_login("zed@example.net", PASSWORD)
    c.check("other domains are untouched", r.status_code == 303, describe(r))
    cli.json("org", "update", "acme", "--require-sso", "false")

    # A removed member's refresh token stops working (authlib sees invalid_grant).
    cli.json("org", "member", "remove", "--org", "acme", "--email", "ann@o1.test")
    orders = ctx["orders"]
    try:
        orders.refresh_token(orders.metadata.get("token_endpoint") or ctx["token_endpoint"], refresh_token=ctx["refresh_token"])
        c.check("a removed member's refresh token is refused", False, "the refresh succeeded")
    except Exception as e:  # authlib raises OAuthError
        c.check("a removed member's refresh token is refused (invalid_grant)", getattr(e, "error", "") == "invalid_grant",
                f"{type(e).__name__}: {e}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--bin", required=True)
    args = ap.parse_args()
    base = args.base.rstrip("/")
    c = Checks()
    dns, dns_addr = start_dns()
    cli = CLI(args.bin, dns_addr)
    op = OP(base)
    ctx: dict = {"token_endpoint": op.meta["token_endpoint"]}
    c.scenario("org, roles and permissions claims (authlib + joserfc)", scenario_claims, c, cli, op, base, ctx)
    c.scenario("verified domains (dnslib on loopback)", scenario_domains, c, cli, dns)
    c.scenario("home-realm discovery and removed members", scenario_realm, c, cli, base, ctx)
    print(f"{c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
