#!/usr/bin/env python3
"""Fault injection against two Guichet nodes sharing one PostgreSQL and one Redis.

Run by conformance/faults, which starts a private PostgreSQL cluster and Redis server, two
`guichet serve` nodes (same issuer, same database, Redis and key directory), creates a user
and a first-party confidential client, and hands this script a control command (--ctl) that
stops and starts those services and kill -9s node B. Scenarios:

  a. PostgreSQL stopped (pg_ctl stop -m fast) for --pg-outage seconds under load: refresh-token
     chains (one thread per chain, half on each node) retry the SAME refresh token on a 503 or a
     connection error until it succeeds; code chains get a code at /authorize and retry its
     exchange the same way. No 500 ever, every 503 carries Retry-After, no invalid_grant ever (a
     failed request must leave the presented token or code usable), every chain completes once
     the database is back (no restart), and writes acknowledged before the stop (an unused
     refresh token, revocations) still hold afterwards.
  b. Redis stopped for --redis-outage seconds: GET /login, POST /login, GET /authorize (valid
     request, signed in), GET / and POST /introspect of a live access token answer 503 (never
     500, never a 4xx, never active:false); /token refresh works or answers 503. Redis comes
     back EMPTY (it keeps nothing on disk): everything works again without restarting Guichet,
     and an access token revoked before the outage is still inactive (durable revocation).
  c. kill -9 of node B while refresh chains run against it: each thread moves to node A and
     retries its last refresh token; no invalid_grant, every chain completes.
  d. (within a) codes obtained before the stop whose exchange answers 503 during the outage
     are accepted once the database is back.
  e. PostgreSQL terminates every client connection (pg_terminate_backend), 10 (--short) or 40 times,
     0.3 s apart, under refresh and code load: requests caught mid-transaction may answer 503,
     never 500; no token or code is burnt by a failed request; every chain completes.

  s. (first, without a fault) the two nodes behave as one: a code from node A's sign-in exchanged
     at B and refused again at A, refreshes alternating between the nodes, a spent refresh token
     reused at B revoking the grant at A, a revocation at B seen by introspection at A, the single sign-on session made at A
     honoured by B's /authorize without a form, failed sign-ins at A throttling the same address at B,
     an RS256 key rotated by the operator published and used by both nodes.

Every loop is bounded in count and time; only 127.0.0.1 is contacted. Prints one PASS/FAIL
line per check, then `N passed, M failed`; exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import re
import secrets
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urljoin, urlparse

import requests

from checks import Checks, describe

# Longer than the server's own request deadline (set by conformance/faults), so a slow answer
# arrives as the server's 503 rather than as a client-side timeout of unknown outcome.
TIMEOUT = 25
BROWSER_HEADERS = {
    "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8",
    "User-Agent": "guichet-faults/1 (python-requests)",
}
MAX_REQUESTS_PER_WORKER = 5000  # hard bound on any worker loop


def now() -> float:
    return time.monotonic()


# --------------------------------------------------------------------------
# HTML forms (the sign-in form contract of README.md)


class FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self._cur: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if tag == "form":
            self._cur = {"action": a.get("action") or "", "inputs": []}
            self.forms.append(self._cur)
        elif tag == "input" and self._cur is not None:
            self._cur["inputs"].append(a)

    def handle_endtag(self, tag):
        if tag == "form":
            self._cur = None


def forms(html_text: str) -> list[dict]:
    p = FormParser()
    p.feed(html_text)
    return p.forms


def login_form(html_text: str) -> dict | None:
    for f in forms(html_text):
        names = {i.get("name") for i in f["inputs"]}
        if urlparse(f["action"]).path == "/login" and {"email", "password", "csrf_token"} <= names:
            return f
    return None


def consent_form(html_text: str) -> dict | None:
    """The consent page (first-party clients see it once, for offline_access)."""
    return next((f for f in forms(html_text) if urlparse(f["action"]).path == "/authorize/consent"), None)


def form_fields(form: dict) -> dict[str, str]:
    skip = {"submit", "button", "image", "reset", "file", "checkbox", "radio"}
    return {
        i["name"]: i.get("value", "")
        for i in form["inputs"]
        if i.get("name") and i.get("type", "text").lower() not in skip
    }


def page_text(html_text: str) -> str:
    """The visible text of an HTML page (no head, no tags), whitespace collapsed."""
    body = re.sub(r"(?is)<head.*?</head>|<script.*?</script>|<style.*?</style>", " ", html_text)
    return html.unescape(" ".join(re.sub(r"(?s)<[^>]*>", " ", body).split()))


def short(resp: requests.Response) -> str:
    if "html" in resp.headers.get("Content-Type", ""):
        body = "page text: " + page_text(resp.text)[:200]
    else:
        body = resp.text[:200].replace("\n", " ")
    extra = []
    if resp.headers.get("Location"):
        extra.append(f"Location: {resp.headers['Location'][:160]}")
    if resp.headers.get("Retry-After"):
        extra.append(f"Retry-After: {resp.headers['Retry-After']}")
    elif resp.status_code == 503:
        extra.append("no Retry-After")
    return f"{resp.status_code} {resp.request.method} {urlparse(resp.url).path}" + (
        f" ({'; '.join(extra)})" if extra else "") + (f" body {body!r}" if body else "")


def oauth_error(resp: requests.Response) -> str:
    try:
        j = resp.json()
        return j.get("error", "") if isinstance(j, dict) else ""
    except ValueError:
        return ""


def conn_kind(e: Exception) -> str:
    """'refused': the request never reached a server; 'lost': it may have been processed."""
    text = repr(e)
    if "NewConnectionError" in text or "Connection refused" in text or "ConnectTimeout" in text:
        return "refused"
    return "lost"


# --------------------------------------------------------------------------
# The deployment under test


@dataclass
class Deployment:
    issuer: str
    a: str  # node A base URL (= issuer)
    b: str  # node B base URL
    email: str
    password: str
    client_id: str
    client_secret: str
    redirect_uri: str
    ctl: str
    log_dir: str | None = None  # where node-a.log and node-b.log are

    def log_lines(self, needle: str, limit: int = 4) -> str:
        """The nodes' log lines mentioning needle (a request id), for evidence."""
        if not self.log_dir:
            return ""
        found = []
        for node in ("a", "b"):
            try:
                with open(f"{self.log_dir}/node-{node}.log", errors="replace") as f:
                    found += [f"node {node.upper()}: {line.strip()[:300]}" for line in f if needle in line]
            except OSError:
                pass
        return " | ".join(found[:limit]) if found else f"no node log line mentions {needle}"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.client_id, self.client_secret)

    def control(self, action: str) -> tuple[bool, str]:
        try:
            p = subprocess.run(["bash", self.ctl, action], capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            return False, f"{self.ctl} {action} timed out"
        return p.returncode == 0, (p.stdout + p.stderr).strip()[-600:]

    def ready(self, base: str) -> int | None:
        try:
            return requests.get(base + "/readyz", timeout=5).status_code
        except requests.RequestException:
            return None

    def wait_ready(self, bases: list[str], limit: float) -> dict[str, int | None]:
        deadline = now() + limit
        while True:
            st = {b: self.ready(b) for b in bases}
            if all(v == 200 for v in st.values()) or now() >= deadline:
                return st
            time.sleep(0.3)

    def token(self, base: str, data: dict, session: requests.Session | None = None) -> requests.Response:
        return (session or requests).post(base + "/token", data=data, auth=self.auth, timeout=TIMEOUT)

    def refresh(self, base: str, rt: str, session: requests.Session | None = None) -> requests.Response:
        return self.token(base, {"grant_type": "refresh_token", "refresh_token": rt}, session)

    def introspect(self, base: str, tok: str) -> requests.Response:
        return requests.post(base + "/introspect", data={"token": tok}, auth=self.auth, timeout=TIMEOUT)

    def revoke(self, base: str, tok: str) -> requests.Response:
        return requests.post(base + "/revoke", data={"token": tok}, auth=self.auth, timeout=TIMEOUT)

    def userinfo(self, base: str, at: str) -> requests.Response:
        return requests.get(base + "/userinfo", headers={"Authorization": f"Bearer {at}"}, timeout=TIMEOUT)


class Browser:
    """One cookie jar; redirects followed by hand while they stay on the OP's host."""

    def __init__(self, dep: Deployment) -> None:
        self.dep = dep
        self.s = requests.Session()
        self.s.headers.update(BROWSER_HEADERS)

    def follow(self, resp: requests.Response) -> requests.Response:
        for _ in range(10):
            loc = resp.headers.get("Location")
            if not (resp.is_redirect and loc):
                return resp
            target = urljoin(resp.url, loc)
            if target.startswith(self.dep.redirect_uri):
                return resp  # at the client: read, never followed
            resp = self.s.get(target, allow_redirects=False, timeout=TIMEOUT)
        return resp

    def get(self, url: str) -> requests.Response:
        return self.s.get(url, allow_redirects=False, timeout=TIMEOUT)

    def post_login(self, page: requests.Response, form: dict) -> requests.Response:
        data = form_fields(form)
        data.update(email=self.dep.email, password=self.dep.password)
        return self.s.post(urljoin(page.url, form["action"]), data=data, allow_redirects=False, timeout=TIMEOUT)

    def allow(self, page: requests.Response, form: dict) -> requests.Response:
        data = form_fields(form)
        data["decision"] = "allow"
        return self.s.post(urljoin(page.url, form["action"]), data=data, allow_redirects=False, timeout=TIMEOUT)

    def front_channel(self, url: str) -> requests.Response:
        """GET url and go on (sign in, consent) until the OP answers something else."""
        resp = self.follow(self.get(url))
        for _ in range(3):
            if resp.status_code != 200:
                break
            if (f := login_form(resp.text)) is not None:
                resp = self.follow(self.post_login(resp, f))
            elif (f := consent_form(resp.text)) is not None:
                resp = self.follow(self.allow(resp, f))
            else:
                break
        return resp


@dataclass
class AuthRequest:
    url: str
    state: str
    verifier: str


def auth_request(dep: Deployment, base: str, scope: str = "openid offline_access") -> AuthRequest:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(12)
    q = {
        "response_type": "code", "client_id": dep.client_id, "redirect_uri": dep.redirect_uri, "scope": scope,
        "state": state, "nonce": secrets.token_urlsafe(12), "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    return AuthRequest(f"{base}/authorize?{urlencode(q)}", state, verifier)


def client_redirect(dep: Deployment, resp: requests.Response) -> dict[str, str] | None:
    """The query of a redirect to the client's redirect_uri, else None."""
    loc = resp.headers.get("Location", "")
    if resp.is_redirect and loc.startswith(dep.redirect_uri):
        return dict(parse_qsl(urlparse(loc).query))
    return None


def get_code(dep: Deployment, browser: Browser, base: str) -> tuple[AuthRequest, str]:
    """Front channel: /authorize, signing in through the form when asked; returns the code.
    Raises RuntimeError (with the response) when it does not end at the client with a code."""
    req = auth_request(dep, base)
    resp = browser.front_channel(req.url)
    params = client_redirect(dep, resp)
    if not params or "code" not in params:
        raise RuntimeError(f"no code: {short(resp)}")
    if params.get("state") != req.state:
        raise RuntimeError(f"state {params.get('state')!r} is not {req.state!r}")
    return req, params["code"]


def exchange(dep: Deployment, base: str, req: AuthRequest, code: str,
             session: requests.Session | None = None) -> requests.Response:
    return dep.token(base, {"grant_type": "authorization_code", "code": code, "redirect_uri": dep.redirect_uri,
                            "code_verifier": req.verifier}, session)


def fresh_tokens(dep: Deployment, browser: Browser, base: str) -> dict:
    req, code = get_code(dep, browser, base)
    r = exchange(dep, base, req, code)
    if r.status_code != 200 or "refresh_token" not in r.json():
        raise RuntimeError(f"code exchange: {short(r)}")
    return r.json()


# --------------------------------------------------------------------------
# Load: refresh-token chains and code chains, each in its own thread


@dataclass
class Event:
    t: float
    worker: str
    node: str
    kind: str  # ok, 503, 500, invalid_grant, other, refused, lost, timeout
    detail: str = ""
    after: str = ""  # for failures of a retried token: how its previous attempt ended
    retry_after: bool = True  # a 503 carried Retry-After


class Load:
    def __init__(self, dep: Deployment, label: str) -> None:
        self.dep = dep
        self.label = label
        self.tag_id = secrets.token_hex(3)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.events: list[Event] = []
        self.workers: list[Worker] = []

    def record(self, ev: Event) -> None:
        with self.lock:
            self.events.append(ev)

    def node_name(self, base: str) -> str:
        return "A" if base == self.dep.a else "B"

    def start(self) -> None:
        for w in self.workers:
            w.start()

    def finish(self, timeout: float) -> None:
        self.stop.set()
        deadline = now() + timeout
        for w in self.workers:
            w.join(max(0.1, deadline - now()))

    def wait(self, cond, limit: float) -> bool:
        deadline = now() + limit
        while now() < deadline:
            if cond():
                return True
            if all(not w.is_alive() for w in self.workers):
                return cond()
            time.sleep(0.2)
        return cond()


class Worker(threading.Thread):
    def __init__(self, load: Load, name: str, bases: list[str], pause: float) -> None:
        super().__init__(name=name, daemon=True)
        self.load = load
        self.bases = bases  # first = preferred; on a connection error move to the next (failover)
        self.node = 0
        self.pause = pause
        self.successes: list[tuple[float, str]] = []  # (time, node)
        self.broken: Event | None = None  # why the worker could not go on
        self.session = requests.Session()
        self.last_failure = ""  # how the previous attempt of the current token/code ended
        self.seq = 0
        self.request_id = ""

    @property
    def base(self) -> str:
        return self.bases[self.node]

    def successes_since(self, t: float, node: str | None = None) -> int:
        return sum(1 for ts, n in list(self.successes) if ts >= t and (node is None or n == node))

    def attempt(self, send) -> requests.Response | None:
        """One HTTP attempt; records failures. None = retry (same token/code)."""
        node = self.load.node_name(self.base)
        self.seq += 1
        # Guichet keeps a caller's X-Request-Id in its logs: a lost request can be found there.
        self.request_id = f"faults-{self.load.tag_id}-{self.name}-{self.seq}"
        self.session.headers["X-Request-Id"] = self.request_id
        try:
            r = send(self.base)
        except requests.Timeout as e:
            self.load.record(Event(now(), self.name, node, "timeout", repr(e)[:200], self.last_failure))
            self.last_failure = f"client timeout on node {node}"
            return None
        except requests.ConnectionError as e:
            kind = conn_kind(e)
            self.load.record(Event(now(), self.name, node, kind, repr(e)[:200], self.last_failure))
            self.last_failure = f"connection {kind} on node {node} (X-Request-Id {self.request_id})"
            self.session.close()
            self.session = requests.Session()
            if self.node + 1 < len(self.bases):
                self.node += 1  # what a load balancer does with a dead backend
            time.sleep(0.1)
            return None
        if r.status_code == 503:
            ra = r.headers.get("Retry-After")
            self.load.record(Event(now(), self.name, node, "503", short(r), self.last_failure, ra is not None))
            self.last_failure = f"503 on node {node}"
            try:
                wait = float(ra) if ra is not None else 0.5
            except ValueError:
                wait = 0.5
            time.sleep(min(max(wait, 0.1), 1.0))
            return None
        if r.status_code >= 500:
            self.load.record(Event(now(), self.name, node, "500", short(r), self.last_failure))
            self.last_failure = f"{r.status_code} on node {node}"
            time.sleep(0.2)
            return None
        return r

    def fail(self, r: requests.Response, what: str, fatal: bool = True) -> Event:
        node = self.load.node_name(self.base)
        kind = "invalid_grant" if oauth_error(r) == "invalid_grant" else "other"
        ev = Event(now(), self.name, node, kind, f"{what}: {short(r)}", self.last_failure)
        self.load.record(ev)
        if fatal:
            self.broken = ev
        return ev


class RefreshChain(Worker):
    """Owns one refresh-token chain: on 200 moves to the new token, else retries the same one."""

    def __init__(self, load: Load, name: str, token: str, bases: list[str], pause: float) -> None:
        super().__init__(load, name, bases, pause)
        self.token = token

    def run(self) -> None:
        dep = self.load.dep
        try:
            for _ in range(MAX_REQUESTS_PER_WORKER):
                if self.load.stop.is_set():
                    return
                r = self.attempt(lambda base: dep.refresh(base, self.token, self.session))
                if r is None:
                    continue
                if r.status_code == 200 and r.json().get("refresh_token"):
                    self.token = r.json()["refresh_token"]
                    self.successes.append((now(), self.load.node_name(self.base)))
                    self.load.record(Event(now(), self.name, self.load.node_name(self.base), "ok"))
                    self.last_failure = ""
                    time.sleep(self.pause)
                    continue
                self.fail(r, "refresh")
                return
        except Exception as e:  # a bug here, or a body that is not JSON
            self.broken = Event(now(), self.name, "?", "other", f"{type(e).__name__}: {e}")
            self.load.record(self.broken)


class CodeChain(Worker):
    """Repeatedly gets a code (signed-in browser) and exchanges it, retrying the SAME code on a
    503 or a connection error."""

    def __init__(self, load: Load, name: str, browser: Browser, bases: list[str], pause: float) -> None:
        super().__init__(load, name, bases, pause)
        self.browser = browser
        self.code_failures: list[Event] = []

    def run(self) -> None:
        dep = self.load.dep
        try:
            sent = 0
            while sent < MAX_REQUESTS_PER_WORKER and not self.load.stop.is_set():
                # 1. a code (the front channel may be unavailable: 503, or an error redirect)
                self.last_failure = ""
                got = None
                while got is None and sent < MAX_REQUESTS_PER_WORKER and not self.load.stop.is_set():
                    sent += 1
                    req = auth_request(dep, self.base)

                    def front(base, req=req):
                        return self.browser.front_channel(req.url)

                    r = self.attempt(front)
                    if r is None:
                        continue
                    params = client_redirect(dep, r)
                    if params and "code" in params:
                        got = (req, params["code"])
                    elif params and params.get("error") == "temporarily_unavailable":
                        self.load.record(Event(now(), self.name, self.load.node_name(self.base), "503",
                                               "authorize redirected error=temporarily_unavailable"))
                        time.sleep(0.5)
                    elif params and params.get("error") == "server_error":
                        self.load.record(Event(now(), self.name, self.load.node_name(self.base), "500",
                                               f"authorize redirected error=server_error: {params}"))
                        time.sleep(0.2)
                    else:
                        self.fail(r, "authorize")
                        return
                if got is None:
                    return
                # 2. exchange it, retrying the same code
                req, code = got
                self.last_failure = ""
                while sent < MAX_REQUESTS_PER_WORKER:
                    sent += 1
                    r = self.attempt(lambda base: exchange(dep, base, req, code, self.session))
                    if r is None:
                        if self.load.stop.is_set():
                            return
                        continue
                    if r.status_code == 200 and r.json().get("access_token"):
                        self.successes.append((now(), self.load.node_name(self.base)))
                        self.load.record(Event(now(), self.name, self.load.node_name(self.base), "ok"))
                    else:
                        # A refused code ends that code, not the chain.
                        self.code_failures.append(self.fail(r, "code exchange", fatal=False))
                    break
                time.sleep(self.pause)
        except Exception as e:
            self.broken = Event(now(), self.name, "?", "other", f"{type(e).__name__}: {e}")
            self.load.record(self.broken)


# --------------------------------------------------------------------------
# Shared assertions on a load run


def summarize(events: list[Event], limit: int = 6) -> str:
    shown = "; ".join(
        f"[{e.worker} node {e.node}{' after ' + e.after if e.after else ''}] {e.detail}" for e in events[:limit])
    more = f" (+{len(events) - limit} more)" if len(events) > limit else ""
    return f"{len(events)} event(s): {shown}{more}"


def load_checks(c: Checks, tag: str, load: Load, fault_start: float, fault_end: float,
                after_each: int, *, node_killed: bool = False, must_meet_fault: bool = True) -> None:
    evs = load.events
    counts = Counter(e.kind for e in evs)
    print(f"   load {tag}: {dict(counts)}", flush=True)
    slow = [e for e in evs if e.kind == "timeout"]
    c.check(f"{tag}: every request answered within {TIMEOUT} s (the server's own deadline is shorter)", not slow,
            summarize(slow))
    if not node_killed:
        conn = [e for e in evs if e.kind in ("refused", "lost")]
        c.check(f"{tag}: no connection error (both nodes stay up)", not conn, summarize(conn))
    fives = [e for e in evs if e.kind == "500"]
    c.check(f"{tag}: no 500 (nor error=server_error) from any request of the load", not fives, summarize(fives))
    no_ra = [e for e in evs if e.kind == "503" and not e.retry_after]
    c.check(f"{tag}: every 503 carries Retry-After", not no_ra, summarize(no_ra))
    ig = [e for e in evs if e.kind == "invalid_grant"]
    if node_killed:
        lost = [e for e in ig if e.after.startswith("connection lost")]
        other = [e for e in ig if not e.after.startswith("connection lost")]
        c.check(f"{tag}: no invalid_grant for a token whose previous attempt was refused, answered 503, "
                "or never failed", not other, summarize(other))
        logs = "; ".join(
            f"logs for {rid}: {load.dep.log_lines(rid)}"
            for e in lost if (rid := e.after.rpartition("X-Request-Id ")[2].rstrip(")"))
        )
        c.check(f"{tag}: no invalid_grant for a token whose request was in flight when node B died "
                "(B may have rotated it before dying: the retry of the last token must still work)", not lost,
                summarize(lost) + (f"; {logs}" if logs else ""))
    else:
        c.check(f"{tag}: no invalid_grant: a failed request left the presented token/code usable", not ig,
                summarize(ig))
    other = [e for e in evs if e.kind == "other"]
    c.check(f"{tag}: no other error answer (4xx, unexpected body)", not other, summarize(other))
    during = [e for e in evs if fault_start <= e.t <= fault_end + 1 and e.kind != "ok"]
    if must_meet_fault:
        c.check(f"{tag}: the load met the fault (some requests failed while it lasted)", bool(during),
                f"no failed request between the fault and its repair ({dict(counts)}): was the fault injected?")
    lagging = [w for w in load.workers if w.broken or w.successes_since(fault_end) < after_each]
    c.check(
        f"{tag}: every chain completes after the repair ({after_each} more successes each, no restart)",
        not lagging,
        "; ".join(f"{w.name}: {w.successes_since(fault_end)} successes after the repair"
                  + (f", stopped by: {w.broken.detail} (after {w.broken.after or 'nothing'})" if w.broken else "")
                  for w in lagging),
    )


def outcome(f) -> requests.Response | Exception:
    try:
        return f.result()
    except requests.RequestException as e:
        return e


def shown(r: requests.Response | Exception) -> str:
    return short(r) if isinstance(r, requests.Response) else f"{type(r).__name__}: {r}"


def is_503(r: requests.Response | Exception) -> bool:
    return isinstance(r, requests.Response) and r.status_code == 503 and "Retry-After" in r.headers


def answer_or_503(c: Checks, name: str, send, correct, what: str) -> requests.Response | None:
    """A request during an outage: the correct answer, or 503 + Retry-After; nothing else."""
    try:
        r = send()
    except requests.RequestException as e:
        c.check(f"{name}: {what} or 503 + Retry-After", False, repr(e))
        return None
    try:
        ok = correct(r)
    except ValueError:
        ok = False
    c.check(f"{name}: {what} or 503 + Retry-After (never a wrong answer, a 500 or another 4xx)",
            ok or (r.status_code == 503 and "Retry-After" in r.headers), short(r))
    return r


# --------------------------------------------------------------------------
# The scenarios


class Suite:
    def __init__(self, c: Checks, dep: Deployment, args) -> None:
        self.c = c
        self.dep = dep
        self.args = args
        self.main = Browser(dep)  # signed in; re-signs in when its session is gone
        self.repair: str | None = None  # the control action undoing a fault still in force

    def do_repair(self) -> None:
        """After a scenario stopped half-way: bring the stopped service back for the next one."""
        if self.repair:
            action, self.repair = self.repair, None
            ok, out = self.dep.control(action)
            print(f"   (repair after an aborted scenario: {action}: {'ok' if ok else out})", flush=True)

    def tokens(self, base: str | None = None) -> dict:
        return fresh_tokens(self.dep, self.main, base or self.dep.a)

    def signed_in_browser(self) -> Browser:
        b = Browser(self.dep)
        get_code(self.dep, b, self.dep.a)
        return b

    # ---- s: the two nodes behave as one (no fault)

    def scale_out(self) -> None:
        """Sign in on A, exchange the code on B, refresh on A, revoke on B and see it on A,
        the single sign-on session of A honoured by B, a rotated refresh token refused on the
        other node."""
        c, dep = self.c, self.dep
        browser = Browser(dep)
        req, code = get_code(dep, browser, dep.a)
        c.check("s: a code obtained through node A's sign-in form", bool(code))
        r = exchange(dep, dep.b, req, code)
        c.require("s: ... is exchanged at node B (200, tokens)", r.status_code == 200 and "refresh_token" in r.json(),
                  short(r))
        t1 = r.json()
        c.check("s: node A serves userinfo for B's access token", dep.userinfo(dep.a, t1["access_token"]).status_code == 200)
        r = exchange(dep, dep.a, req, code)
        c.check("s: the same code again, at node A: invalid_grant", r.status_code == 400 and oauth_error(r) == "invalid_grant",
                short(r))
        fresh = Browser(dep)
        req, code = get_code(dep, fresh, dep.a)
        t1 = exchange(dep, dep.b, req, code).json()
        r = dep.refresh(dep.a, t1["refresh_token"])
        c.require("s: B's refresh token is refreshed at node A (200)", r.status_code == 200, short(r))
        t2 = r.json()
        r = dep.refresh(dep.b, t2["refresh_token"])
        c.require("s: ... and its successor at node B (200)", r.status_code == 200, short(r))
        t3 = r.json()
        # The first one again (its successor used: not a lost-answer retry): a reuse, at B...
        r = dep.refresh(dep.b, t1["refresh_token"])
        c.check("s: a spent refresh token again, at node B: invalid_grant", r.status_code == 400 and
                oauth_error(r) == "invalid_grant", short(r))
        # ... revokes the grant for every node.
        r = dep.refresh(dep.a, t3["refresh_token"])
        c.check("s: the reuse revoked the grant at node A too: invalid_grant", r.status_code == 400 and
                oauth_error(r) == "invalid_grant", short(r))
        req, code = get_code(dep, fresh, dep.a)
        t3 = exchange(dep, dep.a, req, code).json()
        r = dep.introspect(dep.a, t3["access_token"])
        c.check("s: introspection at A: active", r.status_code == 200 and r.json().get("active") is True, short(r))
        r = dep.revoke(dep.b, t3["access_token"])
        c.check("s: revocation at node B (200)", r.status_code == 200, short(r))
        r = dep.introspect(dep.a, t3["access_token"])
        c.check("s: ... seen by introspection at node A (active false)",
                r.status_code == 200 and r.json().get("active") is False, short(r))
        # Single sign-on: the browser signed in at A goes through B's /authorize without a form.
        req = auth_request(dep, dep.b)
        resp = fresh.follow(fresh.get(req.url))
        params = client_redirect(dep, resp)
        c.check("s: the session made at A signs in at node B without a form",
                bool(params and params.get("code") and params.get("state") == req.state), short(resp))
        # Throttling counts on every node: failures at A slow the same address down at B.
        who = f"nobody-{secrets.token_hex(4)}@faults.test"

        def attempt(base: str) -> requests.Response:
            b = Browser(dep)
            page = b.get(base + "/login")
            form = login_form(page.text) or {"action": "/login"}
            data = form_fields(form) if login_form(page.text) else {}
            data.update(email=who, password="not the password")
            return b.s.post(urljoin(page.url, form["action"]), data=data, allow_redirects=False, timeout=TIMEOUT)
        statuses = [attempt(dep.a).status_code for _ in range(6)]
        r = attempt(dep.b)
        c.check("s: failed sign-ins at node A throttle the same address at node B (429 with Retry-After)",
                r.status_code == 429 and bool(r.headers.get("Retry-After")), f"at A {statuses}; at B {short(r)}")
        # A key rotated by the operator (CLI, shared key directory): both nodes publish it and
        # sign with it after their next reload.
        ok, out = dep.control("keys-rotate")
        m = re.search(r'"kid":\s*"([^"]+)"', out)
        c.require("s: the operator rotates the RS256 key (CLI)", ok and m is not None, out)
        kid = m.group(1)
        seen: dict[str, bool] = {}
        deadline = now() + 15
        while now() < deadline and not all(seen.get(b) for b in (dep.a, dep.b)):
            for b in (dep.a, dep.b):
                r = requests.get(b + "/jwks", timeout=TIMEOUT)
                seen[b] = r.status_code == 200 and any(k.get("kid") == kid for k in r.json().get("keys", []))
            time.sleep(0.3)
        c.check("s: both nodes publish the new key in their JWKS", all(seen.get(b) for b in (dep.a, dep.b)), str(seen))
        for name, base in (("A", dep.a), ("B", dep.b)):
            req, code = get_code(dep, fresh, base)
            r = exchange(dep, base, req, code)
            header = {}
            if r.status_code == 200:
                head = r.json()["id_token"].split(".")[0]
                header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
            c.check(f"s: node {name} signs ID tokens with the new key", header.get("kid") == kid,
                    f"{short(r)} header {header}")

    # ---- setup

    def start_load(self, tag: str, refresh_chains: int, code_chains: int = 0,
                   bases: list[str] | None = None) -> Load:
        """Refresh chains (on node A and B in turn, unless `bases` says) and code chains (on the
        other node in turn), started."""
        dep, a = self.dep, self.args
        load = Load(dep, tag)
        for i in range(refresh_chains):
            b = bases or ([dep.a] if i % 2 == 0 else [dep.b])
            load.workers.append(RefreshChain(load, f"rt{i}", self.tokens()["refresh_token"], b, a.pause))
        for i in range(code_chains):
            load.workers.append(CodeChain(load, f"code{i}", self.signed_in_browser(),
                                          [dep.b] if i % 2 == 0 else [dep.a], a.pause))
        load.start()
        return load

    def require_running(self, load: Load, tag: str, ready=lambda w: w.successes,
                        what: str = "a success on every chain") -> None:
        self.c.require(f"{tag}: load running ({what})",
                       load.wait(lambda: all(ready(w) for w in load.workers), 30),
                       "; ".join(f"{w.name}: {len(w.successes)} successes, {w.broken}" for w in load.workers))

    def setup(self):
        c, dep = self.c, self.dep
        st = dep.wait_ready([dep.a, dep.b], 30)
        c.require("setup: both nodes answer /readyz 200", all(v == 200 for v in st.values()), f"{st}")
        for base in (dep.a, dep.b):
            r = requests.get(base + "/.well-known/openid-configuration", timeout=TIMEOUT)
            c.require(f"setup: node {'A' if base == dep.a else 'B'} advertises issuer {dep.issuer}",
                      r.status_code == 200 and r.json().get("issuer") == dep.issuer, describe(r))
        t0 = now()
        tok = self.tokens(dep.a)
        c.require("setup: sign-in + code flow + token (offline_access) give a refresh token",
                  bool(tok.get("refresh_token")), f"{tok}")
        r = dep.refresh(dep.b, tok["refresh_token"])
        c.require("setup: node B refreshes a token node A issued", r.status_code == 200, short(r))
        print(f"   (one code flow + refresh: {now() - t0:.2f} s)", flush=True)

    # ---- a + d: PostgreSQL down under load

    def postgres(self, round_no: int):
        c, dep, a = self.c, self.dep, self.args
        tag = f"(a{round_no}) PostgreSQL down {a.pg_outage:g} s"
        # Writes acknowledged before the stop.
        keep = self.tokens()
        rev = self.tokens()
        r = dep.revoke(dep.a, rev["refresh_token"])
        c.require(f"{tag}: before: refresh token revoked (200)", r.status_code == 200, short(r))
        r = dep.revoke(dep.b, rev["access_token"])
        c.require(f"{tag}: before: access token revoked (200)", r.status_code == 200, short(r))
        live = self.tokens()
        to_revoke = self.tokens()  # revoked during the outage
        # Codes to exchange during the outage (d), from a signed-in browser.
        pending = [get_code(dep, self.main, dep.a) for _ in range(2)]
        # The load.
        load = self.start_load(tag, a.threads, a.code_threads)
        try:
            self.require_running(load, tag)
            time.sleep(a.warmup)
            fault_start = now()
            ok, out = dep.control("pg-stop")
            self.repair = "pg-start"
            c.require(f"{tag}: pg_ctl stop -m fast", ok, out)
            stopped_at = now()
            # Probes while the database is down, all at once: each may take the server's pool
            # acquire timeout to answer, and the outage should last about pg_outage seconds.
            time.sleep(0.5)
            with ThreadPoolExecutor(max_workers=8) as ex:
                f_ready = ex.submit(requests.get, dep.a + "/readyz", timeout=TIMEOUT)
                f_intro = ex.submit(dep.introspect, dep.b, live["access_token"])
                f_revoke = ex.submit(dep.revoke, dep.a, to_revoke["refresh_token"])
                f_codes = [(req, code, ex.submit(exchange, dep, dep.a, req, code)) for req, code in pending]
            r = outcome(f_ready)
            c.check(f"{tag}: /readyz answers 503 while PostgreSQL is down",
                    isinstance(r, requests.Response) and r.status_code == 503, shown(r))
            r = outcome(f_intro)
            c.check(f"{tag}: POST /introspect of a live access token answers 503 + Retry-After while PostgreSQL is "
                    "down (not active:false, not 500)", is_503(r), shown(r))
            revoke_during = outcome(f_revoke)
            c.check(f"{tag}: POST /revoke while PostgreSQL is down answers 503 + Retry-After (a 200 must mean "
                    "the revocation was written)", is_503(revoke_during) or (
                        isinstance(revoke_during, requests.Response) and revoke_during.status_code == 200),
                    shown(revoke_during))
            if not isinstance(revoke_during, requests.Response):
                revoke_during = None
            code_out: list[tuple[AuthRequest, str, str]] = []
            for req, code, f in f_codes:
                r = outcome(f)
                code_out.append((req, code, shown(r)))
                c.check(f"(d{round_no}) code exchange while PostgreSQL is down answers 503 + Retry-After",
                        is_503(r), shown(r))
            time.sleep(max(0.0, a.pg_outage - (now() - stopped_at)))
            ok, out = dep.control("pg-start")
            c.require(f"{tag}: pg_ctl start", ok, out)
            self.repair = None
            print(f"   (PostgreSQL was down {now() - stopped_at:.1f} s)", flush=True)
            fault_end = now()
            st = dep.wait_ready([dep.a, dep.b], 30)
            c.check(f"{tag}: /readyz 200 again on both nodes within 30 s, without restarting Guichet",
                    all(v == 200 for v in st.values()), f"{st}")
            load.wait(lambda: all(w.broken or w.successes_since(fault_end) >= a.after for w in load.workers), 60)
        finally:
            self.do_repair()
            load.finish(TIMEOUT + 10)
        load_checks(c, tag, load, fault_start, fault_end, a.after)
        # (d) the codes refused during the outage work now.
        for req, code, during in code_out:
            r = exchange(dep, dep.b, req, code)
            c.check(f"(d{round_no}) a code whose exchange failed during the outage is accepted after it",
                    r.status_code == 200 and "access_token" in r.json(), f"{short(r)}; during the outage: {during}")
        # Acknowledged writes survived.
        r = dep.refresh(dep.b, keep["refresh_token"])
        c.check(f"{tag}: after: a refresh token issued before the stop is accepted", r.status_code == 200, short(r))
        r = dep.refresh(dep.a, rev["refresh_token"])
        c.check(f"{tag}: after: a refresh token revoked before the stop is refused (invalid_grant)",
                r.status_code == 400 and oauth_error(r) == "invalid_grant", short(r))
        r = dep.introspect(dep.a, rev["access_token"])
        c.check(f"{tag}: after: an access token revoked before the stop is inactive",
                r.status_code == 200 and r.json().get("active") is False, short(r))
        r = dep.introspect(dep.b, live["access_token"])
        c.check(f"{tag}: after: a live access token is active", r.status_code == 200 and r.json().get("active") is True,
                short(r))
        if revoke_during is not None and revoke_during.status_code == 200:
            r = dep.refresh(dep.b, to_revoke["refresh_token"])
            c.check(f"{tag}: after: the revocation acknowledged (200) during the outage holds",
                    r.status_code == 400 and oauth_error(r) == "invalid_grant", short(r))

    # ---- b: Redis down

    def redis(self, round_no: int):
        c, dep, a = self.c, self.dep, self.args
        tag = f"(b{round_no}) Redis down {a.redis_outage:g} s"
        signed = self.signed_in_browser()  # its session lives in Redis
        pending_login = Browser(dep)  # a sign-in form fetched before the outage
        page = pending_login.get(dep.a + "/login")
        form = login_form(page.text) if page.status_code == 200 else None
        c.require(f"{tag}: before: GET /login shows the form", form is not None, short(page))
        live = self.tokens()
        revoked = self.tokens()
        r = dep.revoke(dep.a, revoked["access_token"])
        c.require(f"{tag}: before: POST /revoke of an access token -> 200", r.status_code == 200, short(r))
        r = dep.introspect(dep.a, revoked["access_token"])
        c.require(f"{tag}: before: the revoked access token is inactive",
                  r.status_code == 200 and r.json().get("active") is False, short(r))
        r = dep.userinfo(dep.b, revoked["access_token"])
        c.require(f"{tag}: before: userinfo refuses the revoked access token (401)", r.status_code == 401, short(r))
        rt = self.tokens()["refresh_token"]
        load = self.start_load(tag, max(2, a.threads // 2))
        try:
            self.require_running(load, tag)
            time.sleep(a.warmup)
            fault_start = now()
            ok, out = dep.control("redis-stop")
            self.repair = "redis-start"
            c.require(f"{tag}: redis stopped", ok, out)
            stopped_at = now()
            time.sleep(0.3)

            def expect_503(name: str, fn) -> None:
                try:
                    r = fn()
                except requests.RequestException as e:
                    c.check(f"{tag}: {name} answers 503", False, repr(e))
                    return
                c.check(f"{tag}: {name} answers 503 + Retry-After (not 500, not 4xx)", is_503(r), short(r))

            fresh = Browser(dep)
            expect_503("GET /login", lambda: fresh.get(dep.a + "/login"))
            expect_503("POST /login (form fetched before the outage)",
                       lambda: pending_login.post_login(page, form))
            ar = auth_request(dep, dep.b)
            try:
                r = signed.get(ar.url)
                params = client_redirect(dep, r)
                c.check(f"{tag}: GET /authorize (valid request, signed in) answers 503 + Retry-After, or redirects "
                        "error=temporarily_unavailable to the client (RFC 6749 §4.1.2.1)",
                        (r.status_code == 503 and "Retry-After" in r.headers)
                        or (params is not None and params.get("error") == "temporarily_unavailable"), short(r))
            except requests.RequestException as e:
                c.check(f"{tag}: GET /authorize (valid request, signed in) answers 503", False, repr(e))
            expect_503("GET /account (signed in)", lambda: signed.get(dep.a + "/account"))
            # Introspection and userinfo may not need Redis at all (revocations are durable): a
            # correct answer is as good as a 503; a wrong one (live token inactive, revoked
            # token active), a 500 or a 4xx is not.
            answer_or_503(c, f"{tag}: POST /introspect of a live access token",
                          lambda: dep.introspect(dep.b, live["access_token"]),
                          lambda r: r.status_code == 200 and r.json().get("active") is True, "200 active:true")
            answer_or_503(c, f"{tag}: POST /introspect of an access token revoked before the outage",
                          lambda: dep.introspect(dep.a, revoked["access_token"]),
                          lambda r: r.status_code == 200 and r.json().get("active") is False, "200 active:false")
            answer_or_503(c, f"{tag}: GET /userinfo with a live access token",
                          lambda: dep.userinfo(dep.a, live["access_token"]), lambda r: r.status_code == 200, "200")
            answer_or_503(c, f"{tag}: GET /userinfo with an access token revoked before the outage",
                          lambda: dep.userinfo(dep.b, revoked["access_token"]), lambda r: r.status_code == 401, "401")
            try:
                r = dep.refresh(dep.a, rt)
                c.check(f"{tag}: POST /token refresh works or answers 503 + Retry-After",
                        r.status_code == 200 or (r.status_code == 503 and "Retry-After" in r.headers), short(r))
                if r.status_code == 200:
                    rt = r.json()["refresh_token"]
            except requests.RequestException as e:
                c.check(f"{tag}: POST /token refresh works or answers 503", False, repr(e))
            r = requests.get(dep.b + "/readyz", timeout=TIMEOUT)
            c.check(f"{tag}: /readyz answers 503 while Redis is down", r.status_code == 503, short(r))
            time.sleep(max(0.0, a.redis_outage - (now() - stopped_at)))
            ok, out = dep.control("redis-start")
            c.require(f"{tag}: redis started again (empty)", ok, out)
            self.repair = None
            print(f"   (Redis was down {now() - stopped_at:.1f} s)", flush=True)
            fault_end = now()
            st = dep.wait_ready([dep.a, dep.b], 30)
            c.check(f"{tag}: /readyz 200 again on both nodes within 30 s, without restarting Guichet",
                    all(v == 200 for v in st.values()), f"{st}")
            load.wait(lambda: all(w.broken or w.successes_since(fault_end) >= a.after for w in load.workers), 60)
        finally:
            self.do_repair()
            load.finish(TIMEOUT + 10)
        # Refreshes need no Redis: they may all succeed.
        load_checks(c, tag, load, fault_start, fault_end, a.after, must_meet_fault=False)
        # Everything works again.
        try:
            b = Browser(dep)
            page = b.get(dep.b + "/login")
            f = login_form(page.text) if page.status_code == 200 else None
            c.check(f"{tag}: after: GET /login shows the form", f is not None, short(page))
            if f is not None:
                r = b.post_login(page, f)
                c.check(f"{tag}: after: POST /login signs in (303)", r.status_code == 303, short(r))
            r = b.get(dep.a + "/account")
            c.check(f"{tag}: after: GET /account shows the account page (200)", r.status_code == 200, short(r))
            req, code = get_code(dep, b, dep.b)
            r = exchange(dep, dep.a, req, code)
            c.check(f"{tag}: after: GET /authorize gives a code that /token exchanges", r.status_code == 200, short(r))
        except (requests.RequestException, RuntimeError) as e:
            c.check(f"{tag}: after: sign-in and code flow work again", False, f"{type(e).__name__}: {e}")
        r = dep.introspect(dep.a, live["access_token"])
        c.check(f"{tag}: after: the live access token is active",
                r.status_code == 200 and r.json().get("active") is True, short(r))
        r = dep.refresh(dep.b, rt)
        c.check(f"{tag}: after: the refresh token presented during the outage (or its successor) is accepted",
                r.status_code == 200, short(r))
        r = dep.introspect(dep.b, revoked["access_token"])
        c.check(f"{tag}: after Redis restarted empty: an access token revoked before is still inactive "
                "(durable revocation)", r.status_code == 200 and r.json().get("active") is False, short(r))
        r = dep.userinfo(dep.a, revoked["access_token"])
        c.check(f"{tag}: after Redis restarted empty: userinfo still refuses the revoked access token (401)",
                r.status_code == 401, short(r))

    # ---- e: PostgreSQL connections terminated mid-request, again and again

    def pg_conns(self):
        c, dep, a = self.c, self.dep, self.args
        tag = f"(e) PostgreSQL connections terminated {a.conn_kills} times"
        load = self.start_load(tag, a.threads, a.code_threads)
        killed = 0
        try:
            self.require_running(load, tag)
            fault_start = now()
            for _ in range(a.conn_kills):
                ok, out = dep.control("pg-kill-conns")
                if not ok:
                    c.require(f"{tag}: pg_terminate_backend", ok, out)
                killed += int(out.split()[-1]) if out.split() and out.split()[-1].isdigit() else 0
                time.sleep(0.3)
            fault_end = now()
            print(f"   ({killed} server connections terminated in {fault_end - fault_start:.1f} s)", flush=True)
            load.wait(lambda: all(w.broken or w.successes_since(fault_end) >= a.after for w in load.workers), 60)
        finally:
            load.finish(TIMEOUT + 10)
        c.check(f"{tag}: connections were terminated", killed > 0, "pg_terminate_backend found no connection")
        # A request whose connection died may fail (503); none may burn the token it presented.
        load_checks(c, tag, load, fault_start, fault_end, a.after, must_meet_fault=False)

    # ---- c: kill -9 of node B

    def kill_b(self):
        c, dep, a = self.c, self.dep, self.args
        tag = "(c) kill -9 of node B"
        load = self.start_load(tag, a.threads, bases=[dep.b, dep.a])
        try:
            self.require_running(load, tag, lambda w: w.successes_since(0, "B") >= 2,
                                 "on node B, two successes on every chain")
            time.sleep(a.warmup)
            fault_start = now()
            ok, out = dep.control("kill-b")
            c.require(f"{tag}: kill -9", ok, out)
            fault_end = now()
            load.wait(lambda: all(w.broken or w.successes_since(fault_end, "A") >= a.after for w in load.workers), 60)
        finally:
            self.do_repair()
            load.finish(TIMEOUT + 10)
        r = None
        try:
            r = requests.get(dep.b + "/healthz", timeout=3)
        except requests.RequestException:
            pass
        c.check(f"{tag}: node B is gone", r is None, f"node B still answers: {short(r) if r else ''}")
        load_checks(c, tag, load, fault_start, fault_end, a.after, node_killed=True)
        moved = [w for w in load.workers if w.base != dep.a]
        c.check(f"{tag}: every chain moved to node A after its connection to B failed", not moved,
                ", ".join(w.name for w in moved))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--issuer", required=True)
    ap.add_argument("--node-a", required=True)
    ap.add_argument("--node-b", required=True)
    ap.add_argument("--email", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--client-id", required=True)
    ap.add_argument("--client-secret", required=True)
    ap.add_argument("--redirect-uri", required=True)
    ap.add_argument("--ctl", required=True,
                    help="control command: pg-stop|pg-start|pg-kill-conns|redis-stop|redis-start|kill-b")
    ap.add_argument("--log-dir", help="directory of node-a.log and node-b.log (evidence in failures)")
    ap.add_argument("--short", action="store_true", help="few threads, one round: CI")
    ap.add_argument("--scenarios", default="sabec", help="which of s, a (and d), b, e, c to run (default: all)")
    args = ap.parse_args()
    # Short: about a minute of scenarios; default: more threads, more rounds.
    args.threads = 4 if args.short else 10
    args.code_threads = 1 if args.short else 2
    args.rounds = 1 if args.short else 3
    args.after = 3 if args.short else 10  # successes each chain must make after a repair
    args.warmup = 1.0 if args.short else 3.0
    args.pause = 0.02
    args.conn_kills = 10 if args.short else 40
    args.pg_outage = 6.0
    args.redis_outage = 5.0

    dep = Deployment(args.issuer, args.node_a, args.node_b, args.email, args.password, args.client_id,
                     args.client_secret, args.redirect_uri, args.ctl, args.log_dir)
    c = Checks()
    s = Suite(c, dep, args)
    t0 = now()
    c.scenario("setup", s.setup)
    if c.failed == 0:
        if "s" in args.scenarios:
            c.scenario("s: the two nodes behave as one", s.scale_out)
        for r in range(1, args.rounds + 1):
            if "a" in args.scenarios:
                c.scenario(f"a/d round {r}: PostgreSQL stopped under load", s.postgres, r)
            if "b" in args.scenarios:
                c.scenario(f"b round {r}: Redis stopped", s.redis, r)
        if "e" in args.scenarios:
            c.scenario("e: PostgreSQL connections terminated under load", s.pg_conns)
        if "c" in args.scenarios:
            c.scenario("c: kill -9 of node B under load", s.kill_b)
    print(f"   (scenarios took {now() - t0:.0f} s)", flush=True)
    print(f"{c.passed} passed, {c.failed} failed", flush=True)
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
