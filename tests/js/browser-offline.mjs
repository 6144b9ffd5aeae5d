// The demo page when its Socket.IO client library cannot be loaded (offline, loading it
// from the CDN; or a missing local bundle): headless Chromium (Debian's
// /usr/bin/chromium, driven by playwright-core) opens the page with every request for
// socket.io.min.js refused, and reports what a person sees.
//
//   node browser-offline.mjs '{"url": "http://node", "screenshot": "/tmp/offline.png"}'
//
// Prints one JSON line of facts: status (the status badge's text and class), message
// (the page's explanation), inputsDisabled, blocked (the URLs refused).
import { chromium } from "playwright-core";

const opts = JSON.parse(process.argv[2] ?? "{}");
const browser = await chromium.launch({
  executablePath: opts.chromium ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const facts = { blocked: [] };
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => (facts.pageErrors = [...(facts.pageErrors ?? []), e.message]));
  await page.route(/socket\.io(\.min)?\.js/, (route) => {
    facts.blocked.push(route.request().url());
    return route.abort("internetdisconnected");
  });
  await page.goto(opts.url);
  await page.waitForSelector("#status.failed", { timeout: 10_000 });
  facts.status = await page.$eval("#status", (e) => ({ text: e.textContent, class: e.className }));
  facts.message = await page.$eval("#client-missing", (e) => e.textContent);
  facts.inputsDisabled = await page.$$eval("form input, form button", (els) => els.every((e) => e.disabled));
  if (opts.screenshot) await page.screenshot({ path: opts.screenshot });
  await browser.close();
  console.log(JSON.stringify(facts));
} catch (e) {
  await browser.close();
  console.log(JSON.stringify({ ...facts, error: e.message }));
  process.exit(1);
}
