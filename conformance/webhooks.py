#!/usr/bin/env python3
"""Black-box check of an organization's webhooks, judged by an independent receiver.

Third-party parts only: the `guichet` CLI sets things up as an operator would; the receiver is
an http.server on 127.0.0.1 that answers validation challenges and verifies every delivery with
PyPI `standardwebhooks` (the Standard Webhooks project's own Python library); dnslib serves the
A records of the refused-URL checks on loopback. The server under test needs
GUICHET_WEBHOOKS__ALLOW_LOOPBACK=true (its outbox worker delivers to loopback); this script sets
it for its own CLI calls.

Scenarios: a URL that does not echo the challenge is refused, one that does gets a secret; a
member added raises a signed `membership.changed` delivery; a 500 is retried with the same
webhook-id and both attempts are logged; a redelivery sends the same event id; after a secret
rotation a delivery verifies with the new and the old secret; refused URLs all get one message;
a deleted webhook gets nothing more.

Usage: webhooks.py --base URL --bin PATH/TO/guichet
Prints PASS/FAIL lines and ends with `N passed, M failed`; exits 1 when a check failed.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from dnslib import QTYPE, RR, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from checks import Checks

REFUSED = "this URL cannot be used for webhooks"
ORG = "webhooks-check"
PASSWORD = "hooks-" + secrets.token_hex(8)
# Deliveries are outbox jobs (the server polls every 2 s; a failure is retried after 2 s).
ARRIVAL_SECS = 10


# ---------------------------------------------------------------- the receiver (http.server)


class Receiver:
    """Records every request per path. A path in `echo` answers validation requests by echoing
    the challenge with that status (other paths answer 200 without it); `fail_next[path]` = N
    answers the next N event deliveries (not validations) with 500."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.echo: dict[str, int] = {}
        self.fail_next: dict[str, int] = {}
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = receiver.answer(self.path, body)
                receiver.record(self.path, dict(self.headers.items()), body, status)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, path: str, body: bytes) -> tuple[int, dict]:
        try:
            msg = json.loads(body)
        except ValueError:
            msg = {}
        with self.cond:
            if isinstance(msg, dict) and msg.get("type") == "webhook.validation":
                if path in self.echo:
                    return self.echo[path], {"challenge": msg.get("challenge")}
                return 200, {"ok": True}
            if self.fail_next.get(path, 0) > 0:
                self.fail_next[path] -= 1
                return 500, {"error": "try again"}
        return 200, {"ok": True}

    def record(self, path: str, headers: dict, body: bytes, status: int) -> None:
        with self.cond:
            self.requests.append({"path": path, "headers": {k.lower(): v for k, v in headers.items()},
                                  "body": body, "status": status, "at": time.monotonic()})
            self.cond.notify_all()

    def seen(self, path: str, validation: bool | None = False) -> list[dict]:
        """Requests to `path`: event deliveries (default), validations (True) or all (None)."""
        with self.cond:
            out = [r for r in self.requests if r["path"] == path]
        if validation is None:
            return out
        return [r for r in out if is_validation(r) == validation]

    def wait(self, pred, timeout: float = ARRIVAL_SECS):
        """Waits until pred() is truthy; returns its last value."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = pred()
                left = deadline - time.monotonic()
                if got or left <= 0:
                    return got
                self.cond.wait(min(left, 0.5))

    def url(self, path: str) -> str:
        return self.base + path


def is_validation(r: dict) -> bool:
    try:
        return json.loads(r["body"]).get("type") == "webhook.validation"
    except (ValueError, AttributeError):
        return False


def verify(secret: str, r: dict):
    """The library's verdict: (parsed body, None) or (None, error)."""
    try:
        return Webhook(secret).verify(r["body"], r["headers"]), None
    except WebhookVerificationError as e:
        return None, f"{type(e).__name__}: {e}"


def show(r: dict | None) -> str:
    if r is None:
        return "no request"
    h = {k: v for k, v in r["headers"].items() if k.startswith("webhook-") or k == "content-type"}
    return f"{r['path']} answered {r['status']}, headers {h}, body {r['body'][:300]!r}"


# ---------------------------------------------------------------- DNS on loopback (dnslib)


class ATable(BaseResolver):
    def __init__(self, records: dict[str, str]) -> None:
        self.records = records
        self.queries: list[str] = []

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        self.queries.append(name)
        ip = self.records.get(name)
        if ip is None:
            reply.header.rcode = 3  # NXDOMAIN
        elif request.q.qtype == QTYPE.A:
            reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(ip), ttl=1))
        return reply


def start_dns(records: dict[str, str]) -> tuple[ATable, str]:
    table = ATable(records)
    server = DNSServer(table, port=0, address="127.0.0.1",
                       logger=DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False))
    server.start_thread()
    return table, f"127.0.0.1:{server.server.server_address[1]}"


# ---------------------------------------------------------------- the CLI


class CLI:
    def __init__(self, binary: str, dns: str) -> None:
        self.binary = binary
        self.env = dict(os.environ, GUICHET_WEBHOOKS__ALLOW_LOOPBACK="true", GUICHET_DNS_RESOLVER=dns,
                        GUICHET_DNS__TIMEOUT_MS="2000")

    def run(self, *args: str, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([self.binary, *args], input=stdin, capture_output=True, text=True, timeout=60,
                              env=dict(self.env, **(env or {})))

    def json(self, *args: str, stdin: str | None = None):
        p = self.run(*args, "--json", stdin=stdin)
        if p.returncode != 0:
            raise RuntimeError(f"guichet {' '.join(args)} failed ({p.returncode}): {p.stderr.strip()}")
        return json.loads(p.stdout)


def said(p: subprocess.CompletedProcess) -> str:
    return f"exit {p.returncode}, stdout {p.stdout.strip()[:300]!r}, stderr {p.stderr.strip()[-400:]!r}"


ANSI = re.compile(r"\x1b\[[0-9;]*m")
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\S+\s+[A-Z]+\s")


def message(p: subprocess.CompletedProcess) -> str:
    """What the CLI told the operator: stderr without log lines (RUST_LOG may be set)."""
    lines = [ANSI.sub("", line).strip() for line in p.stderr.splitlines()]
    return "\n".join(line for line in lines if line and not LOG_LINE.match(line))


def logged_reason(p: subprocess.CompletedProcess) -> str:
    """The refusal's reason from the CLI's log (RUST_LOG=info): shown, never judged."""
    for line in map(lambda s: ANSI.sub("", s), p.stderr.splitlines()):
        if "webhook URL refused" in line or "webhook validation" in line:
            m = re.search(r"(reason|status)=(.*)$", line)
            return m.group(0) if m else line
    return "no reason logged"


# ---------------------------------------------------------------- the scenarios


def event_for(rec: Receiver, path: str, pred) -> dict | None:
    """The first event delivery to `path` whose parsed body satisfies pred."""
    for r in rec.seen(path):
        try:
            body = json.loads(r["body"])
        except ValueError:
            continue
        if pred(body, r):
            return r
    return None


def scenario_create(c: Checks, cli: CLI, rec: Receiver, ctx: dict):
    org = cli.json("org", "create", "--name", "Webhooks Check", "--slug", ORG)
    ctx["org"] = org
    for name in ("hook-ann", "hook-bob", "hook-cy"):
        cli.json("user", "create", "--email", f"{name}@example.com", "--name", name, "--password-stdin",
                 stdin=PASSWORD)

    # A receiver that answers 200 without the challenge.
    p = cli.run("webhook", "create", "--org", ORG, "--url", rec.url("/silent"), "--event", "membership.changed",
                "--json")
    ctx["refusals"] = [("receiver not echoing", p)]
    c.check("a receiver that does not echo the challenge: refused (exit 1, the generic message)",
            p.returncode == 1 and REFUSED in message(p), said(p))
    got = rec.seen("/silent", validation=True)
    c.check("... it did get the validation request (refused for not echoing)",
            len(got) == 1 and json.loads(got[0]["body"]).get("challenge"), show(got[0] if got else None))

    # A receiver that echoes the challenge in a 500.
    rec.echo["/echo-500"] = 500
    p = cli.run("webhook", "create", "--org", ORG, "--url", rec.url("/echo-500"), "--event", "membership.changed",
                "--json")
    ctx["refusals"].append(("challenge echoed in a 500", p))
    c.check("a receiver that echoes the challenge in a 500: refused",
            p.returncode == 1 and REFUSED in message(p) and rec.seen("/echo-500", True), said(p))

    # Without GUICHET_WEBHOOKS__ALLOW_LOOPBACK a loopback receiver is refused before any request.
    rec.echo["/no-loopback"] = 200
    p = cli.run("webhook", "create", "--org", ORG, "--url", rec.url("/no-loopback"), "--event",
                "membership.changed", "--json", env={"GUICHET_WEBHOOKS__ALLOW_LOOPBACK": "false"})
    ctx["refusals"].append(("loopback without allow_loopback", p))
    c.check("without GUICHET_WEBHOOKS__ALLOW_LOOPBACK a loopback URL is refused, nothing sent to it",
            p.returncode == 1 and REFUSED in message(p) and not rec.seen("/no-loopback", None),
            f"{said(p)}; requests: {len(rec.seen('/no-loopback', None))}")

    # The echoing receiver.
    rec.echo["/hook-a"] = 200
    p = cli.run("webhook", "create", "--org", ORG, "--url", rec.url("/hook-a"), "--event", "membership.changed",
                "--json")
    c.require("a receiver that echoes the challenge: created (exit 0, JSON)", p.returncode == 0, said(p))
    hook = json.loads(p.stdout)
    missing = [k for k in ("id", "org", "url", "events", "created_at", "updated_at", "previous_secret_until", "secret")
               if k not in hook]
    c.check("create --json: id, org, url, events, created_at, updated_at, previous_secret_until, secret",
            not missing and hook["org"] == org["id"] and hook["url"] == rec.url("/hook-a")
            and hook["events"] == ["membership.changed"], f"missing {missing}: {p.stdout.strip()}")
    c.require("the secret is printed (whsec_...)", str(hook.get("secret", "")).startswith("whsec_"), p.stdout.strip())
    ctx["hook"] = hook
    ctx["secret"] = hook["secret"]
    ctx["secrets"] = {"/hook-a": [hook["secret"]]}

    got = rec.seen("/hook-a", validation=True)
    body, err = verify(hook["secret"], got[-1]) if got else (None, "no validation request")
    c.check("the validation request verifies with the secret (standardwebhooks)",
            body is not None and body.get("type") == "webhook.validation", err or show(got[-1]))

    listed = cli.json("webhook", "list", "--org", ORG)
    c.check("webhook list: the created webhook only (the refused URLs were not saved), no secret",
            [h.get("id") for h in listed] == [hook["id"]] and all("secret" not in h for h in listed),
            json.dumps(listed))


def scenario_membership(c: Checks, cli: CLI, rec: Receiver, ctx: dict):
    hook, org = ctx["hook"], ctx["org"]
    before = len(rec.seen("/hook-a"))
    started = time.monotonic()
    cli.json("org", "member", "add", "--org", ORG, "--email", "hook-ann@example.com", "--role", "member")
    got = rec.wait(lambda: rec.seen("/hook-a")[before:])
    r = got[0] if got else None
    c.require(f"org member add: a delivery arrives within {ARRIVAL_SECS} s", r is not None,
              "nothing arrived on the receiver")
    print(f"   (arrived after {r['at'] - started:.1f} s)", flush=True)
    body, err = verify(ctx["secret"], r)
    c.require("the delivery verifies with standardwebhooks.Webhook(secret).verify", body is not None,
              f"{err}; {show(r)}")
    c.check("body: id, type, time, org, data", all(k in body for k in ("id", "type", "time", "org", "data")),
            json.dumps(body))
    c.check("type membership.changed, org is the organization's id",
            body.get("type") == "membership.changed" and body.get("org") == org["id"], json.dumps(body))
    try:
        datetime.fromisoformat(str(body.get("time")).replace("Z", "+00:00"))
        time_ok = True
    except ValueError:
        time_ok = False
    c.check("time is an RFC 3339 date-time, data an object",
            time_ok and isinstance(body.get("data"), dict) and body["data"], json.dumps(body))
    c.check("webhook-id is the event id; content-type application/json",
            r["headers"].get("webhook-id") == body.get("id")
            and r["headers"].get("content-type", "").startswith("application/json"), show(r))
    ctx["event_member_added"] = body["id"]


def scenario_retry(c: Checks, cli: CLI, rec: Receiver, ctx: dict):
    hook = ctx["hook"]
    before = len(rec.seen("/hook-a"))
    rec.fail_next["/hook-a"] = 1
    cli.json("org", "member", "add", "--org", ORG, "--email", "hook-ann@example.com", "--role", "admin")
    got = rec.wait(lambda: (lambda new: new if len(new) >= 2 else None)(rec.seen("/hook-a")[before:]),
                   timeout=2 * ARRIVAL_SECS)
    c.require("a role change answered 500 once: a second attempt arrives",
              got is not None and len(got) >= 2, f"{len(rec.seen('/hook-a')[before:])} request(s): "
              + "; ".join(show(r) for r in rec.seen("/hook-a")[before:]))
    first, retry = got[0], got[1]
    c.check("the first attempt got 500, the retry 200", first["status"] == 500 and retry["status"] == 200,
            f"{first['status']}, {retry['status']}")
    print(f"   (retried after {retry['at'] - first['at']:.1f} s)", flush=True)
    c.check("the retry has the same webhook-id and body",
            retry["headers"].get("webhook-id") == first["headers"].get("webhook-id") and retry["body"] == first["body"],
            f"{show(first)} / {show(retry)}")
    body, err = verify(ctx["secret"], retry)
    c.check("the retry verifies (standardwebhooks)", body is not None and body.get("type") == "membership.changed",
            err or json.dumps(body))
    event_id = first["headers"].get("webhook-id")

    log = cli.json("webhook", "deliveries", hook["id"], "--org", ORG)
    fields = ("id", "webhook", "event_id", "event_type", "attempt", "at", "status", "error", "duration_ms")
    missing = sorted({k for d in log for k in fields if k not in d})
    c.check("webhook deliveries --json: id, webhook, event_id, event_type, attempt, at, status, error, duration_ms",
            log and not missing, f"missing {missing}: {json.dumps(log)[:600]}")
    mine = [d for d in log if d.get("event_id") == event_id]
    ok = (len(mine) == 2 and mine[0].get("status") == 200 and not mine[0].get("error")
          and mine[1].get("status") == 500 and mine[1].get("error")
          and mine[0].get("attempt", 0) > mine[1].get("attempt", 0)
          and all(d.get("webhook") == hook["id"] and d.get("event_type") == "membership.changed" for d in mine))
    c.check("... this event: a failed attempt (500, with an error), then a 2xx one, newest first", ok,
            json.dumps(mine))
    ids = [d.get("id") for d in log]
    c.check("... the whole log is newest first", ids == sorted(ids, reverse=True), str(ids))
    lim = cli.json("webhook", "deliveries", hook["id"], "--org", ORG, "--limit", "1")
    c.check("--limit 1: the newest attempt only", len(lim) == 1 and lim[0].get("id") == log[0].get("id"),
            json.dumps(lim))


def scenario_redeliver(c: Checks, cli: CLI, rec: Receiver, ctx: dict):
    event_id = ctx["event_member_added"]
    log = cli.json("webhook", "deliveries", ctx["hook"]["id"], "--org", ORG)
    delivery = next((d for d in log if d.get("event_id") == event_id and d.get("status") == 200), None)
    c.require("the member-added delivery is in the log", delivery is not None, json.dumps(log))
    before = len(rec.seen("/hook-a"))
    p = cli.run("webhook", "redeliver", str(delivery["id"]), "--org", ORG, "--json")
    c.require("webhook redeliver: exit 0", p.returncode == 0, said(p))
    got = rec.wait(lambda: rec.seen("/hook-a")[before:])
    r = got[0] if got else None
    c.require(f"the redelivery arrives within {ARRIVAL_SECS} s", r is not None, "nothing arrived")
    body, err = verify(ctx["secret"], r)
    c.check("it verifies (standardwebhooks) and carries the same event id (body and webhook-id)",
            body is not None and body.get("id") == event_id and r["headers"].get("webhook-id") == event_id,
            err or f"want {event_id}: {show(r)}")
    original = event_for(rec, "/hook-a", lambda b, _: b.get("id") == event_id)
    c.check("... and the same event (type, time, org, data)",
            body is not None and original is not None and json.loads(original["body"]) == body,
            f"{show(original)} / {show(r)}")
    p = cli.run("webhook", "redeliver", "999999999", "--org", ORG, "--json")
    c.check("redeliver of an unknown delivery: exit 1", p.returncode == 1, said(p))


def scenario_rotate(c: Checks, cli: CLI, rec: Receiver, ctx: dict):
    hook = ctx["hook"]
    old = ctx["secret"]
    rotated = cli.json("webhook", "rotate-secret", hook["id"], "--org", ORG)
    new = str(rotated.get("secret", ""))
    c.require("rotate-secret prints a new secret", new.startswith("whsec_") and new != old, json.dumps(rotated))
    until = rotated.get("previous_secret_until")
    c.check("previous_secret_until is about a day from now",
            isinstance(until, (int, float)) and abs(until - time.time() - 86400) < 600, json.dumps(rotated))
    before = len(rec.seen("/hook-a"))
    cli.json("org", "member", "add", "--org", ORG, "--email", "hook-bob@example.com")
    got = rec.wait(lambda: rec.seen("/hook-a")[before:])
    r = got[0] if got else None
    c.require(f"after the rotation, a member added: a delivery arrives within {ARRIVAL_SECS} s", r is not None,
              "nothing arrived")
    sigs = r["headers"].get("webhook-signature", "").split(" ")
    c.check("webhook-signature carries two v1 signatures", len(sigs) == 2 and all(s.startswith("v1,") for s in sigs),
            show(r))
    body, err = verify(new, r)
    c.check("it verifies with the new secret (standardwebhooks)", body is not None, err or "")
    body, err = verify(old, r)
    c.check("it verifies with the old secret too", body is not None, err or "")
    body, err = verify("whsec_" + base64.b64encode(secrets.token_bytes(32)).decode(), r)
    c.check("it does not verify with another secret (the library is really checking)", body is None,
            "verified with a random secret")
    ctx["secret_old"], ctx["secret"] = old, new
    ctx["secrets"]["/hook-a"].append(new)


def scenario_refused(c: Checks, cli: CLI, dns: ATable, ctx: dict):
    dns.records["hooks-public.example.com"] = "93.184.215.14"  # public
    dns.records["hooks-private.example.com"] = "10.1.2.3"
    urls = [
        "http://10.0.0.1/x",
        "http://169.254.169.254/",
        "http://user@hooks-public.example.com/x",
        "https://hooks-public.example.com:8443/x",
        "ftp://hooks-public.example.com/x",
        "http://hooks-private.example.com/x",
        "http://metadata.google.internal/x",
        "http://[fd00::1]/x",
    ]
    before = len(cli.json("webhook", "list", "--org", ORG))
    for url in urls:
        asked = len(dns.queries)
        p = cli.run("webhook", "create", "--org", ORG, "--url", url, "--event", "membership.changed", "--json",
                    env={"RUST_LOG": "info"})
        ctx["refusals"].append((url, p))
        c.check(f"{url}: refused (exit 1, the generic message)", p.returncode == 1 and REFUSED in message(p), said(p))
        print(f"   (logged: {logged_reason(p)})", flush=True)
        if ":8443" in url:
            c.check("... that name was looked up (a public address: refused after DNS, for its port)",
                    "hooks-public.example.com" in dns.queries[asked:], str(dns.queries[asked:]))
    after = len(cli.json("webhook", "list", "--org", ORG))
    c.check("... none was saved", after == before, f"{before} webhooks before, {after} after")
    messages = {message(p) for _, p in ctx["refusals"]}
    c.check("every refusal (not echoed, echoed in a 500, no loopback, each URL above) says the same thing",
            len(messages) == 1, "; ".join(f"{what}: {message(p)!r}" for what, p in ctx["refusals"]))


def scenario_delete(c: Checks, cli: CLI, rec: Receiver, ctx: dict):
    hook = ctx["hook"]
    rec.echo.update({"/hook-b": 200, "/hook-c": 200})
    b = cli.json("webhook", "create", "--org", ORG, "--url", rec.url("/hook-b"), "--event", "membership.changed")
    ctx["secrets"]["/hook-b"] = [b["secret"]]
    cli.json("webhook", "create", "--org", ORG, "--url", rec.url("/hook-c"), "--event", "connection.changed",
             "--event", "login.succeeded")
    # A delivery to /hook-a fails, so a retry is pending when the webhook is deleted.
    a_before, b_before, c_before = (len(rec.seen(x)) for x in ("/hook-a", "/hook-b", "/hook-c"))
    rec.fail_next["/hook-a"] = 1000
    cli.json("org", "member", "remove", "--org", ORG, "--email", "hook-bob@example.com")
    failed = rec.wait(lambda: rec.seen("/hook-a")[a_before:])
    c.require("a member removed: /hook-a's delivery fails (500), a retry is due", bool(failed)
              and failed[0]["status"] == 500, "; ".join(show(r) for r in failed or []) or "nothing arrived")
    p = cli.run("webhook", "delete", hook["id"], "--org", ORG, "--json")
    deleted_at = len(rec.seen("/hook-a"))
    c.require("webhook delete: exit 0", p.returncode == 0, said(p))
    out = json.loads(p.stdout)
    c.check("delete --json: {id, deleted: true}", out.get("id") == hook["id"] and out.get("deleted") is True,
            p.stdout.strip())
    listed = cli.json("webhook", "list", "--org", ORG)
    c.check("webhook list no longer shows it", hook["id"] not in [h.get("id") for h in listed], json.dumps(listed))
    cli.json("org", "member", "add", "--org", ORG, "--email", "hook-cy@example.com")
    got = rec.wait(lambda: (lambda new: new if len(new) >= 2 else None)(rec.seen("/hook-b")[b_before:]))
    c.require(f"the other membership.changed webhook gets both events within {ARRIVAL_SECS} s",
              got is not None, f"{len(rec.seen('/hook-b')[b_before:])} arrived on /hook-b")
    bodies = [verify(b["secret"], r) for r in got]
    c.check("... each verified with its own secret",
            all(body is not None and body.get("type") == "membership.changed" for body, _ in bodies),
            "; ".join(str(err or body) for body, err in bodies))
    time.sleep(6)  # past the pending retry (2 s backoff) and two more polls of the outbox worker
    late = rec.seen("/hook-a")[deleted_at:]
    c.check("the deleted webhook gets nothing more: neither the pending retry nor the new event", not late,
            "; ".join(show(r) for r in late))
    other = rec.seen("/hook-c")[c_before:]
    c.check("a webhook for connection.changed and login.succeeded gets no membership.changed", not other,
            "; ".join(show(r) for r in other))
    p = cli.run("webhook", "deliveries", hook["id"], "--org", ORG, "--json")
    c.check("webhook deliveries of the deleted webhook: exit 1", p.returncode == 1, said(p))


def sweep(c: Checks, rec: Receiver, ctx: dict):
    """Every request the created webhooks got (validations included) verifies with a secret of
    its webhook; requests to refused URLs cannot be judged (their secret was never shown)."""
    bad, n = [], 0
    for path, keys in ctx.get("secrets", {}).items():
        for r in rec.seen(path, validation=None):
            n += 1
            if not any(verify(k, r)[0] is not None for k in keys):
                bad.append(show(r))
    c.check(f"every request to the created webhooks ({n}) verifies with standardwebhooks", n > 0 and not bad,
            "; ".join(bad) or "none received")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--bin", required=True)
    args = ap.parse_args()
    c = Checks()
    rec = Receiver()
    dns, dns_addr = start_dns({})
    cli = CLI(args.bin, dns_addr)
    ctx: dict = {"refusals": []}
    print(f"   (receiver on {rec.base}, server {args.base})", flush=True)
    c.scenario("create: the URL must echo the signed challenge", scenario_create, c, cli, rec, ctx)
    if "hook" not in ctx:  # nothing else can run
        print(f"{c.passed} passed, {c.failed} failed")
        return 1
    c.scenario("membership.changed, verified with standardwebhooks", scenario_membership, c, cli, rec, ctx)
    c.scenario("a 500 is retried (same webhook-id), both attempts logged", scenario_retry, c, cli, rec, ctx)
    if "event_member_added" in ctx:
        c.scenario("redeliver: the same event again", scenario_redeliver, c, cli, rec, ctx)
    c.scenario("rotate-secret: new and old secret both verify", scenario_rotate, c, cli, rec, ctx)
    c.scenario("refused URLs: one message", scenario_refused, c, cli, dns, ctx)
    c.scenario("delete: no more deliveries", scenario_delete, c, cli, rec, ctx)
    c.scenario("every delivery verified", sweep, c, rec, ctx)
    print(f"{c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
