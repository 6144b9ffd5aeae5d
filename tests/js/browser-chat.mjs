// The demo chat as a person uses it: headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core) opens the page in two tabs, types a message in one and
// sees it in the other; a third tab opened later shows the history.
//
//   node browser-chat.mjs '{"urls": ["http://node-a", "http://node-b"], "screenshot": "/tmp/chat.png"}'
//
// `urls` lists the page URL for tab 1, tab 2 and the late tab (cycled), so the same
// script checks one node or several. Prints one JSON line of facts.
import { chromium } from "playwright-core";

const opts = JSON.parse(process.argv[2] ?? "{}");
const urls = opts.urls;
const url = (i) => urls[i % urls.length];
const WAIT_MS = 15_000;

const browser = await chromium.launch({
  executablePath: opts.chromium ?? "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const facts = {};
try {
  const open = async (i, name) => {
    const page = await browser.newPage();
    page.on("pageerror", (e) => (facts.pageErrors = [...(facts.pageErrors ?? []), e.message]));
    await page.goto(url(i));
    await page.waitForSelector("#status.online", { timeout: WAIT_MS });
    if (name) await page.fill("#name", name);
    return page;
  };
  const texts = (page) => page.$$eval("#messages li.message .text", (els) => els.map((e) => e.textContent));

  const a = await open(0, "alice");
  const b = await open(1, "bob");

  await a.fill("#text", "hello from tab A");
  await a.press("#text", "Enter");
  await b.waitForFunction(
    () => [...document.querySelectorAll("#messages li.message .text")].some((e) => e.textContent === "hello from tab A"),
    null,
    { timeout: WAIT_MS },
  );
  await b.fill("#text", "hi back from tab B");
  await b.click("#send");
  await a.waitForFunction(
    () => [...document.querySelectorAll("#messages li.message .text")].some((e) => e.textContent === "hi back from tab B"),
    null,
    { timeout: WAIT_MS },
  );
  facts.tabA = await texts(a);
  facts.tabB = await texts(b);
  facts.namesInB = await b.$$eval("#messages li.message .name", (els) => els.map((e) => e.textContent));

  const c = await open(2);
  await c.waitForFunction(() => document.querySelectorAll("#messages li.message").length >= 2, null, { timeout: WAIT_MS });
  facts.lateTab = await texts(c);
  if (opts.screenshot) await b.screenshot({ path: opts.screenshot });
  await browser.close();
  console.log(JSON.stringify(facts));
} catch (e) {
  await browser.close();
  console.log(JSON.stringify({ ...facts, error: e.message }));
  process.exit(1);
}
