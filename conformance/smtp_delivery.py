#!/usr/bin/env python3
"""Black-box check of Guichet's mail delivery over SMTP, with a sink in this process.

Starts an aiosmtpd sink on a free loopback port (its own thread) and a throwaway
`guichet serve` (own temp dir, SQLite database, port and key directory) whose mail
driver is `smtp`, pointed at the sink without TLS. Then:

  (a) registration mail: GET /register, POST the form (csrf_token and cookie from the
      GET) for a fresh address. The sink receives exactly one message for that
      address: multipart/alternative with text/plain and text/html parts, a From
      (the configured one), a Date and a Message-ID, and the absolute link
      http://127.0.0.1:PORT/register/verify?token=... in both parts.
  (b) SMTP outage: the sink is stopped, another address registers and still gets the
      normal 200 page (#register-sent); 3 s later the sink comes back on the same
      port and the message arrives within 30 s (durable queue + retry), once.

The server is stopped at the end; its log tail is printed when a check failed.
Prints one PASS/FAIL line per check, then `N passed, M failed`; exits 1 if any
check failed.

  $VENV/bin/python conformance/smtp_delivery.py --bin $CARGO_TARGET_DIR/debug/guichet
"""

from __future__ import annotations

import argparse
import email
import email.policy
import email.utils
import html
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import timezone
from html.parser import HTMLParser
from urllib.parse import urljoin

import requests
from aiosmtpd.controller import Controller

from checks import Checks, describe

TIMEOUT = 10  # seconds, per HTTP request
READY_SECS = 60  # server start
MAIL_SECS = 15  # a message queued while the sink is up
OUTAGE_SECS = 3  # how long the sink stays down in (b)
RECOVERY_SECS = 30  # a message queued during the outage, after the sink is back
SETTLE_SECS = 2  # after a message arrived: time for an unwanted duplicate to show up
MAIL_FROM = "guichet-conformance@example.com"
BROWSER_HEADERS = {
    "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8",
    "User-Agent": "guichet-conformance/1 (python-requests)",
}


# --------------------------------------------------------------------------
# The SMTP sink


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    at: float


class SinkHandler:
    """aiosmtpd handler: keeps every message; the list survives sink restarts."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.cond = threading.Condition()

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        with self.cond:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), data, time.time()))
            self.cond.notify_all()
        return "250 OK"

    def to(self, address: str) -> list[Received]:
        with self.cond:
            return [m for m in self.messages if any(r.lower() == address.lower() for r in m.rcpt_tos)]

    def wait_for(self, address: str, limit: float) -> list[Received]:
        deadline = time.monotonic() + limit
        with self.cond:
            while True:
                found = [m for m in self.messages if any(r.lower() == address.lower() for r in m.rcpt_tos)]
                left = deadline - time.monotonic()
                if found or left <= 0:
                    return found
                self.cond.wait(left)


class Sink:
    def __init__(self, port: int) -> None:
        self.port = port
        self.handler = SinkHandler()
        self.controller: Controller | None = None

    def start(self) -> None:
        # Right after stop() the port may still be held for an instant: retry briefly.
        deadline = time.monotonic() + 10
        while True:
            controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, ready_timeout=5)
            try:
                controller.start()
                self.controller = controller
                return
            except Exception:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        # Also closes the connections the server may hold open (a pooled transport).
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# The server


class Server:
    def __init__(self, binary: str, smtp_port: int) -> None:
        self.binary = binary
        self.tmp = tempfile.mkdtemp(prefix="guichet-smtp.")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(self.tmp, "server.log")
        db = os.path.join(self.tmp, "guichet.db")
        open(db, "wb").close()  # an empty file is an empty SQLite database
        # Only this server's settings: the caller's GUICHET_* (another server's), DATABASE_URL
        # and REDIS_URL stay out, and so does a ./guichet.toml (the server runs in its temp dir).
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("GUICHET_") and k not in ("DATABASE_URL", "REDIS_URL")
        }
        env.update(
            GUICHET_SERVER__LISTEN=f"127.0.0.1:{self.port}",
            GUICHET_SERVER__ISSUER=self.base,
            GUICHET_SERVER__METRICS_LISTEN="127.0.0.1:0",
            GUICHET_SERVER__SHUTDOWN_GRACE_SECS="2",
            DATABASE_URL=f"sqlite://{db}",
            GUICHET_KEYS__DIR=os.path.join(self.tmp, "keys"),
            GUICHET_PASSWORD__ARGON2_MEMORY_KIB="1024",
            GUICHET_PASSWORD__ARGON2_ITERATIONS="1",
            GUICHET_MAIL__DRIVER="smtp",
            GUICHET_MAIL__FROM=MAIL_FROM,
            GUICHET_MAIL__SMTP_HOST="127.0.0.1",
            GUICHET_MAIL__SMTP_PORT=str(smtp_port),
            GUICHET_MAIL__SMTP_TLS="none",
        )
        self.env = env
        self.proc: subprocess.Popen | None = None

    def start(self) -> tuple[bool, str]:
        """Starts `guichet serve`; (ready, why not) once /readyz answers 200 or it gave up."""
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [self.binary, "serve"],
                cwd=self.tmp,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + READY_SECS
        last = "no answer"
        while time.monotonic() < deadline:
            status = self.proc.poll()
            if status is not None:
                return False, f"server exited (status {status}) before /readyz answered 200"
            try:
                r = requests.get(self.base + "/readyz", timeout=2)
                if r.status_code == 200:
                    return True, ""
                last = f"/readyz -> {r.status_code}"
            except requests.RequestException as e:
                last = f"/readyz: {type(e).__name__}"
            time.sleep(0.3)
        return False, f"/readyz did not answer 200 within {READY_SECS} s ({last})"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log_tail(self, lines: int = 100) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError as e:
            return f"(no server log: {e})"

    def cleanup(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


# --------------------------------------------------------------------------
# The registration form


class PageParser(HTMLParser):
    """Element ids, and every <form> with its <input>s."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.forms: list[dict] = []
        self._form: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v if v is not None else "") for k, v in attrs}
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "form":
            self._form = {"id": a.get("id", ""), "action": a.get("action", ""),
                          "method": a.get("method", "get").lower(), "inputs": []}
            self.forms.append(self._form)
        elif tag == "input" and self._form is not None:
            self._form["inputs"].append(a)

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None


def parse_page(text: str) -> PageParser:
    p = PageParser()
    p.feed(text)
    p.close()
    return p


def register(c: Checks, base: str, label: str, address: str) -> requests.Response | None:
    """GET /register, POST its form for `address`; checks the answer is the #register-sent page."""
    session = requests.Session()
    session.headers.update(BROWSER_HEADERS)
    page = session.get(base + "/register", timeout=TIMEOUT)
    c.require(f"{label}: GET /register -> 200", page.status_code == 200, describe(page))
    parsed = parse_page(page.text)
    form = next((f for f in parsed.forms if f["id"] == "register-form"), None)
    c.require(f"{label}: /register has form#register-form", form is not None,
              f"forms: {[(f['id'], f['method']) for f in parsed.forms]}")
    names = {i.get("name") for i in form["inputs"]}
    c.require(f"{label}: #register-form has csrf_token, name, email, password, accept_terms",
              {"csrf_token", "name", "email", "password", "accept_terms"} <= names, f"inputs: {sorted(filter(None, names))}")
    data = {i["name"]: i.get("value", "") for i in form["inputs"]
            if i.get("name") and i.get("type", "text").lower() == "hidden"}
    terms = next(i for i in form["inputs"] if i.get("name") == "accept_terms")
    data.update(name="SMTP Conformance", email=address,
                password="smtp-" + secrets.token_hex(8), accept_terms=terms.get("value") or "on")
    started = time.monotonic()
    resp = session.post(urljoin(page.url, form["action"] or page.url), data=data,
                        headers={"Origin": base}, timeout=TIMEOUT)
    elapsed = time.monotonic() - started
    print(f"   POST /register answered {resp.status_code} in {elapsed:.2f} s"
          + (f" (after {[r.status_code for r in resp.history]})" if resp.history else ""), flush=True)
    c.check(f"{label}: POST /register -> 200 page with #register-sent",
            resp.status_code == 200 and "register-sent" in parse_page(resp.text).ids, describe(resp))
    return resp


# --------------------------------------------------------------------------
# The message


def alternative_parts(msg) -> tuple[str, dict[str, str]]:
    """The MIME tree as a string, and the text/plain + text/html children of the first
    multipart/alternative (the message itself or a part of it)."""

    def tree(part) -> str:
        if part.is_multipart():
            return f"{part.get_content_type()}(" + ", ".join(tree(p) for p in part.iter_parts()) + ")"
        return f"{part.get_content_type()}[{part.get('Content-Transfer-Encoding', '7bit')}]"

    for part in msg.walk():
        if part.get_content_type() == "multipart/alternative":
            bodies = {}
            for child in part.iter_parts():
                ctype = child.get_content_type()
                if ctype in ("text/plain", "text/html") and ctype not in bodies:
                    bodies[ctype] = child.get_content()
            return tree(msg), bodies
    return tree(msg), {}


def verify_links(text: str, base: str) -> list[str]:
    prefix = re.escape(base + "/register/verify?token=")
    return re.findall(prefix + r"[^\s\"'<>]+", html.unescape(text))


def check_message(c: Checks, label: str, got: Received, address: str, base: str) -> None:
    msg = email.message_from_bytes(got.data, policy=email.policy.default)
    print(f"   envelope: MAIL FROM {got.mail_from!r} RCPT TO {got.rcpt_tos}; Subject: {msg['Subject']!r}", flush=True)
    c.check(f"{label}: envelope is for this address only", [r.lower() for r in got.rcpt_tos] == [address.lower()],
            f"RCPT TO {got.rcpt_tos}")
    to = [a.lower() for _, a in email.utils.getaddresses([str(h) for h in msg.get_all("To", [])])]
    c.check(f"{label}: To header is the address", to == [address.lower()], f"To: {msg.get_all('To')}")
    sender = [a.lower() for _, a in email.utils.getaddresses([str(h) for h in msg.get_all("From", [])])]
    c.check(f"{label}: From header is the configured sender", sender == [MAIL_FROM],
            f"From: {msg.get_all('From')}")
    c.check(f"{label}: Subject set", bool(str(msg["Subject"] or "").strip()), f"Subject: {msg['Subject']!r}")
    date_ok, why = False, f"Date: {msg['Date']!r}"
    try:
        sent = email.utils.parsedate_to_datetime(str(msg["Date"]))
        if sent.tzinfo is None:  # "-0000": UTC, local zone not told (RFC 5322 3.3)
            sent = sent.replace(tzinfo=timezone.utc)
        date_ok = abs(sent.timestamp() - time.time()) < 600
        why += f" ({sent.isoformat()})"
    except (TypeError, ValueError, IndexError) as e:
        why += f" ({e})"
    c.check(f"{label}: Date header, parseable, within 10 min of now", date_ok, why)
    mid = str(msg["Message-ID"] or "").strip()
    c.check(f"{label}: Message-ID header <...@...>", bool(re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", mid)),
            f"Message-ID: {mid!r}")
    structure, bodies = alternative_parts(msg)
    print(f"   MIME: {structure}", flush=True)
    c.check(f"{label}: multipart/alternative with text/plain and text/html parts",
            set(bodies) == {"text/plain", "text/html"}, f"structure {structure}")
    links = {}
    for ctype in ("text/plain", "text/html"):
        found = verify_links(bodies.get(ctype, ""), base)
        links[ctype] = found
        c.check(f"{label}: {ctype} part has the absolute link {base}/register/verify?token=...", bool(found),
                f"not found in {bodies.get(ctype, '(no such part)')[:600]!r}")
    if links["text/plain"] and links["text/html"]:
        c.check(f"{label}: both parts link the same token", links["text/plain"][0] == links["text/html"][0],
                f"text {links['text/plain'][0]!r} vs html {links['text/html'][0]!r}")


# --------------------------------------------------------------------------
# Scenarios


def scenario_registration(c: Checks, server: Server, sink: Sink, run: str) -> None:
    address = f"smtp-a-{run}@example.com"
    register(c, server.base, "registration", address)
    found = sink.handler.wait_for(address, MAIL_SECS)
    c.require(f"registration: the sink receives a message for the address within {MAIL_SECS} s", bool(found),
              f"{len(sink.handler.messages)} message(s) received, none for {address}")
    time.sleep(SETTLE_SECS)
    found = sink.handler.to(address)
    c.check("registration: exactly one message for the address", len(found) == 1, f"{len(found)} messages")
    check_message(c, "registration mail", found[0], address, server.base)


def scenario_outage(c: Checks, server: Server, sink: Sink, run: str) -> None:
    address = f"smtp-b-{run}@example.com"
    sink.stop()
    print(f"   sink stopped (port {sink.port} refuses connections)", flush=True)
    try:
        register(c, server.base, "during the SMTP outage", address)
        time.sleep(OUTAGE_SECS)
    finally:
        sink.start()
    back = time.time()
    print(f"   sink restarted on port {sink.port}", flush=True)
    found = sink.handler.wait_for(address, RECOVERY_SECS)
    c.require(f"after the outage: the queued message arrives within {RECOVERY_SECS} s of the sink's return",
              bool(found), f"{len(sink.handler.messages)} message(s) received in all, none for {address}")
    print(f"   arrived {found[0].at - back:.1f} s after the sink came back", flush=True)
    time.sleep(SETTLE_SECS)
    found = sink.handler.to(address)
    c.check("after the outage: exactly one message for the address", len(found) == 1, f"{len(found)} messages")
    msg = email.message_from_bytes(found[0].data, policy=email.policy.default)
    _, bodies = alternative_parts(msg)
    c.check("after the outage: the message has the verification link",
            any(verify_links(b, server.base) for b in bodies.values()), f"parts: {sorted(bodies)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", required=True, help="the guichet binary")
    parser.add_argument("--keep", action="store_true", help="keep the server's temp dir (printed)")
    args = parser.parse_args()

    c = Checks()
    run = f"{os.getpid()}-{secrets.token_hex(3)}"
    sink = Sink(free_port())
    server: Server | None = None
    try:
        sink.start()
        print(f"-- setup\n   SMTP sink on 127.0.0.1:{sink.port}", flush=True)
        server = Server(args.bin, sink.port)
        print(f"   starting {args.bin} serve on {server.base} (temp dir {server.tmp})", flush=True)
        ready, why = server.start()
        if c.check("setup: server with the smtp mail driver answers /readyz 200", ready, why):
            c.scenario("registration mail over SMTP", scenario_registration, c, server, sink, run)
            c.scenario("SMTP outage: durable queue and retry", scenario_outage, c, server, sink, run)
    except Exception as e:  # the sink or the server could not start
        c.check("setup", False, f"{type(e).__name__}: {e}")
    finally:
        if server is not None:
            server.stop()
        sink.stop()
    if server is not None:
        if c.failed:
            print("---- server log (last 100 lines) ----")
            print(server.log_tail(), end="")
            print("---- end of server log ----")
        if args.keep:
            print(f"   kept {server.tmp}")
        else:
            server.cleanup()
    print(f"{c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
