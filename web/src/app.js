// The page: reads the sidecar of the model folder, fills the controls from it, sends work to the
// worker and draws what comes back. The testing contract (docs/web.md): URL parameters model,
// breed (a name, an index or "all"), seed, steps, sampler, cfg, precision (auto|fp32|int8),
// ep (auto|webgpu|wasm), n, generate=1; <canvas id="result"> holds the first image at native size
// when document.documentElement.dataset.state is "done"; "error" with a visible message on
// failure; "loading" / "ready" / "generating" before. dataset.ep names the execution provider that
// ran (webgpu / wasm), dataset.precision the file. The URL always holds the current settings.
import { readSidecar, resolveBase, ModelError } from "./model.js";
import { EPS, PRECISIONS } from "./providers.js";
import { toLevel } from "./solvers.js";

const $ = (id) => document.getElementById(id);
const startParams = new URLSearchParams(location.search);
const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
const CELL = 96; // px on screen per grid image, reserved before the images arrive
// A preview at most this often: a generation that ends sooner shows none (each costs a read-back,
// a copy to the page and a draw, ~10 % of a 100 ms generation of the demo model).
const PREVIEW_MS = 250;
let meta = null;
let base = null;
let loadedKey = null;
let runId = 0;
let callMs = [];

function setState(state, message = "") {
  document.documentElement.dataset.state = state;
  $("message").textContent = message;
  const busy = state === "loading" || state === "generating";
  for (const id of ["generate", "all-breeds", "breed", "precision", "ep", "model"]) $(id).disabled = busy || (!meta && id !== "model");
  $("cancel").disabled = state !== "generating";
}

function fail(err) {
  setState("error", err instanceof ModelError || err.name === "ModelError" ? err.message : `${err.name}: ${err.message}`);
}

function request(message) {
  return new Promise((resolve, reject) => {
    worker.onmessage = ({ data }) => {
      if (data.type === "progress") showDownload(data.received, data.total);
      else if (data.type === "step") showStep(data);
      else if (data.type === "preview") draw($("preview"), data.images, 0);
      else if (data.type === "error") {
        if (data.reload) loadedKey = null;
        reject(Object.assign(new Error(data.message), { name: "ModelError", stale: data.stale }));
      } else resolve(data);
    };
    worker.postMessage(message);
  });
}

function showDownload(received, total) {
  $("progress").value = received / total;
  $("progress-text").textContent = `downloading ${(received / 1e6).toFixed(1)} / ${(total / 1e6).toFixed(1)} MB`;
}

function showStep({ call, total, ms }) {
  callMs.push(ms);
  $("progress").value = call / total;
  $("progress-text").textContent = `network call ${call} / ${total} · ${ms.toFixed(0)} ms`;
}

/** Image `index` of a [N, C, H, W] float array in [-1, 1] into `canvas` at native size. */
function draw(canvas, images, index) {
  const c = meta.channels, s = meta.image_size, plane = s * s;
  const offset = index * c * plane;
  canvas.width = s;
  canvas.height = s;
  const ctx = canvas.getContext("2d");
  const pixels = ctx.createImageData(s, s);
  for (let p = 0; p < plane; p++) {
    for (let ch = 0; ch < 3; ch++) pixels.data[4 * p + ch] = toLevel(images[offset + (c === 3 ? ch : 0) * plane + p]);
    pixels.data[4 * p + 3] = 255;
  }
  ctx.putImageData(pixels, 0, 0);
}

function settings() {
  return {
    model: $("model").value,
    breed: Number($("breed").value),
    seed: Number.parseInt($("seed").value, 10),
    steps: Number.parseInt($("steps").value, 10),
    sampler: $("sampler").value,
    cfg: Number.parseFloat($("cfg").value),
    precision: $("precision").value,
    ep: $("ep").value,
    n: Number.parseInt($("n").value, 10),
  };
}

/** The current settings into the address bar, so that a copied link draws the same picture. */
function syncUrl(all = false) {
  const s = settings();
  const url = new URL(location.href);
  const values = { ...s, breed: all ? "all" : meta ? meta.class_names[s.breed] : s.breed };
  Object.entries(values).forEach(([key, value]) => url.searchParams.set(key, value));
  url.searchParams.delete("generate");
  history.replaceState(null, "", url);
}

function validate(s, rows) {
  if (!Number.isSafeInteger(s.seed) || s.seed < 0) throw new ModelError("the seed must be a whole number ≥ 0");
  if (!(s.steps >= 1 && s.steps <= 500)) throw new ModelError("steps must be between 1 and 500");
  if (!(s.n >= 1 && s.n * rows <= 64)) throw new ModelError(rows > 1 ? `every breed at once draws ${rows} × images: images must be between 1 and ${Math.floor(64 / rows)}` : "images must be between 1 and 64");
  if (!Number.isFinite(s.cfg)) throw new ModelError("guidance must be a number (1 = none)");
}

function choose(select, value, what, allowed) {
  if (!allowed.includes(value)) throw new ModelError(`unknown ${what} ${JSON.stringify(value)}; use ${allowed.join(", ")}`);
  select.value = value;
}

async function openModel(first = false) {
  setState("loading", "reading the model's sidecar…");
  base = resolveBase($("model").value, location.href);
  meta = await readSidecar(base);
  // The URL's settings on the first open; a model chosen later starts from its own recommendation.
  const params = first ? startParams : new URLSearchParams();
  $("breed").replaceChildren(...meta.class_names.map((name, i) => new Option(name.replaceAll("_", " "), String(i))));
  const wanted = params.get("breed");
  if (wanted !== null && wanted !== "all") {
    const key = (name) => name.toLowerCase().replace(/[ _-]/g, "");
    const found = meta.class_names.findIndex((name, i) => String(i) === wanted || key(name) === key(wanted));
    if (found < 0) throw new ModelError(`unknown breed ${JSON.stringify(wanted)}; this model has: ${meta.class_names.join(", ")}`);
    $("breed").value = String(found);
  }
  $("steps").value = params.get("steps") ?? meta.recommended_steps;
  $("cfg").value = params.get("cfg") ?? meta.recommended_cfg_scale;
  choose($("sampler"), params.get("sampler") ?? meta.recommended_sampler, "sampler", ["euler", "heun"]);
  setState("ready", `${meta.class_names.length} classes, ${meta.image_size} px: choose a breed and press Generate, or draw every breed`);
}

async function ensureSession(s) {
  const key = `${base}|${s.precision}|${s.ep}`;
  if (loadedKey === key) return;
  setState("loading", `loading the model (precision ${s.precision}, ep ${s.ep})…`);
  const { info } = await request({ type: "load", base, meta, precision: s.precision, ep: s.ep });
  loadedKey = key;
  Object.assign(document.documentElement.dataset, { ep: info.provider, precision: info.precision });
  const mb = (info.bytes / 1e6).toFixed(2);
  $("status").textContent = `${info.provider === "webgpu" ? "WebGPU" : "WASM"} (${info.reason}) · ${info.threads} thread(s) · ` +
    `cross-origin isolated: ${info.isolated ? "yes" : "no"}${info.isolated ? "" : " (the server sends no COOP/COEP headers, so WASM runs on one thread)"} · ` +
    `${info.precision} file (${info.why}), ${mb} MB ${info.fromCache ? "from the cache" : "downloaded"} in ${info.loadMs.toFixed(0)} ms`;
}

/** Empty cells of the final size, a row per breed, so nothing moves when the images arrive. */
function placeGrid(rows, n) {
  $("grid").style.gridTemplateColumns = `${rows.length > 1 ? "auto " : ""}repeat(${n}, ${CELL}px)`;
  const cells = rows.flatMap((breed) => {
    const name = meta.class_names[breed].replaceAll("_", " ");
    const label = Object.assign(document.createElement("span"), { className: "row-label", textContent: name });
    const images = Array.from({ length: n }, (_, i) => {
      const canvas = Object.assign(document.createElement("canvas"), { width: meta.image_size, height: meta.image_size });
      canvas.dataset.breed = meta.class_names[breed];
      canvas.dataset.index = String(i);
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", `${name}, image ${i + 1}`);
      return canvas;
    });
    return rows.length > 1 ? [label, ...images] : images;
  });
  $("grid").replaceChildren(...cells);
  return [...$("grid").querySelectorAll("canvas")];
}

async function generate(all) {
  const s = settings();
  const rows = all ? meta.class_names.map((_, i) => i) : [s.breed];
  validate(s, rows.length);
  syncUrl(all);
  await ensureSession(s);
  const id = ++runId;
  const what = all ? `every breed × ${s.n}` : `${s.n} × ${meta.class_names[s.breed]}`;
  const canvases = placeGrid(rows, s.n); // before "generating": the layout is final from then on
  setState("generating", `generating ${what} (seed ${s.seed}, ${s.sampler}, ${s.steps} steps, guidance ${s.cfg})…`);
  callMs = [];
  const started = performance.now();
  // Image i of every row starts from the same noise (stream i of the seed): a column differs only by breed.
  const labels = rows.flatMap((breed) => Array(s.n).fill(breed));
  const noise = rows.flatMap(() => Array.from({ length: s.n }, (_, i) => i));
  const reply = await request({ type: "generate", id, labels, noise, seed: s.seed, steps: s.steps, sampler: s.sampler, cfg: s.cfg,
    interval: meta.recommended_guidance_interval, previewMs: PREVIEW_MS });
  const ms = performance.now() - started;
  draw($("result"), reply.images, 0);
  canvases.forEach((canvas, i) => draw(canvas, reply.images, i));
  $("download").href = $("result").toDataURL("image/png");
  $("download").download = `tinycats-${meta.class_names[rows[0]]}-seed${s.seed}.png`;
  $("download").classList.remove("pending");
  // For benchmarks/web_latency.py: the whole generation and the median network call, in ms.
  const sorted = [...callMs].sort((a, b) => a - b);
  Object.assign(document.documentElement.dataset, { generationMs: ms.toFixed(2), callMsMedian: sorted[sorted.length >> 1].toFixed(2), calls: callMs.length });
  setState("done", `${labels.length} image(s) in ${(ms / 1000).toFixed(2)} s (${(ms / labels.length).toFixed(0)} ms per image)`);
}

function run(all) {
  generate(all)
    .catch((err) => (err.stale ? generate(all) : Promise.reject(err))) // the session died while idle: once more, on a new one
    .catch((err) => (err.message === "cancelled" ? setState("ready", "cancelled") : fail(err)));
}

// The project's links from server.json (the package metadata's URLs; none when none is set there).
function showLinks(links) {
  const entries = Object.entries(links ?? {}).filter(([, url]) => /^https?:\/\//.test(String(url)));
  for (const [label, url] of entries) {
    const a = document.createElement("a");
    a.href = url;
    a.textContent = label;
    a.rel = "noopener";
    $("links").append(a);
  }
  $("links").hidden = entries.length === 0;
}

async function main() {
  const fallback = await fetch("server.json").then((r) => (r.ok ? r.json() : {})).catch(() => ({}));
  showLinks(fallback.links);
  $("model").value = startParams.get("model") ?? fallback.model ?? "./model/";
  if (startParams.has("seed")) $("seed").value = startParams.get("seed");
  if (startParams.has("n")) $("n").value = startParams.get("n");
  choose($("precision"), startParams.get("precision") ?? "auto", "precision", PRECISIONS);
  choose($("ep"), startParams.get("ep") ?? "auto", "ep", EPS);
  $("randomise").onclick = () => {
    $("seed").value = String(Math.floor(Math.random() * 2 ** 31));
    syncUrl();
  };
  $("cancel").onclick = () => worker.postMessage({ type: "cancel", id: runId });
  $("model").onchange = () => {
    loadedKey = null;
    openModel().then(() => syncUrl()).catch(fail);
  };
  $("controls").onchange = () => meta && syncUrl();
  $("controls").onsubmit = (event) => {
    event.preventDefault();
    run(false);
  };
  $("all-breeds").onclick = () => run(true);
  await openModel(true);
  if (startParams.get("generate") === "1") await generate(startParams.get("breed") === "all");
  else syncUrl(startParams.get("breed") === "all");
}

main().catch(fail);
