#!/usr/bin/env python3
"""Guichet at scale: SQLite vs PostgreSQL + Redis, one node vs two behind haproxy (loopback only).

Run by benches/scale.sh (which installs what is missing and builds the release binary); it can
be run alone with the same options plus --bin:

  scale.py --bin PATH [--short] [--out DIR] [--duration S] [--connections N] [--workers N]
           [--configs a,b,c,b1,c1] [--workloads codeflow,refresh,...]

It starts a PRIVATE PostgreSQL cluster (initdb on a free port, as the postgres user when run as
root, with pg_stat_statements) and a PRIVATE redis-server on a free port, then measures, one
configuration after the other:

  a   one node, SQLite, in-process ephemeral store (the baseline of benches/side_by_side.sh)
  b   one node, PostgreSQL + Redis, reached directly
  c   two nodes, PostgreSQL + Redis, behind haproxy on loopback (round robin, keep-alive)
  b1  as b, the node pinned to CPU 0 with taskset
  c1  as c, node A pinned to CPU 0 and node B to CPU 1

Each configuration gets a fresh database (and an emptied Redis), a user set, a first-party web
client and an organization with a verified domain and a SAML connection (IdP-initiated allowed),
all made with the `guichet` CLI. Before measuring c and c1 it checks that the nodes share state
(a code issued by node A exchanged at node B, refreshes alternating, introspection and userinfo
across nodes).

Workloads (each: req/s overall and per node, p50/p99, Guichet CPU-s per node, requests per
Guichet CPU-second, PostgreSQL, Redis and haproxy CPU-s, SQL statements and Redis commands per
unit, errors):

  codeflow       a new browser signs in with the form and exchanges the code (5 requests)
  refresh        the refresh_token grant, rotating: wrk + benches/lua/refresh_chain.lua
  introspection  POST /introspect of an RS256 access token: wrk + benches/lua/static.lua
  signin         GET /login + POST /login (303), a new browser each time
  saml_acs       a SAML sign-in at POST /saml/<id>/acs: an IdP-initiated Response (the IdP's
                 cross-site POST, then the same-origin re-post Guichet's page asks for: 2 POSTs,
                 303), pre-generated before the run with unique IDs (the replay cache accepts
                 each once): pysaml2 builds each Response (assertion signed, RSA-SHA256),
                 xmlsec1 signs them in batches
  mixed          a portal's morning per simulated user: sign-in through the form + code
                 exchange, then 4 rounds of (3 x userinfo, 1 x refresh_token) = 21 requests

Exit status: 1 when any request failed (non-2xx/303, socket error, a server-side 4xx/5xx in the
nodes' /metrics) or a setup step failed; never because of a figure.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import json
import multiprocessing
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import types
import urllib.request
from urllib.parse import urlencode, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "conformance"))

import side_by_side as sbs  # noqa: E402  Browser, OP, Failure, pct, proc_cpu, machine_busy, argon2_rate

HZ = sbs.HZ
REDIRECT_URI = "http://127.0.0.1:9/cb"
SAML_DOMAIN = "scale.test"
CONFIGS = {
    "a": "1 node, SQLite",
    "b": "1 node, PostgreSQL + Redis",
    "c": "2 nodes, PostgreSQL + Redis, haproxy",
    "b1": "1 node pinned to CPU 0, PostgreSQL + Redis",
    "c1": "2 nodes pinned to CPU 0 / CPU 1, PostgreSQL + Redis, haproxy",
}
WORKLOADS = ["codeflow", "refresh", "introspection", "signin", "saml_acs", "mixed"]
LABELS = {
    "codeflow": "code flow (form sign-in + code exchange)",
    "refresh": "refresh_token grant (rotating chain)",
    "introspection": "introspection",
    "signin": "password sign-in",
    "saml_acs": "SAML sign-in at the ACS (IdP-initiated, signed assertion; 2 POSTs)",
    "mixed": "mixed: portal morning (1 sign-in + 4 refresh + 12 userinfo per user)",
}
UNITS = {"codeflow": "flow", "refresh": "req", "introspection": "req", "signin": "sign-in",
         "saml_acs": "sign-in", "mixed": "user"}
MIX_ROUNDS, MIX_USERINFO = 4, 3  # per simulated user: 4 x (3 userinfo + 1 refresh)


def log(msg: str) -> None:
    print(f"[{time.time() - T0:5.0f}s] {msg}", flush=True)


T0 = time.time()


class SetupError(Exception):
    pass


# --------------------------------------------------------------------------- processes


def free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def ticks(pid: int) -> tuple[int, int, int, int]:
    """utime, stime, cutime, cstime of a process in clock ticks (/proc/PID/stat 14-17)."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]), int(rest[12]), int(rest[13]), int(rest[14])


def ppid_of(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def http_get(url: str, timeout: float = 3) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except OSError:
        return 0, b""


STARTED: list = []  # things to stop, in reverse order, at exit


def stop_all() -> None:
    while STARTED:
        thing = STARTED.pop()
        try:
            thing.stop()
        except Exception as e:  # keep stopping the rest
            print(f"scale: stopping {thing}: {e}", file=sys.stderr)


def node_log_findings(path: str) -> list[str]:
    """A node's ERROR lines, and PostgreSQL's notices that a pooled connection was handed on
    inside a transaction it did not start (a request cancelled mid-BEGIN/COMMIT, e.g. by a
    client that hung up: sqlx-postgres 0.8 is not cancel-safe there). Reported, not failed on:
    the requests' own answers decide the exit status."""
    keys = ("ERROR", "there is already a transaction in progress", "there is no transaction in progress")
    with open(path, errors="replace") as f:
        return [line.strip() for line in f if any(k in line for k in keys)]


def stop_nodes() -> None:
    """Stops what a configuration started (its nodes, its balancer), not the databases."""
    for thing in [t for t in STARTED if isinstance(t, (Node, HAProxy))]:
        thing.stop()


class Proc:
    """A child process this script started (only ever signalled by its own PID)."""

    def __init__(self, name: str, argv: list[str], env: dict | None = None, cwd: str | None = None,
                 logfile: str | None = None) -> None:
        self.name = name
        self.log = logfile
        out = open(logfile, "ab") if logfile else subprocess.DEVNULL
        self.p = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
        self.pid = self.p.pid
        STARTED.append(self)

    def alive(self) -> bool:
        return self.p.poll() is None

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        if self in STARTED:
            STARTED.remove(self)

    def cpu(self) -> float:
        u, s, _, _ = ticks(self.pid)
        return (u + s) / HZ

    def tail(self, n: int = 30) -> str:
        if not self.log or not os.path.exists(self.log):
            return ""
        with open(self.log, errors="replace") as f:
            return "".join(f.readlines()[-n:])

    def __repr__(self) -> str:
        return f"{self.name} (pid {self.pid})"


def as_pg(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


class Postgres:
    """A private cluster: initdb in TMP, a free port, trust auth, pg_stat_statements loaded."""

    def __init__(self, tmp: str, pg_bin: str) -> None:
        self.bin = pg_bin
        self.dir = os.path.join(tmp, "pg")
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        self.port = free_ports(1)[0]
        os.makedirs(self.sock)
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", "postgres:", self.dir], check=True)
        p = subprocess.run(as_pg([f"{pg_bin}/initdb", "-D", self.data, "-U", "postgres", "-A", "trust",
                                  "-E", "UTF8", "--no-sync"]), capture_output=True, text=True)
        if p.returncode:
            raise SetupError(f"initdb failed: {p.stdout[-500:]}{p.stderr[-500:]}")
        opts = (f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c max_connections=100 "
                "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all")
        p = subprocess.run(as_pg([f"{pg_bin}/pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "postgres.log"),
                                  "-o", opts, "-w", "-t", "60", "start"]), capture_output=True, text=True)
        if p.returncode:
            raise SetupError(f"pg_ctl start failed: {p.stdout[-500:]}{p.stderr[-500:]}")
        STARTED.append(self)
        self.sql("postgres", "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        self.version = self.sql("postgres", "SHOW server_version").strip()

    def stop(self) -> None:
        subprocess.run(as_pg([f"{self.bin}/pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop"]),
                       capture_output=True)

    def url(self, db: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def sql(self, db: str, query: str) -> str:
        p = subprocess.run([f"{self.bin}/psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1",
                            "-p", str(self.port), "-U", "postgres", "-d", db, "-c", query],
                           capture_output=True, text=True, timeout=60)
        if p.returncode:
            raise SetupError(f"psql {query[:60]!r}: {p.stderr.strip()[:300]}")
        return p.stdout

    def postmaster(self) -> int:
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            return int(f.readline())

    def cpu(self) -> float:
        """User + system seconds of the whole cluster: the postmaster, its live children, and
        the children it has reaped (cutime/cstime), so backends that exit are counted too."""
        pm = self.postmaster()
        total = sum(ticks(pm))
        for d in os.listdir("/proc"):
            if d.isdigit() and ppid_of(d) == pm:
                try:
                    u, s, _, _ = ticks(int(d))
                    total += u + s
                except OSError:
                    pass  # exited meanwhile: its time is now in the postmaster's cutime
        return total / HZ

    def stats_reset(self) -> None:
        self.sql("postgres", "SELECT pg_stat_statements_reset()")

    def stats(self, db: str) -> dict:
        """Statements of db since the reset: total calls, execution ms, the top ones."""
        q = ("SELECT calls, round(total_exec_time::numeric, 3), rows, "
             "regexp_replace(left(query, 110), '\\s+', ' ', 'g') FROM pg_stat_statements "
             f"WHERE dbid = (SELECT oid FROM pg_database WHERE datname = '{db}') ORDER BY calls DESC")
        rows = []
        for line in self.sql("postgres", q).splitlines():
            calls, ms, nrows, text = line.split("|", 3)
            rows.append({"calls": int(calls), "ms": float(ms), "rows": int(nrows), "query": text})
        return {"calls": sum(r["calls"] for r in rows), "ms": sum(r["ms"] for r in rows), "top": rows[:12]}

    def __repr__(self) -> str:
        return f"PostgreSQL on 127.0.0.1:{self.port}"


class Redis(Proc):
    def __init__(self, tmp: str) -> None:
        self.port = free_ports(1)[0]
        d = os.path.join(tmp, "redis")
        os.makedirs(d)
        super().__init__("redis", ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
                                   "--appendonly", "no", "--dir", d], logfile=os.path.join(d, "redis.log"))
        for _ in range(100):
            if self.cli("PING").strip() == "PONG":
                break
            time.sleep(0.1)
        else:
            raise SetupError("redis-server: no PONG after 10 s")
        self.version = re.search(r"redis_version:(\S+)", self.cli("INFO", "server")).group(1)

    def cli(self, *args: str) -> str:
        p = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *args], capture_output=True,
                           text=True, timeout=30)
        return p.stdout

    def stats_reset(self) -> None:
        self.cli("CONFIG", "RESETSTAT")

    def stats(self) -> dict:
        cmds = {}
        for m in re.finditer(r"cmdstat_(\w+):calls=(\d+)", self.cli("INFO", "commandstats")):
            if m.group(1) not in ("info", "config"):
                cmds[m.group(1)] = int(m.group(2))
        return {"calls": sum(cmds.values()), "top": dict(sorted(cmds.items(), key=lambda kv: -kv[1]))}


class Node(Proc):
    def __init__(self, name: str, binary: str, env: dict, port: int, mport: int, workdir: str,
                 cpu: int | None) -> None:
        self.port = port
        self.mport = mport
        self.url = f"http://127.0.0.1:{port}"
        env = dict(env, GUICHET_SERVER__LISTEN=f"127.0.0.1:{port}",
                   GUICHET_SERVER__METRICS_LISTEN=f"127.0.0.1:{self.mport}")
        argv = ([shutil.which("taskset") or "taskset", "-c", str(cpu)] if cpu is not None else []) + [binary, "serve"]
        os.makedirs(workdir, exist_ok=True)
        # cwd = its own directory: no ./guichet.toml of the developer is read
        super().__init__(name, argv, env=env, cwd=workdir, logfile=os.path.join(workdir, f"{name}.log"))
        self.cpu_pin = cpu

    def wait_ready(self, limit: float = 60) -> None:
        deadline = time.time() + limit
        while time.time() < deadline:
            if not self.alive():
                raise SetupError(f"{self.name} exited (status {self.p.returncode}):\n{self.tail()}")
            if http_get(self.url + "/readyz", 2)[0] == 200:
                return
            time.sleep(0.2)
        raise SetupError(f"{self.name}: /readyz did not answer 200 within {limit:.0f} s:\n{self.tail()}")

    def metrics(self) -> dict[tuple[str, str, int], int]:
        st, body = http_get(f"http://127.0.0.1:{self.mport}/metrics", 5)
        out: dict = {}
        if st != 200:
            return out
        for m in re.finditer(r'^guichet_http_requests_total\{(.*)\} (\d+)$', body.decode(), re.M):
            lab = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
            out[(lab.get("method", ""), lab.get("route", ""), int(lab.get("status", 0)))] = int(m.group(2))
        return out


class HAProxy(Proc):
    """haproxy on loopback: round robin over the nodes, keep-alive on both sides (each request
    of a client connection is balanced on its own), health checks on /readyz."""

    def __init__(self, workdir: str, nodes: list[Node], port: int, balance: str = "roundrobin") -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        cfg = os.path.join(workdir, "haproxy.cfg")
        servers = "\n".join(f"    server {n.name} 127.0.0.1:{n.port} check inter 2s" for n in nodes)
        with open(cfg, "w") as f:
            f.write(f"""global
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option http-keep-alive
    http-reuse safe
frontend guichet
    bind 127.0.0.1:{port}
    default_backend nodes
backend nodes
    balance {balance}
    option httpchk GET /readyz
{servers}
""")
        check = subprocess.run(["haproxy", "-c", "-q", "-f", cfg], capture_output=True, text=True)
        if check.returncode:
            raise SetupError(f"haproxy -c: {check.stdout}{check.stderr}")
        super().__init__("haproxy", ["haproxy", "-db", "-f", cfg], logfile=os.path.join(workdir, "haproxy.log"))

    def wait_ready(self, limit: float = 30) -> None:
        deadline = time.time() + limit
        while time.time() < deadline:
            if not self.alive():
                raise SetupError(f"haproxy exited:\n{self.tail()}")
            if all(http_get(self.url + "/readyz", 2)[0] == 200 for _ in range(4)):
                return
            time.sleep(0.3)
        raise SetupError(f"haproxy: {self.url}/readyz did not answer 200 within {limit:.0f} s:\n{self.tail()}")


# --------------------------------------------------------------------------- a deployment


def clean_env() -> dict:
    """The environment without GUICHET_* (the server refuses unknown ones) and store URLs."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GUICHET_") and k not in ("DATABASE_URL", "REDIS_URL", "MALLOC_MMAP_THRESHOLD_")}
    env.update(RUST_LOG="warn", NO_COLOR="1")
    return env


class Deployment:
    def __init__(self, cfg: str, args, tmp: str, pg: Postgres | None, redis: Redis | None, dns: str) -> None:
        self.cfg, self.args = cfg, args
        self.dir = os.path.join(tmp, cfg)
        os.makedirs(self.dir)
        self.pg, self.redis = pg, redis
        self.db = f"scale_{cfg}"
        self.nodes: list[Node] = []
        self.lb: HAProxy | None = None
        two = cfg in ("c", "c1")
        pins = {"b1": [0], "c1": [0, 1]}.get(cfg, [None, None])
        n_nodes = 2 if two else 1
        ports = free_ports(2 * n_nodes + 1)  # listeners, metrics listeners, the balancer
        self.base = f"http://127.0.0.1:{ports[0]}"
        self.lb_port = ports[-1]
        env = clean_env()
        if pg:
            pg.sql("postgres", f"DROP DATABASE IF EXISTS {self.db}")
            pg.sql("postgres", f"CREATE DATABASE {self.db}")
            env.update(DATABASE_URL=pg.url(self.db), REDIS_URL=f"redis://127.0.0.1:{redis.port}")
            redis.cli("FLUSHALL")
        else:
            env["DATABASE_URL"] = f"sqlite://{self.dir}/guichet.db"
        env.update(GUICHET_KEYS__DIR=os.path.join(self.dir, "keys"), GUICHET_DNS_RESOLVER=dns,
                   GUICHET_DNS__TIMEOUT_MS="2000")
        self.env = env
        # the issuer is what clients reach: the balancer for two nodes
        self.issuer = self.base
        if two:
            self.issuer = f"http://127.0.0.1:{self.lb_port}"
        env["GUICHET_SERVER__ISSUER"] = self.issuer
        if pg:
            self.cli("migrate")
        # One node after the other, as an operator rolls them out: the first one makes the
        # signing and sealing keys in the shared directory, the next one loads them. (Started at
        # the same instant on an empty directory, each makes its own, and each refuses the
        # other's tokens until its next key reload.)
        for i in range(n_nodes):
            node = Node(f"node-{'ab'[i]}", args.bin, env, ports[i], ports[n_nodes + i], self.dir, pins[i])
            self.nodes.append(node)
            node.wait_ready()
        if two:
            self.lb = HAProxy(self.dir, self.nodes, self.lb_port, args.balance)
            self.lb.wait_ready()
        self.url = self.issuer

    def cli(self, *argv: str, stdin: str | None = None) -> dict:
        p = subprocess.run([self.args.bin, *argv, "--json"], input=stdin, capture_output=True, text=True,
                           env=self.env, cwd=self.dir, timeout=120)
        if p.returncode:
            raise SetupError(f"guichet {' '.join(argv)}: exit {p.returncode}: {p.stderr.strip()[-400:]}")
        out = p.stdout.strip()
        return json.loads(out) if out.startswith(("{", "[")) else {}

    def stop(self) -> None:
        if self.lb:
            self.lb.stop()
        for n in self.nodes:
            n.stop()

    def pids_alive(self) -> None:
        for p in self.nodes + ([self.lb] if self.lb else []):
            if not p.alive():
                raise SetupError(f"{p.name} exited during the run:\n{p.tail()}")


# --------------------------------------------------------------------------- measuring


class Probe:
    """CPU of every process that matters, and the stores' own counters, around one run."""

    def __init__(self, dep: Deployment) -> None:
        self.dep = dep

    def _cpu(self) -> dict:
        d = self.dep
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        snap = {"machine": sbs.machine_busy(), "irq": (v[5] + v[6]) / HZ, "nodes": [sum(sbs.proc_cpu(n.pid)) for n in d.nodes],
                "nodes_user": [sbs.proc_cpu(n.pid)[0] for n in d.nodes]}
        snap["pg"] = d.pg.cpu() if d.pg else 0.0
        snap["redis"] = d.redis.cpu() if d.pg else 0.0
        snap["lb"] = d.lb.cpu() if d.lb else 0.0
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk, the Python workers: reaped by the end
        snap["loadgen"] = ru.ru_utime + ru.ru_stime
        return snap

    def start(self) -> None:
        d = self.dep
        if d.pg:
            d.pg.stats_reset()
            d.redis.stats_reset()
        self.m0 = [n.metrics() for n in d.nodes]
        self.c0 = self._cpu()
        self.t0 = time.time()

    def finish(self) -> dict:
        c1 = self._cpu()
        d = self.dep
        m1 = [n.metrics() for n in d.nodes]
        c0 = self.c0
        nodes = []
        server_errors, server_samples = 0, []
        for i, n in enumerate(d.nodes):
            delta = {k: v - self.m0[i].get(k, 0) for k, v in m1[i].items()}
            delta = {k: v for k, v in delta.items() if v and k[1] not in ("/readyz", "/healthz", "/metrics")}
            bad = {k: v for k, v in delta.items() if k[2] >= 400}
            server_errors += sum(bad.values())
            server_samples += [f"{n.name}: {v} x {k[0]} {k[1]} -> {k[2]}" for k, v in bad.items()]
            nodes.append({"name": n.name, "cpu": c1["nodes"][i] - c0["nodes"][i],
                          "cpu_user": c1["nodes_user"][i] - c0["nodes_user"][i],
                          "requests": sum(delta.values()), "pin": n.cpu_pin,
                          "routes": {f"{k[0]} {k[1]} {k[2]}": v for k, v in sorted(delta.items())}})
        guichet = sum(x["cpu"] for x in nodes)
        rec = {
            "nodes": nodes, "guichet_cpu": guichet,
            "pg_cpu": c1["pg"] - c0["pg"], "redis_cpu": c1["redis"] - c0["redis"], "lb_cpu": c1["lb"] - c0["lb"],
            "machine_cpu": c1["machine"] - c0["machine"],
            "server_errors": server_errors, "server_error_samples": server_samples[:5],
        }
        rec["others_cpu"] = rec["machine_cpu"] - guichet - rec["pg_cpu"] - rec["redis_cpu"] - rec["lb_cpu"]
        rec["loadgen_cpu"] = c1["loadgen"] - c0["loadgen"]
        # what no process of this benchmark used: other work on the machine (a disturbed run)
        rec["irq_cpu"] = c1["irq"] - c0["irq"]  # the kernel's interrupts (loopback softirq): no process's
        rec["foreign_cpu"] = rec["others_cpu"] - rec["loadgen_cpu"] - rec["irq_cpu"]
        if d.pg:
            rec["sql"] = d.pg.stats(d.db)
            rec["redis_cmds"] = d.redis.stats()
        d.pids_alive()
        return rec


def run_wrk(dep: Deployment, lua: str, url: str, threads: int, conns: int, duration: int, env: dict,
            out: str) -> dict:
    e = dict(os.environ, BENCH_LUA_DIR=os.path.join(HERE, "lua"), BENCH_OUT=out, **env)
    p = subprocess.run(["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--timeout", "10s",
                        "-s", os.path.join(HERE, "lua", lua), url], env=e, capture_output=True, text=True,
                       timeout=duration + 120)
    if p.returncode or not os.path.exists(out):
        raise SetupError(f"wrk failed ({p.returncode}): {p.stderr[-400:]}")
    with open(out) as f:
        w = json.load(f)
    samples = []
    if os.path.exists(out + ".samples"):
        with open(out + ".samples") as f:
            samples = [s for s in f.read().splitlines() if s][:5]
    socket_errors = w["connect"] + w["read"] + w["write"] + w["timeout"]
    if socket_errors:
        samples.append(f"socket errors: connect {w['connect']}, read {w['read']}, write {w['write']}, "
                       f"timeout {w['timeout']}")
    elapsed = w["duration_us"] / 1e6
    return {"ops": w["requests"], "http_requests": w["requests"], "elapsed": elapsed,
            "p50_ms": w["p50_us"] / 1000, "p99_ms": w["p99_us"] / 1000,
            "errors": max(w["status"], w["chain_errors"]) + socket_errors, "error_samples": samples,
            "tool": f"wrk -t{threads} -c{conns}"}


# --------------------------------------------------------------------------- browser workers


class TimedBrowser(sbs.Browser):
    """side_by_side's browser, with each request's latency recorded by kind."""

    def __init__(self, base: str, lat: dict) -> None:
        super().__init__(base)
        self.lat = lat
        self.kind = "other"

    def request(self, method, url, body=None, headers=None, origin=False):
        t = time.perf_counter()
        r = super().request(method, url, body, headers, origin)
        self.lat.setdefault(self.kind, []).append(time.perf_counter() - t)
        return r


def op_for(base: str, client_id: str, secret: str, users: list[tuple[str, str]]) -> sbs.OP:
    a = types.SimpleNamespace(base=base, client_id=client_id, secret=secret, redirect_uri=REDIRECT_URI,
                              email=users[0][0], password=users[0][1], signin_start="login")
    return sbs.OP(a)


def mixed_user(op: sbs.OP, front: TimedBrowser, portal: TimedBrowser) -> None:
    """One simulated user's morning: sign in through the form, the portal exchanges the code,
    then 4 x (3 userinfo, 1 refresh) with the newest tokens."""
    front.new_browser()
    front.kind = "sign-in flow (front channel)"
    code, verifier = op.code(front)
    portal.kind = "code exchange"
    tok = op.exchange(portal, code, verifier)
    at, rt = tok["access_token"], tok.get("refresh_token")
    if not rt:
        raise sbs.Failure("no refresh_token in the code exchange")
    for _ in range(MIX_ROUNDS):
        portal.kind = "userinfo"
        for _ in range(MIX_USERINFO):
            st, _, data = portal.request("GET", op.meta["userinfo_endpoint"],
                                         headers={"Authorization": f"Bearer {at}", "Accept": "application/json"})
            if st != 200:
                raise sbs.fail("GET /userinfo", st, data)
        portal.kind = "refresh"
        st, _, data = portal.request("POST", op.meta["token_endpoint"],
                                     urlencode({"grant_type": "refresh_token", "refresh_token": rt}),
                                     {"Authorization": sbs.basic(op.client_id, op.secret),
                                      "Accept": "application/json"})
        if st != 200:
            raise sbs.fail("POST /token (refresh_token)", st, data)
        j = json.loads(data)
        at, rt = j["access_token"], j["refresh_token"]


def saml_post(b: TimedBrowser, acs_path: str, body: str, idp_origin: str) -> None:
    """What a browser does with an IdP's auto-posting form: POST it to the ACS (cross-site: no
    cookie of Guichet's comes along), get Guichet's page that posts the same fields again from
    its own origin, POST that (303: signed in)."""
    st, _, data = b.request("POST", acs_path, body, {"Origin": idp_origin, "Accept": "text/html"})
    if st == 200:
        p = sbs.FormParser()
        p.feed(data.decode("utf-8", "replace"))
        form = next((f for f in p.forms if f["action"] == acs_path), None)
        if form is None:
            raise sbs.fail("POST ACS: a 200 without the re-post form", st, data)
        fields = urlencode([(i["name"], i.get("value", "")) for i in form["inputs"] if i.get("name")])
        st, _, data = b.request("POST", acs_path, fields, {"Accept": "text/html"}, origin=True)
    if st != 303:
        raise sbs.fail("POST ACS", st, data)


def worker(w: dict, start_at: float, end_at: float, q) -> None:
    lat: dict = {}
    units, errors, samples, unit_lat = 0, 0, [], []
    front = TimedBrowser(w["base"], lat)
    portal = TimedBrowser(w["base"], lat)
    op = None
    try:
        if w["kind"] != "saml_acs":
            op = op_for(w["base"], w["client_id"], w["secret"], w["users"])
    except (sbs.Failure, OSError) as e:
        q.put({"lat": {}, "unit_lat": [], "errors": 1, "samples": [f"discovery: {e}"], "units": 0,
               "requests": 0, "last_end": time.time()})
        return
    while time.time() < start_at:
        time.sleep(0.002)
    last_end = time.time()
    k = 0
    pool = w.get("pool") or []
    while time.time() < end_at:
        if w["kind"] == "saml_acs" and k >= len(pool):
            break  # the pre-generated Responses are used up: the run ends here
        email, password = w["users"][k % len(w["users"])]
        t0 = time.perf_counter()
        try:
            if w["kind"] == "codeflow":
                front.new_browser()
                front.kind = "flow"
                op.email, op.password = email, password
                op.code_flow(front)
            elif w["kind"] == "signin":
                front.new_browser()
                front.kind = "sign-in"
                op.email, op.password = email, password
                op.sign_in(front)
            elif w["kind"] == "saml_acs":
                front.new_browser()
                front.kind = "ACS"
                saml_post(front, w["acs_path"], pool[k], w["idp_origin"])
            else:
                op.email, op.password = email, password
                mixed_user(op, front, portal)
            unit_lat.append(time.perf_counter() - t0)
            units += 1
        except sbs.Failure as e:
            errors += 1
            if len(samples) < 3:
                samples.append(str(e))
            if errors > 200:
                break
        except (OSError, ValueError, KeyError) as e:
            errors += 1
            if len(samples) < 3:
                samples.append(f"{type(e).__name__}: {e}")
            front.conn = portal.conn = None
            time.sleep(0.05)
        k += 1
        last_end = time.time()
    q.put({"lat": lat, "unit_lat": unit_lat, "errors": errors, "samples": samples, "units": units,
           "requests": front.requests + portal.requests, "last_end": last_end})


def run_workers(specs: list[dict], duration: float) -> dict:
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    start_at = time.time() + 0.5
    end_at = start_at + duration
    procs = [ctx.Process(target=worker, args=(s, start_at, end_at, q)) for s in specs]
    for p in procs:
        p.start()
    while time.time() < start_at:
        time.sleep(0.001)
    results = [q.get(timeout=duration + 180) for _ in procs]
    for p in procs:
        p.join()
    elapsed = max(r["last_end"] for r in results) - start_at
    unit_lat = sorted(x for r in results for x in r["unit_lat"])
    by_kind: dict = {}
    for r in results:
        for kind, v in r["lat"].items():
            by_kind.setdefault(kind, []).extend(v)
    all_req = sorted(x for v in by_kind.values() for x in v)
    rec = {"ops": sum(r["units"] for r in results), "http_requests": sum(r["requests"] for r in results),
           "elapsed": elapsed, "errors": sum(r["errors"] for r in results),
           "error_samples": [s for r in results for s in r["samples"]][:5],
           "p50_ms": (sbs.pct(unit_lat, 50) or 0) * 1000, "p99_ms": (sbs.pct(unit_lat, 99) or 0) * 1000,
           "req_p50_ms": (sbs.pct(all_req, 50) or 0) * 1000, "req_p99_ms": (sbs.pct(all_req, 99) or 0) * 1000,
           "by_kind": {k: {"n": len(v), "p50_ms": sbs.pct(sorted(v), 50) * 1000,
                           "p99_ms": sbs.pct(sorted(v), 99) * 1000} for k, v in by_kind.items() if v},
           "tool": f"python, {len(specs)} workers"}
    return rec


# --------------------------------------------------------------------------- SAML


def saml_setup(dep: Deployment, count: int, dns_table, dns_addr: str) -> dict:
    """Organization + verified domain + SAML connection (IdP-initiated allowed) made with the
    CLI; the SP metadata loaded into a pysaml2 IdP; `count` signed Responses generated (assertion
    signed with RSA-SHA256 by xmlsec1, unique IDs), in two processes."""
    import saml_support as ss  # pysaml2, cryptography, requests, dnslib: the bench venv

    g = ss.Guichet.__new__(ss.Guichet)
    g.base, g.workdir = dep.url, os.path.join(dep.dir, "saml")
    os.makedirs(g.workdir)
    g.dns = dns_table
    g.cli = ss.CLI(dep.args.bin, dns_addr)
    g.cli.env = dict(dep.env)
    g.org_with_domain("scale", SAML_DOMAIN)
    idp = ss.IdP(g.workdir, f"idp.{SAML_DOMAIN}")
    p, conn = g.create_connection("scale", SAML_DOMAIN, idp, "--allow-idp-initiated")
    if conn is None:
        raise SetupError(f"connection create --type saml: {(p.stderr or p.stdout).strip()[:400]}")
    st, md = http_get(conn.info["metadata_url"], 10)
    if st != 200:
        raise SetupError(f"GET {conn.info['metadata_url']}: {st}")
    idp.trust_sp(md.decode())
    bodies = saml_responses(idp, conn.acs, conn.entity_id, count, g.workdir)
    return {"acs": conn.acs, "acs_path": urlsplit(conn.acs).path, "pool": bodies,
            "idp_origin": f"https://{idp.host}", "connection": conn.info.get("id")}


def saml_responses(idp, acs: str, audience: str, count: int, workdir: str) -> list[str]:
    """`count` form bodies (SAMLResponse=...), one Response each, for 64 users of the domain.
    pysaml2 builds each Response and the signature template of its assertion (RSA-SHA256,
    SHA-256 digest, exclusive c14n, unique IDs); xmlsec1 then signs them — the command pysaml2
    runs once per document (`xmlsec1 --sign --privkey-pem KEY --id-attr:ID Assertion FILE`),
    here given many files at once (one process per batch instead of two per document)."""
    crypto = idp.server.sec.crypto
    calls: list = []

    def template_only(statement, node_name, key_file, node_id):
        calls.append((node_name, key_file))
        return statement.decode() if isinstance(statement, bytes) else str(statement)

    crypto.sign_statement = template_only  # this IdP object only
    d = os.path.join(workdir, "responses")
    os.makedirs(d, exist_ok=True)
    files = []
    for i in range(count):
        xml = idp.response(f"saml{i % 64}@{SAML_DOMAIN}", None, acs, audience, sign_response=False,
                           sign_assertion=True)
        files.append(os.path.join(d, f"{i}.xml"))
        with open(files[-1], "w") as f:
            f.write(xml)
    del crypto.sign_statement
    if len(calls) != count or any(c != calls[0] for c in calls):
        raise SetupError(f"pysaml2 asked for {len(calls)} signatures for {count} Responses")
    node_name, key_file = calls[0]
    batches = [files[i:i + 250] for i in range(0, len(files), 250)]
    signed: list[str] = []
    for pair in (batches[i:i + 2] for i in range(0, len(batches), 2)):  # two xmlsec1 at a time
        procs = [subprocess.Popen(["xmlsec1", "--sign", "--privkey-pem", key_file, "--id-attr:ID", node_name, *b],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for b in pair]
        for p, b in zip(procs, pair):
            out, _ = p.communicate(timeout=600)
            docs = ["<?xml" + x for x in out.split("<?xml") if x.strip()]
            if p.returncode or len(docs) != len(b) or any(x.count("SignatureValue>") != 2 for x in docs):
                raise SetupError(f"xmlsec1 --sign of {len(b)} Responses: exit {p.returncode}, {len(docs)} documents")
            signed += docs
    return [urlencode({"SAMLResponse": base64.b64encode(x.encode()).decode()}) for x in signed]


# --------------------------------------------------------------------------- sharing check


def sharing_check(dep: Deployment, client: dict, user: tuple[str, str]) -> list[str]:
    """Two nodes behave as one: a code from node A's /authorize exchanged at node B, refreshes
    alternating A/B, introspection and userinfo across nodes (faults.py's helpers)."""
    import faults as fl

    a, b = dep.nodes[0].url, dep.nodes[1].url
    d = fl.Deployment(issuer=dep.issuer, a=a, b=b, email=user[0], password=user[1],
                      client_id=client["client_id"], client_secret=client["client_secret"],
                      redirect_uri=REDIRECT_URI, ctl="/bin/false")
    problems, facts = [], []
    m0 = [n.metrics() for n in dep.nodes]
    br = fl.Browser(d)
    send = br.s.request

    def to_a(method, url, *rest, **kw):  # the issuer's URLs (redirects, form actions) sent to node A
        if url.startswith(dep.issuer + "/"):
            url = a + url[len(dep.issuer):]
        return send(method, url, *rest, **kw)

    br.s.request = to_a
    req, code = fl.get_code(d, br, a)
    m1 = [n.metrics() for n in dep.nodes]
    front_b = sum(v - m0[1].get(k, 0) for k, v in m1[1].items() if k[1] not in ("/readyz", "/metrics"))
    front_a = sum(v - m0[0].get(k, 0) for k, v in m1[0].items() if k[1] not in ("/readyz", "/metrics"))
    facts.append(f"sign-in and code at node A ({front_a} requests at A, {front_b} at B)")
    if front_b:
        problems.append(f"the front channel sent to node A reached node B ({front_b} requests)")
    r = fl.exchange(d, b, req, code)
    facts.append(f"that code exchanged at node B: {r.status_code}")
    if r.status_code != 200:
        return problems + [f"exchange at B of a code from A: {fl.short(r)}"] + [f"ok: {f}" for f in facts]
    rt, at = r.json()["refresh_token"], r.json()["access_token"]
    for i, node in enumerate([a, b, a, b]):
        r = d.refresh(node, rt)
        if r.status_code != 200:
            return problems + [f"refresh #{i + 1} at {'AB'[i % 2]}: {fl.short(r)}"] + [f"ok: {f}" for f in facts]
        rt, at = r.json()["refresh_token"], r.json()["access_token"]
    facts.append("its refresh token rotated at A, B, A, B: 200 each")
    r = d.introspect(a, at)  # the last access token came from B
    active = r.status_code == 200 and r.json().get("active") is True
    facts.append(f"B's access token introspected at A: active={active}")
    if not active:
        problems.append(f"introspection at A of B's token: {fl.short(r)}")
    r = d.userinfo(a, at)
    facts.append(f"userinfo at A with it: {r.status_code}")
    if r.status_code != 200:
        problems.append(f"userinfo at A: {fl.short(r)}")
    # the code again, at A: refused, and the grant it made is revoked on both nodes
    r = fl.exchange(d, a, req, code)
    r2 = d.refresh(b, rt)
    facts.append(f"the same code again at A: {r.status_code} {fl.oauth_error(r)}, then the latest refresh "
                 f"token at B: {r2.status_code} {fl.oauth_error(r2)}")
    if fl.oauth_error(r) != "invalid_grant" or fl.oauth_error(r2) != "invalid_grant":
        problems.append(f"code reuse at A: {fl.short(r)}; refresh at B after it: {fl.short(r2)}")
    return problems + [f"ok: {f}" for f in facts]


# --------------------------------------------------------------------------- one configuration


def make_tokens(base: str, client: dict, user: tuple[str, str], count: int) -> tuple[list[str], str]:
    """One sign-in, then `count` code flows on that session: refresh tokens, one access token."""
    op = op_for(base, client["client_id"], client["client_secret"], [user])
    b = sbs.Browser(base)
    first = op.code_flow(b)
    rts = []
    for _ in range(count):
        t = op.code_flow(b)
        rts.append(t["refresh_token"])
    return rts, first["access_token"]


def measure(dep: Deployment, args, results: list, dns_table, dns_addr: str) -> None:
    cfg = dep.cfg
    tmp = dep.dir
    client = dep.cli("client", "create", "--name", "bench web", "--first-party", "--redirect-uri", REDIRECT_URI,
                     "--grant", "authorization_code", "refresh_token")
    users = []
    for i in range(args.users):
        email, pw = f"user{i}@example.com", "scale-" + secrets.token_hex(8)
        dep.cli("user", "create", "--email", email, "--name", f"User {i}", "--password-stdin", stdin=pw)
        users.append((email, pw))
    log(f"[{cfg}] {len(users)} users, a web client" + (f"; issuer {dep.issuer}" if dep.lb else ""))

    if len(dep.nodes) == 2:
        lines = sharing_check(dep, client, users[0])
        bad = [x for x in lines if not x.startswith("ok: ")]
        for x in lines:
            log(f"[{cfg}] sharing: {x}")
        results.append({"config": cfg, "workload": "sharing_check", "errors": len(bad),
                        "error_samples": bad, "facts": [x[4:] for x in lines if x.startswith("ok: ")]})

    saml = None
    if "saml_acs" in args.workloads:
        t = time.time()
        saml = saml_setup(dep, args.saml_pool, dns_table, dns_addr)
        log(f"[{cfg}] SAML connection {saml['connection']}; {len(saml['pool'])} signed Responses "
            f"generated in {time.time() - t:.1f} s")

    base = dep.url
    token_ep = f"{base}/token"
    basic = sbs.basic(client["client_id"], client["client_secret"])
    spec = {"base": base, "client_id": client["client_id"], "secret": client["client_secret"], "users": users}

    for wl in args.workloads:
        rec = {"config": cfg, "workload": wl, "unit": UNITS[wl], "nodes_n": len(dep.nodes)}
        probe = Probe(dep)
        d = args.duration
        if wl in ("refresh", "introspection"):
            conns = args.connections
            if wl == "refresh":
                warm_rts, _ = make_tokens(base, client, users[0], conns)
                warm = os.path.join(tmp, "rt-warm")
                with open(warm, "w") as f:
                    f.write("\n".join(warm_rts) + "\n")
                env = {"BENCH_AUTH": basic, "BENCH_PATH": "/token", "BENCH_TOKENS": warm}
                run_wrk(dep, "refresh_chain.lua", token_ep, conns, conns, args.warmup, env, os.path.join(tmp, "w.json"))
                rts, _ = make_tokens(base, client, users[0], conns)
                with open(os.path.join(tmp, "rt"), "w") as f:
                    f.write("\n".join(rts) + "\n")
                env["BENCH_TOKENS"] = os.path.join(tmp, "rt")
                lua, url, threads = "refresh_chain.lua", token_ep, conns
            else:
                _, at = make_tokens(base, client, users[0], 0)
                env = {"BENCH_METHOD": "POST", "BENCH_BODY": f"token={at}&token_type_hint=access_token",
                       "BENCH_AUTH": basic}
                st, _, body = sbs.Browser(base).request("POST", "/introspect", env["BENCH_BODY"],
                                                        {"Authorization": basic, "Accept": "application/json"})
                if st != 200 or json.loads(body).get("active") is not True:
                    raise SetupError(f"introspection of a fresh access token: {st} {body[:200]!r}")
                run_wrk(dep, "static.lua", f"{base}/introspect", 2, conns, args.warmup, env,
                        os.path.join(tmp, "w.json"))
                lua, url, threads = "static.lua", f"{base}/introspect", 2
            probe.start()
            rec.update(run_wrk(dep, lua, url, threads, conns, d, env, os.path.join(tmp, f"{wl}.json")))
            rec.update(probe.finish())
        else:
            n = args.workers
            specs = []
            for i in range(n):
                s = dict(spec, kind=wl, users=users[i::n] or users)
                if wl == "saml_acs":
                    s.update(pool=saml["pool"][i::n], acs_path=saml["acs_path"], idp_origin=saml["idp_origin"])
                specs.append(s)
            probe.start()
            rec.update(run_workers(specs, d))
            rec.update(probe.finish())
            if wl == "saml_acs" and rec["ops"] >= len(saml["pool"]) - n:
                rec["note"] = "the pre-generated Responses ran out before the duration: the run is shorter"
        rec["errors"] += rec["server_errors"]
        rec["error_samples"] = (rec.get("error_samples") or []) + rec["server_error_samples"]
        rec["ops_per_s"] = rec["ops"] / rec["elapsed"] if rec["elapsed"] > 0 else 0
        rec["per_cpu"] = rec["ops"] / rec["guichet_cpu"] if rec["guichet_cpu"] > 0 else None
        results.append(rec)
        print_line(rec)


def print_line(r: dict) -> None:
    nodes = " ".join(f"{n['name']}:{n['requests'] / r['elapsed']:.0f}req/s,{n['cpu']:.1f}s" for n in r["nodes"])
    extra = ""
    if "sql" in r and r["ops"]:
        extra = f"  SQL {r['sql']['calls'] / r['ops']:.1f}/{r['unit']} redis {r['redis_cmds']['calls'] / r['ops']:.1f}"
    print(f"  {r['config']:<3} {r['workload']:<14}{r['ops_per_s']:>8.0f} {r['unit']}/s  p50 {r['p50_ms']:7.2f}  "
          f"p99 {r['p99_ms']:7.2f} ms  G {r['guichet_cpu']:5.1f}s ({nodes})  {r['per_cpu'] or 0:7.0f}/G-CPU-s  "
          f"pg {r['pg_cpu']:.1f}s redis {r['redis_cpu']:.1f}s lb {r['lb_cpu']:.1f}s loadgen {r['loadgen_cpu']:.1f}s "
          f"foreign {r['foreign_cpu']:.1f}s"
          f"{extra}" + (f"  ERRORS {r['errors']}" if r["errors"] else ""), flush=True)
    for s in r.get("error_samples") or []:
        print(f"      {s}", flush=True)


# --------------------------------------------------------------------------- report


def fmt(v, spec="{:,.0f}", none="—") -> str:
    return none if v is None else spec.format(v).replace(",", " ")


def report(results: list, meta: dict, out: str) -> None:
    rows = [r for r in results if r["workload"] in WORKLOADS]
    by = {(r["config"], r["workload"]): r for r in rows}
    cfgs = [c for c in meta["configs"]]
    o = [f"# Guichet at scale ({meta['mode']} run)\n",
         f"{meta['date']}, {meta['host']}: {meta['nproc']} CPUs ({meta['cpu']}). {meta['guichet_version']}. "
         f"PostgreSQL {meta.get('pg_version', '—')} (private cluster, defaults + pg_stat_statements), "
         f"Redis {meta.get('redis_version', '—')} (private, no persistence), {meta.get('haproxy_version', '')} "
         f"(balance {meta.get('balance')}, keep-alive). "
         f"{meta['duration']} s per workload (wrk runs after {meta['warmup']} s of warm-up); wrk "
         f"{meta['connections']} connections; browser flows: {meta['workers']} Python workers; "
         f"{meta['users']} users. Load generator, nodes, databases and balancer share the machine.\n",
         "Configurations: " + "; ".join(f"**{c}** = {CONFIGS[c]}" for c in cfgs) + ".\n"]
    for wl in WORKLOADS:
        if not any((c, wl) in by for c in cfgs):
            continue
        unit = UNITS[wl]
        o.append(f"## {LABELS[wl]}\n")
        lat = "p50 / p99 ms" + (" (per user; per request)" if wl == "mixed" else "")
        o.append(f"| config | {unit}/s | HTTP req/s | per node req/s | {lat} | Guichet CPU-s (per node) "
                 f"| {unit} per Guichet CPU-s | PG CPU-s | Redis CPU-s | haproxy CPU-s | load generator CPU-s | foreign CPU-s "
                 f"| SQL stmts per {unit} | Redis cmds per {unit} | errors |")
        o.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for c in cfgs:
            r = by.get((c, wl))
            if not r:
                continue
            e = r["elapsed"] or 1
            pn = " / ".join(fmt(n["requests"] / e) for n in r["nodes"])
            cpu = fmt(r["guichet_cpu"], "{:.2f}") + (
                " (" + " / ".join(fmt(n["cpu"], "{:.2f}") for n in r["nodes"]) + ")" if len(r["nodes"]) > 1 else "")
            l = f"{r['p50_ms']:.1f} / {r['p99_ms']:.1f}"
            if wl == "mixed":
                l += f"; {r['req_p50_ms']:.1f} / {r['req_p99_ms']:.1f}"
            sql = fmt(r["sql"]["calls"] / r["ops"], "{:.1f}") if "sql" in r and r["ops"] else "—"
            rc = fmt(r["redis_cmds"]["calls"] / r["ops"], "{:.1f}") if "redis_cmds" in r and r["ops"] else "—"
            o.append(f"| {c} | {fmt(r['ops_per_s'])} | {fmt(r['http_requests'] / e)} | {pn} | {l} | {cpu} | "
                     f"{fmt(r['per_cpu'])} | {fmt(r['pg_cpu'], '{:.2f}')} | {fmt(r['redis_cpu'], '{:.2f}')} | "
                     f"{fmt(r['lb_cpu'], '{:.2f}')} | {fmt(r['loadgen_cpu'], '{:.2f}')} | {fmt(r['foreign_cpu'], '{:.2f}')} | "
                     f"{sql} | {rc} | {r['errors']} |")
        notes = [f"{r['config']}: {r['note']}" for c in cfgs if (r := by.get((c, wl))) and r.get("note")]
        if wl == "mixed":
            for c in cfgs:
                r = by.get((c, wl))
                if r and r.get("by_kind"):
                    notes.append(f"{c}, per request kind: " + "; ".join(
                        f"{k} {v['n']} × p50 {v['p50_ms']:.1f} / p99 {v['p99_ms']:.1f} ms"
                        for k, v in sorted(r["by_kind"].items())))
        for n in notes:
            o.append(f"\n- {n}")
        o.append("")
    # growth
    pairs = [(x, y) for x, y in (("b", "c"), ("b1", "c1")) if x in cfgs and y in cfgs]
    if pairs:
        o.append("## From one node to two\n")
        hdr = "| workload | " + " | ".join(f"{y}/{x} {u}" for x, y in pairs for u in ("req/s", "per Guichet CPU-s")) + " |"
        o.append(hdr)
        o.append("|---|" + "---:|" * (2 * len(pairs)))
        for wl in WORKLOADS:
            cells = []
            for x, y in pairs:
                rx, ry = by.get((x, wl)), by.get((y, wl))
                if rx and ry and rx["ops_per_s"] and rx["per_cpu"] and ry["per_cpu"]:
                    cells += [f"{ry['ops_per_s'] / rx['ops_per_s']:.2f}×", f"{ry['per_cpu'] / rx['per_cpu']:.2f}×"]
                else:
                    cells += ["—", "—"]
            o.append(f"| {LABELS[wl]} | " + " | ".join(cells) + " |")
        o.append("")
    # where the time goes
    o.append("## Where the time goes (per unit of work)\n")
    o.append("| workload | config | Guichet CPU ms | PG CPU ms | Redis CPU ms | haproxy CPU ms | SQL statements "
             "| PG execution ms | Redis commands |")
    o.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for wl in WORKLOADS:
        for c in cfgs:
            r = by.get((c, wl))
            if not r or not r["ops"]:
                continue
            k = 1000 / r["ops"]
            sql = r.get("sql")
            o.append(f"| {wl} | {c} | {r['guichet_cpu'] * k:.2f} | {r['pg_cpu'] * k:.2f} | {r['redis_cpu'] * k:.3f} | "
                     f"{r['lb_cpu'] * k:.3f} | {fmt(sql['calls'] / r['ops'], '{:.1f}') if sql else '—'} | "
                     f"{fmt(sql['ms'] / r['ops'], '{:.2f}') if sql else '—'} | "
                     f"{fmt(r['redis_cmds']['calls'] / r['ops'], '{:.1f}') if sql else '—'} |")
    o.append("")
    o.append("Most frequent SQL statements and Redis commands per unit (first PostgreSQL configuration):\n")
    first_pg = next((c for c in cfgs if c != "a"), None)
    for wl in WORKLOADS:
        r = by.get((first_pg, wl))
        if not r or "sql" not in r or not r["ops"]:
            continue
        top = "; ".join(f"{q['calls'] / r['ops']:.1f}× `{q['query'][:70]}`" for q in r["sql"]["top"][:8]
                        if q["calls"] / r["ops"] >= 0.05)
        red = ", ".join(f"{k} {v / r['ops']:.1f}" for k, v in list(r["redis_cmds"]["top"].items())[:8]
                        if v / r["ops"] >= 0.05)
        o.append(f"- **{wl}** — SQL: {top or '—'}. Redis: {red or '—'}.")
    o.append("")
    checks = [r for r in results if r["workload"] == "sharing_check"]
    for r in checks:
        o.append(f"Sharing check ({r['config']}): " + "; ".join(r.get("facts", [])) +
                 (f". PROBLEMS: {r['error_samples']}" if r["errors"] else "."))
    for r in results:
        if r["workload"] == "node_log":
            o.append(f"\nNode log ({r['config']}, {r['node']}): {r['warnings']} line(s) worth a look — "
                     + "; ".join(f"`{x[:220]}`" for x in r["samples"][:3]))
    if meta.get("argon2"):
        o.append(f"\nargon2id limit on one core (argon2-cffi, m=19456 KiB t=2 p=1): {meta['argon2']:.1f} hashes per "
                 "CPU-second.")
    o.append(f"\nLoad average (1 min) before: {meta['loadavg_start']}, after: {meta['loadavg_end']}. "
             f"Elapsed: {meta['elapsed_s']:.0f} s.\n")
    errs = [r for r in results if r["errors"]]
    if errs:
        o.append("Errors:\n")
        for r in errs:
            o.append(f"- {r['config']} {r['workload']}: {r['errors']}")
            for s in r.get("error_samples") or []:
                o.append(f"  - `{s[:300]}`")
    else:
        o.append("No errors: every response was 2xx (303 inside the browser flows and at the ACS), no socket "
                 "error, no 4xx/5xx in the nodes' /metrics.")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(o) + "\n")
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)


# --------------------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--short", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--duration", type=int)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--users", type=int)
    ap.add_argument("--saml-pool", type=int)
    ap.add_argument("--configs")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    ap.add_argument("--balance", choices=["roundrobin", "leastconn", "random"], default="roundrobin",
                    help="haproxy's algorithm for the two-node configurations")
    ap.add_argument("--version-note", default="")
    ap.add_argument("--keep-tmp", action="store_true")
    a = ap.parse_args()
    a.mode = "short" if a.short else "default"
    a.duration = a.duration or (2 if a.short else 10)
    a.warmup = 1 if a.short else 2
    a.users = a.users or (4 if a.short else 16)
    a.configs = (a.configs or ("a,b,c" if a.short else "a,b,c,b1,c1")).split(",")
    a.workloads = a.workloads.split(",")
    for c in a.configs:
        if c not in CONFIGS:
            ap.error(f"unknown configuration {c} (one of {', '.join(CONFIGS)})")
    for w in a.workloads:
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w} (one of {', '.join(WORKLOADS)})")
    if any(c in ("b1", "c1") for c in a.configs) and (os.cpu_count() or 1) < 2:
        ap.error("b1 and c1 pin nodes to CPUs 0 and 1: this machine has one CPU")
    # enough signed Responses for the run: ~600/s is above what these machines reach
    a.saml_pool = a.saml_pool or (400 if a.short else 600 * a.duration)
    out = a.out or tempfile.mkdtemp(prefix="guichet-scale-results.")
    os.makedirs(out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="guichet-scale.")
    os.chmod(tmp, 0o711)  # the postgres user reaches its data directory inside

    def on_signal(sig, _frame):
        raise SystemExit(128 + sig)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    atexit.register(stop_all)

    load_start = open("/proc/loadavg").read().split()[0]
    if float(load_start) > 0.5 * (os.cpu_count() or 1):
        print(f"scale: warning: load average {load_start} before the run — other work on this machine will "
              "slow req/s (see 'foreign CPU-s' per run)", file=sys.stderr)
    meta = {"mode": a.mode, "duration": a.duration, "warmup": a.warmup, "connections": a.connections,
            "workers": a.workers, "users": a.users, "configs": a.configs, "balance": a.balance, "nproc": os.cpu_count(),
            "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
            "host": platform.platform(), "date": time.strftime("%Y-%m-%d %H:%M %Z"), "loadavg_start": load_start,
            "guichet_version": a.version_note or a.bin, "saml_pool": a.saml_pool,
            "mix": f"per user: sign-in form + code exchange, then {MIX_ROUNDS} x ({MIX_USERINFO} userinfo + 1 refresh)"}
    results: list = []
    rc = 0
    try:
        if not a.short:
            try:
                meta["argon2"] = sbs.argon2_rate(3)[""]
            except ImportError:
                pass
        pg = redis = None
        need_pg = any(c != "a" for c in a.configs)
        if need_pg:
            pg_bin = os.environ.get("PG_BIN") or sorted(
                (d for d in (f"/usr/lib/postgresql/{v}/bin" for v in os.listdir("/usr/lib/postgresql"))
                 if os.path.exists(f"{d}/initdb")), key=lambda p: [int(x) for x in re.findall(r"\d+", p)])[-1]
            pg = Postgres(tmp, pg_bin)
            redis = Redis(tmp)
            meta["pg_version"], meta["redis_version"] = pg.version, redis.version
            log(f"private {pg} (pid {pg.postmaster()}), Redis {redis.version} on 127.0.0.1:{redis.port} (pid {redis.pid})")
        if any(c in ("c", "c1") for c in a.configs):
            meta["haproxy_version"] = subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
        from orgs_rbac import start_dns  # dnslib: TXT records for `guichet domain verify`

        dns_table, dns_addr = start_dns()
        for cfg in a.configs:
            log(f"configuration {cfg}: {CONFIGS[cfg]}")
            dep = None
            try:
                dep = Deployment(cfg, a, tmp, pg if cfg != "a" else None, redis if cfg != "a" else None, dns_addr)
                measure(dep, a, results, dns_table, dns_addr)
            except (SetupError, sbs.Failure, OSError, ValueError, KeyError, subprocess.SubprocessError) as e:
                # this configuration failed: say why, go on with the next one
                print(f"scale: configuration {cfg}: {type(e).__name__}: {e}", file=sys.stderr)
                results.append({"config": cfg, "workload": "setup", "errors": 1,
                                "error_samples": [f"{type(e).__name__}: {str(e)[:500]}"]})
            finally:
                for n in dep.nodes if dep else []:
                    if n.log and os.path.exists(n.log):
                        shutil.copy(n.log, os.path.join(out, f"{cfg}-{n.name}.log"))
                        warn = node_log_findings(n.log)
                        if warn:
                            print(f"scale: {cfg} {n.name}: {len(warn)} log line(s) worth a look, e.g. {warn[0][:300]}",
                                  file=sys.stderr)
                            results.append({"config": cfg, "workload": "node_log", "node": n.name, "errors": 0,
                                            "warnings": len(warn), "samples": warn[:5]})
                if dep:
                    dep.stop()
                stop_nodes()
    except SetupError as e:
        print(f"scale: {e}", file=sys.stderr)
        rc = 1
    finally:
        stop_all()
        if not a.keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"scale: kept {tmp}")
    meta["loadavg_end"] = open("/proc/loadavg").read().split()[0]
    meta["elapsed_s"] = time.time() - T0
    report(results, meta, out)
    summary(results, meta)
    print(f"Written: {out}/results.md, {out}/results.json (and the nodes' logs)")
    if any(r["errors"] for r in results):
        print("scale: errors during the run (see above)", file=sys.stderr)
        rc = 1
    return rc


def summary(results: list, meta: dict) -> None:
    print(f"\n== Guichet at scale ({meta['mode']}, {meta['duration']} s per workload, {meta['nproc']} CPUs) ==")
    print(f"{'workload':<14}" + "".join(f"{c + ' /s':>10}{c + ' /CPU-s':>12}" for c in meta["configs"]))
    by = {(r["config"], r["workload"]): r for r in results}
    for wl in WORKLOADS:
        cells = []
        for c in meta["configs"]:
            r = by.get((c, wl))
            cells.append(f"{fmt(r['ops_per_s']) if r else '—':>10}{fmt(r['per_cpu']) if r else '—':>12}")
        print(f"{wl:<14}" + "".join(cells))
    errs = [r for r in results if r["errors"]]
    print("ERRORS: " + ", ".join(f"{r['config']} {r['workload']} {r['errors']}" for r in errs) if errs else
          "No errors.")


if __name__ == "__main__":
    sys.exit(main())
