/**
 * The SOC console in a real browser: Debian's Chromium driven by playwright-core (no browser
 * download; .ci/run installs the `chromium` package). Sign-in with a token, the identity card of
 * an identity held after a SOC-confirmed takeover, its signals and bindings, what each scope shows,
 * the session cookie's flags, and forged cross-site posts refused.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { startTestApi, type TestApi, TOKENS } from '../api/support.ts';
import { writeStricterPolicy } from '../src/harness.ts';
import { bindSmsPhone, envelope, startPipeline } from '../src/pipeline.ts';
import { pollUntil } from '../src/wait.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// Flags for a machine with no outside network: no background connections, no updates, no sync.
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

type Pipeline = Awaited<ReturnType<typeof startPipeline>>;
let p: Pipeline;
let api: TestApi;
let browser: Browser;
let dir: string;
const id = `console-${Date.now()}`;

before(async () => {
  assert.ok(
    existsSync(CHROMIUM),
    `no Chromium at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)`,
  );
  p = await startPipeline();
  dir = mkdtempSync(path.join(tmpdir(), 'console-'));
  // A shadow policy without SMS or voice codes for medium actions.
  const stricter = writeStricterPolicy(dir, '1.2.0-stricter');
  api = await startTestApi(p.config, { SHADOW_POLICIES: `stricter=${stricter}` });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  await bindSmsPhone(p, id, `+4915111${String(Date.now() % 100_000).padStart(5, '0')}`);
  await p.producer.send(p.topics.compromiseSignal, `identity:${id}`, {
    ...envelope(),
    signalId: 'case-1',
    op: 'raise',
    subject: { type: 'identity', value: id },
    kind: 'account_takeover',
    severity: 'critical',
    raisedBy: 'soc',
  });
  await p.watcher.waitFor(id, (d) => d.signals.some((s) => s.code === 'takeover_confirmed'));
});

after(async () => {
  await browser?.close();
  await api?.stop();
  await p?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** With CONSOLE_SCREENSHOTS=<dir>, the pages the README shows are saved there. */
async function screenshot(page: Page, name: string): Promise<void> {
  const to = process.env.CONSOLE_SCREENSHOTS;
  if (to) await page.screenshot({ path: path.join(to, `${name}.png`), fullPage: true });
}

async function signIn(token: string): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(`${api.baseUrl}/console`);
  assert.match(page.url(), /\/console\/login$/);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  return page;
}

test('a wrong token is refused; the right one signs in, and the token is in no address', async () => {
  const refused = await signIn('not-a-token-0123456789abcdef');
  assert.match((await refused.getByRole('alert').textContent()) ?? '', /not recognised/);
  await refused.close();
  const page = await signIn(TOKENS.both);
  await page.waitForURL(/\/console\/identities$/);
  assert.ok(!page.url().includes(TOKENS.both));
  const [cookie] = await page.context().cookies();
  assert.equal(cookie?.name, 'assurance_console');
  assert.equal(cookie?.httpOnly, true);
  assert.equal(cookie?.sameSite, 'Strict');
  assert.notEqual(cookie?.value, TOKENS.both);
  await page.close();
});

test('an identity held after a SOC-confirmed takeover: its card, signals, bindings and reasons', async () => {
  const page = await signIn(TOKENS.both);
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.getByLabel('Identity id').fill(id);
  await page.getByRole('button', { name: 'Look up' }).click();
  await page.getByRole('heading', { name: id }).waitFor();
  const medium = page.getByRole('region', { name: /medium/ });
  assert.match((await medium.textContent()) ?? '', /HOLD/i);
  assert.match(
    (await page.getByRole('table', { name: 'Live signals' }).textContent()) ?? '',
    /takeover_confirmed/,
  );
  assert.match(
    (await page.getByRole('table', { name: 'Bindings' }).textContent()) ?? '',
    /phone[\s\S]*sms_otp/,
  );
  // The bindings show hashed refs, never the number.
  assert.doesNotMatch(await page.content(), /\+4915111/);
  await screenshot(page, 'identity');
  await page.close();
});

test('each scope shows what it allows: requirements without signals; no decisions:read, no page', async () => {
  const reader = await signIn(TOKENS.reader);
  await reader.getByLabel('Identity id').fill(id);
  await reader.getByRole('button', { name: 'Look up' }).click();
  await reader.getByRole('heading', { name: id }).waitFor();
  assert.match(await reader.content(), /need the scope signals:read/);
  assert.equal(await reader.getByRole('table', { name: 'Live signals' }).count(), 0);
  await reader.close();
  const writer = await signIn(TOKENS.writer);
  assert.match((await writer.getByRole('alert').textContent()) ?? '', /no decisions:read/);
  await writer.close();
});

test('a forged cross-site sign-out is refused; the real one ends the session', async () => {
  const page = await signIn(TOKENS.both);
  await page.waitForURL(/\/console\/identities$/);
  const forged = await page.request.post(`${api.baseUrl}/console/logout`, {
    headers: { origin: 'https://evil.example' },
    form: { csrf: 'guess' },
    maxRedirects: 0,
  });
  assert.equal(forged.status(), 403);
  await page.goto(`${api.baseUrl}/console/identities`);
  assert.match(page.url(), /\/console\/identities$/, 'still signed in');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(/\/console\/login$/);
  await page.goto(`${api.baseUrl}/console/identities`);
  assert.match(page.url(), /\/console\/login$/);
  await page.close();
});

test('an analyst raises a SIM swap with a confirmation, sees SMS go from the card, clears it, and sees it back', async () => {
  const who = `console-raise-${Date.now()}`;
  await bindSmsPhone(p, who, `+4915112${String(Date.now() % 100_000).padStart(5, '0')}`);
  const page = await signIn(TOKENS.both);
  const lookUp = async () => {
    await page.goto(`${api.baseUrl}/console/identities?id=${encodeURIComponent(who)}`);
    // The medium card's acceptable authenticators (its first entry).
    return (
      (await page
        .getByRole('region', { name: /medium/ })
        .locator('dd')
        .first()
        .textContent()) ?? ''
    );
  };
  assert.match(await lookUp(), /sms_otp/);
  const medium = page
    .getByRole('region', { name: /medium/ })
    .locator('dd')
    .first();
  const entries = page.getByRole('list', { name: 'Timeline' }).locator(':scope > li');
  assert.match((await entries.first().textContent()) ?? '', /First decision seen/);
  await page.getByLabel('Kind').selectOption('sim_swap');
  await page.getByLabel(/I confirm: raise this signal/).check();
  await page.getByRole('button', { name: 'Raise' }).click();
  assert.match((await page.locator('.notice').textContent()) ?? '', /raise was acknowledged/);
  // Decided in the time the page took to load, or pushed to it just after.
  await entries
    .first()
    .filter({ hasText: /Signals raised: .*sim_swap/ })
    .waitFor({ timeout: 30_000 });
  // The entry names the analyst (the token's name), the event's topic and what moved.
  const raisedText = (await entries.first().textContent()) ?? '';
  assert.match(raisedText, /by both/);
  assert.match(raisedText, /identity\.compromise-signal\.v1/);
  assert.match(raisedText, /medium: step up → hold/);
  assert.doesNotMatch((await medium.textContent()) ?? '', /sms_otp/);
  const raised = p.watcher.forIdentity(who).at(-1);
  assert.equal(raised?.trigger.actor, 'both');
  await screenshot(page, 'timeline');

  // Another analyst raises a signal through the API while the page stays open: the page shows it
  // by itself (the mark set in this page survives: it was not reloaded).
  await page.evaluate(() => {
    (globalThis as unknown as { mark: number }).mark = 42;
  });
  const before = await entries.count();
  const other = await api.call('POST', '/v1/signals', {
    json: {
      signalId: `case-${Date.now()}`,
      op: 'raise',
      subject: { type: 'identity', value: who },
      kind: 'credential_leak',
      severity: 'low',
    },
  });
  assert.equal(other.status, 202, other.text);
  await entries.nth(before).waitFor({ timeout: 30_000 });
  assert.equal(await page.evaluate(() => (globalThis as unknown as { mark?: number }).mark), 42);
  assert.match((await page.locator('#live-status').textContent()) ?? '', /new decision/);
  assert.match((await entries.first().textContent()) ?? '', /by both/);

  const clearSimSwap = page.locator('form.clear', { hasText: 'clear sim_swap' });
  await clearSimSwap.getByLabel(/I confirm: clear sim_swap/).check();
  await clearSimSwap.getByRole('button', { name: 'Clear' }).click();
  assert.match((await page.locator('.notice').textContent()) ?? '', /clear was acknowledged/);
  await entries
    .first()
    .filter({ hasText: /Signals gone: .*sim_swap/ })
    .waitFor({ timeout: 30_000 });
  assert.match((await medium.textContent()) ?? '', /sms_otp/);
  await page.close();
});

test('the overview: decisions by risk and tier outcome, dead letters by class, the engine state', async () => {
  // One poison message, so a dead letter has a class to show.
  await p.producer.sendRaw(p.topics.login, 'poison', Buffer.from('{not json'));
  const page = await signIn(TOKENS.both);
  await page.setViewportSize({ width: 1280, height: 900 });
  const deadLetters = page.getByRole('table', { name: 'Dead letters by error class' });
  // The view fills as the API's feed reads; the page shows what it has at each load.
  await pollUntil(
    async () => {
      await page.goto(`${api.baseUrl}/console/overview`);
      return (await deadLetters.count()) > 0 ? true : undefined;
    },
    30_000,
    () => 'a dead letter on the overview',
    500,
  );
  assert.match((await deadLetters.textContent()) ?? '', /malformed|invalid|undecodable/i);
  const outcomes = (await page.getByRole('table', { name: 'Decisions by tier outcome' }).textContent()) ?? '';
  assert.match(outcomes, /medium/);
  assert.match(
    (await page.getByRole('img', { name: /Decisions per minute by risk/ }).textContent()) ?? '',
    /in all/,
  );
  assert.match((await page.locator('dl.engine').textContent()) ?? '', /State\s*(ok|lagging)/);
  await screenshot(page, 'overview');
  await page.close();
});

test('a read-only token sees no raise form, and a raise it posts anyway is refused', async () => {
  const page = await signIn(TOKENS.reader);
  await page.goto(`${api.baseUrl}/console/identities?id=${encodeURIComponent(id)}`);
  assert.equal(await page.getByRole('button', { name: 'Raise' }).count(), 0);
  // Its own session's CSRF token (from the sign-out form), so only the scope can refuse it.
  const csrf = await page.locator('form.signout input[name=csrf]').getAttribute('value');
  const posted = await page.request.post(`${api.baseUrl}/console/signals`, {
    headers: { origin: api.baseUrl },
    form: { csrf: csrf ?? '', op: 'raise', identity: id, kind: 'sim_swap', severity: 'high', confirm: 'yes' },
    maxRedirects: 0,
  });
  assert.equal(posted.status(), 403);
  assert.match(await posted.text(), /no signals:write scope/);
  await page.close();
});

test('a policy owner sees what each shadow policy would require of the identity', async () => {
  const page = await signIn(TOKENS.policyOwner);
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(`${api.baseUrl}/console/identities?id=${encodeURIComponent(id)}`);
  const table = page.getByRole('table', { name: 'Shadow policies' });
  const text = (await table.textContent()) ?? '';
  assert.match(text, /stricter[\s\S]*1\.2\.0-stricter/);
  assert.match(text, /stricter/);
  await screenshot(page, 'shadow');
  await page.close();
  // Without policy:read, no shadow section.
  const other = await signIn(TOKENS.both);
  await other.goto(`${api.baseUrl}/console/identities?id=${encodeURIComponent(id)}`);
  assert.equal(await other.getByRole('table', { name: 'Shadow policies' }).count(), 0);
  await other.goto(`${api.baseUrl}/console/login`);
  await screenshot(other, 'login');
  await other.close();
});

test('accessibility: axe finds no WCAG A/AA violation on the pages, and a search works by keyboard alone', async () => {
  // axe is injected by the test, so this context lets a script in that the pages' policy would refuse.
  const context = await browser.newContext({ bypassCSP: true });
  const page = await context.newPage();
  await page.goto(`${api.baseUrl}/console/login`);
  // Keyboard only: the token field takes the focus by itself (autofocus, applied once the page has
  // rendered: keys typed before that would go nowhere); Enter submits.
  await page.waitForFunction(
    () =>
      (globalThis as unknown as { document: { activeElement?: { id?: string } } }).document.activeElement
        ?.id === 'token',
  );
  await page.keyboard.type(TOKENS.policyOwner);
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/console\/identities$/);
  for (
    let i = 0;
    i < 10 &&
    (await page.evaluate(
      () =>
        (globalThis as unknown as { document: { activeElement?: { id?: string } } }).document.activeElement
          ?.id,
    )) !== 'id';
    i++
  )
    await page.keyboard.press('Tab');
  assert.equal(
    await page.evaluate(
      () =>
        (globalThis as unknown as { document: { activeElement?: { id?: string } } }).document.activeElement
          ?.id,
    ),
    'id',
    'Tab reaches the search field',
  );
  await page.keyboard.type(id);
  await page.keyboard.press('Enter');
  await page.getByRole('heading', { name: id }).waitFor();

  const axe = (await import('axe-core')).default;
  const audit = async (on: Page, where: string) => {
    await on.evaluate(axe.source);
    const found = await on.evaluate(async () => {
      const run = (globalThis as unknown as { axe: typeof axe }).axe.run;
      const r = await run({ runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] });
      return r.violations.map((v) => `${v.id} (${v.nodes.length}): ${v.help}`);
    });
    assert.deepEqual(found, [], `${where}: ${found.join('; ')}`);
  };
  await audit(page, 'identity page (policy owner)');
  await page.goto(`${api.baseUrl}/console/overview`);
  await audit(page, 'overview');
  await page.goto(`${api.baseUrl}/console/login`);
  await audit(page, 'sign-in');
  await context.close();

  const analyst = await browser.newContext({ bypassCSP: true });
  const p2 = await analyst.newPage();
  await p2.goto(`${api.baseUrl}/console/login`);
  await p2.getByLabel('API token').fill(TOKENS.both);
  await p2.getByRole('button', { name: 'Sign in' }).click();
  await p2.goto(`${api.baseUrl}/console/identities?id=${encodeURIComponent(id)}`);
  await audit(p2, 'identity page with forms and timeline (analyst)');
  await analyst.close();
});
