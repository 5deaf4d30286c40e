#!/usr/bin/env python3
"""Black-box conformance check of Guichet as an OpenID Provider.

Holds a running server to the OpenID Foundation "Basic OP" and "Config OP"
certification module lists (oidcc-*), one or a few checks per module, plus
consent, ES256/EdDSA signing, client_credentials, introspection/revocation,
RP-initiated logout and key rotation. Only third-party libraries speak to the
server: authlib (OAuth2Session, PKCE S256) is the relying party, joserfc
verifies ID tokens and access tokens against the published JWKS, and requests
(one cookie jar per "browser", redirects followed by hand) fills the HTML
login and consent forms. Redirect URIs point at a host nothing listens on:
the redirect to them is read from the Location header, never followed.

Clients, and a second user (for id_token_hint / select_account / per-user
consent), are created with the CLI (--bin, run in the server's environment:
DATABASE_URL, GUICHET_KEYS__DIR); oidcc-server-rotate-keys runs
`guichet keys rotate --alg RS256 --activate-in 0` at the very end and waits up
to --key-reload-wait seconds for the server to re-read its key directory (run
the server with a small keys.reload_secs, e.g. GUICHET_KEYS__RELOAD_SECS=2, or
pass --no-key-rotation). The user given by --email/--password must exist and
have no phone number and no address. Takes about 35 s, most of it the
oidcc-codereuse-30seconds wait (--codereuse-wait).

Prints one PASS/FAIL line per check, then `N passed, M failed`; exits 1 if
any check failed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urljoin, urlparse

import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from checks import Abort, Checks, describe

# joserfc flags "EdDSA" as deprecated by RFC 9864 (in favour of "Ed25519"); Guichet
# advertises and signs with "EdDSA", which is what this check verifies.
warnings.filterwarnings("ignore", message=".*EdDSA is deprecated.*")

TIMEOUT = 10  # seconds, per HTTP request
LEEWAY = 5  # seconds of clock skew tolerated on exp/iat
BROWSER_HEADERS = {
    "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8",
    "User-Agent": "guichet-conformance/1 (python-requests)",
}
HASH_FOR_ALG = {"RS256": hashlib.sha256, "ES256": hashlib.sha256, "EdDSA": hashlib.sha512}
# Where relying parties "live": nothing listens there; only the redirect is read.
RP_HOST = "http://127.0.0.1"


def oauth_error(e: Exception) -> str:
    """The OAuth `error` code of an exception authlib raised, else ''."""
    return getattr(e, "error", "") or ""


# --------------------------------------------------------------------------
# HTML forms


@dataclass
class Form:
    action: str | None
    method: str
    id: str | None
    inputs: list[dict[str, str]] = field(default_factory=list)
    buttons: list[dict[str, str]] = field(default_factory=list)

    def input(self, name: str) -> dict[str, str] | None:
        return next((i for i in self.inputs if i.get("name") == name), None)

    def hidden_fields(self) -> dict[str, str]:
        return {
            i["name"]: i.get("value", "")
            for i in self.inputs
            if i.get("name") and i.get("type", "text").lower() == "hidden"
        }

    def fields(self) -> dict[str, str]:
        """What a browser would submit as is: every named input with its value."""
        skip = {"submit", "button", "image", "reset", "file", "checkbox", "radio"}
        return {
            i["name"]: i.get("value", "")
            for i in self.inputs
            if i.get("name") and i.get("type", "text").lower() not in skip
        }

    def url(self, page_url: str) -> str:
        return urljoin(page_url, self.action) if self.action else page_url

    def submit_values(self, name: str) -> list[str]:
        return [b.get("value", "") for b in self.buttons if b.get("name") == name]


class FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._current: Form | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._current = Form(a.get("action") or None, a.get("method", "get").strip().lower(), a.get("id"))
            self.forms.append(self._current)
        elif self._current is not None and tag == "input":
            self._current.inputs.append(a)
        elif self._current is not None and tag == "button":
            self._current.buttons.append(a)

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def parse_forms(page: str) -> list[Form]:
    p = FormParser()
    p.feed(page)
    p.close()
    return p.forms


# --------------------------------------------------------------------------
# A browser: one cookie jar, redirects followed by hand while they stay on the OP


@dataclass
class Step:
    """Where a browser navigation stopped.

    kind: "redirect" (the OP sent the browser off-site, e.g. to a redirect_uri:
    `params` is that URL's query), "form_post" (an auto-submitting form to the
    client: `params` are its hidden inputs, `url` its action), "login",
    "consent", "select", "logout_confirm" (an OP page with that form), "error"
    (a 4xx/5xx page) or "page" (any other page)."""

    kind: str
    resp: requests.Response
    url: str
    params: dict[str, str] = field(default_factory=dict)
    form: Form | None = None
    hops: list[str] = field(default_factory=list)  # OP URLs visited on the way

    def summary(self) -> str:
        if self.kind in ("redirect", "form_post"):
            return f"{self.kind} to {self.url} with {self.params}"
        return f"{self.kind} page: {describe(self.resp)}"


class Browser:
    def __init__(self, op: "OP", label: str) -> None:
        self.op = op
        self.label = label
        self.s = requests.Session()
        self.s.headers.update(BROWSER_HEADERS)

    def get(self, url: str) -> Step:
        return self.follow(self.s.get(url, allow_redirects=False, timeout=TIMEOUT))

    def post(self, url: str, data: dict[str, str]) -> Step:
        # A browser sends Origin on form POSTs; send it as one would.
        resp = self.s.post(url, data=data, headers={"Origin": self.op.origin}, allow_redirects=False, timeout=TIMEOUT)
        return self.follow(resp)

    def submit(self, step: Step, extra: dict[str, str]) -> Step:
        assert step.form is not None
        data = step.form.fields()
        data.update(extra)
        return self.post(step.form.url(step.resp.url), data)

    def follow(self, resp: requests.Response) -> Step:
        hops = [resp.url]
        for _ in range(15):
            if not (resp.is_redirect and resp.headers.get("Location")):
                break
            target = urljoin(resp.url, resp.headers["Location"])
            if urlparse(target).netloc != self.op.netloc:
                return Step("redirect", resp, target, dict(parse_qsl(urlparse(target).query)), hops=hops)
            resp = self.s.get(target, allow_redirects=False, timeout=TIMEOUT)
            hops.append(resp.url)
        return classify(resp, hops)


def classify(resp: requests.Response, hops: list[str]) -> Step:
    forms = parse_forms(resp.text) if "html" in resp.headers.get("Content-Type", "") else []
    for f in forms:
        path = urlparse(f.url(resp.url)).path
        if f.id == "form_post":
            return Step("form_post", resp, f.url(resp.url), f.hidden_fields(), f, hops)
        if path == "/login" and f.input("email") is not None:
            return Step("login", resp, resp.url, form=f, hops=hops)
        if path == "/authorize/consent":
            return Step("consent", resp, resp.url, form=f, hops=hops)
        if path == "/authorize/select":
            return Step("select", resp, resp.url, form=f, hops=hops)
        if path == "/end_session/confirm":
            return Step("logout_confirm", resp, resp.url, form=f, hops=hops)
    kind = "error" if resp.status_code >= 400 else "page"
    return Step(kind, resp, resp.url, hops=hops)


@dataclass
class Flow:
    """A front-channel run: the interactive steps seen, and where it ended."""

    seen: list[str]
    end: Step

    @property
    def params(self) -> dict[str, str]:
        return self.end.params if self.end.kind in ("redirect", "form_post") else {}

    def summary(self) -> str:
        return f"pages seen {self.seen or 'none'}; ended with {self.end.summary()}"


# --------------------------------------------------------------------------
# The provider: metadata, JWKS, token verification


class OP:
    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        u = urlparse(self.base)
        self.netloc = u.netloc
        self.origin = f"{u.scheme}://{u.netloc}"
        self.discovery_url = self.base + "/.well-known/openid-configuration"
        self.meta: dict = {}
        self.jwks: dict = {}
        self.keyset: KeySet | None = None

    @property
    def issuer(self) -> str:
        return self.meta.get("issuer", "")

    def ep(self, name: str) -> str:
        return self.meta[name]

    def fetch_jwks(self) -> dict:
        r = requests.get(self.meta["jwks_uri"], timeout=TIMEOUT)
        r.raise_for_status()
        self.jwks = r.json()
        self.keyset = KeySet.import_key_set(self.jwks)
        return self.jwks

    def kids(self) -> set[str]:
        return {k.get("kid") for k in self.jwks.get("keys", [])}

    def decode(self, token: str, alg: str):
        """Signature check with joserfc against the JWKS (refetched for an unknown kid)."""
        header = json.loads(b64url_decode(token.split(".")[0]))
        if header.get("kid") not in self.kids():
            self.fetch_jwks()
        return jwt.decode(token, self.keyset, algorithms=[alg])


def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def unverified_claims(token: str) -> dict:
    try:
        return json.loads(b64url_decode(token.split(".")[1]))
    except Exception:
        return {}


def half_hash(alg: str, value: str) -> str:
    digest = HASH_FOR_ALG[alg](value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode()


def registry_problem(name: str, claim, **option) -> str | None:
    """Validates one claim with joserfc's claims registry; returns the problem, if any."""
    try:
        jwt.JWTClaimsRegistry(leeway=LEEWAY, **{name: {"essential": True, **option}}).validate({name: claim})
        return None
    except JoseError as e:
        return f"{type(e).__name__}: {e} (value {claim!r})"


@dataclass
class IdToken:
    claims: dict
    header: dict
    problems: dict[str, str]  # aspect -> problem

    def ok(self) -> bool:
        return not self.problems

    def why(self) -> str:
        return "; ".join(f"{k}: {v}" for k, v in self.problems.items())


def verify_id_token(op: OP, rp: "RP", id_token: str | None, access_token: str | None, nonce: str | None) -> IdToken:
    """OIDC Core §3.1.3.7 validation of an ID token, aspect by aspect."""
    if not id_token:
        return IdToken({}, {}, {"present": "the token response has no id_token"})
    problems: dict[str, str] = {}
    header: dict = {}
    try:
        header = json.loads(b64url_decode(id_token.split(".")[0]))
    except Exception as e:
        return IdToken({}, {}, {"format": f"not a JWS compact serialization: {e}"})
    try:
        claims = dict(op.decode(id_token, rp.alg).claims)
    except (JoseError, ValueError) as e:
        problems["signature"] = f"joserfc rejected it with alg {rp.alg}: {type(e).__name__}: {e} (header {header})"
        claims = unverified_claims(id_token)
    if header.get("alg") != rp.alg:
        problems["alg"] = f"header alg {header.get('alg')!r}, the client registered {rp.alg}"
    if not header.get("kid"):
        problems["kid"] = f"header has no kid: {header}"
    for name, option in (
        ("iss", {"value": op.issuer}),
        ("aud", {"value": rp.client_id}),
        ("exp", {}),
        ("iat", {}),
        ("sub", {}),
    ):
        p = registry_problem(name, claims.get(name), **option)
        if p:
            problems[name] = p
    aud = claims.get("aud")
    if isinstance(aud, list) and len(aud) > 1 and "azp" not in claims:
        problems["azp"] = "several audiences but no azp"
    if "azp" in claims and claims["azp"] != rp.client_id:
        problems["azp"] = f"azp {claims['azp']!r} is not the client {rp.client_id!r}"
    if nonce is not None:
        p = registry_problem("nonce", claims.get("nonce"), value=nonce)
        if p:
            problems["nonce"] = p
    if access_token is not None:
        if "at_hash" not in claims:
            problems["at_hash"] = "missing"
        elif rp.alg in HASH_FOR_ALG and claims["at_hash"] != half_hash(rp.alg, access_token):
            problems["at_hash"] = (
                f"{claims['at_hash']!r} is not the left half of the {HASH_FOR_ALG[rp.alg]().name} of the access token"
                f" ({half_hash(rp.alg, access_token)!r})"
            )
    return IdToken(claims, header, problems)


def verify_access_token(op: OP, rp: "RP", token: str | None) -> tuple[dict, dict, list[str]]:
    """RFC 9068: a JWT with typ at+jwt, signed with the client's alg, with the required claims."""
    if not token:
        return {}, {}, ["no access_token"]
    problems = []
    try:
        header = json.loads(b64url_decode(token.split(".")[0]))
    except Exception as e:
        return {}, {}, [f"not a JWT: {e}"]
    try:
        claims = dict(op.decode(token, rp.alg).claims)
    except (JoseError, ValueError) as e:
        problems.append(f"signature: {type(e).__name__}: {e} (header {header})")
        claims = unverified_claims(token)
    if str(header.get("typ", "")).lower() not in ("at+jwt", "application/at+jwt"):
        problems.append(f"typ is {header.get('typ')!r}, not at+jwt")
    for name, option in (("iss", {"value": op.issuer}), ("exp", {}), ("iat", {}), ("sub", {}), ("jti", {})):
        p = registry_problem(name, claims.get(name), **option)
        if p:
            problems.append(f"{name}: {p}")
    if not claims.get("aud"):
        problems.append("aud missing")
    if claims.get("client_id") != rp.client_id:
        problems.append(f"client_id is {claims.get('client_id')!r}, not {rp.client_id!r}")
    return claims, header, problems


# --------------------------------------------------------------------------
# Relying parties: registered with the CLI, driven with authlib


@dataclass
class RP:
    label: str
    client_id: str
    client_secret: str | None
    auth_method: str
    redirect_uri: str
    alg: str = "RS256"
    post_logout_redirect_uri: str | None = None

    def oauth(self, scope: str = "openid") -> OAuth2Session:
        s = OAuth2Session(
            client_id=self.client_id,
            client_secret=self.client_secret,
            token_endpoint_auth_method=self.auth_method,
            revocation_endpoint_auth_method=self.auth_method,
            scope=scope,
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            default_timeout=TIMEOUT,
        )
        s.headers["User-Agent"] = "guichet-conformance/1 (authlib)"
        s.last_response = None

        def remember(resp, *args, **kwargs):
            s.last_response = resp

        s.hooks["response"].append(remember)
        return s


class CLI:
    def __init__(self, binary: str) -> None:
        self.binary = binary

    def run(self, *args: str) -> dict:
        p = subprocess.run([self.binary, *args], capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError(f"guichet {' '.join(args)} failed ({p.returncode}): {p.stderr.strip()}")
        return json.loads(p.stdout)

    def client(
        self,
        label: str,
        *,
        auth_method: str = "client_secret_basic",
        first_party: bool = True,
        alg: str = "RS256",
        grants: tuple[str, ...] = ("authorization_code", "refresh_token"),
        post_logout: bool = False,
        redirect: bool = True,
        redirect_query: str = "",
    ) -> RP:
        redirect_uri = f"{RP_HOST}/rp/{label}/callback{redirect_query}" if redirect else ""
        plru = f"{RP_HOST}/rp/{label}/signed-out" if post_logout else None
        args = ["client", "create", "--name", f"Conformance {label}", "--json"]
        if redirect:
            args += ["--redirect-uri", redirect_uri]
        args += ["--auth-method", auth_method, "--id-token-signed-response-alg", alg]
        for g in grants:
            args += ["--grant", g]
        if first_party:
            args.append("--first-party")
        if plru:
            args += ["--post-logout-redirect-uri", plru]
        out = self.run(*args)
        return RP(label, out["client_id"], out.get("client_secret"), auth_method, redirect_uri, alg, plru)

    def user(self, email: str, name: str, password: str) -> dict:
        p = subprocess.run([self.binary, "user", "create", "--email", email, "--name", name, "--password-stdin", "--json"],
                           input=password, capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError(f"guichet user create failed ({p.returncode}): {p.stderr.strip()}")
        return json.loads(p.stdout)


@dataclass
class AuthRequest:
    """One authorization request of a relying party (authlib builds the URL)."""

    op: OP
    rp: RP
    scope: str = "openid"
    nonce: str | None = None
    params: dict = field(default_factory=dict)
    pkce: bool = True

    def __post_init__(self) -> None:
        self.oauth = self.rp.oauth(self.scope)
        self.verifier = generate_token(48) if self.pkce else None
        extra = dict(self.params)
        if self.nonce is not None:
            extra["nonce"] = self.nonce
        self.url, self.state = self.oauth.create_authorization_url(
            self.op.ep("authorization_endpoint"), code_verifier=self.verifier, **extra
        )

    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlparse(self.url).query))

    def exchange(self, end: Step, **kw) -> dict:
        """Token request with the code the flow ended with (authlib checks `state`)."""
        token_ep = self.op.ep("token_endpoint")
        if self.verifier is not None:
            kw.setdefault("code_verifier", self.verifier)
        if end.kind == "redirect":
            return self.oauth.fetch_token(token_ep, authorization_response=end.url, state=self.state, **kw)
        if end.params.get("state") != self.state:
            raise AssertionError(f"form_post state {end.params.get('state')!r} is not {self.state!r}")
        return self.oauth.fetch_token(token_ep, grant_type="authorization_code", code=end.params["code"], **kw)


@dataclass
class Login:
    email: str
    password: str


def drive(
    browser: Browser,
    url: str,
    user: Login | None,
    *,
    consent: str | None = "allow",
    select: str | None = "continue",
    post: dict[str, str] | None = None,
) -> Flow:
    """Runs the front channel: signs in with `user` when asked, answers the consent / account
    selection pages, until the OP sends the browser to the client (or stops elsewhere)."""
    step = browser.post(url, post) if post is not None else browser.get(url)
    seen: list[str] = []
    for _ in range(8):
        if step.kind in ("redirect", "form_post"):
            break
        seen.append(step.kind)
        if step.kind == "login" and user is not None:
            step = browser.submit(step, {"email": user.email, "password": user.password})
        elif step.kind == "consent" and consent is not None:
            step = browser.submit(step, {"decision": consent})
        elif step.kind == "select" and select is not None:
            step = browser.submit(step, {"decision": select})
        else:
            break
    return Flow(seen, step)


# --------------------------------------------------------------------------
# The suite


class Suite:
    def __init__(self, c: Checks, args) -> None:
        self.c = c
        self.args = args
        self.op = OP(args.base)
        self.user = Login(args.email, args.password)
        self.cli = CLI(args.bin)
        self.rps: dict[str, RP] = {}
        self.main: Browser | None = None  # signed in by oidcc-server
        self.main_id: IdToken | None = None  # its first ID token
        self.reuse30: dict | None = None
        self.bob: Login | None = None  # a second user, created by the 'second user' scenario
        self.bob_id: IdToken | None = None

    # ---- helpers

    def flow(self, browser: Browser, rp: RP, *, scope="openid", nonce: bool | str = True, user=None, pkce=True,
             consent: str | None = "allow", select: str | None = "continue", method="GET",
             **params) -> tuple[AuthRequest, Flow]:
        n = (nonce if isinstance(nonce, str) else generate_token(16)) if nonce else None
        req = AuthRequest(self.op, rp, scope, n, params, pkce)
        if method == "POST":
            u = urlparse(req.url)
            f = drive(browser, u._replace(query="").geturl(), user, consent=consent, select=select, post=req.query())
        else:
            f = drive(browser, req.url, user, consent=consent, select=select)
        return req, f

    def expect_code(self, name: str, req: AuthRequest, f: Flow, *, pages: list[str] | None = None) -> None:
        """Requires a successful authorization response (code, state, iss), and the pages seen."""
        c = self.c
        p = f.params
        c.require(f"{name}: authorization response carries a code", "code" in p and f.end.url.startswith(
            req.rp.redirect_uri), f.summary())
        if pages is not None:
            c.require(f"{name}: pages shown {pages or 'none'}", f.seen == pages, f.summary())
        c.check(f"{name}: state returned unchanged", p.get("state") == req.state, f"state {p.get('state')!r}, sent {req.state!r}")
        c.check(f"{name}: iss in the response is the issuer (RFC 9207)", p.get("iss") == self.op.issuer,
                f"iss {p.get('iss')!r}")

    def expect_error(self, name: str, req: AuthRequest, f: Flow, errors: tuple[str, ...]) -> None:
        """Requires an error redirected to the client, with state and iss."""
        c = self.c
        p = f.params
        c.check(
            f"{name}: error {'|'.join(errors)} sent to the redirect_uri",
            f.end.kind in ("redirect", "form_post") and f.end.url.startswith(req.rp.redirect_uri)
            and p.get("error") in errors and "code" not in p,
            f.summary(),
        )
        if f.end.kind in ("redirect", "form_post"):
            c.check(f"{name}: error response returns state and iss",
                    p.get("state") == req.state and p.get("iss") == self.op.issuer, f"params {p}")

    def tokens(self, name: str, req: AuthRequest, f: Flow, *, pages=None, nonce_expected=True) -> tuple[dict, IdToken]:
        """Code -> tokens -> verified ID token (one check for the whole §3.1.3.7 validation)."""
        self.expect_code(name, req, f, pages=pages)
        tok = req.exchange(f.end)
        idt = verify_id_token(self.op, req.rp, tok.get("id_token"), tok.get("access_token"),
                              req.nonce if nonce_expected else None)
        self.c.require(f"{name}: ID token valid ({req.rp.alg}, joserfc)", idt.ok(), idt.why())
        return tok, idt

    def userinfo(self, access_token: str, how: str = "get") -> requests.Response:
        url = self.op.ep("userinfo_endpoint")
        if how == "get":
            return requests.get(url, headers={"Authorization": f"Bearer {access_token}"}, timeout=TIMEOUT)
        if how == "post-header":
            return requests.post(url, headers={"Authorization": f"Bearer {access_token}"}, timeout=TIMEOUT)
        return requests.post(url, data={"access_token": access_token}, timeout=TIMEOUT)

    def rejected_token(self, resp: requests.Response) -> bool:
        return resp.status_code == 401 and 'error="invalid_token"' in resp.headers.get("WWW-Authenticate", "")

    def token_post(self, rp: RP, data: dict) -> requests.Response:
        """A raw token-endpoint request (for error cases authlib would turn into exceptions)."""
        auth = None
        data = dict(data)
        if rp.auth_method == "client_secret_basic":
            auth = (rp.client_id, rp.client_secret)
        elif rp.auth_method == "client_secret_post":
            data.update(client_id=rp.client_id, client_secret=rp.client_secret)
        else:
            data["client_id"] = rp.client_id
        return requests.post(self.op.ep("token_endpoint"), data=data, auth=auth, timeout=TIMEOUT)

    # ---- scenarios

    def discovery(self):
        c, op = self.c, self.op
        r = requests.get(op.discovery_url, timeout=TIMEOUT)
        c.require("oidcc-discovery: GET /.well-known/openid-configuration -> 200 JSON",
                  r.status_code == 200 and "json" in r.headers.get("Content-Type", ""), describe(r))
        op.meta = meta = r.json()
        c.require("oidcc-discovery-issuer: issuer is the URL the configuration was fetched under",
                  meta.get("issuer") == op.base and op.discovery_url == meta.get("issuer", "") + "/.well-known/openid-configuration",
                  f"issuer {meta.get('issuer')!r}, fetched from {op.discovery_url}")
        for k in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
            v = meta.get(k)
            c.require(f"oidcc-discovery: {k} is an absolute http(s) URL",
                      isinstance(v, str) and urlparse(v).scheme in ("http", "https") and bool(urlparse(v).netloc), repr(v))

        def has(k, *values):
            v = meta.get(k)
            return isinstance(v, list) and all(x in v for x in values), f"{k} = {v!r}"

        c.check("oidcc-discovery: response_types_supported contains code", *has("response_types_supported", "code"))
        ok, why = has("subject_types_supported")
        c.check("oidcc-discovery: subject_types_supported is a non-empty list", ok and bool(meta["subject_types_supported"]), why)
        c.check("oidcc-discovery: id_token_signing_alg_values_supported contains RS256",
                *has("id_token_signing_alg_values_supported", "RS256"))
        c.check("oidcc-discovery: id_token_signing_alg_values_supported has ES256 and EdDSA (registered here)",
                *has("id_token_signing_alg_values_supported", "ES256", "EdDSA"))
        c.check("oidcc-discovery: scopes_supported contains openid", *has("scopes_supported", "openid"))
        ok, why = has("claims_supported")
        c.check("oidcc-discovery: claims_supported is a non-empty list", ok and bool(meta["claims_supported"]), why)
        c.check("oidcc-discovery: claims_supported lists sub and the scope claims",
                *has("claims_supported", "sub", "name", "email", "email_verified"))
        methods = meta.get("token_endpoint_auth_methods_supported", ["client_secret_basic"])  # default per Discovery §3
        c.check("oidcc-discovery: token_endpoint_auth_methods_supported has client_secret_basic and client_secret_post",
                "client_secret_basic" in methods and "client_secret_post" in methods, repr(methods))
        c.check("oidcc-discovery: code_challenge_methods_supported contains S256 (RFC 8414)",
                *has("code_challenge_methods_supported", "S256"))
        c.check("oidcc-discovery: grant_types_supported has authorization_code, refresh_token, client_credentials",
                *has("grant_types_supported", "authorization_code", "refresh_token", "client_credentials"))
        c.check("oidcc-discovery: response_modes_supported has query and form_post",
                *has("response_modes_supported", "query", "form_post"))
        for k in ("end_session_endpoint", "introspection_endpoint", "revocation_endpoint"):
            c.check(f"oidcc-discovery: {k} advertised", isinstance(meta.get(k), str), repr(meta.get(k)))
        c.check("oidcc-discovery: authorization_response_iss_parameter_supported is true (RFC 9207)",
                meta.get("authorization_response_iss_parameter_supported") is True,
                repr(meta.get("authorization_response_iss_parameter_supported")))

        r = requests.get(meta["jwks_uri"], timeout=TIMEOUT)
        c.require("oidcc-discovery-jwks: GET jwks_uri -> 200 JSON", r.status_code == 200 and "json" in r.headers.get(
            "Content-Type", ""), describe(r))
        keys = r.json().get("keys")
        c.require("oidcc-discovery-jwks: keys is a non-empty list", isinstance(keys, list) and bool(keys), r.text[:300])
        bad = [k for k in keys if not (k.get("kid") and k.get("kty") and k.get("use") == "sig" and k.get("alg"))]
        c.check("oidcc-discovery-jwks: every key has kid, kty, use=sig and alg", not bad, json.dumps(bad)[:500])
        kids = [k.get("kid") for k in keys]
        c.check("oidcc-discovery-jwks: kids are unique", len(kids) == len(set(kids)), repr(kids))
        private = [k.get("kid") for k in keys if set(k) & {"d", "p", "q", "dp", "dq", "qi", "k"}]
        c.check("oidcc-discovery-jwks: no private key material published", not private, f"private members in {private}")
        algs = {k.get("alg") for k in keys}
        c.check("oidcc-discovery-jwks: RS256, ES256 and EdDSA keys published", {"RS256", "ES256", "EdDSA"} <= algs, repr(algs))
        try:
            op.fetch_jwks()
            c.check("oidcc-discovery-jwks: joserfc imports the key set", True)
        except Exception as e:
            c.require("oidcc-discovery-jwks: joserfc imports the key set", False, f"{type(e).__name__}: {e}")

    def register_clients(self):
        c, cli = self.c, self.cli
        specs = {
            "basic": dict(post_logout=True),
            "post": dict(auth_method="client_secret_post"),
            "public": dict(auth_method="none"),
            "es256": dict(alg="ES256"),
            "eddsa": dict(alg="EdDSA"),
            "third": dict(first_party=False),
            "third-none": dict(first_party=False),
            "logout": dict(post_logout=True),
            "service": dict(grants=("client_credentials",), redirect=False),
            "query": dict(redirect_query="?tenant=a"),
        }
        for label, kw in specs.items():
            try:
                self.rps[label] = cli.client(label, **kw)
                c.check(f"setup: CLI registers client '{label}'", True)
            except Exception as e:
                c.check(f"setup: CLI registers client '{label}'", False, str(e))
        c.require("setup: all clients registered", len(self.rps) == len(specs), f"only {sorted(self.rps)}")

    def oidcc_server(self):
        c, op = self.c, self.op
        rp = self.rps["basic"]
        self.main = b = Browser(op, "main")
        req, f = self.flow(b, rp, user=self.user)
        c.check("oidcc-server: authorization request carries code_challenge (S256) from authlib",
                req.query().get("code_challenge_method") == "S256" and len(req.query().get("code_challenge", "")) == 43,
                req.url)
        self.expect_code("oidcc-server", req, f, pages=["login"])
        tok = req.exchange(f.end)
        resp = req.oauth.last_response
        c.check("oidcc-server: token response has Cache-Control: no-store",
                "no-store" in resp.headers.get("Cache-Control", ""), repr(resp.headers.get("Cache-Control")))
        c.check("oidcc-server: token_type is Bearer", str(tok.get("token_type", "")).lower() == "bearer", repr(tok.get("token_type")))
        c.check("oidcc-server: expires_in is a positive integer",
                isinstance(tok.get("expires_in"), int) and tok["expires_in"] > 0, repr(tok.get("expires_in")))
        idt = verify_id_token(op, rp, tok.get("id_token"), tok.get("access_token"), req.nonce)
        c.require("oidcc-server: ID token present", "present" not in idt.problems, idt.why())
        for aspect, label in (
            ("signature", "ID token signature verifies against the JWKS (joserfc, RS256)"),
            ("alg", "ID token alg is the registered RS256"),
            ("kid", "ID token header has a kid"),
            ("iss", "ID token iss is the issuer"),
            ("aud", "ID token aud is the client_id"),
            ("exp", "ID token exp is in the future"),
            ("iat", "ID token iat is present and not in the future"),
            ("sub", "ID token sub is present"),
            ("nonce", "ID token nonce is the one sent"),
            ("at_hash", "ID token at_hash matches the access token"),
            ("azp", "ID token azp (if present) is the client_id"),
        ):
            c.check(f"oidcc-server: {label}", aspect not in idt.problems, idt.problems.get(aspect, ""))
        cl = idt.claims
        c.check("oidcc-server: ID token has auth_time (integer, not in the future)",
                isinstance(cl.get("auth_time"), int) and cl["auth_time"] <= time.time() + LEEWAY, repr(cl.get("auth_time")))
        c.check("oidcc-server: ID token has acr, amr and sid",
                isinstance(cl.get("acr"), str) and isinstance(cl.get("amr"), list) and isinstance(cl.get("sid"), str),
                f"acr={cl.get('acr')!r} amr={cl.get('amr')!r} sid={cl.get('sid')!r}")
        if self.args.user_id:
            c.check("oidcc-server: sub is the user's id", cl.get("sub") == self.args.user_id,
                    f"sub {cl.get('sub')!r}, user id {self.args.user_id!r}")
        at, ath, problems = verify_access_token(op, rp, tok.get("access_token"))
        c.check("oidcc-server: access token is an RFC 9068 JWT (typ at+jwt, iss, exp, aud, sub, client_id, iat, jti)",
                not problems, "; ".join(problems))
        c.check("oidcc-server: access token sub is the ID token's sub", at.get("sub") == cl.get("sub"),
                f"{at.get('sub')!r} vs {cl.get('sub')!r}")
        c.require("oidcc-server: ID token fully valid", idt.ok(), idt.why())
        self.main_id = idt
        self.main_token = tok

    def codereuse(self):
        c = self.c
        rp = self.rps["basic"]
        req, f = self.flow(self.main, rp)
        tok, idt = self.tokens("oidcc-codereuse", req, f, pages=[])
        r = self.userinfo(tok["access_token"])
        c.require("oidcc-codereuse: userinfo accepts the access token before the replay", r.status_code == 200, describe(r))
        try:
            req.exchange(f.end)
            c.check("oidcc-codereuse: second use of the code -> invalid_grant", False, "the server issued tokens again")
        except Exception as e:
            c.check("oidcc-codereuse: second use of the code -> invalid_grant", oauth_error(e) == "invalid_grant",
                    f"{type(e).__name__}: {e}")
            last = req.oauth.last_response
            c.check("oidcc-codereuse: replay answered 400", last is not None and last.status_code == 400,
                    describe(last) if last is not None else "no response")
        r = self.userinfo(tok["access_token"])
        c.check("oidcc-codereuse: access token from the first exchange is then rejected (401 invalid_token)",
                self.rejected_token(r), describe(r))
        if tok.get("refresh_token"):
            r = self.token_post(rp, {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"]})
            c.check("oidcc-codereuse: refresh token from the first exchange is then rejected (invalid_grant)",
                    r.status_code == 400 and r.json().get("error") == "invalid_grant", describe(r))

    def codereuse_30s_start(self):
        # Its own browser and sign-in: nothing else the suite does touches this grant.
        rp = self.rps["basic"]
        req, f = self.flow(Browser(self.op, "codereuse-30s"), rp, user=self.user)
        tok, _ = self.tokens("oidcc-codereuse-30seconds", req, f, pages=["login"])
        self.reuse30 = {"req": req, "flow": f, "tok": tok, "at": time.monotonic()}
        print(f"   (code exchanged once; replayed at the end, {self.args.codereuse_wait} s later)")

    def codereuse_30s_finish(self):
        c = self.c
        if not self.reuse30:
            c.check("oidcc-codereuse-30seconds: first exchange", False, "did not happen")
            return
        wait = self.args.codereuse_wait - (time.monotonic() - self.reuse30["at"])
        if wait > 0:
            print(f"   (waiting {wait:.0f} s)", flush=True)
            time.sleep(wait)
        req, f, tok = self.reuse30["req"], self.reuse30["flow"], self.reuse30["tok"]
        r = self.userinfo(tok["access_token"])
        c.check("oidcc-codereuse-30seconds: access token still accepted just before the replay", r.status_code == 200,
                describe(r))
        try:
            req.exchange(f.end)
            c.check(f"oidcc-codereuse-30seconds: code reused after {self.args.codereuse_wait} s -> invalid_grant", False,
                    "the server issued tokens again")
        except Exception as e:
            c.check(f"oidcc-codereuse-30seconds: code reused after {self.args.codereuse_wait} s -> invalid_grant",
                    oauth_error(e) == "invalid_grant", f"{type(e).__name__}: {e}")
        r = self.userinfo(tok["access_token"])
        c.check("oidcc-codereuse-30seconds: access token from the first exchange is then rejected (401 invalid_token)",
                self.rejected_token(r), describe(r))

    def response_type_missing(self):
        c, rp = self.c, self.rps["basic"]
        b = Browser(self.op, "rt-missing")
        state = generate_token(12)
        url = self.op.ep("authorization_endpoint") + "?" + urlencode(
            {"client_id": rp.client_id, "redirect_uri": rp.redirect_uri, "scope": "openid", "state": state})
        step = b.get(url)
        if step.kind == "redirect":
            c.check("oidcc-response-type-missing: error redirected (invalid_request or unsupported_response_type)",
                    step.params.get("error") in ("invalid_request", "unsupported_response_type")
                    and step.url.startswith(rp.redirect_uri) and "code" not in step.params, step.summary())
            c.check("oidcc-response-type-missing: error response returns state and iss",
                    step.params.get("state") == state and step.params.get("iss") == self.op.issuer, repr(step.params))
        else:
            c.check("oidcc-response-type-missing: error page shown (4xx)", step.kind == "error", step.summary())
        for rt in ("token", "code id_token"):
            req, f = self.flow(b, rp, response_type=rt)
            self.expect_error(f"response_type={rt!r} (not supported)", req, f, ("unsupported_response_type",))

    def userinfo_endpoints(self):
        c = self.c
        tok = self.main_token
        sub = self.main_id.claims["sub"]
        oauth = self.rps["basic"].oauth()
        oauth.token = tok
        for module, how in (("oidcc-userinfo-get", "get"), ("oidcc-userinfo-post-header", "post-header"),
                            ("oidcc-userinfo-post-body", "post-body")):
            if how == "get":  # authlib puts the Bearer header on
                r = oauth.get(self.op.ep("userinfo_endpoint"))
            elif how == "post-header":
                r = oauth.post(self.op.ep("userinfo_endpoint"))
            else:
                r = self.userinfo(tok["access_token"], how)
            ok = r.status_code == 200 and "application/json" in r.headers.get("Content-Type", "")
            c.check(f"{module}: 200 application/json", ok, describe(r))
            if ok:
                c.check(f"{module}: sub is the ID token's sub", r.json().get("sub") == sub, r.text[:300])
        r = self.userinfo(tok["access_token"] + "x")
        c.check("userinfo: a tampered access token -> 401 + WWW-Authenticate Bearer error=invalid_token",
                self.rejected_token(r), describe(r) + f" WWW-Authenticate: {r.headers.get('WWW-Authenticate')!r}")
        r = requests.get(self.op.ep("userinfo_endpoint"), timeout=TIMEOUT)
        c.check("userinfo: request without any access token -> 401 + WWW-Authenticate: Bearer (RFC 6750 §3)",
                r.status_code == 401 and r.headers.get("WWW-Authenticate", "").startswith("Bearer"),
                describe(r) + f" WWW-Authenticate: {r.headers.get('WWW-Authenticate')!r}")

    def without_nonce(self):
        rp = self.rps["basic"]
        req, f = self.flow(self.main, rp, nonce=False)
        c = self.c
        c.check("oidcc-ensure-request-without-nonce-succeeds-for-code-flow: request has no nonce",
                "nonce" not in req.query(), req.url)
        tok, idt = self.tokens("oidcc-ensure-request-without-nonce-succeeds-for-code-flow", req, f, pages=[],
                               nonce_expected=False)
        c.check("oidcc-ensure-request-without-nonce-succeeds-for-code-flow: ID token has no nonce",
                "nonce" not in idt.claims, repr(idt.claims.get("nonce")))

    def scopes(self):
        c, rp = self.c, self.rps["basic"]
        cases = [
            ("oidcc-scope-profile", "openid profile", ["name", "updated_at"], ["email", "phone_number", "address"]),
            ("oidcc-scope-email", "openid email", ["email", "email_verified"], ["name", "phone_number", "address"]),
            ("oidcc-scope-address", "openid address", [], ["address", "email", "name"]),
            ("oidcc-scope-phone", "openid phone", [], ["phone_number", "phone_number_verified", "email", "name"]),
            ("oidcc-scope-all", "openid profile email address phone", ["name", "updated_at", "email", "email_verified"],
             ["phone_number", "address"]),
        ]
        for module, scope, present, absent in cases:
            req, f = self.flow(self.main, rp, scope=scope)
            tok, idt = self.tokens(module, req, f, pages=[])
            r = self.userinfo(tok["access_token"])
            c.require(f"{module}: userinfo 200", r.status_code == 200, describe(r))
            ui = r.json()
            missing = [k for k in present if k not in ui]
            c.check(f"{module}: userinfo has {present or 'sub only'}", not missing and "sub" in ui,
                    f"missing {missing}: {ui}")
            extra = [k for k in absent if k in ui]
            c.check(f"{module}: userinfo has none of {absent}", not extra, f"unexpected {extra}: {ui}")
            if "email" in present:
                c.check(f"{module}: email is the user's, email_verified a boolean",
                        ui.get("email") == self.user.email and isinstance(ui.get("email_verified"), bool), repr(ui))
            if "name" in present and self.args.name:
                c.check(f"{module}: name is the user's", ui.get("name") == self.args.name, repr(ui.get("name")))
            if "updated_at" in present:
                c.check(f"{module}: updated_at is a number (seconds)", isinstance(ui.get("updated_at"), (int, float))
                        and not isinstance(ui.get("updated_at"), bool), repr(ui.get("updated_at")))

    def other_scope_order(self):
        rp = self.rps["basic"]
        for scope in ("email openid", "profile email openid"):
            req, f = self.flow(self.main, rp, scope=scope)
            tok, _ = self.tokens(f"oidcc-ensure-other-scope-order-succeeds ({scope!r})", req, f, pages=[])
            r = self.userinfo(tok["access_token"])
            self.c.check(f"oidcc-ensure-other-scope-order-succeeds ({scope!r}): userinfo has email",
                         r.status_code == 200 and r.json().get("email") == self.user.email, describe(r))

    def accepted_params(self):
        """Modules where an extra parameter must simply not break the flow."""
        rp = self.rps["basic"]
        for module, params in (
            ("oidcc-display-page", {"display": "page"}),
            ("oidcc-display-popup", {"display": "popup"}),
            ("oidcc-ui-locales", {"ui_locales": "fr"}),
            ("oidcc-claims-locales", {"claims_locales": "fr"}),
            ("oidcc-ensure-request-with-unknown-parameter-succeeds", {"extra_param": "foobar"}),
        ):
            req, f = self.flow(self.main, rp, **params)
            self.tokens(module, req, f, pages=[])
        req, f = self.flow(self.main, rp, acr_values="urn:guichet:acr:pwd 1 2")
        tok, idt = self.tokens("oidcc-ensure-request-with-acr-values-succeeds", req, f, pages=[])
        self.c.check("oidcc-ensure-request-with-acr-values-succeeds: ID token has an acr",
                     isinstance(idt.claims.get("acr"), str), repr(idt.claims.get("acr")))
        req, f = self.flow(self.main, rp, method="POST")
        self.tokens("oidcc-ensure-post-request-succeeds", req, f, pages=[])

    def claims_essential(self):
        c, rp = self.c, self.rps["basic"]
        claims = json.dumps({"userinfo": {"name": {"essential": True}}})
        req, f = self.flow(self.main, rp, claims=claims)
        tok, _ = self.tokens("oidcc-claims-essential", req, f, pages=[])
        r = self.userinfo(tok["access_token"])
        c.check("oidcc-claims-essential: userinfo returns the requested name claim (scope openid only)",
                r.status_code == 200 and "name" in r.json(), describe(r))

    def request_objects(self):
        rp = self.rps["basic"]
        unsigned = (base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode() + "." + base64.urlsafe_b64encode(
            json.dumps({"client_id": rp.client_id, "redirect_uri": rp.redirect_uri, "response_type": "code",
                        "scope": "openid"}).encode()).rstrip(b"=").decode() + ".")
        for module, params, unsupported in (
            ("oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported", {"request": unsigned},
             "request_not_supported"),
            ("oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported",
             {"request_uri": f"{RP_HOST}/rp/basic/request.jwt"}, "request_uri_not_supported"),
        ):
            req, f = self.flow(self.main, rp, **params)
            if f.params.get("error"):
                self.expect_error(module, req, f, (unsupported,))
            else:
                self.tokens(module, req, f, pages=[])

    def registered_redirect_uri(self):
        c, rp = self.c, self.rps["basic"]
        b = Browser(self.op, "redirect-uri")
        for module, redirect in (
            ("oidcc-ensure-registered-redirect-uri", f"{RP_HOST}/attacker/callback"),
            ("oidcc-ensure-registered-redirect-uri (prefix of a registered one)", rp.redirect_uri + "/more"),
            ("oidcc-ensure-redirect-uri-in-authorization-request", None),
        ):
            q = {"client_id": rp.client_id, "response_type": "code", "scope": "openid", "state": "s",
                 "nonce": "n"}
            if redirect:
                q["redirect_uri"] = redirect
            step = b.get(self.op.ep("authorization_endpoint") + "?" + urlencode(q))
            c.check(f"{module}: error page (400), no redirect", step.kind == "error" and step.resp.status_code == 400,
                    step.summary())
        q = {"client_id": "no-such-client", "redirect_uri": rp.redirect_uri, "response_type": "code", "scope": "openid"}
        step = b.get(self.op.ep("authorization_endpoint") + "?" + urlencode(q))
        c.check("authorize: unknown client_id -> error page (400), no redirect",
                step.kind == "error" and step.resp.status_code == 400, step.summary())

    def pkce(self):
        c = self.c
        rp = self.rps["basic"]
        req, f = self.flow(self.main, rp)
        self.expect_code("pkce: wrong code_verifier", req, f, pages=[])
        try:
            req.exchange(f.end, code_verifier=generate_token(48))
            c.check("pkce: wrong code_verifier -> invalid_grant", False, "tokens issued")
        except Exception as e:
            c.check("pkce: wrong code_verifier -> invalid_grant", oauth_error(e) == "invalid_grant", f"{type(e).__name__}: {e}")
        pub = self.rps["public"]
        req, f = self.flow(self.main, pub, pkce=False)
        self.expect_error("pkce: public client without code_challenge", req, f, ("invalid_request",))
        verifier = generate_token(48)
        req, f = self.flow(self.main, pub, code_challenge=verifier, code_challenge_method="plain", pkce=False)
        self.expect_error("pkce: code_challenge_method=plain", req, f, ("invalid_request",))
        req, f = self.flow(self.main, pub)
        tok, _ = self.tokens("pkce: public client (auth method none) with S256", req, f, pages=[])
        c.check("pkce: public client gets an access token", bool(tok.get("access_token")), repr(tok))

    def client_secret_post(self):
        c = self.c
        rp = self.rps["post"]
        req, f = self.flow(self.main, rp)
        tok, idt = self.tokens("oidcc-server-client-secret-post", req, f, pages=[])
        body = req.oauth.last_response.request.body or ""
        c.check("oidcc-server-client-secret-post: authlib sent the secret in the body",
                "client_secret=" in body and "Authorization" not in req.oauth.last_response.request.headers, body[:200])
        # Guichet accepts the same secret by client_secret_basic too (libraries differ in their
        # default method; both carry the same secret). A wrong secret stays a 401.
        req, f = self.flow(self.main, rp)
        self.expect_code("oidcc-server-client-secret-post: code for the basic-auth check", req, f, pages=[])
        r = requests.post(self.op.ep("token_endpoint"), auth=(rp.client_id, rp.client_secret), timeout=TIMEOUT, data={
            "grant_type": "authorization_code", "code": f.params["code"], "redirect_uri": rp.redirect_uri,
            "code_verifier": req.verifier})
        c.check("oidcc-server-client-secret-post: the same secret by client_secret_basic is accepted",
                r.status_code == 200 and "access_token" in r.json(), describe(r))
        r = requests.post(self.op.ep("token_endpoint"), auth=(rp.client_id, "wrong-secret"), timeout=TIMEOUT, data={
            "grant_type": "refresh_token", "refresh_token": "x"})
        c.check("oidcc-server-client-secret-post: a wrong secret -> 401 invalid_client",
                r.status_code == 401 and r.json().get("error") == "invalid_client", describe(r))

    def form_post(self):
        c, rp = self.c, self.rps["basic"]
        req, f = self.flow(self.main, rp, response_mode="form_post")
        c.require("oidcc-response-mode-form-post: auto-submitting form to the redirect_uri",
                  f.end.kind == "form_post" and f.end.url == rp.redirect_uri and f.end.form.method == "post", f.summary())
        self.tokens("oidcc-response-mode-form-post", req, f, pages=[])

    def prompt_login(self):
        c, rp = self.c, self.rps["basic"]
        first = self.main_id.claims["auth_time"]
        # auth_time is whole seconds: first + 2.1 is more than 1 s after the real sign-in.
        time.sleep(max(0.0, first + 2.1 - time.time()))
        req, f = self.flow(self.main, rp, user=None, prompt="login")
        c.require("oidcc-prompt-login: the login form is shown again although signed in", f.seen == ["login"], f.summary())
        step = self.main.submit(f.end, {"email": self.user.email, "password": self.user.password})
        f = Flow(["login"], step)
        tok, idt = self.tokens("oidcc-prompt-login", req, f)
        c.check("oidcc-prompt-login: new auth_time >= the first one", isinstance(idt.claims.get("auth_time"), int)
                and idt.claims["auth_time"] >= first, f"first {first}, now {idt.claims.get('auth_time')}")
        c.check("oidcc-prompt-login: same user (sub)", idt.claims.get("sub") == self.main_id.claims["sub"], repr(idt.claims))
        self.main_id = idt

    def prompt_none(self):
        c, rp = self.c, self.rps["basic"]
        req, f = self.flow(Browser(self.op, "fresh"), rp, prompt="none")
        c.check("oidcc-prompt-none-not-logged-in: no page shown", f.seen == [], f.summary())
        self.expect_error("oidcc-prompt-none-not-logged-in", req, f, ("login_required",))
        req, f = self.flow(self.main, rp, prompt="none")
        tok, idt = self.tokens("oidcc-prompt-none-logged-in", req, f, pages=[])
        c.check("oidcc-prompt-none-logged-in: same user and auth_time",
                idt.claims.get("sub") == self.main_id.claims["sub"]
                and idt.claims.get("auth_time") == self.main_id.claims["auth_time"], f"{idt.claims}")

    def max_age(self):
        c, rp = self.c, self.rps["basic"]
        old = self.main_id.claims["auth_time"]
        req, f = self.flow(self.main, rp, max_age="10000")
        tok, idt = self.tokens("oidcc-max-age-10000", req, f, pages=[])
        c.check("oidcc-max-age-10000: auth_time unchanged", idt.claims.get("auth_time") == old,
                f"was {old}, now {idt.claims.get('auth_time')!r}")
        time.sleep(max(0.0, old + 3 - time.time()))  # at least 2 s after the sign-in
        req, f = self.flow(self.main, rp, user=None, max_age="1")
        c.require("oidcc-max-age-1: the login form is shown again (sign-in older than 1 s)", f.seen == ["login"], f.summary())
        step = self.main.submit(f.end, {"email": self.user.email, "password": self.user.password})
        tok, idt = self.tokens("oidcc-max-age-1", req, Flow(["login"], step))
        c.check("oidcc-max-age-1: ID token has a new auth_time (> the old one)",
                isinstance(idt.claims.get("auth_time"), int) and idt.claims["auth_time"] > old,
                f"was {old}, now {idt.claims.get('auth_time')!r}")
        self.main_id = idt

    def id_token_hint(self):
        c, rp = self.c, self.rps["basic"]
        hint = self.main_token["id_token"]
        req, f = self.flow(self.main, rp, prompt="none", id_token_hint=hint)
        tok, idt = self.tokens("oidcc-id-token-hint", req, f, pages=[])
        c.check("oidcc-id-token-hint: same sub as the hint", idt.claims.get("sub") == unverified_claims(hint).get("sub"),
                repr(idt.claims.get("sub")))

    def login_hint(self):
        c, rp = self.c, self.rps["basic"]
        b = Browser(self.op, "login-hint")
        req, f = self.flow(b, rp, user=None, login_hint=self.user.email)
        c.require("oidcc-login-hint: login form shown", f.seen == ["login"], f.summary())
        field_ = f.end.form.input("email") or {}
        c.check("oidcc-login-hint: email input pre-filled with the hint", field_.get("value") == self.user.email,
                f"email input: {field_}")
        step = b.submit(f.end, {"password": self.user.password})  # email as pre-filled
        self.tokens("oidcc-login-hint", req, Flow(["login"], step))

    def refresh(self):
        c, op = self.c, self.op
        rp = self.rps["basic"]
        req, f = self.flow(self.main, rp, scope="openid email")
        tok, idt = self.tokens("oidcc-refresh-token", req, f, pages=[])
        rt1 = tok.get("refresh_token")
        c.require("oidcc-refresh-token: token response has a refresh_token", bool(rt1), repr(list(tok)))
        # Another client presenting it: refused, and the token is not burnt.
        other = self.rps["post"].oauth()
        try:
            other.refresh_token(op.ep("token_endpoint"), refresh_token=rt1)
            c.check("oidcc-refresh-token: another client's refresh token -> invalid_grant", False, "tokens issued")
        except Exception as e:
            c.check("oidcc-refresh-token: another client's refresh token -> invalid_grant", oauth_error(e) == "invalid_grant",
                    f"{type(e).__name__}: {e}")
        oauth = rp.oauth("openid email")
        new = oauth.refresh_token(op.ep("token_endpoint"), refresh_token=rt1)
        rt2 = new.get("refresh_token")
        c.check("oidcc-refresh-token: refresh gives a new access token", bool(new.get("access_token"))
                and new["access_token"] != tok["access_token"], repr(list(new)))
        c.check("oidcc-refresh-token: refresh token rotated (new one differs)", bool(rt2) and rt2 != rt1, repr(rt2))
        if new.get("id_token"):
            nid = verify_id_token(op, rp, new["id_token"], new["access_token"], None)
            c.check("oidcc-refresh-token: refreshed ID token valid (signature, iss, aud, exp, at_hash)", nid.ok(), nid.why())
            same = {k: (idt.claims.get(k), nid.claims.get(k)) for k in ("iss", "sub", "aud", "azp", "auth_time")
                    if idt.claims.get(k) != nid.claims.get(k)}
            c.check("oidcc-refresh-token: refreshed ID token keeps iss, sub, aud, azp, auth_time (Core §12.2)", not same,
                    f"changed: {same}")
            c.check("oidcc-refresh-token: refreshed ID token nonce absent or unchanged (Core §12.2)",
                    nid.claims.get("nonce") in (None, idt.claims.get("nonce")), repr(nid.claims.get("nonce")))
        r = self.userinfo(new["access_token"])
        c.check("oidcc-refresh-token: refreshed access token works at userinfo", r.status_code == 200, describe(r))
        try:
            rp.oauth().refresh_token(op.ep("token_endpoint"), refresh_token=rt1)
            c.check("oidcc-refresh-token: reusing the old refresh token -> invalid_grant", False, "tokens issued again")
        except Exception as e:
            c.check("oidcc-refresh-token: reusing the old refresh token -> invalid_grant", oauth_error(e) == "invalid_grant",
                    f"{type(e).__name__}: {e}")
        try:
            rp.oauth().refresh_token(op.ep("token_endpoint"), refresh_token=rt2)
            c.check("oidcc-refresh-token: after the reuse, the newest refresh token fails too (family revoked)", False,
                    "tokens issued")
        except Exception as e:
            c.check("oidcc-refresh-token: after the reuse, the newest refresh token fails too (family revoked)",
                    oauth_error(e) == "invalid_grant", f"{type(e).__name__}: {e}")
        r = self.userinfo(new["access_token"])
        c.check("oidcc-refresh-token: after the reuse, the refreshed access token is rejected (401)",
                self.rejected_token(r), describe(r))

    def algs(self):
        c = self.c
        for label in ("es256", "eddsa"):
            rp = self.rps[label]
            req, f = self.flow(self.main, rp)
            tok, idt = self.tokens(f"id-token-{rp.alg}", req, f, pages=[])
            c.check(f"id-token-{rp.alg}: header alg is {rp.alg} and its kid is a published {rp.alg} key",
                    idt.header.get("alg") == rp.alg and any(k.get("kid") == idt.header.get("kid") and k.get("alg") == rp.alg
                                                            for k in self.op.jwks["keys"]), repr(idt.header))
            c.check(f"id-token-{rp.alg}: at_hash is the left half of {HASH_FOR_ALG[rp.alg]().name}(access_token)",
                    idt.claims.get("at_hash") == half_hash(rp.alg, tok["access_token"]), repr(idt.claims.get("at_hash")))
            _, h, problems = verify_access_token(self.op, rp, tok["access_token"])
            c.check(f"id-token-{rp.alg}: access token signed with {rp.alg} and valid (RFC 9068)",
                    not problems and h.get("alg") == rp.alg, f"{h} {problems}")
            r = self.userinfo(tok["access_token"])
            c.check(f"id-token-{rp.alg}: userinfo accepts the {rp.alg} access token", r.status_code == 200, describe(r))

    def consent(self):
        c = self.c
        rp = self.rps["third"]
        b = Browser(self.op, "consent")
        req, f = self.flow(b, rp, user=self.user, consent=None, scope="openid email")
        c.require("consent: third-party client -> login, then a consent page", f.seen == ["login", "consent"], f.summary())
        form = f.end.form
        c.check("consent: form has csrf_token, interaction and allow/deny buttons",
                {"csrf_token", "interaction"} <= set(form.hidden_fields()) and {"allow", "deny"} <= set(
                    form.submit_values("decision")), f"{form}")
        step = b.submit(f.end, {"decision": "deny"})
        self.expect_error("consent: deny", req, Flow(["login", "consent"], step), ("access_denied",))
        req, f = self.flow(b, rp, consent="allow", scope="openid email")
        tok, idt = self.tokens("consent: allow", req, f, pages=["consent"])
        req, f = self.flow(b, rp, scope="openid email")
        self.expect_code("consent: remembered (no page the next time)", req, f, pages=[])
        req, f = self.flow(b, rp, scope="openid email", prompt="none")
        self.expect_code("consent: prompt=none after consent", req, f, pages=[])
        req, f = self.flow(b, rp, scope="openid email", prompt="consent", consent=None)
        c.check("consent: prompt=consent shows the consent page again", f.seen == ["consent"], f.summary())
        req, f = self.flow(b, rp, scope="openid email profile", consent=None)
        c.check("consent: a wider scope asks again", f.seen == ["consent"], f.summary())
        req, f = self.flow(b, self.rps["third-none"], prompt="none")
        self.expect_error("consent: prompt=none, third-party client not yet approved", req, f, ("consent_required",))

    def client_credentials(self):
        c, op = self.c, self.op
        rp = self.rps["service"]
        oauth = rp.oauth(scope=None)
        tok = oauth.fetch_token(op.ep("token_endpoint"), grant_type="client_credentials")
        claims, header, problems = verify_access_token(op, rp, tok.get("access_token"))
        c.check("client-credentials: access token is a valid JWT with typ at+jwt", not problems, "; ".join(problems))
        c.check("client-credentials: sub is the client (RFC 9068 §2.2)", claims.get("sub") == rp.client_id, repr(claims.get("sub")))
        c.check("client-credentials: no id_token, no refresh_token", "id_token" not in tok and "refresh_token" not in tok,
                repr(list(tok)))
        r = self.userinfo(tok["access_token"])
        c.check("client-credentials: userinfo refuses a token without a user", r.status_code in (401, 403), describe(r))
        r = self.token_post(self.rps["basic"], {"grant_type": "client_credentials"})
        c.check("client-credentials: a client not registered for it -> unauthorized_client",
                r.status_code == 400 and r.json().get("error") == "unauthorized_client", describe(r))
        r = requests.post(op.ep("token_endpoint"), data={"grant_type": "client_credentials"},
                          auth=(rp.client_id, rp.client_secret + "x"), timeout=TIMEOUT)
        c.check("client-credentials: wrong secret -> 401 invalid_client",
                r.status_code == 401 and r.json().get("error") == "invalid_client", describe(r))

    def introspection(self):
        c, op = self.c, self.op
        rp = self.rps["basic"]
        url, rurl = op.ep("introspection_endpoint"), op.ep("revocation_endpoint")
        req, f = self.flow(self.main, rp, scope="openid email")
        tok, idt = self.tokens("introspection", req, f, pages=[])
        oauth = rp.oauth()

        def introspect(token, hint=None):
            r = oauth.introspect_token(url, token=token, token_type_hint=hint)
            return r, (r.json() if r.status_code == 200 else {})

        r, j = introspect(tok["access_token"], "access_token")
        c.check("introspection: live access token -> active true, with client_id, sub, exp, scope",
                j.get("active") is True and j.get("client_id") == rp.client_id and j.get("sub") == idt.claims["sub"]
                and isinstance(j.get("exp"), int) and "openid" in str(j.get("scope", "")).split(), describe(r))
        r, j = introspect(tok["refresh_token"], "refresh_token")
        c.check("introspection: live refresh token -> active true", j.get("active") is True, describe(r))
        r = requests.post(url, data={"token": tok["access_token"]}, timeout=TIMEOUT)
        c.check("introspection: without client authentication -> 401", r.status_code == 401, describe(r))
        r, j = introspect("not-a-token")
        c.check("introspection: unknown token -> exactly {\"active\": false}", r.status_code == 200 and j == {"active": False},
                describe(r))
        # RFC 7009: revoking the refresh token; the access tokens of the grant go with it (§2.1 SHOULD).
        r = oauth.revoke_token(rurl, token=tok["refresh_token"], token_type_hint="refresh_token")
        c.check("revocation: revoking a refresh token -> 200", r.status_code == 200, describe(r))
        r, j = introspect(tok["refresh_token"])
        c.check("introspection: revoked refresh token -> active false", r.status_code == 200 and j == {"active": False},
                describe(r))
        r, j = introspect(tok["access_token"])
        c.check("introspection: access token of the revoked grant -> active false", j == {"active": False}, describe(r))
        r = self.userinfo(tok["access_token"])
        c.check("revocation: access token of the revoked grant rejected at userinfo (401)", self.rejected_token(r),
                describe(r))
        # An access token revoked on its own.
        req, f = self.flow(self.main, rp)
        tok, _ = self.tokens("revocation: access token", req, f, pages=[])
        r = oauth.revoke_token(rurl, token=tok["access_token"], token_type_hint="access_token")
        c.check("revocation: revoking an access token -> 200", r.status_code == 200, describe(r))
        r, j = introspect(tok["access_token"])
        c.check("introspection: revoked access token -> active false", j == {"active": False}, describe(r))
        r = self.userinfo(tok["access_token"])
        c.check("revocation: revoked access token rejected at userinfo (401)", self.rejected_token(r), describe(r))
        r, j = introspect(tok["refresh_token"])
        c.check("revocation: revoking the access token leaves the refresh token active", j.get("active") is True, describe(r))
        r = oauth.revoke_token(rurl, token="not-a-token")
        c.check("revocation: unknown token -> 200 (RFC 7009 §2.2)", r.status_code == 200, describe(r))

    def logout(self):
        c, op = self.c, self.op
        rp = self.rps["logout"]
        b = Browser(op, "logout")
        req, f = self.flow(b, rp, user=self.user)
        tok, idt = self.tokens("rp-initiated-logout: sign-in", req, f, pages=["login"])
        end = op.ep("end_session_endpoint")
        # No hint: the user is asked, the session survives the request.
        step = b.get(end)
        c.check("rp-initiated-logout: without id_token_hint the user is asked to confirm", step.kind == "logout_confirm",
                step.summary())
        # Unregistered post_logout_redirect_uri: never redirected to.
        step = b.get(end + "?" + urlencode({"id_token_hint": tok["id_token"], "state": "s1",
                                            "post_logout_redirect_uri": f"{RP_HOST}/attacker/signed-out"}))
        c.check("rp-initiated-logout: unregistered post_logout_redirect_uri -> error page, no redirect",
                step.kind == "error", step.summary())
        req2, f2 = self.flow(b, rp, prompt="none")
        c.check("rp-initiated-logout: still signed in after those two requests", "code" in f2.params, f2.summary())
        state = generate_token(12)
        step = b.get(end + "?" + urlencode({"id_token_hint": tok["id_token"], "state": state,
                                            "post_logout_redirect_uri": rp.post_logout_redirect_uri}))
        target = urlparse(step.url)
        c.check("rp-initiated-logout: redirected to post_logout_redirect_uri with state",
                step.kind == "redirect" and target._replace(query="").geturl() == rp.post_logout_redirect_uri
                and step.params == {"state": state}, step.summary())
        req3, f3 = self.flow(b, rp, prompt="none")
        self.expect_error("rp-initiated-logout: afterwards prompt=none", req3, f3, ("login_required",))

    def state_roundtrip(self):
        rp = self.rps["basic"]
        state = "a b+c&d=e/f?g#h%20é"
        req, f = self.flow(self.main, rp, state=state)
        self.c.check("state: a value with reserved characters is sent", req.state == state, repr(req.state))
        self.tokens("state: reserved characters (a b+c&d=e/f?g#h%20é)", req, f, pages=[])

    def redirect_uri_query(self):
        c, rp = self.c, self.rps["query"]
        req, f = self.flow(self.main, rp)
        self.tokens("oidcc-redirect-uri-query-OK", req, f, pages=[])
        c.check("oidcc-redirect-uri-query-OK: the redirect keeps the registered query (tenant=a)",
                f.params.get("tenant") == "a", f.summary())
        b = Browser(self.op, "redirect-query")
        for module, redirect in (
            ("oidcc-redirect-uri-query-mismatch", rp.redirect_uri.replace("tenant=a", "tenant=b")),
            ("oidcc-redirect-uri-query-added", self.rps["basic"].redirect_uri + "?tenant=a"),
        ):
            client = rp if "mismatch" in module else self.rps["basic"]
            q = {"client_id": client.client_id, "redirect_uri": redirect, "response_type": "code", "scope": "openid",
                 "state": "s", "nonce": "n"}
            step = b.get(self.op.ep("authorization_endpoint") + "?" + urlencode(q))
            c.check(f"{module}: error page (400), no redirect", step.kind == "error" and step.resp.status_code == 400,
                    step.summary())

    def duplicate_params(self):
        """RFC 6749 §3.1: parameters MUST NOT be sent more than once; §4.1.2.1 makes that an
        invalid_request (shown or redirected, but no code)."""
        c, rp = self.c, self.rps["basic"]
        for method in ("GET", "POST"):
            req = AuthRequest(self.op, rp, "openid", generate_token(16))
            pairs = parse_qsl(urlparse(req.url).query) + [("state", "second-state")]
            if method == "GET":
                step = self.main.get(self.op.ep("authorization_endpoint") + "?" + urlencode(pairs))
            else:
                step = self.main.post(self.op.ep("authorization_endpoint"), pairs)
            refused = step.kind == "error" or (step.kind == "redirect" and step.params.get("error") == "invalid_request")
            c.check(f"authorize ({method}): a parameter sent twice (state) is refused, no code", refused
                    and "code" not in step.params, step.summary())
        req, f = self.flow(self.main, rp)
        self.expect_code("token: a parameter sent twice", req, f, pages=[])
        r = requests.post(self.op.ep("token_endpoint"), auth=(rp.client_id, rp.client_secret), timeout=TIMEOUT, data=[
            ("grant_type", "authorization_code"), ("code", f.params["code"]), ("code", f.params["code"]),
            ("redirect_uri", rp.redirect_uri), ("code_verifier", req.verifier)])
        c.check("token: a parameter sent twice (code) -> 400 invalid_request",
                r.status_code == 400 and r.json().get("error") == "invalid_request", describe(r))

    def code_binding(self):
        """RFC 6749 §4.1.3: the code is bound to its client and redirect_uri."""
        c = self.c
        rp, other = self.rps["basic"], self.rps["post"]
        req, f = self.flow(self.main, rp)
        self.expect_code("code binding: another client", req, f, pages=[])
        r = self.token_post(other, {"grant_type": "authorization_code", "code": f.params["code"],
                                    "redirect_uri": rp.redirect_uri, "code_verifier": req.verifier})
        c.check("code binding: code redeemed by another client -> invalid_grant",
                r.status_code == 400 and r.json().get("error") == "invalid_grant", describe(r))
        req, f = self.flow(self.main, rp)
        self.expect_code("code binding: redirect_uri", req, f, pages=[])
        r = self.token_post(rp, {"grant_type": "authorization_code", "code": f.params["code"],
                                 "redirect_uri": rp.redirect_uri + "/other", "code_verifier": req.verifier})
        c.check("code binding: token request with another redirect_uri -> invalid_grant",
                r.status_code == 400 and r.json().get("error") == "invalid_grant", describe(r))
        req, f = self.flow(self.main, rp)
        self.expect_code("code binding: redirect_uri omitted", req, f, pages=[])
        r = self.token_post(rp, {"grant_type": "authorization_code", "code": f.params["code"],
                                 "code_verifier": req.verifier})
        c.check("code binding: token request without the redirect_uri it was issued for -> invalid_grant",
                r.status_code == 400 and r.json().get("error") == "invalid_grant", describe(r))

    def max_age_zero(self):
        """Core §3.1.2.1 (errata set 2): "max_age=0 is equivalent to prompt=login"."""
        c, rp = self.c, self.rps["basic"]
        b = Browser(self.op, "max-age-0")
        req, f = self.flow(b, rp, user=None)
        c.require("max-age-0: sign-in page for a new browser", f.seen == ["login"], f.summary())
        # Sign in at the start of a second, then ask again at once: the sign-in is 0 s old.
        time.sleep(1.02 - (time.time() % 1))
        step = b.submit(f.end, {"email": self.user.email, "password": self.user.password})
        tok, idt = self.tokens("max-age-0: sign-in", req, Flow(["login"], step))
        req, f = self.flow(b, rp, user=None, max_age="0")
        elapsed = time.time() - idt.claims["auth_time"]
        c.check("max-age-0: max_age=0 right after signing in shows the login form (same as prompt=login)",
                f.seen == ["login"], f"{f.summary()} ({elapsed:.2f} s after auth_time {idt.claims['auth_time']})")

    def second_user(self):
        c = self.c
        password = "conformance-" + secrets.token_hex(8)
        email = f"bob-{secrets.token_hex(3)}@example.com"
        user = self.cli.user(email, "Bob", password)
        c.require("second user: CLI creates Bob", user.get("email") == email, repr(user))
        self.bob = Login(email, password)
        b = Browser(self.op, "bob")
        req, f = self.flow(b, self.rps["basic"], user=self.bob)
        tok, idt = self.tokens("second user: Bob signs in", req, f, pages=["login"])
        c.check("second user: Bob's sub differs from Alice's", idt.claims["sub"] != self.main_id.claims["sub"],
                repr(idt.claims["sub"]))
        self.bob_id = idt
        self.bob_token = tok
        self.bob_browser = b

    def id_token_hint_other_user(self):
        c, rp = self.c, self.rps["basic"]
        req, f = self.flow(self.main, rp, prompt="none", id_token_hint=self.bob_token["id_token"])
        self.expect_error("oidcc-id-token-hint (hint names another user), prompt=none", req, f, ("login_required",))
        req, f = self.flow(self.main, rp, id_token_hint=self.bob_token["id_token"])
        c.check("oidcc-id-token-hint (hint names another user): the login form is shown", f.seen == ["login"], f.summary())

    def select_account(self):
        c, rp = self.c, self.rps["basic"]
        b = Browser(self.op, "select-account")
        req, f = self.flow(b, rp, user=self.user)
        tok, alice = self.tokens("prompt-select-account: Alice signs in", req, f, pages=["login"])
        req, f = self.flow(b, rp, prompt="select_account", user=None, select=None)
        c.require("prompt-select-account: account chooser shown", f.seen == ["select"], f.summary())
        form = f.end.form
        c.check("prompt-select-account: chooser has csrf_token, interaction and continue/switch buttons",
                {"csrf_token", "interaction"} <= set(form.hidden_fields())
                and {"continue", "switch"} <= set(form.submit_values("decision")), f"{form}")
        step = b.submit(f.end, {"decision": "continue"})
        tok, idt = self.tokens("prompt-select-account: continue", req, Flow(["select"], step))
        c.check("prompt-select-account: continue keeps Alice", idt.claims["sub"] == alice.claims["sub"], repr(idt.claims))
        req, f = self.flow(b, rp, prompt="select_account", user=None, select=None)
        c.require("prompt-select-account: chooser shown again", f.seen == ["select"], f.summary())
        step = b.submit(f.end, {"decision": "switch"})
        c.require("prompt-select-account: switch shows the login form", step.kind == "login", step.summary())
        step = b.submit(step, {"email": self.bob.email, "password": self.bob.password})
        tok, idt = self.tokens("prompt-select-account: switch to Bob", req, Flow(["select", "login"], step))
        c.check("prompt-select-account: the code is now Bob's", idt.claims["sub"] == self.bob_id.claims["sub"],
                f"sub {idt.claims.get('sub')!r}, Bob is {self.bob_id.claims['sub']!r}")

    def consent_per_user(self):
        req, f = self.flow(self.bob_browser, self.rps["third"], scope="openid email", consent=None)
        self.c.check("consent: Alice's consent does not cover Bob (consent page shown to Bob)", f.seen == ["consent"],
                     f.summary())

    def foreign_revocation(self):
        c, op = self.c, self.op
        rp, other = self.rps["basic"], self.rps["post"]
        req, f = self.flow(self.main, rp)
        tok, _ = self.tokens("revocation: by another client", req, f, pages=[])
        r = other.oauth().revoke_token(op.ep("revocation_endpoint"), token=tok["refresh_token"])
        c.check("revocation: another client revoking a refresh token -> 200 or 4xx", r.status_code in (200, 400, 401),
                describe(r))
        r = rp.oauth().introspect_token(op.ep("introspection_endpoint"), token=tok["refresh_token"])
        c.check("revocation: another client cannot revoke it (still active for its owner)",
                r.status_code == 200 and r.json().get("active") is True, describe(r))
        r = other.oauth().introspect_token(op.ep("introspection_endpoint"), token=tok["refresh_token"])
        c.check("introspection: a refresh token is not described to another client (active false)",
                r.status_code == 200 and r.json() == {"active": False}, describe(r))
        r = self.token_post(rp, {"grant_type": "refresh_token", "refresh_token": tok["refresh_token"],
                                 "scope": "openid profile email"})
        c.check("oidcc-refresh-token: asking for a scope not originally granted -> invalid_scope (RFC 6749 §6)",
                r.status_code == 400 and r.json().get("error") == "invalid_scope", describe(r))

    def rotate_keys(self):
        c, op = self.c, self.op
        out = self.cli.run("keys", "rotate", "--alg", "RS256", "--activate-in", "0", "--json")
        new = [k.get("kid") for k in (out if isinstance(out, list) else [out])]
        c.require("oidcc-server-rotate-keys: CLI creates a new RS256 key", len(new) == 1 and bool(new[0]), repr(out))
        kid = new[0]
        deadline = time.monotonic() + self.args.key_reload_wait
        rp = self.rps["basic"]
        seen_kid, tok, req, failures = None, None, None, []
        while True:
            req, f = self.flow(self.main, rp)
            if "code" in f.params:
                try:
                    tok = req.exchange(f.end)
                    seen_kid = json.loads(b64url_decode(tok["id_token"].split(".")[0])).get("kid")
                except Exception as e:  # noted below; keep polling to see whether it recovers
                    last = req.oauth.last_response
                    failures.append(f"{time.strftime('%H:%M:%S')} token endpoint: "
                                    + (describe(last) if last is not None else f"{type(e).__name__}: {e}"))
            else:
                failures.append(f"{time.strftime('%H:%M:%S')} authorize: {f.summary()}")
            if seen_kid == kid or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        c.check("oidcc-server-rotate-keys: code flow keeps working while the new key is picked up (no error)",
                not failures, f"{len(failures)} failed attempt(s); first: {failures[:1]}; last: {failures[-1:]}")
        c.require(f"oidcc-server-rotate-keys: ID tokens signed with the new key within {self.args.key_reload_wait:.0f} s",
                  seen_kid == kid, f"last ID token signed by {seen_kid!r}, new key {kid!r}")
        c.check("oidcc-server-rotate-keys: new key published in the JWKS", kid in {k.get("kid") for k in op.fetch_jwks()["keys"]},
                repr(op.kids()))
        idt = verify_id_token(op, rp, tok["id_token"], tok["access_token"], req.nonce)
        c.check("oidcc-server-rotate-keys: ID token from the new key verifies (joserfc, refetched JWKS)", idt.ok(), idt.why())
        old = self.main_token["id_token"]
        old_kid = json.loads(b64url_decode(old.split(".")[0])).get("kid")
        c.check("oidcc-server-rotate-keys: the previous key stays published (tokens it signed still verify)",
                old_kid in op.kids(), f"{old_kid!r} not in {op.kids()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="issuer / base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--email", required=True, help="email of an existing, active user")
    parser.add_argument("--password", required=True, help="that user's password")
    parser.add_argument("--bin", required=True, help="the guichet binary (for 'client create', 'keys rotate')")
    parser.add_argument("--name", help="the user's name, to check the profile claims")
    parser.add_argument("--user-id", help="the user's id, to check sub")
    parser.add_argument("--codereuse-wait", type=float, default=30, help="seconds before the late code replay (30)")
    parser.add_argument("--key-reload-wait", type=float, default=40,
                        help="seconds to wait for the server to sign with a rotated key (keys.reload_secs + margin)")
    parser.add_argument("--no-key-rotation", action="store_true", help="skip oidcc-server-rotate-keys")
    args = parser.parse_args()

    c = Checks()
    s = Suite(c, args)
    started = time.monotonic()
    if c.scenario("discovery (oidcc-discovery-*)", s.discovery) is None and not s.op.meta.get("authorization_endpoint"):
        print(f"{c.passed} passed, {c.failed} failed")
        return 1
    c.scenario("client registration (CLI)", s.register_clients)
    if len(s.rps) < 10:
        print(f"{c.passed} passed, {c.failed} failed")
        return 1
    c.scenario("oidcc-server", s.oidcc_server)
    if s.main_id is None:
        print("   (no signed-in browser: the flows that need one are skipped)")
        print(f"{c.passed} passed, {c.failed} failed")
        return 1
    c.scenario("oidcc-codereuse-30seconds (first exchange)", s.codereuse_30s_start)
    c.scenario("oidcc-response-type-missing", s.response_type_missing)
    c.scenario("oidcc-userinfo-get / -post-header / -post-body", s.userinfo_endpoints)
    c.scenario("oidcc-ensure-request-without-nonce-succeeds-for-code-flow", s.without_nonce)
    c.scenario("oidcc-scope-*", s.scopes)
    c.scenario("oidcc-ensure-other-scope-order-succeeds", s.other_scope_order)
    c.scenario("parameters that must not break the flow", s.accepted_params)
    c.scenario("oidcc-claims-essential", s.claims_essential)
    c.scenario("request objects (unsupported)", s.request_objects)
    c.scenario("oidcc-ensure-registered-redirect-uri", s.registered_redirect_uri)
    c.scenario("PKCE", s.pkce)
    c.scenario("oidcc-server-client-secret-post", s.client_secret_post)
    c.scenario("oidcc-response-mode-form-post", s.form_post)
    c.scenario("oidcc-prompt-none-*", s.prompt_none)
    c.scenario("oidcc-prompt-login", s.prompt_login)
    c.scenario("oidcc-max-age-*", s.max_age)
    c.scenario("oidcc-id-token-hint", s.id_token_hint)
    c.scenario("oidcc-login-hint", s.login_hint)
    c.scenario("max_age=0", s.max_age_zero)
    c.scenario("state round trip", s.state_roundtrip)
    c.scenario("oidcc-redirect-uri-query-*", s.redirect_uri_query)
    c.scenario("authorization code binding", s.code_binding)
    c.scenario("duplicate parameters", s.duplicate_params)
    c.scenario("oidcc-codereuse", s.codereuse)
    c.scenario("oidcc-refresh-token", s.refresh)
    c.scenario("ES256 and EdDSA clients", s.algs)
    c.scenario("consent (third-party client)", s.consent)
    if c.scenario("second user", s.second_user) is None and s.bob_id is not None:
        c.scenario("oidcc-id-token-hint (another user)", s.id_token_hint_other_user)
        c.scenario("prompt=select_account", s.select_account)
        c.scenario("consent is per user", s.consent_per_user)
    c.scenario("client_credentials", s.client_credentials)
    c.scenario("introspection and revocation", s.introspection)
    c.scenario("revocation by another client", s.foreign_revocation)
    c.scenario("RP-initiated logout", s.logout)
    c.scenario("oidcc-codereuse-30seconds (replay)", s.codereuse_30s_finish)
    if not args.no_key_rotation:
        c.scenario("oidcc-server-rotate-keys", s.rotate_keys)
    print(f"   ({time.monotonic() - started:.0f} s)")
    print(f"{c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
