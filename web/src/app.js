// The page: reads the sidecar of the model folder, fills the controls from it, sends work to the
// worker and draws what comes back. The testing contract (docs/web.md): URL parameters model,
// breed, seed, steps, sampler, cfg, precision, n, generate=1; <canvas id="result"> holds the first
// image at native size when document.documentElement.dataset.state is "done"; "error" with a
// visible message on failure; "loading" / "ready" / "generating" before.
import { readSidecar, resolveBase, ModelError } from "./model.js";
import { toLevel } from "./solvers.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
let meta = null;
let base = null;
let loadedKey = null;
let info = null;
let runId = 0;
let callMs = [];

function setState(state, message = "") {
  document.documentElement.dataset.state = state;
  $("message").textContent = message;
  const busy = state === "loading" || state === "generating";
  $("generate").disabled = busy || !meta;
  $("cancel").disabled = state !== "generating";
}

function fail(err) {
  setState("error", err instanceof ModelError || err.name === "ModelError" ? err.message : `${err.name}: ${err.message}`);
}

function request(message, transfer = []) {
  return new Promise((resolve, reject) => {
    worker.onmessage = ({ data }) => {
      if (data.type === "progress") showDownload(data.received, data.total);
      else if (data.type === "step") showStep(data);
      else if (data.type === "preview") draw($("preview"), data.images, 0);
      else if (data.type === "error") reject(Object.assign(new Error(data.message), { name: "ModelError" }));
      else resolve(data);
    };
    worker.postMessage(message, transfer);
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
    breed: Number($("breed").value),
    seed: Number.parseInt($("seed").value, 10),
    steps: Number.parseInt($("steps").value, 10),
    sampler: $("sampler").value,
    cfg: Number.parseFloat($("cfg").value),
    precision: $("precision").value,
    n: Number.parseInt($("n").value, 10),
  };
}

function validate(s) {
  if (!Number.isSafeInteger(s.seed) || s.seed < 0) throw new ModelError("the seed must be a whole number ≥ 0");
  if (!(s.steps >= 1 && s.steps <= 500)) throw new ModelError("steps must be between 1 and 500");
  if (!(s.n >= 1 && s.n <= 64)) throw new ModelError("images must be between 1 and 64");
  if (!Number.isFinite(s.cfg)) throw new ModelError("guidance must be a number (1 = none)");
}

async function openModel() {
  setState("loading", "reading the model's sidecar…");
  base = resolveBase($("model").value, location.href);
  meta = await readSidecar(base);
  const breeds = $("breed");
  breeds.replaceChildren(...meta.class_names.map((name, i) => new Option(name.replaceAll("_", " "), String(i))));
  const wanted = params.get("breed");
  if (wanted !== null) {
    const found = meta.class_names.findIndex((name, i) => String(i) === wanted || name.toLowerCase().replace(/[ _-]/g, "") === wanted.toLowerCase().replace(/[ _-]/g, ""));
    if (found < 0) throw new ModelError(`unknown breed ${JSON.stringify(wanted)}; this model has: ${meta.class_names.join(", ")}`);
    breeds.value = String(found);
  }
  $("steps").value = params.get("steps") ?? meta.recommended_steps;
  $("sampler").value = params.get("sampler") ?? meta.recommended_sampler;
  $("cfg").value = params.get("cfg") ?? meta.recommended_cfg_scale;
  $("precision").value = params.get("precision") ?? "fp32";
  if (![...$("sampler").options].some((o) => o.value === $("sampler").value)) throw new ModelError(`unknown sampler ${params.get("sampler")}; use euler or heun`);
  if (![...$("precision").options].some((o) => o.value === $("precision").value)) throw new ModelError(`unknown precision ${params.get("precision")}; use fp32 or int8`);
  setState("ready", `${meta.class_names.length} classes, ${meta.image_size} px — choose a breed and press Generate`);
}

async function ensureSession(precision) {
  const key = `${base}|${precision}`;
  if (loadedKey === key) return;
  setState("loading", `loading the ${precision} model…`);
  const reply = await request({ type: "load", base, meta, precision });
  info = reply.info;
  loadedKey = key;
  const mb = (info.bytes / 1e6).toFixed(2);
  $("status").textContent = `${info.provider.toUpperCase()} (${info.reason}) · ${info.threads} thread(s) · cross-origin isolated: ${info.isolated ? "yes" : "no"} · ` +
    `${precision} model ${mb} MB ${info.fromCache ? "from the cache" : "downloaded"} in ${info.loadMs.toFixed(0)} ms`;
}

async function generate() {
  const s = settings();
  validate(s);
  await ensureSession(s.precision);
  const id = ++runId;
  setState("generating", `generating ${s.n} × ${meta.class_names[s.breed]} (seed ${s.seed}, ${s.sampler}, ${s.steps} steps, guidance ${s.cfg})…`);
  callMs = [];
  const started = performance.now();
  const previewEvery = Math.max(1, Math.round(s.steps / 5));
  const labels = Array(s.n).fill(s.breed);
  const reply = await request({ type: "generate", id, labels, seed: s.seed, steps: s.steps, sampler: s.sampler, cfg: s.cfg,
    interval: meta.recommended_guidance_interval, previewEvery });
  const ms = performance.now() - started;
  draw($("result"), reply.images, 0);
  const cells = Array.from({ length: s.n }, (_, i) => {
    const canvas = document.createElement("canvas");
    draw(canvas, reply.images, i);
    canvas.title = `${meta.class_names[s.breed]}, seed ${s.seed}, image ${i}`;
    return canvas;
  });
  $("grid").replaceChildren(...cells);
  $("download").href = $("result").toDataURL("image/png");
  $("download").download = `tinycats-${meta.class_names[s.breed]}-seed${s.seed}.png`;
  $("download").hidden = false;
  const url = new URL(location.href);
  Object.entries({ breed: meta.class_names[s.breed], seed: s.seed, steps: s.steps, sampler: s.sampler, cfg: s.cfg, precision: s.precision, n: s.n })
    .forEach(([k, v]) => url.searchParams.set(k, v));
  url.searchParams.delete("generate");
  history.replaceState(null, "", url);
  // For benchmarks/web_latency.py: the whole generation and the median network call, in ms.
  const sorted = [...callMs].sort((a, b) => a - b);
  Object.assign(document.documentElement.dataset, { generationMs: ms.toFixed(2), callMsMedian: sorted[sorted.length >> 1].toFixed(2), calls: callMs.length });
  setState("done", `${s.n} image(s) in ${(ms / 1000).toFixed(2)} s (${(ms / s.n).toFixed(0)} ms per image)`);
}

async function main() {
  const fallback = await fetch("server.json").then((r) => (r.ok ? r.json() : {})).catch(() => ({}));
  $("model").value = params.get("model") ?? fallback.model ?? "./model/";
  if (params.has("seed")) $("seed").value = params.get("seed");
  if (params.has("n")) $("n").value = params.get("n");
  $("randomise").onclick = () => { $("seed").value = String(Math.floor(Math.random() * 2 ** 31)); };
  $("cancel").onclick = () => worker.postMessage({ type: "cancel", id: runId });
  $("model").onchange = () => { loadedKey = null; openModel().catch(fail); };
  $("controls").onsubmit = (event) => {
    event.preventDefault();
    generate().catch((err) => (err.message === "cancelled" ? setState("ready", "cancelled") : fail(err)));
  };
  await openModel();
  if (params.get("generate") === "1") await generate();
}

main().catch(fail);
