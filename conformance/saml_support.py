"""What conformance/saml_pysaml2.py drives Guichet's SAML service provider with: pysaml2 (and
Debian's xmlsec1) as an organization's identity provider, the Guichet side (CLI, dnslib
server, SP metadata), and the browser side of a flow (requests: login_url, the IdP's answer,
the POST to the ACS), plus the bookkeeping the scenarios share (`Saml`).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import html
import json
import logging
import os
import re
import secrets
import subprocess
import tempfile
import warnings
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urljoin, urlparse

warnings.filterwarnings("ignore", module=r"saml2(\..*)?$")  # pysaml2 imports deprecated cipher modes

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
import saml2.assertion
import saml2.entity
import saml2.s_utils
import saml2.time_util
from saml2.config import IdPConfig
from saml2.mdstore import MetadataStore
from saml2.metadata import create_metadata_string
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NameID
from saml2.server import Server
from saml2.sigver import get_pem_wrapped_unwrapped, make_temp, pre_encryption_part
from saml2.xmldsig import DIGEST_SHA1, DIGEST_SHA256, SIG_RSA_SHA1, SIG_RSA_SHA256

from checks import Checks, describe
from orgs_rbac import CLI, forms, start_dns  # the same CLI wrapper, HTML form reader and dnslib server

TIMEOUT = 15
XMLSEC = "/usr/bin/xmlsec1"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
XENC = "http://www.w3.org/2001/04/xmlenc#"
XENC11 = "http://www.w3.org/2009/xmlenc11#"
RSA_OAEP = XENC + "rsa-oaep-mgf1p"
# (data cipher, xmlsec1 --session-key, key transport). xmlsec1 1.2.37 has no xmlenc11#rsa-oaep.
CIPHERS = {
    "aes128-cbc": (XENC + "aes128-cbc", "aes-128", RSA_OAEP),
    "aes256-cbc": (XENC + "aes256-cbc", "aes-256", RSA_OAEP),
    "aes128-gcm": (XENC11 + "aes128-gcm", "aes-128", RSA_OAEP),
    "aes256-gcm": (XENC11 + "aes256-gcm", "aes-256", RSA_OAEP),
}
PASSWORD_CTX = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
LIMIT = 512 * 1024  # the contract's largest SAMLResponse

logging.getLogger("saml2").setLevel(logging.CRITICAL)


# ---------------------------------------------------------------- keys and the IdP (pysaml2)


def make_keypair(directory: str, name: str, cn: str) -> tuple[str, str]:
    """An RSA-2048 key and a self-signed certificate (as IdPs ship them), as PEM files."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365)).sign(key, hashes.SHA256()))
    key_file, cert_file = os.path.join(directory, f"{name}.key"), os.path.join(directory, f"{name}.crt")
    with open(key_file, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()))
    with open(cert_file, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


class Pysaml2IdP(Server):
    """pysaml2's IdP with a choice of data cipher: its own `_encrypt_assertion` always asks for
    tripledes-cbc (sigver.pre_encryption_part's default) and a des-192 session key."""

    cipher: tuple[str, str, str] | None = None

    def _encrypt_assertion(self, encrypt_cert, sp_entity_id, response, node_xpath=None):
        if self.cipher is None or not encrypt_cert:
            return super()._encrypt_assertion(encrypt_cert, sp_entity_id, response, node_xpath)
        data_alg, session_key, key_alg = self.cipher
        wrapped, unwrapped = get_pem_wrapped_unwrapped(encrypt_cert)
        cert_file = make_temp(wrapped.encode("ascii"), decode=False, delete_tmpfiles=self.config.delete_tmpfiles)
        template = pre_encryption_part(msg_enc=data_alg, key_enc=key_alg, encrypt_cert=unwrapped)
        return self.sec.encrypt_assertion(response, cert_file.name, template, key_type=session_key,
                                          node_xpath=node_xpath)


class IdP:
    """One organization's identity provider: entity id, HTTP-Redirect SSO URL, signing key."""

    def __init__(self, workdir: str, host: str, *, key: tuple[str, str] | None = None,
                 want_requests_signed: bool = False) -> None:
        self.host = host
        self.entity_id = f"https://{host}/idp"
        self.sso_url = f"https://{host}/sso/redirect"
        self.key_file, self.cert_file = key or make_keypair(workdir, host, host)
        self.config = IdPConfig().load({
            "entityid": self.entity_id,
            "xmlsec_binary": XMLSEC,
            "key_file": self.key_file,
            "cert_file": self.cert_file,
            "accepted_time_diff": 60,
            "service": {"idp": {
                "name": f"IdP of {host}",
                "endpoints": {"single_sign_on_service": [(self.sso_url, BINDING_HTTP_REDIRECT)]},
                "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
                # pysaml2 signs with rsa-sha1 unless told otherwise, here.
                "signing_algorithm": SIG_RSA_SHA256,
                "digest_algorithm": DIGEST_SHA256,
                "want_authn_requests_signed": want_requests_signed,
                "policy": {"default": {"lifetime": {"minutes": 5}, "attribute_restrictions": None,
                                       "name_form": "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"}},
            }},
        })
        # No SP known yet: each SP's metadata is loaded once Guichet serves it (trust_sp).
        self.config.metadata = MetadataStore(self.config.attribute_converters, self.config)
        self.server = Pysaml2IdP(config=self.config)

    def metadata(self) -> str:
        return create_metadata_string(None, config=self.config).decode()

    def trust_sp(self, sp_metadata: str) -> None:
        """Loads an SP's metadata: pysaml2 then knows its ACS and its encryption certificate."""
        self.server.metadata.load("inline", sp_metadata)

    def parse_redirect(self, query: dict[str, str]):
        return self.server.parse_authn_request(query["SAMLRequest"], BINDING_HTTP_REDIRECT,
                                               relay_state=query.get("RelayState"), sigalg=query.get("SigAlg"),
                                               signature=query.get("Signature"))

    def response(self, email: str | None, in_response_to: str | None, destination: str, audience: str, *,
                 sign_response: bool = True, sign_assertion: bool = True, encrypt_cert: str | None = None,
                 cipher: tuple[str, str, str] | None = None, sha1: bool = False, name: str = "Ann Acme",
                 groups: tuple[str, ...] = ("engineering", "admins"), extra: dict | None = None) -> str:
        identity = {"mail": [email], "displayName": [name], "groups": list(groups), **(extra or {})}
        self.server.cipher = cipher
        resp = self.server.create_authn_response(
            identity, in_response_to, destination, audience,
            name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=email),
            authn={"class_ref": PASSWORD_CTX},
            sign_response=sign_response, sign_assertion=sign_assertion,
            encrypt_assertion=encrypt_cert is not None, encrypt_cert_assertion=encrypt_cert,
            encrypt_assertion_self_contained=True, encrypted_advice_attributes=False,
            sign_alg=SIG_RSA_SHA1 if sha1 else None, digest_alg=DIGEST_SHA1 if sha1 else None)
        return str(resp)


@contextlib.contextmanager
def idp_clock(offset: datetime.timedelta):
    """pysaml2 as if its clock were `offset` off: IssueInstant, NotBefore, NotOnOrAfter all move."""
    instant, in_a_while = saml2.time_util.instant, saml2.time_util.in_a_while

    def shifted_instant(format=saml2.time_util.TIME_FORMAT, time_stamp=0):
        base = time_stamp or datetime.datetime.now(datetime.timezone.utc).timestamp()
        return instant(format, int(base + offset.total_seconds()))

    def shifted_in_a_while(**kw):
        kw["seconds"] = kw.get("seconds", 0) + int(offset.total_seconds())
        return in_a_while(**kw)

    patched = [(saml2.entity, "instant", shifted_instant), (saml2.assertion, "instant", shifted_instant),
               (saml2.s_utils, "instant", shifted_instant), (saml2.assertion, "in_a_while", shifted_in_a_while)]
    saved = [(m, n, getattr(m, n)) for m, n, _ in patched]
    try:
        for m, n, f in patched:
            setattr(m, n, f)
        yield
    finally:
        for m, n, f in saved:
            setattr(m, n, f)


def xmlsec_verify(xml: str, cert_file: str, element: str) -> tuple[bool, str]:
    """xmlsec1 --verify of the ds:Signature child of `element` (Response or Response/Assertion),
    with the given certificate's key only (the KeyInfo in the document is not trusted)."""
    path = "".join(f"/*[local-name()='{n}']" for n in element.split("/")) + "/*[local-name()='Signature']"
    with tempfile.NamedTemporaryFile("w", suffix=".xml") as f:
        f.write(xml)
        f.flush()
        p = subprocess.run([XMLSEC, "--verify", "--pubkey-cert-pem", cert_file, "--enabled-key-data", "key-name",
                            "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:protocol:Response",
                            "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
                            "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor",
                            "--node-xpath", path, f.name], capture_output=True, text=True, timeout=30)
    return p.returncode == 0, p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""


def xmlsec_decrypt(xml: str, key_file: str) -> str | None:
    with tempfile.NamedTemporaryFile("w", suffix=".xml") as f:
        f.write(xml)
        f.flush()
        p = subprocess.run([XMLSEC, "--decrypt", "--privkey-pem", key_file, f.name], capture_output=True,
                           text=True, timeout=30)
    return p.stdout if p.returncode == 0 else None


def deflate_b64(xml: str) -> str:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return base64.b64encode(c.compress(xml.encode()) + c.flush()).decode()


def inflate_b64(value: str) -> str:
    return zlib.decompress(base64.b64decode(value), -15).decode()


def pem_of(b64_der: str) -> str:
    body = re.sub(r"\s+", "", b64_der)
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(body[i:i + 64] for i in range(0, len(body), 64)) + \
        "\n-----END CERTIFICATE-----\n"


def write_pem(workdir: str, name: str, pem: str) -> str:
    path = os.path.join(workdir, name + ".pem")
    with open(path, "w") as f:
        f.write(pem)
    return path


# ---------------------------------------------------------------- Guichet: CLI, DNS, SP metadata


def sp_metadata_facts(xml: str) -> dict:
    """What the SP metadata says, parsed with ElementTree (raises on a malformed document)."""
    root = ET.fromstring(xml)
    sp = root.find(f"{{{MD}}}SPSSODescriptor")
    facts: dict = {"root": root.tag, "entity_id": root.get("entityID"), "sp": sp is not None,
                   "signed": root.find(f"{{{DS}}}Signature") is not None}
    if sp is None:
        return facts
    facts["protocols"] = (sp.get("protocolSupportEnumeration") or "").split()
    facts["authn_requests_signed"] = sp.get("AuthnRequestsSigned")
    facts["acs"] = [(a.get("Binding"), a.get("Location")) for a in sp.findall(f"{{{MD}}}AssertionConsumerService")]
    facts["certs"] = {}
    for kd in sp.findall(f"{{{MD}}}KeyDescriptor"):
        c = kd.find(f".//{{{DS}}}X509Certificate")
        if c is not None and c.text:
            uses = [kd.get("use")] if kd.get("use") else ["signing", "encryption"]
            for use in uses:
                facts["certs"].setdefault(use, pem_of(c.text))
    return facts


@dataclass
class Connection:
    org: str
    domain: str
    idp: IdP
    info: dict
    sp_metadata: str = ""
    facts: dict = field(default_factory=dict)

    @property
    def acs(self) -> str:
        return self.info["acs_url"]

    @property
    def entity_id(self) -> str:
        return self.info["sp_entity_id"]

    @property
    def encryption_cert(self) -> str | None:
        return self.facts.get("certs", {}).get("encryption")


class Guichet:
    def __init__(self, base: str, binary: str, workdir: str) -> None:
        self.base = base
        self.workdir = workdir
        self.dns, dns_addr = start_dns()
        self.cli = CLI(binary, dns_addr)

    def org_with_domain(self, slug: str, domain: str) -> dict:
        org = self.cli.json("org", "create", "--name", f"{slug} (SAML check)", "--slug", slug)
        rec = self.cli.json("domain", "add", "--org", slug, "--domain", domain)["record"]
        self.dns.records[rec["name"]] = [rec["value"]]
        v = self.cli.json("domain", "verify", "--org", slug, "--domain", domain)
        if v.get("verified") is not True:
            raise RuntimeError(f"domain {domain} not verified: {v}")
        return org

    def create_connection(self, org: str, domain: str, idp: IdP, *flags: str, via_url: str | None = None,
                          env: dict | None = None) -> tuple[subprocess.CompletedProcess, Connection | None]:
        if via_url:
            source = ["--metadata-url", via_url]
        else:
            path = os.path.join(self.workdir, f"{idp.host}-metadata.xml")
            with open(path, "w") as f:
                f.write(idp.metadata())
            source = ["--metadata-file", path]
        args = ["connection", "create", "--org", org, "--type", "saml", *source, "--name", f"{idp.host} SAML",
                *flags, "--json"]
        p = subprocess.run([self.cli.binary, *args], capture_output=True, text=True, timeout=60,
                           env=dict(self.cli.env, **(env or {})))
        if p.returncode != 0:
            return p, None
        return p, Connection(org=org, domain=domain, idp=idp, info=json.loads(p.stdout))

    def user_exists(self, email: str) -> tuple[bool, str]:
        """`guichet user list --json` (the CLI has no `user show`) lists an account with this email."""
        users = self.cli.json("user", "list", "--limit", "100000")
        found = [u for u in users if str(u.get("email", "")).lower() == email.lower()]
        return bool(found), json.dumps(found)[:300] if found else f"no account {email} in `guichet user list`"


# ---------------------------------------------------------------- the browser side of the flow


@dataclass
class Flow:
    """An SP-initiated sign-in: the browser, the AuthnRequest pysaml2 parsed, the redirect."""

    conn: Connection
    browser: requests.Session
    redirect: requests.Response
    location: str = ""
    query: dict = field(default_factory=dict)
    raw_query: dict = field(default_factory=dict)
    request: object = None  # pysaml2's AuthnRequest (message)
    error: str = ""

    @property
    def relay_state(self) -> str | None:
        return self.query.get("RelayState")

    @property
    def request_id(self) -> str:
        return self.request.id


def new_browser() -> requests.Session:
    s = requests.Session()
    s.headers["User-Agent"] = "guichet-conformance/1 (python-requests; SAML)"
    return s


def begin(conn: Connection, browser: requests.Session | None = None, idp: IdP | None = None) -> Flow:
    """GET login_url?return_to=/account; pysaml2 parses the AuthnRequest of the redirect."""
    browser = browser or new_browser()
    r = browser.get(conn.info["login_url"], params={"return_to": "/account"}, allow_redirects=False, timeout=TIMEOUT)
    flow = Flow(conn=conn, browser=browser, redirect=r)
    if r.status_code != 303 or not r.headers.get("Location"):
        flow.error = f"expected 303 to the IdP: {describe(r)}"
        return flow
    flow.location = urljoin(r.url, r.headers["Location"])
    if not flow.location.startswith(conn.idp.sso_url + "?"):
        flow.error = f"redirected to {flow.location[:200]}, not to the IdP's SSO URL {conn.idp.sso_url}"
        return flow
    raw = urlparse(flow.location).query
    flow.raw_query = dict(p.split("=", 1) if "=" in p else (p, "") for p in raw.split("&"))
    flow.query = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
    if "SAMLRequest" not in flow.query:
        flow.error = f"no SAMLRequest in {flow.location[:200]}"
        return flow
    try:
        flow.request = (idp or conn.idp).parse_redirect(flow.query).message
    except Exception as e:  # pysaml2 refused the AuthnRequest (signature, XML)
        flow.error = f"pysaml2 could not parse the AuthnRequest: {type(e).__name__}: {e}"
    return flow


def answer(flow: Flow, email: str, **kw) -> str:
    """The IdP's Response to the flow's AuthnRequest, addressed as pysaml2 decides from the
    SP metadata (ACS URL of the request checked against it)."""
    args = flow.conn.idp.server.response_args(flow.request, [BINDING_HTTP_POST])
    return flow.conn.idp.response(email, args["in_response_to"], args["destination"], args["sp_entity_id"], **kw)


def post_acs(flow: Flow, xml: str | None, relay_state: str | None | bool = True, *,
             browser: requests.Session | None = None, raw_value: str | None = None) -> requests.Response:
    """The browser submits the IdP's auto-posting form (a cross-site POST from the IdP's page),
    with `browser`'s cookies (default: the flow's). When Guichet answers with its own
    auto-posting form to the ACS (the re-post it makes when its cookie did not come along), the
    browser submits that too, from Guichet's origin with all of the flow's cookies; the
    response returned is then the re-post's (with `.reposted` set)."""
    data = {}
    if raw_value is not None:
        data["SAMLResponse"] = raw_value
    elif xml is not None:
        data["SAMLResponse"] = base64.b64encode(xml.encode()).decode()
    rs = flow.relay_state if relay_state is True else relay_state
    if rs:
        data["RelayState"] = rs
    b = browser or flow.browser
    r = b.post(flow.conn.acs, data=data, allow_redirects=False, timeout=TIMEOUT,
               headers={"Origin": f"https://{flow.conn.idp.host}", "Referer": flow.conn.idp.sso_url,
                        "Accept": "text/html,application/xhtml+xml"})
    r.reposted = False
    if r.status_code == 200:
        for f in forms(r.text):
            if urljoin(r.url, f["action"]) == flow.conn.acs and "SAMLResponse" in f["inputs"]:
                origin = f"{urlparse(r.url).scheme}://{urlparse(r.url).netloc}"
                r = flow.browser.post(flow.conn.acs, data=f["inputs"], allow_redirects=False, timeout=TIMEOUT,
                                      headers={"Origin": origin, "Referer": r.url,
                                               "Accept": "text/html,application/xhtml+xml"})
                r.reposted = True
                break
    return r


def need(s: "Saml", ctx: dict, key: str) -> Connection:
    s.c.require(f"the {key} connection exists (see setup)", key in ctx, "its creation or metadata failed above")
    return ctx[key]


def explain(r: requests.Response) -> str:
    """describe(), with an error page's message and the request id (to find the server's log line)."""
    alert = re.search(r'role="alert"[^>]*>(.*?)</', r.text, re.S)
    if not alert:
        return describe(r)
    loc = r.headers.get("Location")
    said = html.unescape(re.sub(r"\s+", " ", alert.group(1))).strip()
    return (f"got {r.status_code} for {r.request.method} {r.url}" + (f" (Location: {loc})" if loc else "")
            + f"; page says {said!r}; X-Request-Id {r.headers.get('X-Request-Id', '-')}")


def account(browser: requests.Session, base: str) -> requests.Response:
    return browser.get(base + "/account", headers={"Accept": "text/html"}, allow_redirects=False, timeout=TIMEOUT)


class Saml:
    """The scenarios share this: checks, Guichet, and what every refusal looked like."""

    def __init__(self, c: Checks, g: Guichet) -> None:
        self.c = c
        self.g = g
        self.base = g.base
        self.refusals: list[tuple[str, requests.Response, str]] = []  # (check, response, XML sent)

    def signed_in_as(self, browser: requests.Session, email: str) -> tuple[bool, str]:
        r = account(browser, self.base)
        return r.status_code == 200 and email in r.text, describe(r)

    def require_flow(self, flow: Flow, what: str) -> None:
        """Reported only when it fails (every case starts with one)."""
        if flow.error:
            self.c.require(f"{what}: login_url redirects to the IdP with an AuthnRequest pysaml2 accepts", False,
                           flow.error)

    def accepted(self, name: str, flow: Flow, r: requests.Response, email: str) -> bool:
        """303 to return_to, then /account shows the user."""
        loc = r.headers.get("Location", "")
        if r.status_code != 303 or urlparse(urljoin(r.url, loc)).path != "/account":
            return self.c.check(name, False, f"expected 303 to /account: {explain(r)}")
        ok, why = self.signed_in_as(flow.browser, email)
        return self.c.check(name, ok, f"the ACS answered 303 but /account does not show {email}: {why}")

    def refused(self, name: str, flow: Flow, r: requests.Response, statuses: tuple[int, ...], xml: str = "",
                email: str | None = None) -> bool:
        """The expected 4xx, never 5xx, and the browser is not signed in (as `email`)."""
        self.refusals.append((name, r, xml))
        if r.status_code not in statuses:
            return self.c.check(name, False, f"expected {' or '.join(map(str, statuses))}: {explain(r)}")
        if email:
            ok, why = self.signed_in_as(flow.browser, email)
            if ok:
                return self.c.check(name, False, f"refused with {r.status_code}, yet /account shows {email}")
        return self.c.check(name, True)


# ---------------------------------------------------------------- helpers for crafted XML


def other_sp_metadata(workdir: str) -> str:
    _, cert_file = make_keypair(workdir, "other-sp", "other-sp.example")
    der = "".join(open(cert_file).read().strip().splitlines()[1:-1])
    return f'''<md:EntityDescriptor xmlns:md="{MD}" xmlns:ds="{DS}" entityID="https://other-sp.example/saml/metadata">
<md:SPSSODescriptor protocolSupportEnumeration="{PROTOCOL}">
<md:KeyDescriptor><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{der}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
<md:AssertionConsumerService Binding="{BINDING_HTTP_POST}" Location="https://other-sp.example/saml/acs" index="0"/>
</md:SPSSODescriptor></md:EntityDescriptor>'''


def wrap_forged_assertion(xml: str, real: str, forged: str) -> str:
    """XSW: a copy of the signed Assertion for `forged`, new ID, signature removed, placed first."""
    m = re.search(r"<ns1:Assertion\b.*?</ns1:Assertion>", xml, re.S)
    original = m.group(0)
    copy = re.sub(r"<ns2:Signature\b.*?</ns2:Signature>", "", original, count=1, flags=re.S)
    copy = re.sub(r' ID="[^"]+"', f' ID="_forged{secrets.token_hex(8)}"', copy, count=1).replace(real, forged)
    return xml[:m.start()] + copy + original + xml[m.end():]
