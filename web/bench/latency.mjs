// Time the page in headless Chromium: for each configuration, one untimed generation (session
// and kernel warm-up), then `runs` timed ones, read from the page's own measurements
// (dataset.generationMs, dataset.callMsMedian). Prints JSON. Used by benchmarks/web_latency.py.
// Chromium has SwiftShader behind WebGPU (drive.mjs), so "ep": "webgpu" rows time a CPU emulation.
// Usage: node latency.mjs '{"page": URL, "runs": 3, "configs": [{"ep": "wasm", "precision": "fp32", "n": 1, "steps": 10, "sampler": "euler", "cfg": 2}]}'
import { chromium } from "playwright-core";
import { CHROMIUM_ARGS } from "../e2e/drive.mjs";

const { page: url, runs = 3, configs } = JSON.parse(process.argv[2]);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: CHROMIUM_ARGS,
});
const page = await browser.newPage();
await page.goto(url);
await page.waitForFunction(() => ["ready", "error"].includes(document.documentElement.dataset.state), null, { timeout: 120000 });

async function once(config) {
  await page.fill("#steps", String(config.steps));
  await page.selectOption("#sampler", config.sampler);
  await page.fill("#cfg", String(config.cfg));
  await page.selectOption("#precision", config.precision);
  await page.selectOption("#ep", config.ep);
  await page.fill("#n", String(config.n));
  await page.evaluate(() => { document.documentElement.dataset.state = "pending"; });
  await page.click("#generate");
  await page.waitForFunction(() => ["done", "error"].includes(document.documentElement.dataset.state), null, { timeout: 600000 });
  return page.evaluate(() => ({ ...document.documentElement.dataset, status: document.getElementById("status").textContent, message: document.getElementById("message").textContent }));
}

const results = [];
for (const config of configs) {
  const warm = await once(config);
  if (warm.state === "error") throw new Error(`${JSON.stringify(config)}: ${warm.message}`);
  const timed = [];
  for (let r = 0; r < runs; r++) timed.push(await once(config));
  results.push({ ...config, status: warm.status, generationMs: timed.map((t) => Number(t.generationMs)), callMsMedian: timed.map((t) => Number(t.callMsMedian)), calls: Number(timed[0].calls) });
}
await browser.close();
console.log(JSON.stringify(results));
