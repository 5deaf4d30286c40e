#!/usr/bin/env python3
"""Helper of benches/side_by_side.sh (not meant to be run alone).

Subcommands:
  limits   --seconds S --openssl-seconds S                 machine limits, JSON on stdout
  tokens   --base URL --client-id ID --secret S --redirect-uri U --email E --password P
           --count N [--refresh-file F]                   one sign-in, then N code flows on
                                                          that session; JSON on stdout
  loop     --unit codeflow|signin --base URL --pid PID --duration S --workers W ...
           --server NAME --endpoint NAME --results FILE   a browser loop; appends a result
  wrk      --server NAME --endpoint NAME --wrk-json F --cpu0 "U S" --cpu1 "U S" (ticks)
           --results FILE [--warm-json F] [--probe-status N --probe-body B]
                                                          converts a wrk run into a result
  report   --results FILE --meta FILE --out DIR           summary table, Markdown, SVG

Only the standard library, except `limits` (argon2-cffi, for argon2id hashes per second).
HTTP is spoken with http.client over one keep-alive connection per worker; cookies are kept
by name per "browser" (a fresh browser for each code flow / sign-in).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import multiprocessing
import os
import re
import secrets
import subprocess
import sys
import time
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

HZ = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- process CPU / RSS


def machine_busy() -> float:
    """Busy CPU seconds of the whole machine (all CPUs), from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / HZ


def proc_cpu(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process, from /proc/PID/stat (fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) / HZ, int(rest[12]) / HZ


# --------------------------------------------------------------------------- a tiny browser


class Failure(Exception):
    pass


class FormParser(HTMLParser):
    """Finds the first form with a password input: its action and its named inputs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self._cur: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self._cur = {"action": a.get("action", ""), "method": a.get("method", "get").lower(), "inputs": []}
            self.forms.append(self._cur)
        elif tag == "input" and self._cur is not None:
            self._cur["inputs"].append(a)

    def handle_endtag(self, tag):
        if tag == "form":
            self._cur = None


def login_form(page: str) -> dict | None:
    p = FormParser()
    p.feed(page)
    for f in p.forms:
        if any(i.get("type", "").lower() == "password" for i in f["inputs"]):
            return f
    return None


class Browser:
    """One cookie jar and one keep-alive connection to the OP."""

    def __init__(self, base: str) -> None:
        import http.client

        self.http = http.client
        u = urlsplit(base)
        self.host, self.port, self.netloc = u.hostname, u.port, u.netloc
        self.origin = f"{u.scheme}://{u.netloc}"
        self.conn = None
        self.cookies: dict[str, str] = {}
        self.requests = 0

    def new_browser(self) -> None:
        self.cookies.clear()

    def request(self, method: str, url: str, body: str | None = None, headers: dict | None = None,
                origin: bool = False):
        """One request; origin=True: a browser's form POST (sends Origin, as browsers do)."""
        parts = urlsplit(url)
        if parts.netloc and parts.netloc != self.netloc:
            raise Failure(f"refusing to leave the OP: {url}")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        h = {
            "Host": self.netloc,
            "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8",
            "User-Agent": "guichet-side-by-side/1",
        }
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            h["Content-Type"] = "application/x-www-form-urlencoded"
        if origin:
            h["Origin"] = self.origin
        if headers:
            h.update(headers)
        for attempt in (0, 1):
            try:
                if self.conn is None:
                    self.conn = self.http.HTTPConnection(self.host, self.port, timeout=30)
                self.conn.request(method, path, body=body, headers=h)
                resp = self.conn.getresponse()
                data = resp.read()
                break
            except (self.http.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # the server closed an idle keep-alive connection: reconnect once
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
                if attempt:
                    raise
        self.requests += 1
        for sc in resp.headers.get_all("Set-Cookie") or []:
            name, _, rest = sc.partition("=")
            value = rest.split(";", 1)[0]
            attrs = rest.lower().replace(" ", "")
            if "max-age=0" in attrs or "expires=thu,01jan1970" in attrs:
                self.cookies.pop(name.strip(), None)
            else:
                self.cookies[name.strip()] = value
        return resp.status, resp.headers, data


def fail(step: str, status: int, body: bytes) -> Failure:
    text = body[:300].decode("utf-8", "replace").replace("\n", " ")
    return Failure(f"{step}: HTTP {status} {text}")


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def discover(base: str) -> dict:
    b = Browser(base)
    st, _, body = b.request("GET", "/.well-known/openid-configuration", headers={"Accept": "application/json"})
    if st != 200:
        raise fail("discovery", st, body)
    return json.loads(body)


class OP:
    def __init__(self, a) -> None:
        self.base = a.base
        self.meta = discover(a.base)
        self.client_id, self.secret, self.redirect_uri = a.client_id, a.secret, a.redirect_uri
        self.email, self.password = a.email, a.password
        self.signin_start = a.signin_start if hasattr(a, "signin_start") else "authorize"

    def authorize_url(self) -> tuple[str, str]:
        verifier = secrets.token_urlsafe(32)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        q = urlencode({
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": "openid email profile",
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        })
        return f"{self.meta['authorization_endpoint']}?{q}", verifier

    def drive(self, b: Browser, url: str, stop_after_post: bool = False) -> str:
        """GET url and follow the OP's redirects, filling the sign-in form once, until a
        redirect to the client (returns its URL) — or, with stop_after_post, until the form's
        POST answers its 303 (returns the Location)."""
        st, h, body = b.request("GET", url)
        posted = False
        for _ in range(12):
            if st in (301, 302, 303, 307):
                loc = urljoin(url, h["Location"])
                if loc.startswith(self.redirect_uri):
                    return loc
                url = loc
                st, h, body = b.request("GET", url)
                continue
            if st == 200 and not posted:
                form = login_form(body.decode("utf-8", "replace"))
                if form is None:
                    raise fail(f"GET {urlsplit(url).path}: no sign-in form", st, body)
                data = {i["name"]: html.unescape(i.get("value", "")) for i in form["inputs"]
                        if i.get("name") and i.get("type", "text").lower() == "hidden"}
                data.update(email=self.email, password=self.password)
                url = urljoin(url, form["action"] or url)
                st, h, body = b.request("POST", url, urlencode(data), origin=True)
                posted = True
                if st != 303:
                    raise fail(f"POST {urlsplit(url).path} (sign-in)", st, body)
                if stop_after_post:
                    return h["Location"]
                continue
            raise fail(f"GET {urlsplit(url).path}", st, body)
        raise Failure("too many redirects")

    def code(self, b: Browser) -> tuple[str, str]:
        url, verifier = self.authorize_url()
        loc = self.drive(b, url)
        q = parse_qs(urlsplit(loc).query)
        if "code" not in q:
            raise Failure(f"redirected to the client without a code: {loc[:300]}")
        return q["code"][0], verifier

    def exchange(self, b: Browser, code: str, verifier: str) -> dict:
        body = urlencode({"grant_type": "authorization_code", "code": code,
                          "redirect_uri": self.redirect_uri, "code_verifier": verifier})
        st, _, data = b.request("POST", self.meta["token_endpoint"], body,
                                {"Authorization": basic(self.client_id, self.secret), "Accept": "application/json"})
        if st != 200:
            raise fail("POST /token (authorization_code)", st, data)
        return json.loads(data)

    def code_flow(self, b: Browser) -> dict:
        code, verifier = self.code(b)
        return self.exchange(b, code, verifier)

    def sign_in(self, b: Browser) -> None:
        start = f"{self.base}/login" if self.signin_start == "login" else self.authorize_url()[0]
        self.drive(b, start, stop_after_post=True)


def is_jwt(v) -> bool:
    return isinstance(v, str) and v.count(".") == 2 and v.startswith("eyJ")


# --------------------------------------------------------------------------- tokens


def cmd_tokens(a) -> None:
    op = OP(a)
    b = Browser(a.base)
    try:
        first = op.code_flow(b)  # signs in
        refresh = []
        last = first
        for _ in range(a.count):
            last = op.code_flow(b)  # the same browser: the session, no form
            if "refresh_token" not in last:
                raise Failure(f"no refresh_token in the token response: {sorted(last)}")
            refresh.append(last["refresh_token"])
        # one refresh, to count the JWTs a refresh answer carries (then that chain is spent)
        rt = first.get("refresh_token")
        refresh_jwts = None
        if rt:
            st, _, data = b.request("POST", op.meta["token_endpoint"],
                                    urlencode({"grant_type": "refresh_token", "refresh_token": rt}),
                                    {"Authorization": basic(op.client_id, op.secret)})
            if st != 200:
                raise fail("POST /token (refresh_token)", st, data)
            r = json.loads(data)
            refresh_jwts = sum(is_jwt(r.get(k)) for k in ("access_token", "id_token"))
    except Failure as e:
        sys.exit(f"tokens: {e}")
    if a.refresh_file:
        with open(a.refresh_file, "w") as f:
            f.write("\n".join(refresh) + "\n")
    json.dump({
        "access_token": last["access_token"],
        "access_token_is_jwt": is_jwt(last["access_token"]),
        "code_jwts": sum(is_jwt(last.get(k)) for k in ("access_token", "id_token")),
        "refresh_jwts": refresh_jwts,
        "endpoints": {k: op.meta.get(k) for k in ("token_endpoint", "introspection_endpoint",
                                                  "userinfo_endpoint", "jwks_uri",
                                                  "authorization_endpoint")},
    }, sys.stdout)
    print()


# --------------------------------------------------------------------------- browser loops


def loop_worker(a, start_at: float, end_at: float, q) -> None:
    op = OP(a)
    b = Browser(a.base)
    lat, errors, samples, units = [], 0, [], 0
    while time.time() < start_at:
        time.sleep(0.005)
    last_end = time.time()
    while time.time() < end_at:
        b.new_browser()
        t0 = time.perf_counter()
        try:
            if a.unit == "codeflow":
                op.code_flow(b)
            else:
                op.sign_in(b)
            lat.append(time.perf_counter() - t0)
            units += 1
        except Failure as e:
            errors += 1
            if len(samples) < 3:
                samples.append(str(e))
            if errors > 1000:
                break
        except OSError as e:
            errors += 1
            if len(samples) < 3:
                samples.append(f"{type(e).__name__}: {e}")
            b.conn = None
            time.sleep(0.05)
        last_end = time.time()
    q.put({"lat": lat, "errors": errors, "samples": samples, "units": units,
           "requests": b.requests, "last_end": last_end})


def pct(sorted_vals: list[float], p: float) -> float | None:
    if not sorted_vals:
        return None
    k = min(len(sorted_vals) - 1, max(0, int(round(p / 100 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def cmd_loop(a) -> None:
    try:
        OP(a)  # discovery answers
    except (Failure, OSError) as e:
        sys.exit(f"loop: {e}")
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    start_at = time.time() + 0.5
    end_at = start_at + a.duration
    procs = [ctx.Process(target=loop_worker, args=(a, start_at, end_at, q)) for _ in range(a.workers)]
    for p in procs:
        p.start()
    while time.time() < start_at:
        time.sleep(0.001)
    cpu0, m0 = proc_cpu(a.pid), machine_busy()
    results = [q.get(timeout=a.duration + 120) for _ in procs]
    for p in procs:
        p.join()
    cpu1, m1 = proc_cpu(a.pid), machine_busy()
    elapsed = max(r["last_end"] for r in results) - start_at
    lat = sorted(x for r in results for x in r["lat"])
    units = sum(r["units"] for r in results)
    errors = sum(r["errors"] for r in results)
    rec = {
        "server": a.server, "endpoint": a.endpoint, "unit": a.unit, "ops": units,
        "http_requests": sum(r["requests"] for r in results),
        "elapsed": elapsed, "rps": units / elapsed if elapsed > 0 else 0,
        "p50_ms": (pct(lat, 50) or 0) * 1000, "p99_ms": (pct(lat, 99) or 0) * 1000,
        "cpu_user": cpu1[0] - cpu0[0], "cpu_sys": cpu1[1] - cpu0[1],
        "errors": errors, "error_samples": [s for r in results for s in r["samples"]][:5],
        "tool": f"python loop, {a.workers} workers",
        "others_cpu": (m1 - m0) - (cpu1[0] - cpu0[0]) - (cpu1[1] - cpu0[1]),
    }
    with open(a.results, "a") as f:
        f.write(json.dumps(rec) + "\n")
    print_line(rec)


# --------------------------------------------------------------------------- wrk runs


def cmd_wrk(a) -> None:
    with open(a.wrk_json) as f:
        w = json.load(f)
    samples = []
    if os.path.exists(a.wrk_json + ".samples"):
        with open(a.wrk_json + ".samples") as f:
            samples = [s for s in f.read().splitlines() if s][:5]
    u0, s0 = (int(v) / HZ for v in a.cpu0.split())  # clock ticks, as in /proc/PID/stat
    u1, s1 = (int(v) / HZ for v in a.cpu1.split())
    elapsed = w["duration_us"] / 1e6
    socket_errors = w["connect"] + w["read"] + w["write"] + w["timeout"]
    # refresh_chain.lua counts its non-200 answers itself (wrk counts those >= 400 too)
    errors = max(w["status"], w["chain_errors"]) + socket_errors
    if a.warm_json and os.path.exists(a.warm_json):
        with open(a.warm_json) as f:
            warm = json.load(f)
        warm_errors = (max(warm["status"], warm["chain_errors"]) + warm["connect"] + warm["read"]
                       + warm["write"] + warm["timeout"])
        if warm_errors:
            errors += warm_errors
            samples.append(f"{warm_errors} errors during the warm-up")
    if w["status"] and a.probe_status:
        samples.append(f"probe after the run: HTTP {a.probe_status} {a.probe_body[:300]}")
    if socket_errors:
        samples.append(f"socket errors: connect {w['connect']}, read {w['read']}, write {w['write']}, "
                       f"timeout {w['timeout']}")
    others = None
    if a.machine:
        mt0, mt1 = (int(v) / HZ for v in a.machine.split())
        others = (mt1 - mt0) - (u1 - u0) - (s1 - s0)
    rec = {
        "server": a.server, "endpoint": a.endpoint, "unit": "req", "ops": w["requests"],
        "http_requests": w["requests"], "elapsed": elapsed,
        "rps": w["requests"] / elapsed if elapsed > 0 else 0,
        "p50_ms": w["p50_us"] / 1000, "p99_ms": w["p99_us"] / 1000,
        "cpu_user": u1 - u0, "cpu_sys": s1 - s0,
        "errors": errors, "error_samples": samples[:6], "tool": a.tool,
        "others_cpu": others,
    }
    with open(a.results, "a") as f:
        f.write(json.dumps(rec) + "\n")
    print_line(rec)


def per_cpu(r: dict) -> float | None:
    cpu = r["cpu_user"] + r["cpu_sys"]
    return r["ops"] / cpu if cpu > 0 else None


def print_line(r: dict) -> None:
    pc = per_cpu(r)
    print(f"  {r['server']:<8} {r['endpoint']:<14} {r['rps']:>9.0f} {r['unit']}/s  p50 {r['p50_ms']:7.2f} ms  "
          f"p99 {r['p99_ms']:7.2f} ms  CPU {r['cpu_user'] + r['cpu_sys']:6.2f} s "
          f"(user {r['cpu_user']:.2f}, sys {r['cpu_sys']:.2f})  "
          f"{(pc or 0):9.0f} per CPU-s"
          + (f"  others {r['others_cpu']:.1f} s" if r.get("others_cpu") is not None else "")
          + (f"  ERRORS {r['errors']}" if r["errors"] else ""), flush=True)
    for s in r.get("error_samples") or []:
        print(f"      {s}", flush=True)


# --------------------------------------------------------------------------- machine limits


def argon2_rate(seconds: float) -> dict:
    """argon2id hashes per CPU-second (and the user/system split) on one thread."""
    import resource

    from argon2.low_level import Type, hash_secret_raw

    salt = os.urandom(16)
    r0, w0, n = resource.getrusage(resource.RUSAGE_SELF), time.time(), 0
    t0 = time.process_time()
    while time.process_time() - t0 < seconds:
        hash_secret_raw(b"correct horse battery staple", salt, time_cost=2, memory_cost=19456,
                        parallelism=1, hash_len=32, type=Type.ID)
        n += 1
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    user, system = r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime
    return {"": n / (user + system), "_wall": n / (time.time() - w0),
            "_user_ms": 1000 * user / n, "_sys_ms": 1000 * system / n}


def cmd_argon2(a) -> None:
    json.dump(argon2_rate(a.seconds), sys.stdout)
    print()


def cmd_limits(a) -> None:
    out: dict = {}
    # openssl speed: one process (one core), per CPU-second (user time is the divisor)
    try:
        p = subprocess.run(["openssl", "speed", "-mr", "-seconds", str(a.openssl_seconds),
                            "rsa2048", "ecdsap256", "ed25519"], capture_output=True, text=True, timeout=120)
        for line in p.stdout.splitlines():
            f = line.split(":")
            if line.startswith("+F2:") and f[2] == "2048":
                out["rs256_sign"], out["rs256_verify"] = float(f[3]), float(f[4])
            elif line.startswith("+F4:") and f[2] == "256":
                out["es256_sign"], out["es256_verify"] = float(f[3]), float(f[4])
            elif line.startswith("+F6:") and "Ed25519" in line:
                out["eddsa_sign"], out["eddsa_verify"] = float(f[4]), float(f[5])
        out["openssl"] = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as e:
        out["openssl_error"] = str(e)
    # argon2id at Guichet's defaults, one thread, per CPU-second: with glibc's default malloc
    # (the 19 MiB block is reused from the heap after the first hash), and in a child with
    # MALLOC_MMAP_THRESHOLD_=131072 as `guichet serve` sets it (each block is a fresh mmap:
    # its page faults are paid on every hash, as system time).
    try:
        from importlib.metadata import version

        out.update({f"argon2{k}": v for k, v in argon2_rate(a.seconds).items()})
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
        p = subprocess.run([sys.executable, __file__, "argon2", "--seconds", str(a.seconds)],
                           capture_output=True, text=True, env=env, timeout=60)
        if p.returncode == 0:
            out.update({f"argon2_mmap{k}": v for k, v in json.loads(p.stdout).items()})
        out["argon2_impl"] = f"argon2-cffi {version('argon2-cffi')} (libargon2), m=19456 KiB t=2 p=1"
    except ImportError as e:
        out["argon2_error"] = f"argon2-cffi missing: {e}"
    json.dump(out, sys.stdout)
    print()


# --------------------------------------------------------------------------- report

ENDPOINTS = [
    ("discovery", "discovery"),
    ("jwks", "JWKS"),
    ("cc_rs256", "client_credentials RS256"),
    ("cc_es256", "client_credentials ES256"),
    ("cc_eddsa", "client_credentials EdDSA"),
    ("introspection", "introspection"),
    ("userinfo", "userinfo"),
    ("refresh", "refresh_token grant"),
    ("codeflow", "code flow (sign-in + code + token)"),
    ("signin", "password sign-in"),
]


def limit_for(ep: str, L: dict, jwts: dict) -> tuple[float | None, str]:
    """Crypto floor of one Guichet request, as requests per CPU-second on one core."""
    rs, rv, es, ed, ar = (L.get(k) for k in ("rs256_sign", "rs256_verify", "es256_sign", "eddsa_sign", "argon2"))
    if ep == "cc_rs256" and rs:
        return rs, "1 RS256 signature"
    if ep == "cc_es256" and es:
        return es, "1 ES256 signature"
    if ep == "cc_eddsa" and ed:
        return ed, "1 EdDSA signature"
    if ep in ("introspection", "userinfo") and rv:
        return rv, "1 RS256 verification (Guichet's JWT access token)"
    if ep == "refresh" and rs:
        n = jwts.get("refresh") or 2
        return rs / n, f"{n} RS256 signatures"
    mm = L.get("argon2_mmap")
    mm_note = f"; {mm:.0f} with Guichet's mmap threshold" if mm else ""
    if ep == "signin" and ar:
        return ar, "1 argon2id hash" + mm_note
    if ep == "codeflow" and ar and rs:
        n = jwts.get("code") or 2
        return 1 / (1 / ar + n / rs), f"1 argon2id hash + {n} RS256 signatures"
    return None, ""


def fmt(v, spec="{:,.0f}", none="—") -> str:
    return none if v is None else spec.format(v)


def limits_text(L: dict) -> str:
    parts = [f"RS256 sign {fmt(L.get('rs256_sign'))} / verify {fmt(L.get('rs256_verify'))}",
             f"ES256 sign {fmt(L.get('es256_sign'))}", f"EdDSA sign {fmt(L.get('eddsa_sign'))}",
             f"argon2id (m=19456 KiB, t=2, p=1) {fmt(L.get('argon2'), '{:.1f}')} hashes "
             f"({fmt(L.get('argon2_user_ms'), '{:.1f}')} ms user + {fmt(L.get('argon2_sys_ms'), '{:.1f}')} ms sys each)"]
    if L.get("argon2_mmap"):
        parts.append(f"argon2id with MALLOC_MMAP_THRESHOLD_=131072 (what `guichet serve` sets) "
                     f"{L['argon2_mmap']:.1f} hashes ({L['argon2_mmap_user_ms']:.1f} ms user + "
                     f"{L['argon2_mmap_sys_ms']:.1f} ms sys each: a fresh 19 MiB mmap per hash)")
    return ", ".join(parts)


def cmd_report(a) -> None:
    rows = [json.loads(l) for l in open(a.results) if l.strip()]
    meta = json.load(open(a.meta))
    L = meta.get("limits", {})
    by = {(r["server"], r["endpoint"]): r for r in rows}
    table = []
    for ep, label in ENDPOINTS:
        g = by.get(("guichet", ep))
        p = by.get(("peer", ep))
        peer_note = ""
        if ep == "cc_eddsa" and p is None and ("peer", "cc_es256") in by:
            p = by[("peer", "cc_es256")]
            peer_note = "peer: its ES256 run"
        gpc = per_cpu(g) if g else None
        ppc = per_cpu(p) if p else None
        lim, lim_what = limit_for(ep, L, meta.get("guichet_jwts", {}))
        peer_lim = None
        if ep in ("cc_rs256", "cc_es256"):
            peer_lim = lim
        elif ep == "cc_eddsa":
            peer_lim = L.get("es256_sign")
        table.append({
            "ep": ep, "label": label, "g": g, "p": p, "gpc": gpc, "ppc": ppc,
            "ratio": gpc / ppc if gpc and ppc else None,
            "limit": lim, "limit_what": lim_what,
            "g_pct": 100 * gpc / lim if gpc and lim else None,
            "p_pct": 100 * ppc / peer_lim if ppc and peer_lim else None,
            "note": peer_note,
        })

    # console
    print()
    print(f"== Side-by-side results ({meta.get('mode')}, {meta.get('duration')} s per endpoint, "
          f"{meta.get('connections')} connections, {meta.get('nproc')} CPUs) ==")
    hdr = (f"{'endpoint':<15}{'G req/s':>9}{'G p50':>8}{'G p99':>8}{'G CPU':>7}{'G /CPU-s':>10}"
           f"{'P req/s':>9}{'P p50':>8}{'P p99':>8}{'P CPU':>7}{'P /CPU-s':>10}{'G/P':>7}"
           f"{'limit/CPU-s':>12}{'G %lim':>8}{'P %lim':>8}")
    print(hdr)
    print("-" * len(hdr))
    for t in table:
        g, p = t["g"], t["p"]
        def cols(r):
            if not r:
                return f"{'—':>9}{'—':>8}{'—':>8}{'—':>7}"
            return (f"{r['rps']:>9.0f}{r['p50_ms']:>8.1f}{r['p99_ms']:>8.1f}"
                    f"{r['cpu_user'] + r['cpu_sys']:>7.1f}")
        print(f"{t['ep']:<15}{cols(g)}{fmt(t['gpc'], '{:.0f}'):>10}{cols(p)}{fmt(t['ppc'], '{:.0f}'):>10}"
              f"{fmt(t['ratio'], '{:.2f}'):>7}{fmt(t['limit'], '{:.0f}'):>12}"
              f"{fmt(t['g_pct'], '{:.0f}%'):>8}{fmt(t['p_pct'], '{:.0f}%'):>8}")
    print("(latencies in ms; code flow and sign-in: one unit = a whole browser flow, see notes)")
    rss = meta.get("rss", {})
    for s in ("guichet", "peer"):
        r = rss.get(s, {})
        if r and r.get("idle_mb"):
            print(f"RSS {s:<8} idle {r.get('idle_mb', 0):6.1f} MB   peak under load {r.get('peak_mb', 0):6.1f} MB   "
                  f"2 s after {r.get('after_mb', 0):6.1f} MB   "
                  f"{r.get('settle_s', '?')} s after {r.get('settled_mb', 0):6.1f} MB")
    print("Machine limits (one core, per CPU-second): " + limits_text(L))
    errs = [r for r in rows if r["errors"]]
    if errs:
        print("ERRORS:")
        for r in errs:
            print(f"  {r['server']} {r['endpoint']}: {r['errors']} errors")
            for s in r.get("error_samples") or []:
                print(f"    {s}")
    else:
        print("No errors (every response 2xx, or the expected 303 inside browser flows).")

    os.makedirs(a.out, exist_ok=True)
    write_markdown(os.path.join(a.out, "results.md"), table, meta, rows)
    write_svg(os.path.join(a.out, "req_per_cpu_second.svg"), table, meta)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump({"meta": meta, "results": rows}, f, indent=1)
    print(f"Written: {a.out}/results.md, {a.out}/req_per_cpu_second.svg, {a.out}/results.json")


def write_markdown(path: str, table: list, meta: dict, rows: list) -> None:
    L = meta.get("limits", {})
    o = []
    o.append(f"# Guichet vs node-oidc-provider — side by side ({meta.get('mode')} run)\n")
    o.append(f"{meta.get('date')}, {meta.get('host')}: {meta.get('nproc')} CPUs ({meta.get('cpu')}), "
             f"Guichet {meta.get('guichet_version')} (release, SQLite), node-oidc-provider "
             f"{meta.get('peer_version')} on Node {meta.get('node_version')} (one process). "
             f"{meta.get('duration')} s per endpoint after {meta.get('warmup')} s of warm-up, wrk "
             f"{meta.get('connections')} connections; browser flows: {meta.get('workers')} Python workers. "
             f"Load generator and server share the machine; per CPU-second counts only the server's "
             f"user+system time (/proc/PID/stat), so a second core is not a win.\n")
    o.append("| endpoint | Guichet req/s | p50 / p99 ms | CPU s | req per CPU-s | peer req/s | p50 / p99 ms "
             "| CPU s | req per CPU-s | Guichet/peer per CPU-s | limit per CPU-s | Guichet % of limit | peer % of limit |")
    o.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for t in table:
        def cells(r):
            if not r:
                return "— | — | —"
            return (f"{r['rps']:,.0f} | {r['p50_ms']:.1f} / {r['p99_ms']:.1f} | "
                    f"{r['cpu_user'] + r['cpu_sys']:.2f}")
        label = t["label"] + (f" ({t['note']})" if t["note"] else "")
        o.append(f"| {label} | {cells(t['g'])} | {fmt(t['gpc'])} | {cells(t['p'])} | {fmt(t['ppc'])} | "
                 f"{fmt(t['ratio'], '{:.2f}×')} | {fmt(t['limit'])}{' (' + t['limit_what'] + ')' if t['limit_what'] else ''} | "
                 f"{fmt(t['g_pct'], '{:.0f} %')} | {fmt(t['p_pct'], '{:.0f} %')} |")
    o.append("")
    o.append("CPU seconds used during each run by everything but the server (the load generator — wrk or "
             "the Python workers — plus any other process on the machine; a large figure means a disturbed run):\n")
    o.append("| endpoint | Guichet run: others CPU s | peer run: others CPU s |")
    o.append("|---|---:|---:|")
    for t in table:
        oc = lambda r: "—" if not r or r.get("others_cpu") is None else f"{r['others_cpu']:.2f}"
        o.append(f"| {t['label']} | {oc(t['g'])} | {oc(t['p'])} |")
    o.append(f"\nLoad average (1 min) before the run: {meta.get('loadavg_start')}, after: {meta.get('loadavg_end')}.\n")
    rss = meta.get("rss", {})
    settle = next((r.get("settle_s") for r in rss.values() if r and r.get("settle_s")), None)
    o.append("| memory (VmRSS) | idle | peak under load (VmHWM) | 2 s after the load | "
             f"{settle or '?'} s after the load |")
    o.append("|---|---:|---:|---:|---:|")
    for s, name in (("guichet", "Guichet"), ("peer", "node-oidc-provider")):
        r = rss.get(s)
        if r and r.get("idle_mb"):
            settled = f"{r['settled_mb']:.1f} MB" if r.get("settled_mb") else "—"
            o.append(f"| {name} | {r['idle_mb']:.1f} MB | {r['peak_mb']:.1f} MB | {r['after_mb']:.1f} MB | {settled} |")
    o.append("")
    o.append("Machine limits measured in the same run (one core, per CPU-second): "
             + limits_text(L) + f" — {L.get('openssl', 'openssl')} `speed`; "
             f"{L.get('argon2_impl', 'argon2: n/a')}.\n")
    o.append("Notes:\n")
    for n in meta.get("notes", []):
        o.append(f"- {n}")
    errs = [r for r in rows if r["errors"]]
    o.append("")
    if errs:
        o.append("Errors:\n")
        for r in errs:
            o.append(f"- {r['server']} {r['endpoint']}: {r['errors']} errors")
            for s in r.get("error_samples") or []:
                o.append(f"  - `{s}`")
    else:
        o.append("No errors: every response was 2xx (303 inside the browser flows).")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")


def write_svg(path: str, table: list, meta: dict) -> None:
    """Grouped horizontal bars, log scale: requests per server CPU-second per endpoint."""
    import math

    items = [(t["label"] + (" *" if t["note"] else ""), t["gpc"], t["ppc"], t["ratio"], t["limit"])
             for t in table]
    vals = [v for _, g, p, _, lim in items for v in (g, p, lim) if v]
    if not vals:
        vals = [1]
    lo = 10 ** math.floor(math.log10(max(min(vals), 1)))
    hi = 10 ** math.ceil(math.log10(max(vals) * 1.01))
    left, right, top, bar, gap = 260, 120, 60, 14, 14
    width = 960
    plot_w = width - left - right
    height = top + len(items) * (2 * bar + gap) + 60

    def x(v: float) -> float:
        return left + plot_w * (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    e = html.escape
    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
         f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
         f'<rect width="{width}" height="{height}" fill="white"/>',
         f'<text x="{left}" y="22" font-size="15" font-weight="bold">Requests per server CPU-second '
         f'(log scale) — Guichet vs node-oidc-provider</text>',
         f'<text x="{left}" y="40" fill="#555">{e(str(meta.get("date", "")))}, {meta.get("nproc")} CPUs, '
         f'{meta.get("mode")} run; * peer measured with ES256</text>']
    d = lo
    while d <= hi * 1.001:
        xx = x(d)
        s.append(f'<line x1="{xx:.1f}" y1="{top - 6}" x2="{xx:.1f}" y2="{height - 50}" stroke="#ddd"/>')
        s.append(f'<text x="{xx:.1f}" y="{height - 36}" text-anchor="middle" fill="#555">{d:,.0f}</text>')
        d *= 10
    y = top
    for label, g, p, ratio, lim in items:
        s.append(f'<text x="{left - 8}" y="{y + bar + 4}" text-anchor="end">{e(label)}</text>')
        if ratio:
            s.append(f'<text x="{width - 8}" y="{y + bar + 4}" text-anchor="end" font-weight="bold">'
                     f'{ratio:.2f}×</text>')
        if lim:
            xl = x(lim)
            s.append(f'<line x1="{xl:.1f}" y1="{y - 3}" x2="{xl:.1f}" y2="{y + 2 * bar + 2}" stroke="black" '
                     f'stroke-width="2"><title>limit: {lim:,.0f} per CPU-second</title></line>')
        for v, color, who in ((g, "#1f6feb", "Guichet"), (p, "#d97706", "peer")):
            if v:
                w = max(1.0, x(v) - left)
                s.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar - 1}" fill="{color}">'
                         f'<title>{who}: {v:,.0f}</title></rect>')
                s.append(f'<text x="{left + w + 4:.1f}" y="{y + bar - 3}" fill="#333">{v:,.0f}</text>')
            else:
                s.append(f'<text x="{left + 4}" y="{y + bar - 3}" fill="#999">n/a</text>')
            y += bar
        y += gap
    ly = height - 18
    s.append(f'<rect x="{left}" y="{ly - 10}" width="12" height="12" fill="#1f6feb"/>'
             f'<text x="{left + 16}" y="{ly}">Guichet</text>')
    s.append(f'<rect x="{left + 90}" y="{ly - 10}" width="12" height="12" fill="#d97706"/>'
             f'<text x="{left + 106}" y="{ly}">node-oidc-provider 9</text>')
    s.append(f'<line x1="{left + 280}" y1="{ly - 11}" x2="{left + 280}" y2="{ly + 2}" stroke="black" '
             f'stroke-width="2"/><text x="{left + 288}" y="{ly}">crypto limit of Guichet\'s work '
             f'(one core)</text><text x="{width - 8}" y="{ly}" text-anchor="end">Guichet/peer</text>')
    s.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(s) + "\n")


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("argon2")
    p.add_argument("--seconds", type=float, default=3)

    p = sub.add_parser("limits")
    p.add_argument("--seconds", type=float, default=3)
    p.add_argument("--openssl-seconds", type=int, default=2)

    def op_args(p):
        p.add_argument("--base", required=True)
        p.add_argument("--client-id", required=True)
        p.add_argument("--secret", required=True)
        p.add_argument("--redirect-uri", required=True)
        p.add_argument("--email", required=True)
        p.add_argument("--password", required=True)

    p = sub.add_parser("tokens")
    op_args(p)
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--refresh-file")

    p = sub.add_parser("loop")
    op_args(p)
    p.add_argument("--unit", choices=["codeflow", "signin"], required=True)
    p.add_argument("--signin-start", choices=["login", "authorize"], default="authorize")
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--server", required=True)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--results", required=True)

    p = sub.add_parser("wrk")
    p.add_argument("--server", required=True)
    p.add_argument("--endpoint", required=True)
    p.add_argument("--wrk-json", required=True)
    p.add_argument("--cpu0", required=True)
    p.add_argument("--cpu1", required=True)
    p.add_argument("--results", required=True)
    p.add_argument("--tool", default="wrk")
    p.add_argument("--probe-status", type=int, default=0)
    p.add_argument("--probe-body", default="")
    p.add_argument("--warm-json")
    p.add_argument("--machine", help="busy ticks of the whole machine before and after")

    p = sub.add_parser("report")
    p.add_argument("--results", required=True)
    p.add_argument("--meta", required=True)
    p.add_argument("--out", required=True)

    a = ap.parse_args()
    {"argon2": cmd_argon2, "limits": cmd_limits, "tokens": cmd_tokens, "loop": cmd_loop, "wrk": cmd_wrk, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    main()
