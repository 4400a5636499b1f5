// Browser end-to-end test of the ragbox UI: a real `ragbox serve` on loopback,
// Debian's chromium driven by playwright-core. Screenshots go to ARTIFACTS.
//
//   node ui.test.mjs RAGBOX_BIN SHARED_DIR WORK_DIR ARTIFACTS_DIR
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const [bin, shared, work, artifacts] = process.argv.slice(2);
if (!bin || !shared || !work || !artifacts) {
  console.error('usage: node ui.test.mjs RAGBOX_BIN SHARED_DIR WORK_DIR ARTIFACTS_DIR');
  process.exit(2);
}

let failures = 0;
function check(cond, what) {
  if (!cond) { failures++; console.error(`CHECK failed: ${what}`); } else console.log(`ok - ${what}`);
}

// ------------------------------------------------------------------- data
fs.rmSync(work, { recursive: true, force: true });
fs.mkdirSync(work, { recursive: true });
fs.mkdirSync(artifacts, { recursive: true });
const data = path.join(work, 'data');
const conf = path.join(work, 'ragbox.conf');
fs.writeFileSync(conf, '[web]\nargon2_t_cost = 1\nargon2_m_cost_kib = 4096\n');
const rb = (...args) => execFileSync(bin, ['--data', data, '--config', conf, ...args], { encoding: 'utf8' });

// Real documents, one passage per paragraph (Chinese news in 400-character pieces).
function jsonl(file, lang) {
  const text = fs.readFileSync(file, 'utf8');
  const paras = text.split(/\n\s*\n/).flatMap((p) => {
    const out = [];
    for (let i = 0; i < p.length; i += 400) out.push(p.slice(i, i + 400));
    return out;
  }).filter((p) => p.trim());
  return JSON.stringify({
    source: path.basename(file), title: path.basename(file), language: lang, mime: 'text/plain',
    chunks: paras.map((t, i) => ({ text: t, page: 1, ordinal: i })),
  }) + '\n';
}
rb('collection', 'create', 'medical');
rb('collection', 'create', 'news');
const medFile = path.join(work, 'med.jsonl');
fs.writeFileSync(medFile, jsonl(path.join(shared, 'eval/pubmedqa/docs/pmid-10135926.txt'), 'en'));
rb('index', 'add', '--collection', 'medical', medFile);
const newsFile = path.join(work, 'news.jsonl');
fs.writeFileSync(newsFile, jsonl(path.join(shared, 'eval/crud-zh/docs/news-00012.txt'), 'zh'));
rb('index', 'add', '--collection', 'news', newsFile);
rb('user', 'add', 'root', '--role', 'admin', '--password', 'root-password');
rb('user', 'add', 'alice', '--role', 'user', '--password', 'alice-password');
rb('user', 'add', 'aud', '--role', 'auditor', '--password', 'aud-password');
// The CLI form of grants (the browser sets alice's below through the admin page).
rb('group', 'add', 'reviewers', 'aud');
rb('grant', 'set', 'news', '--group', 'reviewers', '--read');
check(rb('grant', 'list', 'news').includes('reviewers'), 'CLI grant set/list');

// ----------------------------------------------------------------- server
const server = spawn(bin, ['--data', data, '--config', conf, 'serve', '--listen', '127.0.0.1:0'],
  { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise((resolve, reject) => {
  let out = '';
  server.stdout.on('data', (d) => {
    out += d;
    const m = out.match(/port (\d+)/);
    if (m) resolve(Number(m[1]));
  });
  server.on('exit', (c) => reject(new Error(`server exited ${c}`)));
  setTimeout(() => reject(new Error('server did not start')), 15000);
});
const base = `http://127.0.0.1:${port}`;
// Never leave the server behind, whatever happens below.
process.on('exit', () => server.kill('SIGKILL'));
process.on('uncaughtException', (e) => { console.error(e); process.exit(1); });
process.on('unhandledRejection', (e) => { console.error(e); process.exit(1); });

const userDir = fs.mkdtempSync(path.join(work, 'chromium-'));
// A fresh profile directory (playwright passes it as --user-data-dir).
const ctx = await chromium.launchPersistentContext(userDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1366, height: 768 },
  locale: 'en-US',
});
const shot = (page, name) => page.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true });
const errors = [];

async function login(page, user, password) {
  await page.goto(`${base}/`);
  await page.fill('#login-user', user);
  await page.fill('#login-password', password);
  await page.keyboard.press('Enter'); // keyboard only
  await page.waitForSelector('#topbar:not([hidden])');
}

async function logout(page) {
  await page.click('#logout');
  await page.waitForSelector('#login-form');
}

try {
  const page = ctx.pages()[0] || await ctx.newPage();
  // HTTP error statuses the UI handles (401 before login, the wrong password)
  // are logged by the browser as "Failed to load resource": not script errors.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));

  // Headers: strict CSP on the page itself.
  const resp = await page.goto(`${base}/`);
  check((resp.headers()['content-security-policy'] || '').includes("script-src 'self'"), 'strict CSP on /');
  await page.waitForSelector('#login-form');
  await shot(page, '01-login');

  // A wrong password shows an error and no session.
  await page.fill('#login-user', 'alice');
  await page.fill('#login-password', 'wrong-password');
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#login-error:not(:empty)');
  check((await page.textContent('#login-error')).includes('Wrong'), 'wrong password refused');

  // Admin grants alice read on both collections through the admin page.
  await login(page, 'root', 'root-password');
  await page.goto(`${base}/#/admin`);
  await page.waitForSelector('#user-list tr');
  check((await page.textContent('#user-list')).includes('alice'), 'admin sees users');
  for (const col of ['medical', 'news']) {
    await page.selectOption('#grant-collection', col);
    await page.selectOption('#grant-kind', 'user');
    await page.fill('#grant-name', 'alice');
    await page.click('#grant-name ~ button, form:has(#grant-name) button[type=submit]');
    await page.waitForSelector(`#grant-list td:text-is("${col}")`);
  }
  check((await page.textContent('#grant-list')).includes('alice'), 'grants listed');
  await shot(page, '02-admin');

  // Upload a real document with progress, and watch it ingest.
  await page.goto(`${base}/#/documents`);
  await page.waitForSelector('#upload-file');
  await page.selectOption('#doc-collection', 'medical');
  await page.waitForSelector('#doc-list tr');
  await page.setInputFiles('#upload-file', path.join(shared, 'eval/pubmedqa/docs/pmid-10201555.txt'));
  await page.click('form:has(#upload-file) button[type=submit]');
  await page.waitForSelector('#doc-list td:text-is("pmid-10201555.txt")');
  await shot(page, '02b-uploaded');
  let state = '';
  for (let i = 0; i < 60 && !state.includes('indexed'); i++) {
    await page.waitForTimeout(500);
    await page.selectOption('#doc-collection', 'news');
    await page.selectOption('#doc-collection', 'medical');
    await page.waitForSelector('#doc-list td:text-is("pmid-10201555.txt")');
    state = await page.textContent('#doc-list tr:has(td:text-is("pmid-10201555.txt")) td:nth-child(2)');
  }
  check(state.includes('indexed'), `uploaded document ingested (${state})`);
  await shot(page, '02c-ingested');
  await logout(page);

  // alice: search in English, open the cited passage (document + page).
  await login(page, 'alice', 'alice-password');
  await page.goto(`${base}/#/search`);
  await page.waitForSelector('#search-query');
  await page.fill('#search-query', 'helicopter intubation');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#search-results .hit');
  check((await page.textContent('#search-results')).includes('pmid-10135926.txt'), 'English search finds the document');
  await shot(page, '03-search-en');
  await page.click('#search-results .hit button');
  await page.waitForSelector('#passage-dialog[open]');
  const meta = await page.textContent('#passage-meta');
  check(meta.includes('pmid-10135926.txt') && meta.includes('page 1'), 'passage shows document and page');
  check((await page.textContent('#passage-text')).toLowerCase().includes('helicopter'), 'passage text shown');
  await shot(page, '04-passage');
  await page.keyboard.press('Escape');

  // Ask in English: the answer streams in, citations open the cited passage.
  const health = await (await page.request.get(`${base}/api/health`)).json();
  if (health.features.ask) {
    await page.goto(`${base}/#/ask`);
    await page.waitForSelector('#ask-question');
    await page.fill('#ask-question', 'Does the in-flight helicopter environment impair oral endotracheal intubation?');
    await page.selectOption('#ask-collection', 'medical');
    await page.click('form:has(#ask-question) button[type=submit]');
    await page.waitForSelector('#ask-citations li button');
    check((await page.textContent('#ask-answer')).includes('[1]'), 'English answer with a citation label');
    await shot(page, '04b-ask-en');
    await page.click('#ask-citations li button');
    await page.waitForSelector('#passage-dialog[open]');
    check((await page.textContent('#passage-meta')).includes('pmid-10135926.txt'), 'citation opens its passage');
    await page.keyboard.press('Escape');
    // Ask in Chinese, with the UI in Chinese.
    await page.selectOption('#lang-select', 'zh');
    await page.waitForSelector('#nav a:text-is("提问")');
    await page.fill('#ask-question', 'OPPO Reno9 Pro 的 ColorOS 升级内测招募的是什么版本？');
    await page.selectOption('#ask-collection', 'news');
    await page.click('form:has(#ask-question) button[type=submit]');
    await page.waitForSelector('#ask-citations li button');
    check((await page.textContent('#ask-citations')).includes('news-00012.txt'), 'Chinese answer cites the news article');
    await shot(page, '04c-ask-zh');
    await page.selectOption('#lang-select', 'en');
    await page.goto(`${base}/#/search`);
    await page.waitForSelector('#search-query');
  } else {
    check(false, 'ask is not part of this build');
  }

  // Switch to Chinese and search Chinese text.
  await page.selectOption('#lang-select', 'zh');
  await page.waitForSelector('#nav a:text-is("检索")');
  await page.fill('#search-query', '升级内测');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#search-results .hit');
  check((await page.textContent('#search-results')).includes('news-00012.txt'), 'Chinese search finds the news article');
  check((await page.textContent('#search-results button')).includes('打开段落'), 'UI in Chinese');
  await shot(page, '05-search-zh');

  // Batch jobs: a CSV of questions over medical, progress, download links.
  if (health.features.batch) {
    await page.goto(`${base}/#/batch`);
    await page.waitForSelector('#job-file');
    const csv = path.join(artifacts, 'questions.csv');
    fs.writeFileSync(csv, 'id,question\nq1,Does the helicopter environment impair intubation?\nq2,How many intubations succeeded in flight?\n');
    await page.selectOption('#job-collections', ['medical']);
    await page.setInputFiles('#job-file', csv);
    await page.selectOption('#job-mode', 'extractive');
    await page.click('form:has(#job-file) button[type=submit]');
    await page.waitForSelector('#job-rows a:text-is("XLSX")', { timeout: 30000 });
    check((await page.textContent('#job-rows')).includes('2/2'), 'batch job done with both questions');
    const href = await page.getAttribute('#job-rows a:text-is("CSV")', 'href');
    const res = await page.request.get(`${base}${href}`);
    check(res.ok() && (await res.text()).startsWith('id,question,answer'), 'batch result downloads as CSV');
    await shot(page, '05b-batch');
  } else {
    check(false, 'batch jobs are not part of this build');
  }

  // Documents page: the collection's documents and their ingest state.
  await page.goto(`${base}/#/documents`);
  await page.waitForSelector('#doc-list tr');
  check((await page.textContent('#doc-list')).includes('indexed'), 'documents listed as indexed');
  await shot(page, '06-documents');
  await page.selectOption('#lang-select', 'en');
  await logout(page);

  // Auditor: the audit page (records of the logins and searches above, when
  // the audit trail is part of this build).
  await login(page, 'aud', 'aud-password');
  await page.goto(`${base}/#/audit`);
  const features = await (await page.request.get(`${base}/api/health`)).json();
  if (features.features.audit) {
    await page.waitForSelector('#audit-user');
    await page.fill('#audit-user', 'alice');
    await page.click('form:has(#audit-user) button[type=submit]');
    await page.waitForSelector('#audit-list tr');
    check((await page.textContent('#audit-list')).includes('search'), 'auditor sees alice\'s search record');
    await page.click('#audit-verify-button');
    await page.waitForSelector('#audit-verify:not(:empty)');
    check((await page.getAttribute('#audit-verify', 'class')) === 'verify-ok', 'audit chain verifies');
  } else {
    await page.waitForSelector('.unavailable');
    check(true, 'audit page reports the audit trail is not in this build');
  }
  await shot(page, '07-audit');
  // An auditor does not get admin pages.
  const r = await page.request.get(`${base}/api/users`);
  check(r.status() === 403, 'auditor cannot list users');
} catch (e) {
  failures++;
  console.error(e);
} finally {
  await ctx.close();
  server.kill('SIGTERM');
}
check(errors.length === 0, `no console errors (${errors.join(' | ')})`);
console.log(failures ? `${failures} failures` : 'all passed');
process.exit(failures ? 1 : 0);
