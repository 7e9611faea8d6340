// Drive Debian's Chromium with playwright-core through a list of page visits, one browser context
// (so the Cache API carries over from one visit to the next), and print what each page ended with
// as JSON: the contract's state and message, dataset (ep, precision, …), the status line, the URL
// the page ended on, console errors, every request URL, the pixels of <canvas id="result"> and of
// every grid cell, and whether the page is wider than its viewport. Nothing may leave loopback:
// every other host resolves to nothing. Chromium runs with SwiftShader's Vulkan driver behind
// WebGPU (docs/web.md), so `navigator.gpu` has a real, CPU-emulated adapter.
// Usage: node drive.mjs '{"visits": [{"url": U, "viewport": [w, h], "keys": ["Tab", …],
//                                     "screenshot": "a.png"}, …], "timeoutMs": 120000}'
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";

export const CHROMIUM_ARGS = [
  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost", "--no-sandbox",
  "--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-vulkan=swiftshader", "--use-webgpu-adapter=swiftshader",
  "--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--disable-vulkan-surface", "--ignore-gpu-blocklist",
];

// Where the page's boxes are at each state, so a test can see whether anything moved when the
// images arrived (layout["generating"] against layout["done"]).
function recordLayout() {
  window.__layout = {};
  const ids = ["controls", "message", "result", "preview", "grid", "download", "status"];
  const snap = () => {
    const box = (id) => document.getElementById(id)?.getBoundingClientRect().toJSON() ?? null;
    window.__layout[document.documentElement.dataset.state] = Object.fromEntries(ids.map((id) => [id, box(id)]));
  };
  // documentElement does not exist yet when this runs: watch the document for it
  new MutationObserver((changes) => changes.some((c) => c.target === document.documentElement) && snap())
    .observe(document, { subtree: true, attributeFilter: ["data-state"] });
}

async function visit(context, { url, viewport = [1200, 900], keys = null, screenshot = null }, timeoutMs, requests) {
  const page = await context.newPage();
  await page.setViewportSize({ width: viewport[0], height: viewport[1] });
  const consoleErrors = [];
  page.on("console", (msg) => msg.type() === "error" && consoleErrors.push(msg.text()));
  page.on("pageerror", (err) => consoleErrors.push(`pageerror: ${err.message}`));
  const started = Date.now();
  await page.goto(url);
  if (keys) {
    // Keyboard alone: wait until the page can act, then press the keys from the top of the page.
    await page.waitForFunction(() => ["ready", "error"].includes(document.documentElement.dataset.state), null, { timeout: timeoutMs });
    for (const key of keys) await page.keyboard.press(key);
  }
  await page.waitForFunction(() => ["done", "error"].includes(document.documentElement.dataset.state), null, { timeout: timeoutMs });
  const result = await page.evaluate(() => {
    const pixels = (canvas) => Array.from(canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data);
    const canvas = document.getElementById("result");
    return {
      state: document.documentElement.dataset.state,
      dataset: { ...document.documentElement.dataset },
      message: document.getElementById("message").textContent,
      status: document.getElementById("status").textContent,
      location: location.href,
      isolated: self.crossOriginIsolated,
      width: canvas.width,
      height: canvas.height,
      pixels: pixels(canvas),
      grid: [...document.querySelectorAll("#grid canvas")].map((c) => ({ breed: c.dataset.breed, index: Number(c.dataset.index), pixels: pixels(c) })),
      overflowsViewport: document.documentElement.scrollWidth > window.innerWidth,
      messageVisible: document.getElementById("message").offsetParent !== null,
      links: document.getElementById("links").hidden ? [] : [...document.querySelectorAll("#links a")].map((a) => [a.textContent, a.href]),
      layout: window.__layout,
    };
  });
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  await page.close();
  return { url, ...result, consoleErrors, requests: requests.splice(0), elapsedMs: Date.now() - started };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { visits, timeoutMs = 120000 } = JSON.parse(process.argv[2]);
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: CHROMIUM_ARGS });
  const context = await browser.newContext();
  await context.addInitScript(recordLayout);
  const requests = [];
  context.on("request", (req) => requests.push(req.url())); // pages and their workers alike
  const results = [];
  for (const v of visits) results.push(await visit(context, typeof v === "string" ? { url: v } : v, timeoutMs, requests));
  await browser.close();
  console.log(JSON.stringify(results));
}
