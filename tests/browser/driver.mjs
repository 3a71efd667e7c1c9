// The Node side of tests/integration/test_browser.py.
//
// Serves page.html, page.js and livekit-client's UMD bundle from 127.0.0.1 (nothing
// is fetched from elsewhere), starts Chromium through puppeteer-core with its fake
// camera and microphone, and relays between the page and the Python test over JSON
// lines:
//   stdin  {"id": 1, "call": "connect", "args": [...]}   calls window.lk.connect(...args)
//   stdout {"id": 1, "ok": true, "result": ...}          or {"id": 1, "ok": false, "error": "..."}
//   stdout {"event": "...", ...}                         what the page reports on its own
// The first line is {"event": "ready", "browser_pid": N, "version": "..."}.
// The page's console and errors go to stderr. When stdin closes (the test is done,
// or died), or on SIGTERM/SIGINT, the browser is closed and the driver exits.
//
//   node driver.mjs --chromium /usr/bin/chromium --modules DIR --profile DIR
//                   [--audio-file WAV] [--video-file Y4M]

import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const { values: opts } = parseArgs({
  options: {
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    modules: { type: 'string' },
    profile: { type: 'string' },
  },
});
if (!opts.modules || !opts.profile) {
  process.stderr.write('driver: --modules and --profile are required\n');
  process.exit(2);
}
// The packages are installed outside the repository (tests/browser/node_env.py).
const puppeteer = createRequire(path.join(opts.modules, 'package.json'))('puppeteer-core');

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// The only files the page may load, all local.
const files = {
  '/': [path.join(here, 'page.html'), 'text/html'],
  '/page.js': [path.join(here, 'page.js'), 'text/javascript'],
  '/livekit-client.umd.js': [
    path.join(opts.modules, 'node_modules', 'livekit-client', 'dist', 'livekit-client.umd.js'),
    'text/javascript',
  ],
};
const server = http.createServer(async (req, res) => {
  const entry = files[new URL(req.url, 'http://x').pathname];
  if (!entry) {
    res.writeHead(req.url === '/favicon.ico' ? 204 : 404).end();
    return;
  }
  try {
    const body = await readFile(entry[0]);
    res.writeHead(200, { 'content-type': entry[1], 'cache-control': 'no-store' }).end(body);
  } catch (err) {
    res.writeHead(500).end(String(err));
  }
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const pageUrl = `http://127.0.0.1:${server.address().port}/`;

const browser = await puppeteer.launch({
  executablePath: opts.chromium,
  headless: true,
  userDataDir: opts.profile,
  // The defaults of puppeteer include --enable-automation and friends; ours add the
  // fake media devices, autoplay without a gesture, and no calls to Google's hosts
  // (this machine's network is closed; each try would only fail).
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--use-fake-device-for-media-stream',
    '--use-fake-ui-for-media-stream',
    '--autoplay-policy=no-user-gesture-required',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-quic',
    '--no-first-run',
    '--disable-features=WebRtcHideLocalIpsWithMdns',
  ],
  protocolTimeout: 120_000,
});
const browserPid = browser.process()?.pid ?? null;

let closing = false;
async function shutdown(code) {
  if (closing) return;
  closing = true;
  try {
    await browser.close();
  } catch {
    browser.process()?.kill('SIGKILL');
  }
  server.close();
  process.exit(code);
}
process.on('SIGTERM', () => shutdown(0));
process.on('SIGINT', () => shutdown(0));
browser.on('disconnected', () => {
  if (!closing) {
    process.stderr.write('driver: the browser went away\n');
    emit({ event: 'browser_gone' });
    shutdown(1);
  }
});

const page = await browser.newPage();
page.on('console', (msg) => process.stderr.write(`page ${msg.type()}: ${msg.text()}\n`));
page.on('pageerror', (err) => process.stderr.write(`page error: ${err.stack || err}\n`));
await page.exposeFunction('reportToDriver', (obj) => emit(obj));
await page.goto(pageUrl, { waitUntil: 'load' });
await page.waitForFunction(() => window.lk !== undefined);

emit({ event: 'ready', browser_pid: browserPid, version: await browser.version(), page: pageUrl });

const lines = readline.createInterface({ input: process.stdin });
lines.on('line', async (line) => {
  if (!line.trim()) return;
  let msg;
  try {
    msg = JSON.parse(line);
  } catch (err) {
    emit({ event: 'bad_command', line, error: String(err) });
    return;
  }
  try {
    const result = await page.evaluate((name, args) => window.lk[name](...args), msg.call, msg.args ?? []);
    emit({ id: msg.id, ok: true, result: result ?? null });
  } catch (err) {
    emit({ id: msg.id, ok: false, error: String(err && err.message ? err.message : err) });
  }
});
lines.on('close', () => shutdown(0));
