#!/usr/bin/env python3
"""Black-box check of the admin REST API (/api/v1) against its own OpenAPI 3.1 document.

Third-party parts only: the `guichet` CLI sets things up as an operator would (organization
`api-check`, its members, developer keys); PyPI `schemathesis` (its CLI, v4) loads the document,
validates it against the OpenAPI 3.1 meta-schema and fuzzes every operation of the live server
(coverage, fuzzing and stateful phases); python-requests makes the few set-up calls; an
http.server on loopback echoes webhook validation challenges so that the organization has real
webhooks and deliveries to be fuzzed; PyPI `cryptography` (pysaml2's) makes the self-signed
certificate of the organization's SAML connections.

The runs, each judged by schemathesis' checks (no 5xx, documented status codes, documented
content types, responses matching their schemas, 405 with Allow for undocumented methods) read
from its NDJSON report, plus what this script expects of every answer:
  own org       the write key, `org` = api-check, real member emails and ids of webhooks,
                invitations, clients, roles and SSO connections made in the set-up, member roles,
                role names, permissions and groups that are valid half the time: every operation
                but POST webhooks (and the accounts only a verified domain makes an organization
                manage: MANAGED_ONLY) reaches real data (a 2xx); creating and deleting organizations
                (ORG_KEY_FORBIDDEN) are 403 to the key, and api-check keeps its slug; an
                undocumented method is a 405 problem+json with Allow
  fuzzed org    the write key, `org` left to schemathesis: only 400/401/404
  no credentials, wrong secret, unknown key, bad signature: every operation 401 problem+json
  other org's key  a valid key of another organization: 404 problem+json under api-check
Operations the document has beyond the ones listed below are tested too; an event stream
(text/event-stream) is read for a second per request, then cut.

The server under test needs GUICHET_WEBHOOKS__ALLOW_LOOPBACK=true (the receiver is on loopback).

Usage: api_schemathesis.py --base URL --bin PATH/TO/guichet [--max-examples N] [--seed N]
Prints PASS/FAIL lines and ends with `N passed, M failed`; exits 1 when a check failed.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
import schemathesis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from checks import Checks, describe

TIMEOUT = 15
ORG = "api-check"
OTHER_ORG = "api-check-other"
PASSWORD = "api-" + secrets.token_hex(8)
DOMAIN = "api-check.test"  # claimed by the organization in the set-up (never verified)
MEMBERS = {"owner": "owner", "admin": "admin", "m1": "member", "m2": "member", "m3": "member", "m4": "member"}
# Declared (CLI, as the operator) for the organization's first client: what its roles may hold.
PERMISSIONS = ["orders:read", "orders:write", "billing:manage"]
ROLES = ("viewer", "temporary")  # the first client's roles made in the set-up: [kept, deleted by the fuzzing]
# The operations the API has at least, by operationId (method, path); the document may have more.
OPERATIONS = {
    "list_orgs": ("GET", "/api/v1/orgs"),
    "create_org": ("POST", "/api/v1/orgs"),
    "get_org": ("GET", "/api/v1/orgs/{org}"),
    "patch_org": ("PATCH", "/api/v1/orgs/{org}"),
    "delete_org": ("DELETE", "/api/v1/orgs/{org}"),
    "list_members": ("GET", "/api/v1/orgs/{org}/members"),
    "put_member": ("PUT", "/api/v1/orgs/{org}/members/{email}"),
    "delete_member": ("DELETE", "/api/v1/orgs/{org}/members/{email}"),
    "list_webhooks": ("GET", "/api/v1/orgs/{org}/webhooks"),
    "create_webhook": ("POST", "/api/v1/orgs/{org}/webhooks"),
    "delete_webhook": ("DELETE", "/api/v1/orgs/{org}/webhooks/{id}"),
    "list_deliveries": ("GET", "/api/v1/orgs/{org}/webhooks/{id}/deliveries"),
    "rotate_webhook_secret": ("POST", "/api/v1/orgs/{org}/webhooks/{id}/secret"),
    "redeliver": ("POST", "/api/v1/orgs/{org}/webhooks/{id}/deliveries/{delivery}/redeliver"),
    "list_users": ("GET", "/api/v1/users"),
    "create_user": ("POST", "/api/v1/users"),
    "get_user": ("GET", "/api/v1/users/{id}"),
    "delete_user": ("DELETE", "/api/v1/users/{id}"),
    "list_invitations": ("GET", "/api/v1/orgs/{org}/invitations"),
    "create_invitation": ("POST", "/api/v1/orgs/{org}/invitations"),
    "revoke_invitation": ("DELETE", "/api/v1/orgs/{org}/invitations/{id}"),
    "resend_invitation": ("POST", "/api/v1/orgs/{org}/invitations/{id}/resend"),
    "suspend_user": ("POST", "/api/v1/users/{id}/suspend"),
    "resume_user": ("POST", "/api/v1/users/{id}/resume"),
    "reset_factors": ("POST", "/api/v1/users/{id}/reset-factors"),
    "list_sessions": ("GET", "/api/v1/users/{id}/sessions"),
    "revoke_sessions": ("DELETE", "/api/v1/users/{id}/sessions"),
    "revoke_session": ("DELETE", "/api/v1/users/{id}/sessions/{sid}"),
    "list_domains": ("GET", "/api/v1/orgs/{org}/domains"),
    "put_domain": ("PUT", "/api/v1/orgs/{org}/domains/{domain}"),
    "verify_domain": ("POST", "/api/v1/orgs/{org}/domains/{domain}/verify"),
    "delete_domain": ("DELETE", "/api/v1/orgs/{org}/domains/{domain}"),
    "events_stream": ("GET", "/api/v1/events/stream"),
    "list_roles": ("GET", "/api/v1/orgs/{org}/roles"),
    "create_role": ("POST", "/api/v1/orgs/{org}/roles"),
    "get_role": ("GET", "/api/v1/orgs/{org}/roles/{role}"),
    "put_role": ("PUT", "/api/v1/orgs/{org}/roles/{role}"),
    "delete_role": ("DELETE", "/api/v1/orgs/{org}/roles/{role}"),
    "list_permissions": ("GET", "/api/v1/orgs/{org}/permissions"),
    "grant_role": ("PUT", "/api/v1/orgs/{org}/members/{email}/roles/{role}"),
    "revoke_role": ("DELETE", "/api/v1/orgs/{org}/members/{email}/roles/{role}"),
    "list_clients": ("GET", "/api/v1/orgs/{org}/clients"),
    "create_client": ("POST", "/api/v1/orgs/{org}/clients"),
    "get_client": ("GET", "/api/v1/orgs/{org}/clients/{client_id}"),
    "put_client": ("PUT", "/api/v1/orgs/{org}/clients/{client_id}"),
    "delete_client": ("DELETE", "/api/v1/orgs/{org}/clients/{client_id}"),
    "rotate_secret": ("POST", "/api/v1/orgs/{org}/clients/{client_id}/secret"),
    "list_connections": ("GET", "/api/v1/orgs/{org}/connections"),
    "create_connection": ("POST", "/api/v1/orgs/{org}/connections"),
    "get_connection": ("GET", "/api/v1/orgs/{org}/connections/{id}"),
    "patch_connection": ("PATCH", "/api/v1/orgs/{org}/connections/{id}"),
    "delete_connection": ("DELETE", "/api/v1/orgs/{org}/connections/{id}"),
    "map_group": ("PUT", "/api/v1/orgs/{org}/connections/{id}/groups/{group}/roles/{role}"),
    "unmap_group": ("DELETE", "/api/v1/orgs/{org}/connections/{id}/groups/{group}"),
    "audit_log": ("GET", "/api/v1/orgs/{org}/audit"),
    "audit_export": ("GET", "/api/v1/orgs/{org}/audit/export"),
    "platform_log": ("GET", "/api/v1/audit"),
    "platform_export": ("GET", "/api/v1/audit/export"),
    "platform_permissions": ("GET", "/api/v1/permissions"),
    "put_permission": ("PUT", "/api/v1/clients/{client_id}/permissions/{name}"),
    "delete_permission": ("DELETE", "/api/v1/clients/{client_id}/permissions/{name}"),
    "platform_roles": ("GET", "/api/v1/roles"),
    "create_platform_role": ("POST", "/api/v1/roles"),
    "get_platform_role": ("GET", "/api/v1/roles/{role}"),
    "put_platform_role": ("PUT", "/api/v1/roles/{role}"),
    "delete_platform_role": ("DELETE", "/api/v1/roles/{role}"),
}
# An organization's key reaches only the accounts it manages: its members with an address of a
# domain it verified. The set-up cannot publish a TXT record (api-check.test stays unverified),
# so these answer 404 (creation 403) to the key, never 2xx; they are fuzzed all the same (no 5xx,
# documented statuses), and tests/api/admin_api_users.rs covers their 2xx answers.
# Not delete_user: an account that is not there (any more) is deleted already, 204 (the own-org
# run gives it an unused UUID half the time). Everything else of the organization's (members,
# webhooks, invitations, domains, clients, roles and their grants, SSO connections and their
# groups, the audit log) is made in the set-up or given valid values often enough to answer 2xx.
MANAGED_ONLY = {"create_user", "get_user", "suspend_user", "resume_user", "reset_factors", "list_sessions",
                "revoke_sessions", "revoke_session"}
# The platform's catalogue (permissions each client declares, the platform's roles) is a platform
# admin's alone: an organization's key finds nothing there, 404 whatever it asks (judged so), never 2xx.
PLATFORM_ONLY = {"platform_permissions", "put_permission", "delete_permission", "platform_roles",
                 "create_platform_role", "get_platform_role", "put_platform_role", "delete_platform_role"}
# Creating and deleting organizations is the platform's (and, for deleting, an owner's): an
# organization's key gets 403 problem+json for both, whatever it asks (judged so), never 2xx. So
# the fuzzing cannot delete api-check (nor, with the key, any throwaway organization: every other
# one is 404 to it); tests/api/admin_api_orgs.rs covers their 2xx answers.
ORG_KEY_FORBIDDEN = {"create_org", "delete_org"}
SCHEMATHESIS_CHECKS = ["not_a_server_error", "status_code_conformance", "content_type_conformance",
                       "response_schema_conformance", "unsupported_method"]
PROBLEM_JSON = "application/problem+json"


def email(name: str) -> str:
    return f"{name}@{DOMAIN}"


# ---------------------------------------------------------------- the CLI


class CLI:
    def __init__(self, binary: str) -> None:
        self.binary = binary

    def json(self, *args: str, stdin: str | None = None) -> dict:
        p = subprocess.run([self.binary, *args, "--json"], input=stdin, capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError(f"guichet {' '.join(args)} failed ({p.returncode}): {p.stderr.strip()}")
        return json.loads(p.stdout)


# ---------------------------------------------------------------- a webhook receiver (http.server)


class Receiver:
    """Answers validation requests by echoing the challenge, and every delivery with 200."""

    def __init__(self) -> None:
        self.deliveries = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    msg = json.loads(body)
                except ValueError:
                    msg = {}
                if isinstance(msg, dict) and msg.get("type") == "webhook.validation":
                    answer = {"challenge": msg.get("challenge")}
                else:
                    receiver.deliveries += 1
                    answer = {"ok": True}
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"


# ---------------------------------------------------------------- set-up


@dataclass
class Operation:
    id: str
    method: str
    path: str
    stream: bool  # answers text/event-stream (read for a second, then cut)

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def in_org(self) -> bool:
        return "{org}" in self.path


@dataclass
class Setup:
    key: tuple[str, str] | None = None  # (DevKey, DevSecret) of api-check, write
    other_key: tuple[str, str] | None = None  # of api-check-other, write
    webhooks: list[str] = field(default_factory=list)  # ids: [kept, deleted by the fuzzing]
    invitations: list[str] = field(default_factory=list)  # ids: [sent again, revoked by the fuzzing]
    clients: list[str] = field(default_factory=list)  # client_ids: [kept (its roles), deleted by the fuzzing]
    roles: list[str] = field(default_factory=list)  # ids (ROLES): [kept, deleted by the fuzzing]
    connections: list[str] = field(default_factory=list)  # SAML connection ids: [kept, deleted by the fuzzing]
    certificate: str = ""  # the SAML IdP's (self-signed), base64 DER
    delivery: int | None = None  # a delivery attempt of webhooks[0]: sent again by the fuzzing

    @property
    def complete(self) -> bool:
        return bool(self.key and self.other_key and len(self.webhooks) == 2 and len(self.invitations) == 2
                    and len(self.clients) == 2 and len(self.roles) == 2 and len(self.connections) == 2
                    and self.delivery is not None)


def self_signed_certificate() -> str:
    """A SAML IdP's signing certificate (self-signed, P-256), base64 DER as metadata carries it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"idp.{DOMAIN}")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def saml_idp(name: str) -> dict:
    """entity_id and sso_url of a SAML IdP (manual connections: nothing is fetched)."""
    return {"entity_id": f"https://idp.{DOMAIN}/saml/{name}", "sso_url": f"https://idp.{DOMAIN}/saml/{name}/sso"}


def scenario_setup(c: Checks, cli: CLI, base: str, receiver: Receiver, s: Setup):
    for name in MEMBERS:
        cli.json("user", "create", "--email", email(name), "--name", f"API {name}", "--password-stdin", stdin=PASSWORD)
    cli.json("org", "create", "--name", "API check", "--slug", ORG, "--owner", email("owner"))
    for name, role in MEMBERS.items():
        if role != "owner":
            cli.json("org", "member", "add", "--org", ORG, "--email", email(name), "--role", role)
    k = cli.json("devkey", "create", "--org", ORG, "--name", "schemathesis", "--scope", "write")
    s.key = (k["key"], k["secret"])
    cli.json("domain", "add", "--org", ORG, "--domain", DOMAIN)
    cli.json("org", "create", "--name", "API check (other)", "--slug", OTHER_ORG)
    k = cli.json("devkey", "create", "--org", OTHER_ORG, "--name", "schemathesis-other", "--scope", "write")
    s.other_key = (k["key"], k["secret"])

    api = requests.Session()
    api.auth = s.key
    r = api.get(f"{base}/api/v1/orgs/{ORG}", timeout=TIMEOUT)
    c.require("the write key reads its organization (200, its slug)",
              r.status_code == 200 and r.json().get("slug") == ORG, describe(r))
    # Two webhooks through the API: the fuzzing lists the first one's deliveries and deletes the second.
    for path in ("/kept", "/deleted"):
        r = api.post(f"{base}/api/v1/orgs/{ORG}/webhooks", timeout=TIMEOUT,
                     json={"url": receiver.base + path, "events": ["membership.changed"]})
        c.require(f"POST webhooks ({path}): 201 with the webhook and its secret",
                  r.status_code == 201 and r.json().get("webhook", {}).get("id") and
                  r.json().get("secret", "").startswith("whsec_"), describe(r))
        s.webhooks.append(r.json()["webhook"]["id"])
    # Two invitations through the API: the fuzzing sends the first again and revokes the second.
    for name in ("inv1", "inv2"):
        r = api.post(f"{base}/api/v1/orgs/{ORG}/invitations", json={"email": email(name)}, timeout=TIMEOUT)
        c.require(f"POST invitations ({name}): 201 with the invitation",
                  r.status_code == 201 and r.json().get("status") == "pending", describe(r))
        s.invitations.append(r.json()["id"])
    # A membership change through the API, delivered to both webhooks: deliveries to list.
    r = api.put(f"{base}/api/v1/orgs/{ORG}/members/{email('m2')}", json={"role": "admin"}, timeout=TIMEOUT)
    c.check("PUT a member's role: 200 with an ETag", r.status_code == 200 and bool(r.headers.get("ETag")), describe(r))
    deliveries = f"{base}/api/v1/orgs/{ORG}/webhooks/{s.webhooks[0]}/deliveries"
    deadline = time.monotonic() + 15
    while True:
        r = api.get(deliveries, timeout=TIMEOUT)
        if (r.status_code == 200 and r.json()) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    c.check("the change is delivered and listed in the webhook's deliveries",
            r.status_code == 200 and isinstance(r.json(), list) and len(r.json()) > 0, describe(r))
    if r.status_code == 200 and isinstance(r.json(), list) and r.json():
        s.delivery = r.json()[0]["id"]

    # Two clients of the organization through the API: the fuzzing reads, replaces and rotates the
    # secret of the first (which the roles are made for) and deletes the second.
    for name in ("kept", "deleted"):
        r = api.post(f"{base}/api/v1/orgs/{ORG}/clients", timeout=TIMEOUT,
                     json={"name": f"API check {name}", "redirect_uris": [f"https://app.{DOMAIN}/{name}/callback"]})
        c.require(f"POST clients ({name}): 201 with the client and its secret, once",
                  r.status_code == 201 and r.json().get("client", {}).get("client_id") and
                  bool(r.json().get("client_secret")), describe(r))
        s.clients.append(r.json()["client"]["client_id"])
    # Its permissions are declared by the operator (the CLI): an organization's key cannot.
    cli.json("permission", "add", "--client", s.clients[0], *PERMISSIONS)
    r = api.get(f"{base}/api/v1/orgs/{ORG}/permissions", timeout=TIMEOUT)
    c.require("GET permissions: the organization's client with the permissions declared for it",
              r.status_code == 200 and any(p.get("client_id") == s.clients[0] and
                                           set(PERMISSIONS) <= set(p.get("permissions", [])) for p in r.json()),
              describe(r))
    # Two roles of that client: the fuzzing reads, changes, grants (to m3) and maps (to an IdP group)
    # the first, and deletes the second.
    for name in ROLES:
        r = api.post(f"{base}/api/v1/orgs/{ORG}/roles", timeout=TIMEOUT,
                     json={"client_id": s.clients[0], "name": name, "permissions": PERMISSIONS[:1]})
        c.require(f"POST roles ({name}): 201 with the organization's own role",
                  r.status_code == 201 and r.json().get("id") and r.json().get("own") is True, describe(r))
        s.roles.append(r.json()["id"])
    r = api.put(f"{base}/api/v1/orgs/{ORG}/members/{email('m3')}/roles/{s.roles[0]}", timeout=TIMEOUT)
    c.check("PUT a member's role grant: 200 with the member holding it",
            r.status_code == 200 and f"{s.clients[0]}/{ROLES[0]}" in r.json().get("roles", []), describe(r))
    # Two SAML connections made by hand (entityID, SSO URL, certificate; connections from URLs go
    # through the outbound policy, which refuses loopback): the fuzzing reads, changes and maps
    # groups of the first, and deletes the second.
    s.certificate = self_signed_certificate()
    for name in ("kept", "deleted"):
        r = api.post(f"{base}/api/v1/orgs/{ORG}/connections", timeout=TIMEOUT,
                     json={"type": "saml", "name": f"API check {name}", **saml_idp(name), "certificate": s.certificate})
        c.require(f"POST connections (SAML, {name}): 201 with the values to give the IdP",
                  r.status_code == 201 and r.json().get("id") and r.json().get("type") == "saml" and
                  bool(r.json().get("acs_url")), describe(r))
        s.connections.append(r.json()["id"])


# ---------------------------------------------------------------- the OpenAPI document


def scenario_document(c: Checks, base: str, api: list[Operation]):
    url = f"{base}/api/v1/openapi.json"
    r = requests.get(url, timeout=TIMEOUT)
    c.require("GET /api/v1/openapi.json: 200 JSON, no credentials needed",
              r.status_code == 200 and r.headers.get("Content-Type", "").startswith("application/json"), describe(r))
    doc = r.json()
    c.check("the document is OpenAPI 3.1.x", str(doc.get("openapi", "")).startswith("3.1."), f"openapi: {doc.get('openapi')!r}")

    schema = schemathesis.openapi.from_url(url)
    try:
        schema.validate()
        c.check("schemathesis: the document is valid against the OpenAPI 3.1 meta-schema", True)
    except Exception as e:  # jsonschema_rs.ValidationError: the first violation
        c.check("schemathesis: the document is valid against the OpenAPI 3.1 meta-schema", False,
                " ".join(str(e).split())[:600])
    loaded, broken = [], []
    for result in schema.get_all_operations():
        try:
            op = result.ok()
            loaded.append((op.method.upper(), op.path))
        except Exception as e:  # schemathesis could not make a test of this operation
            broken.append(str(e)[:200])
    ops = [(m.upper(), p, o) for p, item in doc.get("paths", {}).items() for m, o in item.items()
           if m in ("get", "put", "post", "delete", "patch", "head", "options", "trace")]
    c.check(f"schemathesis loads every operation of the document ({len(ops)}, none broken)",
            not broken and sorted(loaded) == sorted((m, p) for m, p, _ in ops), f"loaded {sorted(loaded)}, broken {broken}")
    ids = {o.get("operationId"): (m, p) for m, p, o in ops}
    c.check("the document has the API's operations (by operationId)", OPERATIONS.items() <= ids.items(),
            f"missing {sorted(set(OPERATIONS.items()) - set(ids.items()))}; the document has {json.dumps(ids)}")
    more = sorted(f"{i} ({m} {p})" for i, (m, p) in ids.items() if i not in OPERATIONS)
    if more:
        print(f"   also in the document, tested too: {', '.join(more)}", flush=True)
    api += [Operation(o.get("operationId", f"{m} {p}"), m, p,
                      any("text/event-stream" in r.get("content", {}) for r in o.get("responses", {}).values()))
            for m, p, o in ops]
    c.check("every operation documents its responses", all(o.get("responses") for _, _, o in ops),
            str([f"{m} {p}" for m, p, o in ops if not o.get("responses")]))
    undescribed = [f"{m} {p} {st}" for m, p, o in ops for st, resp in o.get("responses", {}).items()
                   if "description" not in resp]
    c.check("every response has its (required) description", not undescribed,
            f"{len(undescribed)} responses without one: {', '.join(undescribed)}")
    defined = doc.get("components", {}).get("securitySchemes", {})
    basic = defined.get("basic", {})
    c.check("security scheme `basic` is HTTP Basic", basic.get("type") == "http" and basic.get("scheme", "").lower() == "basic",
            json.dumps(defined))
    unsecured = [f"{m} {p}" for m, p, o in ops if not (o.get("security") or doc.get("security"))]
    c.check("every operation requires a security scheme", not unsecured, str(unsecured))
    used = {name for _, _, o in ops for req in (o.get("security") or doc.get("security") or []) for name in req}
    c.check("every security scheme an operation names exists", used and used <= set(defined),
            f"named {sorted(used)}, defined {sorted(defined)}")
    wrong_type = [f"{m} {p} {st}: {sorted(resp.get('content', {}))}" for m, p, o in ops
                  for st, resp in o.get("responses", {}).items()
                  if st[:1] in "45" and PROBLEM_JSON not in resp.get("content", {})]
    c.check(f"error responses are documented as {PROBLEM_JSON} (what the API sends)", not wrong_type,
            f"{len(wrong_type)} are not, e.g. {'; '.join(wrong_type[:3])}")


# ---------------------------------------------------------------- schemathesis runs


def toml_value(v) -> str:
    """A TOML value: strings as basic strings (JSON's escapes are TOML's), tables inline."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(type(v))


def toml(config: dict) -> str:
    """Top-level keys and tables (one level of nesting), and `operations` as an array of tables."""
    lines = [f"{json.dumps(k)} = {toml_value(v)}" for k, v in config.items()
             if k != "operations" and not isinstance(v, dict)]
    for k, v in config.items():
        if isinstance(v, dict):
            lines.append(f"[{k}]")
            lines += [f"{json.dumps(kk)} = {toml_value(vv)}" for kk, vv in v.items()]
    for op in config.get("operations", []):
        lines.append("[[operations]]")
        lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in op.items()]
    return "\n".join(lines) + "\n"


@dataclass
class Exchange:
    """One request schemathesis made, its answer, and its checks' verdicts."""
    phase: str
    operation: str  # "GET /api/v1/orgs/{org}"
    method: str
    uri: str
    request_body: bytes | None
    status: int | None
    content_type: str
    headers: dict
    body: bytes
    checks: list[dict]

    def show(self) -> str:
        req = f"{self.method} {self.uri}"
        if self.request_body:
            req += f" body {self.request_body[:160].decode('utf-8', 'replace')!r}"
        got = self.body[:220].decode("utf-8", "replace")
        return f"[{self.phase}] {req} -> {self.status} {self.content_type or '(no content-type)'} {got!r}"


def decode(content) -> bytes:
    if not content:
        return b""
    if "$base64" in content:
        return base64.b64decode(content["$base64"])
    return str(content.get("string", "")).encode()


@dataclass
class Run:
    name: str
    exchanges: list[Exchange]
    report: dict  # the JSON run report
    errors: list[str]
    stdout: str


def run_schemathesis(name: str, base: str, workdir: Path, api: list[Operation], config: dict,
                     args: argparse.Namespace, max_examples: int, *cli_args: str) -> Run:
    """One `schemathesis run` with this config (TOML) over the operations of `api`; its NDJSON report read."""
    d = workdir / name.replace(" ", "-").replace("'", "")
    d.mkdir(parents=True)
    # Event streams never end: read each for a second (schemathesis keeps what arrived and judges it).
    streams = [{"include-operation-id": o.id, "request-timeout": 1, "max-stream-events": 2,
                "generation": {"max-examples": min(3, max_examples)}} for o in api if o.stream]
    config = {
        "workers": 2,
        "continue-on-failure": True,
        "request-timeout": 10,
        "suppress-health-check": ["all"],
        **config,
        "generation": {"max-examples": max_examples, "database": "none", **config.get("generation", {})},
        "cache": {"enabled": False},
        "operations": config.get("operations", []) + streams,
    }
    if args.seed is not None:
        config["seed"] = args.seed
    (d / "schemathesis.toml").write_text(toml(config))
    exe = Path(sys.executable).with_name("schemathesis")
    cmd = [str(exe), "--config-file", str(d / "schemathesis.toml"), "--no-color", "run", f"{base}/api/v1/openapi.json",
           "--url", base, "--checks", ",".join(SCHEMATHESIS_CHECKS), "--report", "ndjson,json",
           "--report-ndjson-path", str(d / "events.ndjson"), "--report-json-path", str(d / "report.json"), *cli_args]
    started = time.monotonic()
    p = subprocess.run(cmd, cwd=d, capture_output=True, text=True, timeout=300)
    exchanges, errors = [], []
    events = d / "events.ndjson"
    for line in events.read_text().splitlines() if events.exists() else []:
        event = json.loads(line)
        kind, data = next(iter(event.items()))
        if "Error" in kind:
            errors.append(f"{kind}: {json.dumps(data)[:400]}")
        if kind != "ScenarioFinished":
            continue
        rec = data.get("recorder", {})
        for cid, ia in rec.get("interactions", {}).items():
            case = rec.get("cases", {}).get(cid, {}).get("value", {})
            resp = ia.get("response") or {}
            hdrs = {k.lower(): v[0] for k, v in (resp.get("headers") or {}).items() if v}
            req = ia.get("request", {})
            exchanges.append(Exchange(
                phase=data.get("phase", "?"),
                operation=f"{case.get('method', req.get('method', '?')).upper()} {case.get('path', '?')}",
                method=req.get("method", "?"), uri=req.get("uri", "?"),
                request_body=decode(req.get("body")) or None,
                status=resp.get("status_code"), content_type=hdrs.get("content-type", ""), headers=hdrs,
                body=decode(resp.get("content")), checks=rec.get("checks", {}).get(cid, [])))
    report_path = d / "report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    if not events.exists() or not report:
        errors.append(f"schemathesis exited {p.returncode} without its reports: {(p.stderr or p.stdout)[-800:]}")
    statuses = Counter(e.status for e in exchanges)
    print(f"   {name}: {len(exchanges)} requests in {time.monotonic() - started:.0f} s (seed {report.get('seed')}), "
          f"statuses {dict(sorted(statuses.items(), key=str))}", flush=True)
    return Run(name, exchanges, report, errors, p.stdout)


def judge_schemathesis(c: Checks, run: Run, api: list[Operation]) -> None:
    """The run itself (every operation tested, no errors) and one verdict per schemathesis check."""
    ops = run.report.get("operations", {})
    want = {o.label for o in api}
    seen = {e.operation for e in run.exchanges} & want
    # An internal error of the tool itself (CPython's "AST constructor recursion depth mismatch",
    # raised while schemathesis generates a case) says nothing of Guichet: it is shown, not judged.
    # The JSON report counts it among its errors by title only ("Runtime Error"): its errors are
    # judged as far as the NDJSON events (which carry the messages) do not account for them.
    tool_bugs = ("AST constructor recursion depth mismatch",)
    errors = [e for e in run.errors if not any(b in e for b in tool_bugs)]
    reported = run.report.get("errors", [])
    if sum(e.get("count", 1) if isinstance(e, dict) else 1 for e in reported) > len(run.errors):
        errors.append(f"the report counts more errors than its events: {reported}")
    c.check(f"{run.name}: schemathesis tested the {len(api)} operations, without errors",
            ops.get("tested") == len(api) and not errors and seen == want,
            f"tested {ops.get('tested')}, never requested {sorted(want - seen)}, errors {errors}\n{run.stdout[-1500:]}")
    for check in SCHEMATHESIS_CHECKS:
        failures: dict[str, list[tuple[Exchange, str]]] = defaultdict(list)
        ran = 0
        for e in run.exchanges:
            for v in e.checks:
                if v.get("name") != check:
                    continue
                ran += 1
                if v.get("status") == "failure":
                    f = (v.get("failure_info") or {}).get("failure", {})
                    msg = " ".join(f"{f.get('code', '')} {f.get('title', '')}: {f.get('message', '')}".split())
                    failures[e.operation].append((e, msg))
        why = "".join(
            f"\n   {op}: {len(fs)} failed; " + " | ".join(sorted({m for _, m in fs}))[:400]
            + f"\n     e.g. {fs[0][0].show()}" for op, fs in sorted(failures.items()))
        # unsupported_method judges only the coverage phase's undocumented methods
        c.check(f"{run.name}: {check} ({ran} responses)", (ran > 0 or check == "unsupported_method") and not failures,
                why or "no response was checked")


def judge_expected(c: Checks, run: Run, api: list[Operation], what: str, ok, limit: int = 8) -> None:
    """A verdict of this script over every answer to a documented operation: ok(exchange) -> problem or None."""
    labels = {o.label for o in api}
    mine = [e for e in run.exchanges if e.operation in labels]
    bad = [(e, why) for e in mine if (why := ok(e))]
    by_op: dict[str, list] = defaultdict(list)
    for e, why in bad:
        by_op[e.operation].append((e, why))
    detail = "".join(f"\n   {op}: {len(v)} of {sum(e.operation == op for e in mine)}, e.g. {v[0][1]}: {v[0][0].show()}"
                     for op, v in sorted(by_op.items())[:limit])
    c.check(f"{run.name}: {what} ({len(mine)} answers)", bool(mine) and not bad, detail or "no request was made")


def problem(e: Exchange, status: int) -> str | None:
    """Why the answer is not a `status` problem+json, or None."""
    if e.status != status:
        return f"status {e.status}"
    if not e.content_type.startswith(PROBLEM_JSON):
        return f"content-type {e.content_type!r}"
    try:
        body = json.loads(e.body)
    except ValueError:
        return "a body that is not JSON"
    if not (isinstance(body, dict) and body.get("status") == status and body.get("title")):
        return "a problem without its status or title"
    if status == 401 and "www-authenticate" not in e.headers:
        return "no WWW-Authenticate"
    return None


def scenario_fuzz(c: Checks, base: str, api: list[Operation], s: Setup, args: argparse.Namespace, workdir: Path):
    n = args.max_examples
    basic = {"username": s.key[0], "password": s.key[1]}
    in_org = [o for o in api if o.in_org]
    only_org = ("--include-path-regex", r"\{org\}")

    # 1. The key's own organization, real emails and ids of what the set-up made, values that
    # are valid half the time (member roles, role names, permissions, IdP groups): most cases
    # reach real data. Stateful too (links from lists to updates and deletes).
    half = 0.5
    run = run_schemathesis("own org", base, workdir, api, {
        "auth": {"basic": basic},
        "parameters": {"path.org": ORG},
        "dictionaries": {
            "roles": {"values": ["admin", "member", "owner"]},
            "permissions": {"values": PERMISSIONS},
            "role-names": {"values": ["editor", "auditor", "support", "billing", "ops:on-call", "team/a"]},
            "kept-role-name": {"values": [ROLES[0]]},
            "groups": {"values": ["engineering", "CN=Ops,OU=Groups,DC=api-check,DC=test"]},
            "absent-users": {"values": [str(uuid.uuid4())]},
            "saml": {"values": ["saml"]},
        },
        "operations": [
            {"include-operation-id": "put_member",
             "parameters": {"path.email": email("m1"), "body.role": {"dictionary": "roles", "probability": 0.5}}},
            {"include-operation-id": "delete_member", "parameters": {"path.email": email("m4")}},
            {"include-operation-id": "list_deliveries", "parameters": {"path.id": s.webhooks[0]}},
            {"include-operation-id": "delete_webhook", "parameters": {"path.id": s.webhooks[1]}},
            {"include-operation-id": "rotate_webhook_secret", "parameters": {"path.id": s.webhooks[0]}},
            {"include-operation-id": "redeliver",
             "parameters": {"path.id": s.webhooks[0], "path.delivery": s.delivery}},
            # The organization's settings: its slug stays (every other operation names it).
            {"include-operation-id": "patch_org", "parameters": {"body.slug": ORG}},
            # A domain of the organization's (claimed in the set-up; its check fails closed, no
            # record is published: 200 with the reason); another one to claim and remove.
            {"include-operation-id": "verify_domain", "parameters": {"path.domain": DOMAIN}},
            {"include-operation-id": "put_domain", "parameters": {"path.domain": "claimed.api-check.test"}},
            {"include-operation-id": "delete_domain", "parameters": {"path.domain": "claimed.api-check.test"}},
            {"include-operation-id": "resend_invitation", "parameters": {"path.id": s.invitations[0]}},
            {"include-operation-id": "revoke_invitation", "parameters": {"path.id": s.invitations[1]}},
            # No account has this id: deleted already (204).
            {"include-operation-id": "delete_user",
             "parameters": {"path.id": {"dictionary": "absent-users", "probability": half}}},
            # Clients: the first read, replaced, its secret rotated; the second deleted.
            {"include-operation-id": "get_client", "parameters": {"path.client_id": s.clients[0]}},
            {"include-operation-id": "put_client", "parameters": {"path.client_id": s.clients[0]}},
            {"include-operation-id": "rotate_secret", "parameters": {"path.client_id": s.clients[0]}},
            {"include-operation-id": "delete_client", "parameters": {"path.client_id": s.clients[1]}},
            # Roles: only for a client of GET .../permissions (the first client), a name of 1 to 64
            # of `A-Z a-z 0-9 : . _ - /`, permissions it declared.
            {"include-operation-id": "create_role",
             "parameters": {"body.client_id": s.clients[0],
                            "body.name": {"dictionary": "role-names", "probability": half},
                            "body.permissions[*]": {"dictionary": "permissions", "probability": half}}},
            {"include-operation-id": "get_role", "parameters": {"path.role": s.roles[0]}},
            # A role keeps its name: `name`, when given, is its own.
            {"include-operation-id": "put_role",
             "parameters": {"path.role": s.roles[0],
                            "body.name": {"dictionary": "kept-role-name", "probability": half},
                            "body.permissions[*]": {"dictionary": "permissions", "probability": half}}},
            {"include-operation-id": "delete_role", "parameters": {"path.role": s.roles[1]}},
            {"include-operation-id": "grant_role", "parameters": {"path.email": email("m3"), "path.role": s.roles[0]}},
            {"include-operation-id": "revoke_role", "parameters": {"path.email": email("m3"), "path.role": s.roles[0]}},
            # Connections: SAML by hand (entity_id, sso_url, certificate: what the fuzzer adds besides,
            # e.g. OIDC's issuer or a metadata URL, makes it a 400); the first read, changed, its
            # groups mapped to the kept role and unmapped; the second deleted.
            # (The fuzzer adds OIDC's fields to most bodies: more examples, for a few 201s.)
            {"include-operation-id": "create_connection", "generation": {"max-examples": 2 * n},
             "parameters": {"body.type": {"dictionary": "saml", "probability": half},
                            **{f"body.{k}": v for k, v in saml_idp("fuzzed").items()},
                            "body.certificate": s.certificate}},
            {"include-operation-id": "get_connection", "parameters": {"path.id": s.connections[0]}},
            {"include-operation-id": "patch_connection", "parameters": {"path.id": s.connections[0]}},
            {"include-operation-id": "delete_connection", "parameters": {"path.id": s.connections[1]}},
            {"include-operation-id": "map_group",
             "parameters": {"path.id": s.connections[0], "path.role": s.roles[0],
                            "path.group": {"dictionary": "groups", "probability": half}}},
            {"include-operation-id": "unmap_group",
             "parameters": {"path.id": s.connections[0], "path.group": {"dictionary": "groups", "probability": half}}},
        ],
    }, args, n)
    judge_schemathesis(c, run, api)
    ok2xx = {e.operation for e in run.exchanges if e.status and 200 <= e.status < 300}
    missing = [o.label for o in api if o.id != "create_webhook"
               and o.id not in MANAGED_ONLY | PLATFORM_ONLY | ORG_KEY_FORBIDDEN and o.label not in ok2xx]
    c.check("own org: every operation but POST webhooks, the managed accounts', the platform's and creating or "
            "deleting organizations reached real data (answered 2xx at least once)", not missing, f"never 2xx: {missing}")
    forbidden = [o for o in api if o.id in ORG_KEY_FORBIDDEN]
    if forbidden:
        judge_expected(c, run, forbidden, "creating or deleting an organization answers 403 problem+json to its key",
                       lambda e: problem(e, 403))
    r = requests.get(f"{base}/api/v1/orgs/{ORG}", auth=s.key, timeout=TIMEOUT)
    c.check(f"own org: {ORG} is still there, with its slug, after the fuzzing",
            r.status_code == 200 and r.json().get("slug") == ORG, describe(r))
    platform = [o for o in api if o.id in PLATFORM_ONLY]
    if platform:
        judge_expected(c, run, platform, "the platform's catalogue answers 404 problem+json to an organization's key",
                       lambda e: problem(e, 404))
    labels = {o.label for o in api}
    probes = [e for e in run.exchanges if e.operation not in labels]
    bad = [e for e in probes if problem(e, 405) or "allow" not in e.headers]
    c.check(f"own org: an undocumented method answers 405 problem+json with Allow ({len(probes)} requests)",
            bool(probes) and not bad,
            f"{len(bad)} do not, e.g. {bad[0].show()}; Allow: {bad[0].headers.get('allow')}" if bad else "none was made")

    # 2. The organization left to fuzzing (operations under an organization only): never the
    # key's, so 400/401/404, never 5xx.
    run = run_schemathesis("fuzzed org", base, workdir, in_org, {
        "auth": {"basic": basic},
        "phases": {"stateful": {"enabled": False}},
    }, args, n, *only_org)
    judge_schemathesis(c, run, in_org)
    judge_expected(c, run, in_org, "every answer is 400, 401 or 404",
                   lambda e: None if e.status in (400, 401, 404) else f"status {e.status}")

    # 3. No key, a wrong secret, an unknown key, a bad signature: 401 problem+json everywhere.
    small = max(5, n // 3)
    no_stateful = {"stateful": {"enabled": False}}
    sig = base64.b64encode(secrets.token_bytes(32)).decode()
    for name, extra in (
        ("no credentials", {}),
        ("wrong secret", {"auth": {"basic": {"username": s.key[0], "password": "gs_" + secrets.token_urlsafe(32)}}}),
        ("unknown key", {"auth": {"basic": {"username": "gk_" + secrets.token_urlsafe(18), "password": s.key[1]}}}),
        ("bad signature", {"headers": {"Authorization": f"Guichet-HMAC-SHA256 key={s.key[0]}, ts={int(time.time())}, sig={sig}"},
                           "generation": {"with-security-parameters": False}}),
    ):
        run = run_schemathesis(name, base, workdir, api, {"parameters": {"path.org": ORG}, "phases": no_stateful, **extra},
                               args, small)
        judge_schemathesis(c, run, api)
        judge_expected(c, run, api, "every operation answers 401 problem+json with WWW-Authenticate",
                       lambda e: problem(e, 401))

    # 4. A valid key of another organization: confined to its own, 404 under api-check.
    run = run_schemathesis("other org's key", base, workdir, in_org, {
        "auth": {"basic": {"username": s.other_key[0], "password": s.other_key[1]}},
        "parameters": {"path.org": ORG},
        "phases": no_stateful,
    }, args, small, *only_org)
    judge_schemathesis(c, run, in_org)
    judge_expected(c, run, in_org, f"every operation under {ORG} answers 404 problem+json (400 for a malformed request)",
                   lambda e: problem(e, 400 if e.status == 400 else 404))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--max-examples", type=int, default=25, help="per operation, for the keyed runs (default 25)")
    ap.add_argument("--seed", type=int, help="schemathesis' seed (default: a random one, printed by each run)")
    args = ap.parse_args()
    base = args.base.rstrip("/")
    c = Checks()
    cli = CLI(args.bin)
    receiver = Receiver()
    s = Setup()
    api: list[Operation] = []
    started = time.monotonic()
    c.scenario("the OpenAPI document (schemathesis loads and validates it)", scenario_document, c, base, api)
    c.scenario(f"set-up: organization {ORG}, members, keys, webhooks, invitations, clients, roles, connections "
               "(CLI + the API)", scenario_setup, c, cli, base, receiver, s)
    if api and s.complete:
        with tempfile.TemporaryDirectory(prefix="guichet-schemathesis-") as tmp:
            c.scenario("schemathesis against the live API", scenario_fuzz, c, base, api, s, args, Path(tmp))
    else:
        c.check("schemathesis against the live API", False, "not run: the document or the set-up failed")
    print(f"   ({time.monotonic() - started:.0f} s in all)", flush=True)
    print(f"{c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
