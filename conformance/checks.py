"""Check bookkeeping shared by the conformance scripts: PASS/FAIL lines, scenarios that stop
at their first failed requirement, and a one-line description of an HTTP response."""

from __future__ import annotations

import traceback

import requests


class Abort(Exception):
    """A required check failed: the rest of the scenario cannot run."""


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, name: str, ok: bool, why: str = "") -> bool:
        if ok:
            self.passed += 1
            print(f"PASS {name}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL {name}: {why}", flush=True)
        return bool(ok)

    def require(self, name: str, ok: bool, why: str = "") -> None:
        if not self.check(name, ok, why):
            raise Abort(name)

    def scenario(self, title: str, fn, *args):
        """Runs fn(*args); a failed requirement skips the rest, an exception is one failure."""
        print(f"-- {title}", flush=True)
        try:
            return fn(*args)
        except Abort as e:
            print(f"   (rest of '{title}' skipped after failed check: {e})", flush=True)
        except requests.RequestException as e:
            self.check(f"{title}: HTTP request", False, f"{type(e).__name__}: {e}")
        except Exception:  # an OAuth error a library raised, a bug here, a page we could not read
            self.check(f"{title}: unexpected error", False, traceback.format_exc())
        return None


def describe(resp: requests.Response) -> str:
    body = resp.text[:300].replace("\n", " ")
    location = resp.headers.get("Location")
    return (
        f"got {resp.status_code} for {resp.request.method} {resp.url}"
        + (f" (Location: {location})" if location else "")
        + (f"; body starts: {body!r}" if body else "")
    )
