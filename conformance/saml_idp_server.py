#!/usr/bin/env python3
"""A tiny SAML 2.0 identity provider web server, for the browser check conformance/browser_saml.mjs.

PyPI pysaml2 (7.5) builds and signs the messages; Debian's xmlsec1 does the XML signatures.
Needs, once:   $VENV/bin/pip install pysaml2          (pulls in cryptography, requests)
               apt-get install -y --no-install-recommends xmlsec1   (/usr/bin/xmlsec1)

Usage: saml_idp_server.py [--host 127.0.0.1] [--port 0] [--trust-sp-prefix URL]... [--sp-metadata FILE]...
                           [--exit-on-eof]

It listens on http://HOST:PORT (port 0: a free one) and prints ONE line of JSON on stdout once it
listens: {"base", "entity_id", "metadata_url", "sso_url"}. It exits on SIGTERM/SIGINT, and with
--exit-on-eof when its standard input closes (so it never outlives the process that started it).

- GET  /metadata   the IdP metadata (entityID <base>/metadata, SingleSignOnService HTTP-Redirect
                   at <base>/sso, the signing certificate: RSA-2048, self-signed, made at start).
- GET  /sso        HTTP-Redirect binding: SAMLRequest (deflate + base64), RelayState (SigAlg and
                   Signature if the SP signs). pysaml2 parses the AuthnRequest
                   (`parse_authn_request(.., BINDING_HTTP_REDIRECT)`); then a login page: a form
                   with input #idp-email (prefilled with the request's Subject NameID, if any) and
                   button #idp-login.
- POST /login      the Response to that request, NameID format emailAddress = the email typed,
                   attributes mail and displayName, Response and Assertion signed with RSA-SHA256 /
                   SHA-256 (`signing_algorithm`/`digest_algorithm` in `service.idp`: pysaml2 would
                   use rsa-sha1 otherwise), returned with the HTTP-POST binding
                   (`apply_binding(BINDING_HTTP_POST, ..)`): pysaml2's auto-submitting form (with a
                   <noscript> Continue button) that posts SAMLResponse and RelayState to the ACS.

Which service providers it answers: the metadata files given with --sp-metadata, and any SP whose
entityID (the AuthnRequest's Issuer) starts with a --trust-sp-prefix: its metadata is then fetched
from that entityID (Guichet serves its SP metadata at its entityID, <issuer>/saml/<id>/metadata).
One line per request on stderr.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import html
import http.server
import json
import logging
import os
import secrets
import signal
import sys
import tempfile
import threading
import urllib.request
import warnings
import xml.etree.ElementTree as ET
import zlib
from urllib.parse import parse_qs, urlparse

warnings.filterwarnings("ignore", module=r"saml2(\..*)?$")  # pysaml2 imports deprecated cipher modes

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.mdstore import MetadataStore
from saml2.metadata import create_metadata_string
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.server import Server
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

XMLSEC = "/usr/bin/xmlsec1"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
PASSWORD_CTX = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
PENDING_MAX = 200  # AuthnRequests waiting for their login form

logging.getLogger("saml2").setLevel(logging.CRITICAL)


def log(msg: str) -> None:
    print(f"saml_idp_server: {msg}", file=sys.stderr, flush=True)


def make_keypair(directory: str, cn: str) -> tuple[str, str]:
    """An RSA-2048 key and a self-signed certificate, as PEM files."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    key_file, cert_file = os.path.join(directory, "idp.key"), os.path.join(directory, "idp.crt")
    with open(key_file, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()))
    with open(cert_file, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


class IdP:
    def __init__(self, base: str, workdir: str, trusted_prefixes: list[str]) -> None:
        self.base = base
        self.entity_id = f"{base}/metadata"
        self.sso_url = f"{base}/sso"
        self.trusted_prefixes = trusted_prefixes
        key_file, cert_file = make_keypair(workdir, urlparse(base).hostname or "idp")
        self.config = IdPConfig().load({
            "entityid": self.entity_id,
            "xmlsec_binary": XMLSEC,
            "key_file": key_file,
            "cert_file": cert_file,
            "accepted_time_diff": 60,
            "service": {"idp": {
                "name": "Acme IdP (pysaml2)",
                "endpoints": {"single_sign_on_service": [(self.sso_url, BINDING_HTTP_REDIRECT)]},
                "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                # pysaml2 signs with rsa-sha1 unless told otherwise, here (Guichet refuses SHA-1).
                "signing_algorithm": SIG_RSA_SHA256,
                "digest_algorithm": DIGEST_SHA256,
                "want_authn_requests_signed": False,
                "policy": {"default": {"lifetime": {"minutes": 5}, "attribute_restrictions": None,
                                       "name_form": "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"}},
            }},
        })
        self.config.metadata = MetadataStore(self.config.attribute_converters, self.config)
        self.server = Server(config=self.config)
        self.known_sps: set[str] = set()
        self.pending: dict[str, tuple[object, str]] = {}  # token -> (AuthnRequest, RelayState)
        self.lock = threading.Lock()

    def metadata(self) -> str:
        return create_metadata_string(None, config=self.config).decode()

    def trust_sp_metadata(self, xml: str) -> str:
        root = ET.fromstring(xml)
        entity_id = root.get("entityID") or ""
        with self.lock:
            self.server.metadata.load("inline", xml)
            self.known_sps.add(entity_id)
        return entity_id

    def ensure_sp(self, entity_id: str) -> None:
        """Loads the SP's metadata from its entityID when a trusted prefix covers it."""
        if entity_id in self.known_sps:
            return
        if not any(entity_id.startswith(p) for p in self.trusted_prefixes):
            raise LookupError(f"unknown service provider {entity_id!r} (no --sp-metadata for it, "
                              f"not under a --trust-sp-prefix)")
        with urllib.request.urlopen(entity_id, timeout=10) as r:
            xml = r.read().decode()
        got = self.trust_sp_metadata(xml)
        if got != entity_id:
            raise LookupError(f"the metadata at {entity_id} names entityID {got!r}")
        log(f"loaded SP metadata from {entity_id}")

    @staticmethod
    def issuer_and_subject(saml_request: str) -> tuple[str, str]:
        """The AuthnRequest's Issuer and Subject NameID (a login hint), before pysaml2 parses it."""
        xml = zlib.decompress(base64.b64decode(saml_request), -15)
        root = ET.fromstring(xml)
        issuer = root.findtext(f"{{{SAML}}}Issuer") or ""
        subject = root.findtext(f"{{{SAML}}}Subject/{{{SAML}}}NameID") or ""
        return issuer.strip(), subject.strip()

    def begin(self, query: dict[str, str]) -> tuple[str, object, str]:
        issuer, hint = self.issuer_and_subject(query["SAMLRequest"])
        self.ensure_sp(issuer)
        req = self.server.parse_authn_request(query["SAMLRequest"], BINDING_HTTP_REDIRECT,
                                              relay_state=query.get("RelayState"), sigalg=query.get("SigAlg"),
                                              signature=query.get("Signature"))
        token = secrets.token_urlsafe(16)
        with self.lock:
            if len(self.pending) >= PENDING_MAX:
                self.pending.pop(next(iter(self.pending)))
            self.pending[token] = (req.message, query.get("RelayState", ""))
        return token, req.message, hint

    def answer(self, token: str, email: str) -> tuple[str, str, str]:
        """The HTML of the HTTP-POST binding, the ACS URL, the SP entityID."""
        with self.lock:
            authn_request, relay_state = self.pending.pop(token)
        args = self.server.response_args(authn_request, [BINDING_HTTP_POST])
        local = email.split("@", 1)[0]
        name = " ".join(w.capitalize() for w in local.replace(".", " ").split()) or email
        resp = self.server.create_authn_response(
            {"mail": [email], "displayName": [name]}, args["in_response_to"], args["destination"],
            args["sp_entity_id"], name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=email),
            authn={"class_ref": PASSWORD_CTX}, sign_response=True, sign_assertion=True)
        http_args = self.server.apply_binding(BINDING_HTTP_POST, str(resp), args["destination"], relay_state,
                                              response=True)
        return http_args["data"], args["destination"], args["sp_entity_id"]


PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:32rem;margin:3rem auto;background:#f3f0e8}}
main{{background:#fff;border:2px solid #264653;padding:1.5rem;border-radius:6px}}
h1{{color:#264653}} input,button{{font-size:1rem;padding:.4rem;margin:.3rem 0;width:100%;box-sizing:border-box}}
button{{background:#264653;color:#fff;border:0}} .muted{{color:#555;font-size:.85rem;word-break:break-all}}</style>
</head>
<body><main>{body}</main></body>
</html>
"""


def page(title: str, body: str) -> bytes:
    return PAGE.format(title=html.escape(title), body=body).encode()


def make_handler(idp: IdP):
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "saml_idp_server/1"

        def log_message(self, fmt, *args):
            log(f"{self.command} {self.path.split('?')[0]} -> {fmt % args}")

        def send(self, status: int, body: bytes, ctype: str = "text/html; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def error(self, status: int, why: str) -> None:
            log(f"error {status}: {why}")
            self.send(status, page("IdP error", f'<h1>IdP error</h1><p id="idp-error">{html.escape(why)}</p>'))

        def do_GET(self):
            url = urlparse(self.path)
            if url.path == "/metadata":
                return self.send(200, idp.metadata().encode(), "application/samlmetadata+xml")
            if url.path == "/favicon.ico":
                self.send_response(204)
                self.end_headers()
                return None
            if url.path == "/sso":
                query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
                if "SAMLRequest" not in query:
                    return self.error(400, "no SAMLRequest")
                try:
                    token, req, hint = idp.begin(query)
                except Exception as e:  # unknown SP, bad XML, bad signature
                    return self.error(400, f"AuthnRequest refused: {type(e).__name__}: {e}")
                log(f"AuthnRequest {req.id} from {req.issuer.text} (ACS {req.assertion_consumer_service_url}, "
                    f"hint {hint!r}, RelayState {'yes' if query.get('RelayState') else 'no'})")
                body = (
                    "<h1>Acme IdP</h1>"
                    f'<p class="muted">Sign-in asked by <code id="idp-sp">{html.escape(req.issuer.text)}</code></p>'
                    '<form method="post" action="/login" id="idp-form">'
                    f'<input type="hidden" name="req" value="{html.escape(token)}">'
                    '<label for="idp-email">Email</label>'
                    f'<input id="idp-email" name="email" type="email" value="{html.escape(hint)}" required>'
                    '<button type="submit" id="idp-login">Sign in</button>'
                    "</form>")
                return self.send(200, page("Acme IdP: sign in", body))
            return self.error(404, f"nothing at {url.path}")

        def do_POST(self):
            url = urlparse(self.path)
            if url.path != "/login":
                return self.error(404, f"nothing at {url.path}")
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode(), keep_blank_values=True).items()}
            email = form.get("email", "").strip()
            if not email:
                return self.error(400, "no email")
            try:
                data, acs, sp = idp.answer(form.get("req", ""), email)
            except KeyError:
                return self.error(400, "unknown or used sign-in request")
            except Exception as e:
                return self.error(500, f"could not build the Response: {type(e).__name__}: {e}")
            log(f"Response for {email} to {sp}, posted to {acs}")
            return self.send(200, data.encode())

    return Handler


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--trust-sp-prefix", action="append", default=[],
                    help="answer SPs whose entityID starts with this; their metadata is fetched from it")
    ap.add_argument("--sp-metadata", action="append", default=[], help="an SP metadata file to trust")
    ap.add_argument("--exit-on-eof", action="store_true", help="stop when standard input closes")
    args = ap.parse_args()
    if not os.access(XMLSEC, os.X_OK):
        print(f"saml_idp_server: {XMLSEC} is missing (apt-get install -y xmlsec1)", file=sys.stderr)
        return 2

    httpd = http.server.ThreadingHTTPServer((args.host, args.port), http.server.BaseHTTPRequestHandler)
    httpd.daemon_threads = True
    host, port = httpd.server_address[:2]
    base = f"http://{host}:{port}"
    with tempfile.TemporaryDirectory(prefix="saml-idp-") as work:
        idp = IdP(base, work, args.trust_sp_prefix)
        for path in args.sp_metadata:
            with open(path) as f:
                log(f"trusting SP {idp.trust_sp_metadata(f.read())} ({path})")
        httpd.RequestHandlerClass = make_handler(idp)

        def stop(*_):
            threading.Thread(target=httpd.shutdown, daemon=True).start()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

        def watch_stdin():
            try:
                while sys.stdin.buffer.read(4096):
                    pass
            except Exception:
                pass
            stop()

        if args.exit_on_eof:
            threading.Thread(target=watch_stdin, daemon=True).start()
        print(json.dumps({"base": base, "entity_id": idp.entity_id, "metadata_url": f"{base}/metadata",
                          "sso_url": idp.sso_url}), flush=True)
        log(f"listening on {base}")
        httpd.serve_forever()
        httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
