#!/usr/bin/env python3
"""Black-box check of Guichet as a SAML 2.0 service provider, with PyPI pysaml2 as the
organization's identity provider.

pysaml2 (with Debian's xmlsec1 doing the XML signatures and encryption) plays the company's IdP
in this process: it gets the AuthnRequest from Guichet's redirect (HTTP-Redirect binding),
builds real responses (signed, encrypted, or deliberately wrong) and this script POSTs them to
Guichet's ACS the way a browser submits the IdP's auto-posting form (HTTP-POST binding), with
python-requests as the browser. The `guichet` CLI creates the organizations, verifies their
domains (TXT records served by dnslib on loopback, as in orgs_rbac.py) and the connections.
The IdP, the Guichet and browser helpers live in saml_support.py; the scenarios are here.

Usage: saml_pysaml2.py --base URL --bin PATH/TO/guichet
       saml_pysaml2.py --selftest      (the pysaml2 + xmlsec1 side alone, no Guichet needed)
Prints PASS/FAIL lines and ends with `N passed, M failed`; exits 1 when a check failed.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import http.server
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import warnings
import xml.etree.ElementTree as ET
from urllib.parse import unquote

warnings.filterwarnings("ignore", module=r"saml2(\..*)?$")  # pysaml2 imports deprecated cipher modes

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from saml2 import BINDING_HTTP_POST
from saml2.xmldsig import DIGEST_SHA1, SIG_RSA_SHA1, SIG_RSA_SHA256

from checks import Checks, describe
from saml_support import (CIPHERS, DS, LIMIT, MD, PROTOCOL, TIMEOUT, XMLSEC, Flow, Guichet, IdP, Saml, answer,
                          begin, deflate_b64, idp_clock, inflate_b64, make_keypair, need, new_browser,
                          other_sp_metadata, post_acs, sp_metadata_facts, wrap_forged_assertion, write_pem,
                          xmlsec_decrypt, xmlsec_verify)


# ---------------------------------------------------------------- scenarios


def scenario_setup(s: Saml, ctx: dict) -> None:
    """Organizations with verified domains, one connection each (a flag per connection)."""
    g, c = s.g, s.c
    plan = [  # key, org slug, domain, IdP host, flags
        ("default", "saml-acme", "acme.test", "idp.acme.test", ()),
        ("want_signed", "saml-beta", "beta.test", "idp.beta.test", ("--want-assertions-signed",)),
        ("sign_requests", "saml-gamma", "gamma.test", "idp.gamma.test", ("--sign-requests",)),
        ("sha1", "saml-delta", "delta.test", "idp.delta.test", ("--allow-sha1",)),
        ("idp_initiated", "saml-eps", "eps.test", "idp.eps.test", ("--allow-idp-initiated",)),
    ]
    for key, slug, domain, host, flags in plan:
        g.org_with_domain(slug, domain)
        idp = IdP(g.workdir, host, want_requests_signed=key == "sign_requests")
        p, conn = g.create_connection(slug, domain, idp, *flags)
        label = " ".join(flags) or "no flags"
        (c.require if key == "default" else c.check)(
            f"connection create --type saml --metadata-file ({label})", conn is not None,
            f"exit {p.returncode}: {(p.stderr or p.stdout).strip()[:400]}")
        if conn is not None:
            ctx[key] = conn
    conn = ctx["default"]
    info = conn.info
    issuer = s.base
    cid = info.get("id", "")
    want = {"type": "saml", "sp_entity_id": f"{issuer}/saml/{cid}/metadata", "acs_url": f"{issuer}/saml/{cid}/acs",
            "metadata_url": f"{issuer}/saml/{cid}/metadata", "login_url": f"{issuer}/sso/{cid}"}
    wrong = {k: info.get(k) for k, v in want.items() if info.get(k) != v}
    c.check("connection create --json: id, name, type saml, sp_entity_id, acs_url, metadata_url, login_url",
            bool(cid) and bool(info.get("name")) and not wrong, f"differs from the contract: {json.dumps(wrong)}")
    p = g.cli.run("connection", "show", cid, "--json")
    shown = json.loads(p.stdout) if p.returncode == 0 else {}
    c.check("connection show ID --json: the same URLs",
            all(shown.get(k) == info.get(k) for k in ("id", "type", "sp_entity_id", "acs_url", "login_url")),
            f"exit {p.returncode}: {(p.stdout or p.stderr)[:300]}")
    p = subprocess.run([g.cli.binary, "connection", "create", "--org", "saml-acme", "--type", "saml",
                        "--metadata-file", os.path.join(g.workdir, "missing.xml"), "--json"],
                       capture_output=True, text=True, timeout=60, env=g.cli.env)
    c.check("connection create with a metadata file that does not exist fails (said why)",
            p.returncode != 0 and p.stderr.strip() != "" and "panicked" not in p.stderr,
            f"exit {p.returncode}: {p.stderr.strip()[:300]}")


def scenario_sp_metadata(s: Saml, ctx: dict) -> None:
    """Item 2: the SP metadata, checked and loaded into every IdP."""
    c = s.c
    for key, conn in list(ctx.items()):
        r = requests.get(conn.entity_id, timeout=TIMEOUT)
        if key != "default":
            if not c.check(f"SP metadata of the {key} connection: 200", r.status_code == 200, describe(r)):
                del ctx[key]
                continue
        else:
            c.require("GET sp_entity_id: 200 with XML", r.status_code == 200 and "xml" in
                      r.headers.get("Content-Type", ""), describe(r) + f" (Content-Type {r.headers.get('Content-Type')})")
        conn.sp_metadata = r.text
        try:
            conn.facts = sp_metadata_facts(r.text)
        except ET.ParseError as e:
            (c.require if key == "default" else c.check)(f"SP metadata of the {key} connection is well-formed XML",
                                                         False, str(e))
            del ctx[key]
            continue
        f = conn.facts
        if key == "default":
            c.check("SP metadata: md:EntityDescriptor, entityID = sp_entity_id",
                    f["root"] == f"{{{MD}}}EntityDescriptor" and f["entity_id"] == conn.entity_id,
                    f"root {f['root']}, entityID {f['entity_id']!r}")
            c.require("SP metadata: an SPSSODescriptor for SAML 2.0", f["sp"] and PROTOCOL in f.get("protocols", []),
                      json.dumps({k: f.get(k) for k in ("sp", "protocols")}))
            c.check("SP metadata: AssertionConsumerService HTTP-POST at acs_url",
                    (BINDING_HTTP_POST, conn.acs) in f["acs"], json.dumps(f["acs"]))
            certs = f["certs"]
            parsed = {}
            for use in ("signing", "encryption"):
                try:
                    parsed[use] = x509.load_pem_x509_certificate(certs[use].encode()) if use in certs else None
                except ValueError as e:
                    parsed[use] = None
                    certs[use + " error"] = str(e)
            c.check("SP metadata: KeyDescriptor use=signing and use=encryption with X.509 certificates",
                    all(parsed.values()), f"found {sorted(certs)}")
            c.check("SP metadata: AuthnRequestsSigned is not true without --sign-requests",
                    f["authn_requests_signed"] in (None, "false", "0"), str(f["authn_requests_signed"]))
            if f["signed"]:
                ok, why = xmlsec_verify(r.text, write_pem(s.g.workdir, "sp-signing", certs["signing"]),
                                        "EntityDescriptor")
                c.check("SP metadata signature verifies (xmlsec1) with the SP's signing certificate", ok, why)
        if key == "sign_requests":
            c.check("SP metadata with --sign-requests: AuthnRequestsSigned=\"true\"",
                    f.get("authn_requests_signed") in ("true", "1"), str(f.get("authn_requests_signed")))
        try:
            conn.idp.trust_sp(conn.sp_metadata)
        except Exception as e:
            (c.require if key == "default" else c.check)(f"pysaml2 loads the SP metadata of the {key} connection",
                                                         False, f"{type(e).__name__}: {e}")
            del ctx[key]
    c.check("pysaml2 loads the SP metadata (its ACS and encryption certificate known to the IdP)",
            ctx["default"].idp.server.metadata.assertion_consumer_service(ctx["default"].entity_id, BINDING_HTTP_POST)
            != [], "pysaml2 found no ACS for the SP")


def scenario_signed(s: Saml, ctx: dict) -> None:
    """Items 3 and 4: signed responses through the whole HTTP flow, JIT."""
    c = s.c
    conn = ctx["default"]
    flow = begin(conn)
    c.require("GET login_url?return_to=/account: 303 to the IdP's SSO URL with a SAMLRequest pysaml2 parses",
              not flow.error, flow.error)
    req = flow.request
    c.check("AuthnRequest: ID (an xs:ID), Issuer = sp_entity_id, AssertionConsumerServiceURL = acs_url, "
            "Destination = SSO URL",
            bool(re.fullmatch(r"[A-Za-z_][\w.-]*", req.id or "")) and req.issuer is not None
            and req.issuer.text == conn.entity_id and req.assertion_consumer_service_url == conn.acs
            and req.destination == conn.idp.sso_url,
            f"ID {req.id!r}, Issuer {req.issuer.text if req.issuer else None!r}, "
            f"ACS {req.assertion_consumer_service_url!r}, Destination {req.destination!r}")
    c.check("the redirect carries a RelayState and no signature (no --sign-requests)",
            bool(flow.relay_state) and "Signature" not in flow.query, flow.location[:300])
    xml = answer(flow, "ann@acme.test")
    ok, why = xmlsec_verify(xml, conn.idp.cert_file, "Response")
    c.require("(pysaml2) the Response is signed with SHA-256, xmlsec1 --verify agrees",
              ok and "rsa-sha256" in xml and "xmldsig#rsa-sha1" not in xml, why)
    r = post_acs(flow, xml)
    s.accepted("signed Response and Assertion (SHA-256): 303 to return_to, /account shows ann@acme.test",
               flow, r, "ann@acme.test")
    exists, out = s.g.user_exists("ann@acme.test")
    c.check("JIT: the account ann@acme.test exists (guichet user list)", exists, out)
    p = s.g.cli.run("org", "member", "list", "--org", conn.org, "--json")
    c.check("JIT: ann@acme.test is a member of the connection's organization",
            p.returncode == 0 and "ann@acme.test" in p.stdout, f"exit {p.returncode}: {(p.stdout or p.stderr)[:300]}")

    flow = begin(conn)
    s.require_flow(flow, "assertion-only signed")
    xml = answer(flow, "ann@acme.test", sign_response=False)
    c.check("(pysaml2) assertion-only: the Assertion is signed, the Response is not",
            xmlsec_verify(xml, conn.idp.cert_file, "Response/Assertion")[0] and
            not re.search(r"<ns0:Response[^>]*>\s*<ns1:Issuer[^<]*</ns1:Issuer>\s*<ns2:Signature", xml), "")
    s.accepted("only the Assertion signed: accepted (ann signs in again)", flow, post_acs(flow, xml), "ann@acme.test")

    flow = begin(conn)
    s.require_flow(flow, "response-only signed")
    xml = answer(flow, "bob@acme.test", sign_assertion=False, name="Bob Acme")
    s.accepted("only the Response signed: accepted (JIT bob@acme.test)", flow, post_acs(flow, xml), "bob@acme.test")


def scenario_want_signed(s: Saml, ctx: dict) -> None:
    strict = need(s, ctx, "want_signed")
    flow = begin(strict)
    s.require_flow(flow, "--want-assertions-signed")
    xml = answer(flow, "carol@beta.test", sign_assertion=False)
    s.refused("--want-assertions-signed: a Response signed but its Assertion not is refused (403)", flow,
              post_acs(flow, xml), (403,), xml, "carol@beta.test")
    flow = begin(strict)
    s.require_flow(flow, "--want-assertions-signed, assertion signed")
    xml = answer(flow, "carol@beta.test", sign_response=False)
    s.accepted("--want-assertions-signed: a signed Assertion is accepted", flow, post_acs(flow, xml),
               "carol@beta.test")


def scenario_encrypted(s: Saml, ctx: dict) -> None:
    """Item 5: EncryptedAssertion to the SP's encryption certificate (from its metadata)."""
    c = s.c
    conn = ctx["default"]
    cert = conn.encryption_cert
    c.require("the SP metadata gave an encryption certificate", bool(cert), json.dumps(sorted(conn.facts.get("certs", {}))))
    for i, (label, cipher) in enumerate(CIPHERS.items()):
        flow = begin(conn)
        s.require_flow(flow, f"encrypted ({label})")
        email = f"enc{i}@acme.test"
        xml = answer(flow, email, encrypt_cert=cert, cipher=cipher)
        c.check(f"(pysaml2) EncryptedAssertion with {label} + rsa-oaep-mgf1p, no Assertion in clear",
                "EncryptedAssertion" in xml and cipher[0] in xml and email not in xml, "")
        s.accepted(f"encrypted Assertion ({label}, rsa-oaep-mgf1p), Response and Assertion signed: accepted",
                   flow, post_acs(flow, xml), email)
    flow = begin(conn)
    s.require_flow(flow, "encrypted, assertion-only signed")
    xml = answer(flow, "enc-a@acme.test", encrypt_cert=cert, cipher=CIPHERS["aes256-gcm"], sign_response=False)
    s.accepted("encrypted Assertion (aes256-gcm), only the Assertion (inside) signed: accepted", flow,
               post_acs(flow, xml), "enc-a@acme.test")
    # pysaml2's own default cipher: tripledes-cbc. The contract does not say; shown, not judged.
    flow = begin(conn)
    s.require_flow(flow, "encrypted, pysaml2 default cipher")
    xml = answer(flow, "enc-3des@acme.test", encrypt_cert=cert)
    r = post_acs(flow, xml)
    c.check("pysaml2's default encryption (tripledes-cbc + rsa-oaep-mgf1p): accepted or refused, never 5xx",
            r.status_code in (303, 403), describe(r))
    print(f"   note: tripledes-cbc EncryptedAssertion -> {r.status_code}", flush=True)
    if r.status_code == 403:
        s.refusals.append(("tripledes-cbc", r, xml))
    other = IdP(s.g.workdir, "other-sp-key.test")  # any certificate that is not the SP's
    flow = begin(conn)
    s.require_flow(flow, "encrypted to another key")
    xml = answer(flow, "enc-x@acme.test", encrypt_cert=open(other.cert_file).read(), cipher=CIPHERS["aes256-cbc"])
    s.refused("an Assertion encrypted to another certificate is refused (403)", flow, post_acs(flow, xml), (403,),
              xml, "enc-x@acme.test")


def scenario_refusals(s: Saml, ctx: dict) -> None:
    """Item 6 (and the contract's other 403s): each its own flow, refused, nobody signed in."""
    c, g = s.c, s.g
    conn = ctx["default"]
    idp = conn.idp

    impostor = IdP(g.workdir, "idp.acme.test", key=make_keypair(g.workdir, "impostor", "idp.acme.test"))
    impostor.trust_sp(conn.sp_metadata)
    flow = begin(conn)
    s.require_flow(flow, "wrong key")
    args = idp.server.response_args(flow.request, [BINDING_HTTP_POST])
    xml = impostor.response("mallory@acme.test", args["in_response_to"], args["destination"], args["sp_entity_id"])
    s.refused("a Response signed by another key (same issuer) is refused (403)", flow, post_acs(flow, xml), (403,),
              xml, "mallory@acme.test")

    flow = begin(conn)
    s.require_flow(flow, "unsigned")
    xml = answer(flow, "mallory@acme.test", sign_response=False, sign_assertion=False)
    s.refused("an unsigned Response is refused (403)", flow, post_acs(flow, xml), (403,), xml, "mallory@acme.test")

    flow = begin(conn)
    s.require_flow(flow, "SHA-1")
    xml = answer(flow, "sha1@acme.test", sha1=True)
    c.check("(pysaml2) the SHA-1 case is signed rsa-sha1/sha1 and verifies",
            "xmldsig#rsa-sha1" in xml and xmlsec_verify(xml, idp.cert_file, "Response")[0], "")
    s.refused("a Response signed with rsa-sha1 is refused by default (403)", flow, post_acs(flow, xml), (403,), xml,
              "sha1@acme.test")

    flow = begin(conn)
    s.require_flow(flow, "replay")
    xml = answer(flow, "replay@acme.test")
    first = post_acs(flow, xml)
    s.accepted("replay: the first POST signs in", flow, first, "replay@acme.test")
    again = post_acs(flow, xml)
    s.refused("replay: the same Response POSTed again is refused (400 or 403)", flow, again, (400, 403), xml)
    flow2 = begin(conn)
    s.require_flow(flow2, "replay in another flow")
    s.refused("replay: the same Response in a new flow of another browser is refused (403)", flow2,
              post_acs(flow2, xml), (403,), xml, "replay@acme.test")

    flow = begin(conn)
    s.require_flow(flow, "wrong InResponseTo")
    args = idp.server.response_args(flow.request, [BINDING_HTTP_POST])
    xml = idp.response("irt@acme.test", "_" + secrets.token_hex(16), args["destination"], args["sp_entity_id"])
    s.refused("InResponseTo of no request of ours is refused (403)", flow, post_acs(flow, xml), (403,), xml,
              "irt@acme.test")
    other = begin(conn)
    s.require_flow(other, "InResponseTo of another flow")
    flow = begin(conn)
    s.require_flow(flow, "InResponseTo of another flow (2)")
    xml = idp.response("irt@acme.test", other.request_id, args["destination"], args["sp_entity_id"])
    s.refused("InResponseTo of another browser's request is refused (403)", flow, post_acs(flow, xml), (403,), xml,
              "irt@acme.test")
    flow = begin(conn)
    s.require_flow(flow, "unsolicited")
    xml = idp.response("irt@acme.test", None, args["destination"], args["sp_entity_id"])
    s.refused("a Response without InResponseTo (unsolicited) to a connection without --allow-idp-initiated: 403",
              flow, post_acs(flow, xml), (403,), xml, "irt@acme.test")

    # A Response meant for another SP of the same IdP (audience), or sent to another ACS.
    other_sp = other_sp_metadata(g.workdir)
    idp.trust_sp(other_sp)
    flow = begin(conn)
    s.require_flow(flow, "wrong audience")
    xml = idp.response("aud@acme.test", flow.request_id, conn.acs, "https://other-sp.example/saml/metadata")
    s.refused("Audience of another SP is refused (403)", flow, post_acs(flow, xml), (403,), xml, "aud@acme.test")
    flow = begin(conn)
    s.require_flow(flow, "wrong destination")
    xml = idp.response("dest@acme.test", flow.request_id, "https://other-sp.example/saml/acs", conn.entity_id)
    s.refused("Destination/Recipient of another ACS is refused (403)", flow, post_acs(flow, xml), (403,), xml,
              "dest@acme.test")
    if "want_signed" in ctx:
        flow = begin(conn)
        s.require_flow(flow, "another connection's ACS")
        xml = idp.response("dest@acme.test", flow.request_id, ctx["want_signed"].acs, conn.entity_id)
        s.refused("Destination = another connection's ACS is refused (403)", flow, post_acs(flow, xml), (403,), xml,
                  "dest@acme.test")

    for label, offset in (("expired (issued an hour ago)", -3600), ("not yet valid (issued in an hour)", 3600)):
        flow = begin(conn)
        s.require_flow(flow, label)
        with idp_clock(datetime.timedelta(seconds=offset)):
            xml = answer(flow, "time@acme.test")
        s.refused(f"a Response {label} is refused (403)", flow, post_acs(flow, xml), (403,), xml, "time@acme.test")

    # Signature wrapping: an unsigned forged Assertion before the genuine signed one.
    flow = begin(conn)
    s.require_flow(flow, "signature wrapping")
    xml = answer(flow, "ann@acme.test", sign_response=False)
    forged = wrap_forged_assertion(xml, "ann@acme.test", "eve@acme.test")
    r = post_acs(flow, forged)
    eve, why = s.signed_in_as(flow.browser, "eve@acme.test")
    eve_exists, _ = g.user_exists("eve@acme.test")
    ann = s.signed_in_as(flow.browser, "ann@acme.test")[0]
    c.check("signature wrapping (forged unsigned Assertion before the signed one): refused (403) or only the signed "
            "Assertion used (ann); eve never signs in nor gets an account",
            (r.status_code == 403 or (r.status_code == 303 and ann)) and not eve and not eve_exists,
            f"{describe(r)}; /account shows eve: {eve}; account eve@acme.test exists: {eve_exists}")
    s.refusals.append(("signature wrapping", r, forged))

    # Not admitted: the email's domain is not verified by the connection's organization.
    g.cli.json("domain", "add", "--org", conn.org, "--domain", "pending-acme.test")
    for email, why_not in (("zoe@other.test", "a domain no organization has"),
                           ("zoe@pending-acme.test", "a domain of the org, not verified"),
                           ("zoe@beta.test", "a domain verified by another organization")):
        flow = begin(conn)
        s.require_flow(flow, f"unverified domain {email}")
        xml = answer(flow, email)
        s.refused(f"{email} ({why_not}) is refused (403)", flow, post_acs(flow, xml), (403,), xml, email)
        exists, out = g.user_exists(email)
        c.check(f"... and no account {email} was created", not exists, out)


def scenario_allow_sha1(s: Saml, ctx: dict) -> None:
    conn = need(s, ctx, "sha1")
    flow = begin(conn)
    s.require_flow(flow, "--allow-sha1")
    xml = answer(flow, "dan@delta.test", sha1=True)
    s.accepted("--allow-sha1: an rsa-sha1 Response is accepted", flow, post_acs(flow, xml), "dan@delta.test")


def scenario_relay_state(s: Saml, ctx: dict) -> None:
    """RelayState missing, forged, foreign; a body over 512 KiB."""
    conn = ctx["default"]
    flow = begin(conn)
    s.require_flow(flow, "RelayState")
    xml = answer(flow, "rs@acme.test")
    s.refused("RelayState missing: 400", flow, post_acs(flow, xml, relay_state=None), (400,), xml, "rs@acme.test")
    s.refused("RelayState forged (random): 400", flow, post_acs(flow, xml, relay_state=secrets.token_urlsafe(24)),
              (400,), xml, "rs@acme.test")
    s.accepted("... the flow itself still signs in afterwards", flow, post_acs(flow, xml), "rs@acme.test")
    flow = begin(conn)
    s.require_flow(flow, "foreign RelayState")
    other = begin(conn)  # another browser, with a flow of its own
    s.require_flow(other, "foreign RelayState (2)")
    xml = answer(flow, "rs2@acme.test")
    s.refused("RelayState of another browser's flow (its Response, this browser's cookies): 400", other,
              post_acs(flow, xml, browser=other.browser), (400,), xml, "rs2@acme.test")
    flow = begin(conn)
    s.require_flow(flow, "SAMLResponse missing")
    s.refused("no SAMLResponse field: 400 or 403", flow, post_acs(flow, None), (400, 403))
    flow = begin(conn)
    s.require_flow(flow, "garbage")
    s.refused("a SAMLResponse that is not base64 XML: 400 or 403", flow,
              post_acs(flow, None, raw_value="not-base64-%%%<xml>"), (400, 403))
    flow = begin(conn)
    s.require_flow(flow, "too large")
    xml = answer(flow, "big@acme.test", extra={"description": ["x" * (LIMIT + 64 * 1024)]})
    c_ok = len(xml) > LIMIT
    s.c.check("(pysaml2) a signed Response over 512 KiB", c_ok, str(len(xml)))
    s.refused("a SAMLResponse over 512 KiB: 413", flow, post_acs(flow, xml), (413,), "", "big@acme.test")


def scenario_sign_requests(s: Saml, ctx: dict) -> None:
    """Item 7: --sign-requests: the HTTP-Redirect signature, by the binding's rules and by pysaml2."""
    c = s.c
    conn = need(s, ctx, "sign_requests")
    flow = begin(conn)
    c.require("--sign-requests: pysaml2 (WantAuthnRequestsSigned) verifies the redirect's signature against the SP "
              "metadata", not flow.error, flow.error)
    c.check("--sign-requests: SigAlg is rsa-sha256", flow.query.get("SigAlg") == SIG_RSA_SHA256,
            str(flow.query.get("SigAlg")))
    order = [k for k in ("SAMLRequest", "RelayState", "SigAlg") if k in flow.raw_query]
    signed = "&".join(f"{k}={flow.raw_query[k]}" for k in order).encode()
    cert = x509.load_pem_x509_certificate(conn.facts["certs"]["signing"].encode())
    try:
        cert.public_key().verify(base64.b64decode(unquote(flow.raw_query.get("Signature", ""))), signed,
                                 padding.PKCS1v15(), hashes.SHA256())
        ok, why = True, ""
    except Exception as e:
        ok, why = False, f"{type(e).__name__} over {signed[:120]!r}…"
    c.check("--sign-requests: Signature verifies over the raw query (SAMLRequest&RelayState&SigAlg, SAML binding "
            "§3.4.4.1) with the metadata's signing certificate", ok, why)
    tampered = dict(flow.query, RelayState=(flow.relay_state or "") + "x")
    try:
        conn.idp.parse_redirect(tampered)
        refused = False
    except Exception:
        refused = True
    c.check("(pysaml2) a tampered RelayState breaks that signature", refused, "pysaml2 accepted it")
    xml = answer(flow, "gus@gamma.test")
    s.accepted("--sign-requests: the sign-in completes", flow, post_acs(flow, xml), "gus@gamma.test")


def scenario_idp_initiated(s: Saml, ctx: dict) -> None:
    conn = need(s, ctx, "idp_initiated")
    idp = conn.idp
    b = new_browser()
    flow = Flow(conn=conn, browser=b, redirect=None)  # no AuthnRequest: the IdP starts
    xml = idp.response("ida@eps.test", None, conn.acs, conn.entity_id)
    r = post_acs(flow, xml, relay_state=None)
    ok, why = s.signed_in_as(b, "ida@eps.test")
    s.c.check("--allow-idp-initiated: an unsolicited Response without RelayState signs in (303, /account)",
              r.status_code == 303 and ok, f"{describe(r)}; {why}")
    b2 = new_browser()
    r = post_acs(Flow(conn=conn, browser=b2, redirect=None), xml, relay_state=None)
    s.refused("--allow-idp-initiated: the same unsolicited Response again is refused (replay, 403)",
              Flow(conn=conn, browser=b2, redirect=None), r, (403,), xml, "ida@eps.test")
    default = ctx["default"]
    b3 = new_browser()
    f3 = Flow(conn=default, browser=b3, redirect=None)
    xml = default.idp.response("ida@acme.test", None, default.acs, default.entity_id)
    s.refused("without --allow-idp-initiated: an unsolicited Response without RelayState is refused (400 or 403)",
              f3, post_acs(f3, xml, relay_state=None), (400, 403), xml, "ida@acme.test")


def scenario_browser_cookies(s: Saml, ctx: dict) -> None:
    """The IdP's form POST is cross-site: a browser sends only SameSite=None cookies with it."""
    conn = ctx["default"]
    flow = begin(conn)
    s.require_flow(flow, "browser cookies")
    set_cookies = flow.redirect.raw.headers.getlist("Set-Cookie")
    none = {line.split(";")[0].split("=")[0].strip() for line in set_cookies
            if "samesite=none" in [a.strip().lower() for a in line.split(";")[1:]]}
    cross_site = new_browser()
    for cookie in flow.browser.cookies:
        if cookie.name in none:
            cross_site.cookies.set_cookie(cookie)
    xml = answer(flow, "cookie@acme.test")
    r = post_acs(flow, xml, browser=cross_site)
    cookies = [line.split("=", 1)[0] + ";" + line.split(";", 1)[-1] for line in set_cookies]
    s.accepted("a browser's cross-site POST from the IdP (only SameSite=None cookies sent"
               f"{'; Guichet re-posted from its origin' if r.reposted else ''}) completes the sign-in", flow, r,
               "cookie@acme.test") or print(f"   cookies set by login_url: {cookies}", flush=True)


def scenario_metadata_url(s: Saml, ctx: dict) -> None:
    """--metadata-url: the IdP metadata served over HTTP on loopback, fetched at creation."""
    g = s.g
    g.org_with_domain("saml-zeta", "zeta.test")
    idp = IdP(g.workdir, "idp.zeta.test")
    body = idp.metadata().encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/samlmetadata+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/idp/metadata"
    try:
        p, conn = g.create_connection("saml-zeta", "zeta.test", idp, via_url=url,
                                      env={"GUICHET_OUTBOUND__ALLOW_LOOPBACK": "true"})
    finally:
        httpd.shutdown()
    s.c.require("connection create --metadata-url (loopback, GUICHET_OUTBOUND__ALLOW_LOOPBACK=true)",
                conn is not None, f"exit {p.returncode}: {(p.stderr or p.stdout).strip()[:400]}")
    flow = begin(conn)
    s.c.check("--metadata-url: login_url redirects to the SSO URL of the fetched metadata",
              flow.location.startswith(idp.sso_url + "?"), flow.error or flow.location[:200])
    p = g.cli.run("connection", "delete", conn.info["id"], "--json")
    s.c.check("connection delete ID", p.returncode == 0, (p.stderr or p.stdout).strip()[:300])
    r = requests.get(conn.entity_id, timeout=TIMEOUT)
    r2 = requests.get(conn.info["login_url"], allow_redirects=False, timeout=TIMEOUT)
    s.c.check("a deleted connection's metadata and login URL are gone (4xx)",
              400 <= r.status_code < 500 and 400 <= r2.status_code < 500, f"{describe(r)}; {describe(r2)}")


def scenario_error_pages(s: Saml) -> None:
    """Every refusal so far: an error id on the page, and none of the XML echoed."""
    no_id, echoed = [], []
    for name, r, xml in s.refusals:
        if not re.search(r"(?i)error id:?\s*(?:<[^>]+>\s*)*[0-9a-f][0-9a-f-]{7,}\b", r.text) and not (
                r.headers.get("Content-Type", "").startswith("application/json") and "error_id" in r.text):
            no_id.append(f"{name} ({r.status_code})")
        needles = ["<ns0:", "&lt;ns0:", "<ns1:", "&lt;ns1:", "<saml", "&lt;saml", "SignatureValue", "Assertion ID"]
        ids = re.findall(r' ID="([^"]+)"', xml)[:2]
        if any(n in r.text for n in needles + ids) or (xml and base64.b64encode(xml.encode()).decode()[:40] in r.text):
            echoed.append(f"{name} ({r.status_code})")
    s.c.check(f"SAML error pages carry an error id ({len(s.refusals)} refusals)", not no_id,
              f"no error id on: {no_id[:8]}{' …' if len(no_id) > 8 else ''}")
    s.c.check("SAML error pages never echo the XML", not echoed, f"XML echoed on: {echoed}")


# ---------------------------------------------------------------- standalone: pysaml2 + xmlsec1 only


def selftest(c: Checks) -> None:
    """The IdP side without Guichet: a hand-made SP, a hand-made redirect AuthnRequest, signed and
    encrypted responses judged by xmlsec1."""
    with tempfile.TemporaryDirectory() as d:
        sp_key, sp_cert = make_keypair(d, "sp", "sp.test")
        der = "".join(open(sp_cert).read().strip().splitlines()[1:-1])
        sp_id, acs = "http://127.0.0.1:9/saml/self/metadata", "http://127.0.0.1:9/saml/self/acs"
        sp_md = f'''<md:EntityDescriptor xmlns:md="{MD}" xmlns:ds="{DS}" entityID="{sp_id}">
<md:SPSSODescriptor AuthnRequestsSigned="false" protocolSupportEnumeration="{PROTOCOL}">
<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{der}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
<md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{der}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
<md:AssertionConsumerService Binding="{BINDING_HTTP_POST}" Location="{acs}" index="0" isDefault="true"/>
</md:SPSSODescriptor></md:EntityDescriptor>'''
        idp = IdP(d, "idp.acme.test")
        md = idp.metadata()
        c.check("IdP metadata: entityID, HTTP-Redirect SSO, signing certificate",
                idp.entity_id in md and idp.sso_url in md and "X509Certificate" in md, md[:200])
        idp.trust_sp(sp_md)
        facts = sp_metadata_facts(sp_md)
        c.check("sp_metadata_facts reads the hand-made SP metadata",
                facts["entity_id"] == sp_id and (BINDING_HTTP_POST, acs) in facts["acs"]
                and set(facts["certs"]) == {"signing", "encryption"}, json.dumps({k: v for k, v in facts.items() if k != "certs"}))
        rid = "_" + secrets.token_hex(16)
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        req = (f'<samlp:AuthnRequest xmlns:samlp="{PROTOCOL}" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
               f'ID="{rid}" Version="2.0" IssueInstant="{now}" Destination="{idp.sso_url}" '
               f'AssertionConsumerServiceURL="{acs}" ProtocolBinding="{BINDING_HTTP_POST}">'
               f'<saml:Issuer>{sp_id}</saml:Issuer></samlp:AuthnRequest>')
        parsed = idp.parse_redirect({"SAMLRequest": deflate_b64(req), "RelayState": "rs"}).message
        c.check("pysaml2 parses a hand-made HTTP-Redirect AuthnRequest", parsed.id == rid and
                inflate_b64(deflate_b64(req)) == req, parsed.id)
        args = idp.server.response_args(parsed, [BINDING_HTTP_POST])
        c.check("response_args: destination = the request's ACS (checked against the SP metadata)",
                args["destination"] == acs and args["in_response_to"] == rid, json.dumps(
                    {k: str(v) for k, v in args.items()}))
        xml = idp.response("ann@acme.test", rid, acs, sp_id)
        c.check("signed Response: xmlsec1 verifies Response and Assertion (rsa-sha256)",
                xmlsec_verify(xml, idp.cert_file, "Response")[0] and xmlsec_verify(xml, idp.cert_file,
                                                                                   "Response/Assertion")[0]
                and SIG_RSA_SHA256 in xml and SIG_RSA_SHA1 not in xml, "")
        other = IdP(d, "other.test")
        c.check("... and not with another key", not xmlsec_verify(xml, other.cert_file, "Response")[0], "")
        tampered = xml.replace("ann@acme.test", "eve@acme.test")
        c.check("... and not once the NameID is changed", not xmlsec_verify(tampered, idp.cert_file, "Response")[0], "")
        xml = idp.response("ann@acme.test", rid, acs, sp_id, sha1=True)
        c.check("SHA-1 case: rsa-sha1 + sha1 digest, verifies", SIG_RSA_SHA1 in xml and DIGEST_SHA1 in xml
                and xmlsec_verify(xml, idp.cert_file, "Response")[0], "")
        for label, cipher in list(CIPHERS.items()) + [("pysaml2 default", None)]:
            xml = idp.response("ann@acme.test", rid, acs, sp_id, encrypt_cert=open(sp_cert).read(), cipher=cipher)
            plain = xmlsec_decrypt(xml, sp_key)
            c.check(f"encrypted ({label}): no clear Assertion, SP key decrypts, Response signature verifies",
                    "ann@acme.test" not in xml and plain is not None and "ann@acme.test" in plain
                    and xmlsec_verify(xml, idp.cert_file, "Response")[0],
                    re.findall(r'EncryptionMethod Algorithm="([^"]+)"', xml).__str__())
        with idp_clock(datetime.timedelta(hours=-1)):
            xml = idp.response("ann@acme.test", rid, acs, sp_id)
        then = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=30)
        m = re.search(r'Conditions NotBefore="([^"]+)" NotOnOrAfter="([^"]+)"', xml)
        c.check("idp_clock(-1h): an expired Response (NotOnOrAfter half an hour ago at most)",
                m is not None and m.group(2) < then.strftime("%Y-%m-%dT%H:%M:%SZ"), m.group(0) if m else xml[:300])
        xml = wrap_forged_assertion(idp.response("ann@acme.test", rid, acs, sp_id, sign_response=False),
                                    "ann@acme.test", "eve@acme.test")
        c.check("XSW document: forged Assertion first, the signed one still verifies",
                xml.index("eve@acme.test") < xml.index("ann@acme.test") and xml.count("<ns1:Assertion ") == 2
                and xmlsec_verify(xml, idp.cert_file, "Response/Assertion")[0], "")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base")
    ap.add_argument("--bin")
    ap.add_argument("--selftest", action="store_true", help="the pysaml2 + xmlsec1 side alone")
    args = ap.parse_args()
    c = Checks()
    if not os.access(XMLSEC, os.X_OK):
        c.check("xmlsec1 is installed", False, f"{XMLSEC} is missing (Debian package xmlsec1)")
    elif args.selftest:
        c.scenario("pysaml2 IdP + xmlsec1, without Guichet", selftest, c)
    else:
        if not (args.base and args.bin):
            ap.error("--base and --bin are required (or --selftest)")
        with tempfile.TemporaryDirectory(prefix="guichet-saml-") as workdir:
            g = Guichet(args.base.rstrip("/"), args.bin, workdir)
            s = Saml(c, g)
            ctx: dict = {}
            c.scenario("organizations, verified domains, SAML connections (CLI)", scenario_setup, s, ctx)
            if "default" in ctx:
                c.scenario("SP metadata, loaded into pysaml2", scenario_sp_metadata, s, ctx)
            if "default" in ctx and ctx["default"].sp_metadata:
                c.scenario("signed responses through the HTTP flow, JIT", scenario_signed, s, ctx)
                c.scenario("--want-assertions-signed", scenario_want_signed, s, ctx)
                c.scenario("encrypted assertions", scenario_encrypted, s, ctx)
                c.scenario("refused responses", scenario_refusals, s, ctx)
                c.scenario("--allow-sha1", scenario_allow_sha1, s, ctx)
                c.scenario("RelayState and size", scenario_relay_state, s, ctx)
                c.scenario("--sign-requests: signed AuthnRequests", scenario_sign_requests, s, ctx)
                c.scenario("--allow-idp-initiated", scenario_idp_initiated, s, ctx)
                c.scenario("a real browser's cookies on the IdP's POST", scenario_browser_cookies, s, ctx)
                c.scenario("--metadata-url and connection delete", scenario_metadata_url, s, ctx)
                c.scenario("error pages", scenario_error_pages, s)
    print(f"{c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
