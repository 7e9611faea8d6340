// ONNX Runtime lives here, in a module worker, so the page never freezes. Messages in:
//   {type: "load", base, meta, precision}         -> "progress" (download), then "loaded" or "error"
//   {type: "generate", id, labels, seed, steps, sampler, cfg, interval, previewEvery}
//                                                 -> "step" per network call, "preview", then "done" or "error"
//   {type: "cancel", id}
import * as ort from "./ort/ort.webgpu.min.mjs";
import { loadModelFile, ModelError } from "./model.js";
import { standardNormal } from "./noise.js";
import { integrate, modelCalls } from "./solvers.js";

ort.env.wasm.wasmPaths = new URL("./ort/", import.meta.url).href; // our own copy, never a CDN
let session = null;
let meta = null;
const cancelled = new Set();

async function pickProvider() {
  if (!("gpu" in navigator)) return { provider: "wasm", reason: "this browser has no WebGPU (navigator.gpu is missing)" };
  let adapter = null;
  try {
    adapter = await navigator.gpu.requestAdapter();
  } catch (err) {
    return { provider: "wasm", reason: `WebGPU requestAdapter() failed (${err.message})` };
  }
  if (!adapter) return { provider: "wasm", reason: "WebGPU has no adapter here (requestAdapter() returned null)" };
  return { provider: "webgpu", reason: "WebGPU adapter found" };
}

async function createSession(bytes) {
  const threads = self.crossOriginIsolated ? Math.min(navigator.hardwareConcurrency || 1, 8) : 1;
  ort.env.wasm.numThreads = threads;
  let { provider, reason } = await pickProvider();
  if (provider === "webgpu") {
    try {
      return { session: await ort.InferenceSession.create(bytes, { executionProviders: ["webgpu"] }), provider, reason, threads };
    } catch (err) {
      provider = "wasm";
      reason = `the WebGPU session did not build (${err.message}); using WASM`;
    }
  }
  return { session: await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] }), provider, reason, threads };
}

async function load({ base, meta: sidecar, precision }) {
  const started = performance.now();
  const file = await loadModelFile(base, sidecar, precision, (received, total) =>
    postMessage({ type: "progress", received, total }),
  );
  const built = await createSession(file.bytes).catch((err) => {
    throw new ModelError(`the ${precision} model does not run here (${err.message})`);
  });
  session = built.session;
  meta = sidecar;
  postMessage({
    type: "loaded",
    info: {
      provider: built.provider, reason: built.reason, threads: built.threads, isolated: self.crossOriginIsolated,
      bytes: file.bytes.length, fromCache: file.fromCache, loadMs: performance.now() - started, url: file.url,
    },
  });
}

function velocityFn(labels, cfg, interval, onCall) {
  const n = labels.length;
  const c = meta.channels, s = meta.image_size;
  const labelTensor = new ort.Tensor("int64", BigInt64Array.from(labels, BigInt), [n]);
  const guide = new ort.Tensor("float32", new Float32Array(n).fill(cfg), [n]);
  const plain = new ort.Tensor("float32", new Float32Array(n).fill(1), [n]);
  return async (x, t) => {
    const started = performance.now();
    const feeds = {
      x: new ort.Tensor("float32", x, [n, c, s, s]),
      t: new ort.Tensor("float32", new Float32Array(n).fill(t), [n]),
      label: labelTensor,
      cfg_scale: interval[0] <= t && t <= interval[1] ? guide : plain, // guidance happens in the graph, once
    };
    const out = await session.run(feeds);
    onCall(performance.now() - started);
    return out[Object.keys(out)[0]].data;
  };
}

async function generate({ id, labels, seed, steps, sampler, cfg, interval, previewEvery }) {
  const size = meta.channels * meta.image_size * meta.image_size;
  const x0 = new Float32Array(labels.length * size);
  labels.forEach((_, i) => x0.set(standardNormal(seed, i, size), i * size));
  const total = modelCalls(sampler, steps);
  let calls = 0;
  let step = 0;
  const velocity = velocityFn(labels, cfg, interval, (ms) => postMessage({ type: "step", id, call: ++calls, total, ms }));
  const x = await integrate(sampler, velocity, x0, steps, async (current, t, v) => {
    step += 1;
    if (cancelled.has(id)) throw new ModelError("cancelled");
    if (previewEvery && step % previewEvery === 0 && step < steps) {
      // The estimate of the clean image at time t: x = x_t + (1 - t) v.
      const estimate = current.map((value, k) => value + (1 - t) * v[k]);
      postMessage({ type: "preview", id, images: estimate });
    }
  }, meta.time_shift ?? 1); // a sidecar from before the setting: no shift
  postMessage({ type: "done", id, images: x }, [x.buffer]);
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
    postMessage({ type: "error", id: data.id, message: err instanceof ModelError ? err.message : `${err.name}: ${err.message}` });
  }
};
