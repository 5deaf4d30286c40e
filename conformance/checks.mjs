// Check bookkeeping shared by the Node conformance scripts (like checks.py for the Python
// ones): PASS/FAIL lines, counters for the final `N passed, M failed` line, and scenarios
// whose blocking steps stop the rest of the scenario.

export const results = { passed: 0, failed: 0 };

export function oneLine(s) {
  s = String(s).replace(/\s+/g, ' ').trim();
  return s.length > 900 ? `${s.slice(0, 900)}...` : s;
}

export function pass(name) {
  results.passed++;
  console.log(`PASS ${name}`);
}

export function fail(name, why) {
  results.failed++;
  console.log(`FAIL ${name}: ${oneLine(why)}`);
}

export function jsonish(v) {
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s;
  } catch {
    return String(v);
  }
}

export class CheckError extends Error {
  constructor(message) {
    super(message);
    this.name = 'CheckError';
  }
}

export function ensure(ok, why) {
  if (!ok) throw new CheckError(why);
}

/**
 * One scenario: a sequence of checks. `step` failures block the rest of the
 * scenario (later steps are reported as FAIL "not run"), `check` failures do not.
 * `describe(e)` words an exception; `onBlocked(stepName)` may add context to a failure.
 */
export class Scenario {
  constructor(title, { describe, onBlocked } = {}) {
    this.title = title;
    this.blockedBy = null;
    this.describe = describe || ((e) => (e instanceof Error ? `${e.name}: ${e.message}` : jsonish(e)));
    this.onBlocked = onBlocked;
  }

  async run(name, fn, blocking) {
    const full = `${this.title}: ${name}`;
    if (this.blockedBy) {
      fail(full, `not run: '${this.blockedBy}' failed`);
      return undefined;
    }
    try {
      const v = await fn();
      pass(full);
      return v;
    } catch (e) {
      let why = this.describe(e);
      if (this.onBlocked) {
        try {
          why += ` [${await this.onBlocked(name)}]`;
        } catch {
          // the page is gone: the error says enough
        }
      }
      fail(full, why);
      if (blocking) this.blockedBy = name;
      return undefined;
    }
  }

  step(name, fn) {
    return this.run(name, fn, true);
  }

  check(name, fn) {
    return this.run(name, fn, false);
  }
}
