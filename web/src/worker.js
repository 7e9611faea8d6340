// ONNX Runtime lives here, in a module worker, so the page never freezes. Messages in:
//   {type: "load", base, meta, precision, ep}     -> "progress" (download), then "loaded" or "error"
//   {type: "generate", id, labels, noise, seed, steps, sampler, cfg, interval, previewMs}
//                                                 -> "step" per network call, "preview", then "done" or "error"
//   {type: "cancel", id}
// `noise[i]` is the stream index of image i: images that share it share their starting noise.
// An "error" with `reload: true` means the session is gone (a lost WebGPU device): load again.
import { GpuArithmetic } from "./gpu.js";
import { loadModelFile, ModelError } from "./model.js";
import { standardNormal } from "./noise.js";
import { choosePrecision, pickProvider } from "./providers.js";
import { CpuArithmetic, integrate, modelCalls } from "./solvers.js";

// One onnxruntime-web build per backend, loaded when first chosen: the WebGPU build's WASM is
// compiled with asyncify (so that a kernel can wait for the GPU) and is twice the download of the
// plain WASM build (27 against 14 MB), which a page on WASM does not need (docs/web.md).
const BUILDS = { wasm: "./ort/ort.wasm.min.mjs", webgpu: "./ort/ort.webgpu.min.mjs" };
const runtimes = {};
const LOG_ERRORS_ONLY = 3;
let current = null; // { session, provider, device, lost }
const cancelled = new Set();

async function runtime(provider, threads) {
  if (!runtimes[provider]) {
    const ort = await import(BUILDS[provider]);
    ort.env.wasm.wasmPaths = new URL("./ort/", import.meta.url).href; // our own copy, never a CDN
    ort.env.wasm.numThreads = threads;
    // onnxruntime logs through console.error whatever the severity; its warnings (which nodes the
    // WebGPU EP leaves to the CPU) are not errors, so only errors are logged.
    ort.env.logLevel = "error";
    runtimes[provider] = ort;
  }
  return runtimes[provider];
}

async function createSession(ort, bytes, chosen) {
  const options = { logSeverityLevel: LOG_ERRORS_ONLY, graphOptimizationLevel: "all" };
  if (chosen.provider === "wasm") return ort.InferenceSession.create(bytes, { ...options, executionProviders: ["wasm"] });
  return ort.InferenceSession.create(bytes, {
    ...options, executionProviders: [{ name: "webgpu", device: chosen.device }], preferredOutputLocation: "gpu-buffer",
  });
}

/** A promise that rejects when `device` is lost other than by our own retire(). */
function watchLoss(state) {
  state.lost = new Promise((_, reject) => {
    state.device.lost.then((info) => {
      if (state.retired) return;
      state.deadSession = state.session; // released by retire(): a run may still be in flight
      state.session = null;
      state.lostError = new ModelError(`the WebGPU device was lost (${info.message || info.reason}): press Generate to start a new one, or open the page with ep=wasm`);
      reject(state.lostError);
    });
  });
  state.lost.catch(() => {}); // seen by whoever races it; never an unhandled rejection
}

async function retire(state) {
  if (!state) return;
  state.retired = true;
  try {
    await (state.session ?? state.deadSession)?.release();
  } catch {
    // a session on a lost device may fail to release; it is dropped either way
  }
  state.device?.destroy();
}

/** The file for `chosen`'s backend, downloaded and checked, and its session. */
async function build(base, meta, precision, chosen, threads) {
  const file = choosePrecision(precision, chosen.provider, meta);
  const bytes = await loadModelFile(base, meta, file.precision, (received, total) => postMessage({ type: "progress", received, total }));
  const ort = await runtime(chosen.provider, threads);
  try {
    return { file, bytes, ort, session: await createSession(ort, bytes.bytes, chosen) };
  } catch (err) {
    throw Object.assign(new ModelError(`the ${file.precision} model does not run on ${chosen.provider.toUpperCase()} here (${err.message})`), { cause: err });
  }
}

async function load({ base, meta, precision, ep }) {
  const started = performance.now();
  await retire(current);
  current = null;
  const threads = self.crossOriginIsolated ? Math.min(navigator.hardwareConcurrency || 1, 8) : 1;
  let chosen = await pickProvider(ep);
  let built;
  try {
    built = await build(base, meta, precision, chosen, threads);
  } catch (err) {
    chosen.device?.destroy(); // whatever failed, this device has no session
    if (!err.cause || chosen.provider !== "webgpu" || ep === "webgpu") throw err; // a bad download, or WebGPU asked for
    chosen = { provider: "wasm", reason: `the WebGPU session did not build (${err.cause.message})` };
    built = await build(base, meta, precision, chosen, threads);
  }
  const { file, bytes, ort, session } = built;
  current = { ort, session, meta, provider: chosen.provider, device: chosen.device ?? null, retired: false, lost: null };
  if (current.device) watchLoss(current);
  postMessage({
    type: "loaded",
    info: {
      provider: chosen.provider, reason: chosen.reason, adapter: chosen.adapter ?? null, precision: file.precision, why: file.why,
      threads, isolated: self.crossOriginIsolated, bytes: bytes.bytes.length, fromCache: bytes.fromCache, loadMs: performance.now() - started, url: bytes.url,
    },
  });
}

function velocityFn(state, labels, dims, cfg, interval, arithmetic, onCall) {
  const { ort } = state;
  const n = labels.length;
  const labelTensor = new ort.Tensor("int64", BigInt64Array.from(labels, BigInt), [n]);
  const guide = new ort.Tensor("float32", new Float32Array(n).fill(cfg), [n]);
  const plain = new ort.Tensor("float32", new Float32Array(n).fill(1), [n]);
  const onDevice = arithmetic instanceof GpuArithmetic;
  return async (x, t) => {
    const started = performance.now();
    const feeds = {
      x: onDevice ? x : new ort.Tensor("float32", x, dims),
      t: new ort.Tensor("float32", new Float32Array(n).fill(t), [n]),
      label: labelTensor,
      cfg_scale: interval[0] <= t && t <= interval[1] ? guide : plain, // guidance happens in the graph, once
    };
    const run = state.session.run(feeds);
    run.catch(() => {}); // when the device is lost first, the run's own failure is no news
    const out = await (state.lost ? Promise.race([run, state.lost]) : run);
    onCall(performance.now() - started);
    const velocity = out[state.session.outputNames[0]];
    return onDevice ? arithmetic.own(velocity) : velocity.data;
  };
}

async function generate({ id, labels, noise, seed, steps, sampler, cfg, interval, previewMs }) {
  const state = current;
  // The device went while the page was idle: the page loads again and retries (app.js).
  if (!state?.session) throw Object.assign(new ModelError(state?.lostError?.message ?? "the model is not loaded"), { reload: true, stale: true });
  const { channels: c, image_size: s } = state.meta;
  const size = c * s * s;
  const dims = [labels.length, c, s, s];
  const x0 = new Float32Array(labels.length * size);
  noise.forEach((index, i) => x0.set(standardNormal(seed, index, size), i * size));
  const arithmetic = state.provider === "webgpu" ? new GpuArithmetic(state.ort, state.device, x0.length, dims) : new CpuArithmetic(x0.length);
  const total = modelCalls(sampler, steps);
  let calls = 0;
  let step = 0;
  let lastPreview = performance.now();
  try {
    const velocity = velocityFn(state, labels, dims, cfg, interval, arithmetic, (ms) => postMessage({ type: "step", id, call: ++calls, total, ms }));
    const start = arithmetic instanceof GpuArithmetic ? arithmetic.upload(x0) : x0;
    const x = await integrate(sampler, velocity, start, steps, async (latest, t, v) => {
      step += 1;
      if (cancelled.has(id)) throw new ModelError("cancelled");
      if (step < steps && performance.now() - lastPreview >= previewMs) {
        lastPreview = performance.now();
        postMessage({ type: "preview", id, images: await arithmetic.estimate(latest, t, v) });
      }
    }, state.meta.time_shift ?? 1, arithmetic); // a sidecar from before the setting: no shift
    const images = await arithmetic.read(x);
    postMessage({ type: "done", id, images }, [images.buffer]);
  } catch (err) {
    throw state.lostError ?? err; // a read-back that fails because the device went is that loss
  } finally {
    arithmetic.destroy();
  }
}

onmessage = async ({ data }) => {
  if (data.type === "cancel") {
    cancelled.add(data.id);
    return;
  }
  try {
    if (data.type === "load") await load(data);
    else if (data.type === "generate") await generate(data);
  } catch (err) {
    const reload = Boolean(err.reload) || (current !== null && current.session === null);
    postMessage({ type: "error", id: data.id, reload, stale: Boolean(err.stale), message: err instanceof ModelError ? err.message : `${err.name}: ${err.message}` });
  }
};
