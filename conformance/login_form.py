#!/usr/bin/env python3
"""Black-box conformance check of Guichet's plain HTML login form.

Drives a running server the way a third-party client would: `requests` for
HTTP and the standard library's `html.parser` for the pages, with no knowledge
of Guichet's internals. The user given by --email/--password must exist.

Checked contract:
  * GET /login shows a POST form with `email`, `password` and a hidden
    `csrf_token` input; submitting it with the right credentials answers 303,
    and the redirect target (200) shows the user's email.
  * Logging in sets a new session cookie (rotation) with HttpOnly and
    SameSite=Lax (see --session-cookie for which cookie that is).
  * Wrong password and unknown email both answer 401 "Invalid email or
    password" with the same page (once the CSRF token, the echoed email and
    any CSP nonce are masked).
  * A POST without csrf_token answers 403.
  * GET /logout shows a POST form with a csrf_token; submitting it answers
    303, after which / redirects to /login, also for a client replaying the
    old session cookie.

Prints one PASS/FAIL line per check, then `N passed, M failed`; exits 1 if
any check failed.
"""

from __future__ import annotations

import argparse
import difflib
import html
import re
import secrets
import sys
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone
from html.parser import HTMLParser
from urllib.parse import urljoin, urlparse

import requests

from checks import Abort, Checks, describe

TIMEOUT = 10  # seconds, per request
CSRF_FIELD = "csrf_token"
LOGIN_ERROR = "Invalid email or password"
BROWSER_HEADERS = {
    "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8",
    "User-Agent": "guichet-conformance/1 (python-requests)",
}


# --------------------------------------------------------------------------
# HTML forms


@dataclass
class Form:
    action: str | None
    method: str
    inputs: list[dict[str, str]] = field(default_factory=list)

    def input(self, name: str) -> dict[str, str] | None:
        return next((i for i in self.inputs if i.get("name") == name), None)

    def hidden_fields(self) -> dict[str, str]:
        return {
            i["name"]: i.get("value", "")
            for i in self.inputs
            if i.get("name") and i.get("type", "text").lower() == "hidden"
        }

    def url(self, page_url: str) -> str:
        """Where the form posts: its action resolved against the page URL."""
        return urljoin(page_url, self.action) if self.action else page_url


class FormParser(HTMLParser):
    """Collects every <form> with the <input> elements inside it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[Form] = []
        self._current: Form | None = None

    def handle_starttag(self, tag, attrs):
        attributes = {name: (value if value is not None else "") for name, value in attrs}
        if tag == "form":
            self._current = Form(
                action=attributes.get("action") or None,
                method=attributes.get("method", "get").strip().lower(),
            )
            self.forms.append(self._current)
        elif tag == "input" and self._current is not None:
            self._current.inputs.append(attributes)

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def first_post_form(page: str) -> Form | None:
    parser = FormParser()
    parser.feed(page)
    parser.close()
    return next((f for f in parser.forms if f.method == "post"), None)


# --------------------------------------------------------------------------
# Cookies, from the raw Set-Cookie headers


@dataclass
class SetCookie:
    name: str
    value: str
    attributes: dict[str, str]  # lower-cased attribute names
    raw: str

    def deletes(self) -> bool:
        if self.value == "" or self.attributes.get("max-age", "").strip() == "0":
            return True
        expires = self.attributes.get("expires")
        if expires:
            try:
                return parsedate_to_datetime(expires) <= datetime.now(timezone.utc)
            except (TypeError, ValueError):
                return False
        return False


def set_cookies(resp: requests.Response) -> list[SetCookie]:
    try:
        lines = resp.raw.headers.getlist("Set-Cookie")
    except AttributeError:
        lines = [resp.headers["Set-Cookie"]] if "Set-Cookie" in resp.headers else []
    cookies = []
    for line in lines:
        first, *rest = line.split(";")
        name, _, value = first.partition("=")
        attributes = {}
        for part in rest:
            key, _, val = part.partition("=")
            attributes[key.strip().lower()] = val.strip()
        cookies.append(SetCookie(name.strip(), value.strip().strip('"'), attributes, line))
    return cookies


# --------------------------------------------------------------------------
# The client


class Client:
    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        parsed = urlparse(self.base)
        self.origin = f"{parsed.scheme}://{parsed.netloc}"
        self.session = requests.Session()
        self.session.headers.update(BROWSER_HEADERS)

    def url(self, path: str) -> str:
        return urljoin(self.base + "/", path.lstrip("/"))

    def get(self, path_or_url: str, **kw) -> requests.Response:
        url = path_or_url if "://" in path_or_url else self.url(path_or_url)
        return self.session.get(url, timeout=TIMEOUT, **kw)

    def post_form(self, url: str, data: dict[str, str]) -> requests.Response:
        # A browser sends Origin on form POSTs; send it as one would.
        return self.session.post(
            url, data=data, headers={"Origin": self.origin}, allow_redirects=False, timeout=TIMEOUT
        )

    def cookie_values(self) -> dict[str, str]:
        return {c.name: c.value for c in self.session.cookies}


def open_login_form(c: Checks, client: Client, label: str) -> tuple[requests.Response, Form]:
    resp = client.get("/login")
    c.require(f"{label}: GET /login -> 200", resp.status_code == 200, describe(resp))
    form = first_post_form(resp.text)
    c.require(f"{label}: /login has a <form method=post>", form is not None, "no such form on the page")
    return resp, form


def login_data(form: Form, email: str, password: str, with_csrf: bool = True) -> dict[str, str]:
    data = form.hidden_fields()
    if not with_csrf:
        data.pop(CSRF_FIELD, None)
    data["email"] = email
    data["password"] = password
    return data


# --------------------------------------------------------------------------
# Scenarios


def scenario_login(c: Checks, base: str, email: str, password: str, cookie_name: str | None):
    client = Client(base)
    page, form = open_login_form(c, client, "login")
    names = [i.get("name") for i in form.inputs]
    c.require("login form has an 'email' input", "email" in names, f"inputs: {names}")
    c.require("login form has a 'password' input", "password" in names, f"inputs: {names}")
    csrf = form.input(CSRF_FIELD)
    c.require(
        "login form has a hidden 'csrf_token' input with a value",
        csrf is not None and csrf.get("type", "").lower() == "hidden" and bool(csrf.get("value")),
        f"csrf_token input: {csrf}",
    )

    before = client.cookie_values()
    resp = client.post_form(form.url(page.url), login_data(form, email, password))
    c.require("correct credentials -> 303", resp.status_code == 303, describe(resp))
    c.require("303 has a Location", bool(resp.headers.get("Location")), describe(resp))

    # The session cookie: the one named by --session-cookie; else those the
    # login response sets (rather than deletes) with "session" in their name,
    # else every cookie it sets.
    cookies = [k for k in set_cookies(resp) if not k.deletes()]
    if cookie_name:
        cookies = [k for k in cookies if k.name == cookie_name]
    elif any("session" in k.name.lower() for k in cookies):
        cookies = [k for k in cookies if "session" in k.name.lower()]
    print(f"   session cookie(s): {[k.name for k in cookies]}")
    c.check(
        "login response sets a session cookie",
        bool(cookies),
        f"Set-Cookie headers: {[k.raw for k in set_cookies(resp)]}",
    )
    if cookies:
        same = [k.name for k in cookies if before.get(k.name) == k.value]
        c.check(
            "session cookie changed at login (rotation)",
            not same,
            f"cookie(s) {same} kept their pre-login value",
        )
        not_http_only = [k.raw for k in cookies if "httponly" not in k.attributes]
        c.check("session cookie is HttpOnly", not not_http_only, f"{not_http_only}")
        not_lax = [k.raw for k in cookies if k.attributes.get("samesite", "").lower() != "lax"]
        c.check("session cookie is SameSite=Lax", not not_lax, f"{not_lax}")

    landing = client.get(urljoin(resp.url, resp.headers["Location"]))
    c.require("redirect after login -> 200", landing.status_code == 200, describe(landing))
    c.check(
        "page after login shows the user's email",
        email in html.unescape(landing.text),
        f"{email!r} not found in {landing.url}",
    )
    return client


def failed_login(c: Checks, base: str, label: str, email: str, password: str):
    """Posts bad credentials from a fresh client; returns (response, tokens to mask)."""
    client = Client(base)
    page, form = open_login_form(c, client, label)
    data = login_data(form, email, password)
    resp = client.post_form(form.url(page.url), data)
    c.check(f"{label} -> 401", resp.status_code == 401, describe(resp))
    c.check(
        f"{label}: page says '{LOGIN_ERROR}'",
        LOGIN_ERROR in html.unescape(resp.text),
        describe(resp),
    )
    tokens = [data.get(CSRF_FIELD, "")]
    again = first_post_form(resp.text)
    if again is not None:
        tokens.append(again.hidden_fields().get(CSRF_FIELD, ""))
    return resp, tokens


def normalise(body: str, tokens: list[str], email: str) -> str:
    """Masks what legitimately differs between two failed logins."""
    for token in filter(None, tokens):
        body = body.replace(token, "").replace(html.escape(token), "")
    body = body.replace(html.escape(email), "{email}").replace(email, "{email}")
    return re.sub(r'nonce="[^"]*"', 'nonce=""', body)


def scenario_bad_credentials(c: Checks, base: str, email: str, password: str):
    wrong, wrong_tokens = failed_login(
        c, base, "wrong password", email, password + "-wrong"
    )
    unknown_email = f"nobody-{secrets.token_hex(4)}@example.com"
    unknown, unknown_tokens = failed_login(
        c, base, "unknown email", unknown_email, password
    )
    a = normalise(wrong.text, wrong_tokens, email)
    b = normalise(unknown.text, unknown_tokens, unknown_email)
    diff = "\n".join(
        list(difflib.unified_diff(a.splitlines(), b.splitlines(), "wrong password", "unknown email", lineterm=""))[:30]
    )
    c.check("wrong password and unknown email give the same page", a == b, "\n" + diff)


def scenario_missing_csrf(c: Checks, base: str, email: str, password: str):
    client = Client(base)
    page, form = open_login_form(c, client, "no csrf_token")
    resp = client.post_form(form.url(page.url), login_data(form, email, password, with_csrf=False))
    c.check("POST /login without csrf_token -> 403", resp.status_code == 403, describe(resp))


def redirects_to_login(resp: requests.Response) -> bool:
    location = resp.headers.get("Location", "")
    return resp.status_code in (302, 303) and urlparse(urljoin(resp.url, location)).path == "/login"


def scenario_logout(c: Checks, client: Client):
    home = client.get("/account")
    c.check(
        "GET /account while logged in -> 200, not the login page",
        home.status_code == 200 and urlparse(home.url).path != "/login",
        describe(home),
    )
    old_cookies = client.session.cookies.copy()

    page = client.get("/logout")
    c.require("GET /logout -> 200", page.status_code == 200, describe(page))
    form = first_post_form(page.text)
    c.require("/logout has a <form method=post>", form is not None, "no such form on the page")
    csrf = form.input(CSRF_FIELD)
    c.require(
        "logout form has a hidden 'csrf_token' input with a value",
        csrf is not None and csrf.get("type", "").lower() == "hidden" and bool(csrf.get("value")),
        f"csrf_token input: {csrf}",
    )
    resp = client.post_form(form.url(page.url), form.hidden_fields())
    c.require("POST /logout -> 303", resp.status_code == 303, describe(resp))

    after = client.get("/account", allow_redirects=False)
    c.check("after logout, GET /account redirects to /login", redirects_to_login(after), describe(after))

    replay = Client(client.base)
    replay.session.cookies.update(old_cookies)
    again = replay.get("/account", allow_redirects=False)
    c.check(
        "after logout, the old session cookie no longer logs in",
        redirects_to_login(again),
        describe(again),
    )


# --------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="server base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--email", required=True, help="email of an existing, active user")
    parser.add_argument("--password", required=True, help="that user's password")
    parser.add_argument(
        "--session-cookie",
        help="name of the session cookie (default: the cookies the login response sets"
        " whose name contains 'session', else all of them)",
    )
    args = parser.parse_args()

    c = Checks()
    client = c.scenario("login", scenario_login, c, args.base, args.email, args.password, args.session_cookie)
    c.scenario("bad credentials", scenario_bad_credentials, c, args.base, args.email, args.password)
    c.scenario("missing csrf_token", scenario_missing_csrf, c, args.base, args.email, args.password)
    if client is not None:
        c.scenario("logout", scenario_logout, c, client)
    else:
        print("-- logout\n   (skipped: no logged-in session)")

    print(f"{c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
