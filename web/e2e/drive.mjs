// Drive Debian's Chromium with playwright-core through a list of page URLs, one browser context
// (so the Cache API carries over from one visit to the next), and print what each page ended with
// as JSON: the contract's state and message, the status line, console errors, every request URL
// and the pixels of <canvas id="result">. Nothing may leave loopback: every other host resolves
// to nothing. Usage: node drive.mjs '{"urls": [...], "timeoutMs": 120000, "screenshot": "a.png"}'
import { chromium } from "playwright-core";

const { urls, timeoutMs = 120000, screenshot = null } = JSON.parse(process.argv[2]);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost", "--no-sandbox"],
});
const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
const results = [];
let requests = [];
context.on("request", (req) => requests.push(req.url())); // pages and their workers alike
for (const [i, url] of urls.entries()) {
  const page = await context.newPage();
  const consoleErrors = [];
  requests = [];
  page.on("console", (msg) => msg.type() === "error" && consoleErrors.push(msg.text()));
  page.on("pageerror", (err) => consoleErrors.push(`pageerror: ${err.message}`));
  const started = Date.now();
  await page.goto(url);
  await page.waitForFunction(() => ["done", "error"].includes(document.documentElement.dataset.state), null, { timeout: timeoutMs });
  const result = await page.evaluate(() => {
    const canvas = document.getElementById("result");
    const ctx = canvas.getContext("2d");
    const pixels = Array.from(ctx.getImageData(0, 0, canvas.width, canvas.height).data);
    return {
      state: document.documentElement.dataset.state,
      message: document.getElementById("message").textContent,
      status: document.getElementById("status").textContent,
      isolated: self.crossOriginIsolated,
      width: canvas.width,
      height: canvas.height,
      pixels,
      messageVisible: document.getElementById("message").offsetParent !== null,
    };
  });
  if (screenshot && i === urls.length - 1) await page.screenshot({ path: screenshot, fullPage: true });
  results.push({ url, ...result, consoleErrors, requests, elapsedMs: Date.now() - started });
  await page.close();
}
await browser.close();
console.log(JSON.stringify(results));
