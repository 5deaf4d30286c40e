// Shared by the browser checks: Debian's Chromium through npm playwright-core.

import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** playwright-core's chromium, from node_modules next to the scripts or from --node-dir. */
export async function loadPlaywright(opts) {
  let mod;
  try {
    mod = await import('playwright-core');
  } catch (e) {
    if (e?.code !== 'ERR_MODULE_NOT_FOUND') throw e;
    const dir = opts['node-dir'] || process.env.GUICHET_NODE_DIR || join(homedir(), '.cache', 'guichet-node');
    const require = createRequire(join(dir, 'package.json'));
    let path;
    try {
      path = require.resolve('playwright-core');
    } catch {
      throw new Error(`playwright-core is not installed next to this script nor in ${dir} (npm install playwright-core there)`);
    }
    mod = await import(pathToFileURL(path).href);
  }
  return mod.chromium ?? mod.default?.chromium;
}

/** `--name value` / `--name=value` arguments. */
export function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(a);
    if (!m) throw new Error(`unexpected argument ${JSON.stringify(a)}`);
    if (m[2] !== undefined) opts[m[1]] = m[2];
    else if (i + 1 < argv.length) opts[m[1]] = argv[++i];
    else throw new Error(`--${m[1]} needs a value`);
  }
  return opts;
}
