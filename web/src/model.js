// Reading a tinycats repo folder (docs/hub.md) from a base URL: the sidecar first, then the ONNX
// file it names, streamed with progress, checked against the sidecar's sha256 and kept in the
// Cache API under (URL, sha256), so a second visit loads from the cache.

export const SIDECAR = "onnx/generator.json"; // the one name the page knows: the layout's sidecar
export const SIDECAR_FORMAT = "tinycats-onnx-v1";
const CACHE_NAME = "tinycats-models-v1";
const REQUIRED = ["class_names", "null_index", "image_size", "channels", "prediction", "recommended_sampler",
  "recommended_steps", "recommended_cfg_scale", "recommended_guidance_interval", "inputs", "files", "weights_sha256"];

export class ModelError extends Error {}

export function resolveBase(base, pageUrl) {
  const url = new URL(base, pageUrl);
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  return url.href;
}

async function fetchOrExplain(url, init) {
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    throw new ModelError(`could not fetch ${url}: the server is unreachable or does not allow cross-origin reads (CORS)`);
  }
  if (response.status === 404) throw new ModelError(`${url} was not found (404): is "model" the base URL of a tinycats repo folder?`);
  if (!response.ok) throw new ModelError(`${url} answered ${response.status} ${response.statusText}`);
  return response;
}

/** The sidecar of the repo folder at `base`, checked to be one this page understands. */
export async function readSidecar(base) {
  const url = new URL(SIDECAR, base).href;
  const response = await fetchOrExplain(url, { cache: "no-cache" });
  let meta;
  try {
    meta = await response.json();
  } catch {
    throw new ModelError(`${url} is not JSON: is "model" the base URL of a tinycats repo folder?`);
  }
  if (meta.format !== SIDECAR_FORMAT) {
    throw new ModelError(`${url} has format ${JSON.stringify(meta.format)}; this page reads ${SIDECAR_FORMAT} (a model from another tinycats version)`);
  }
  const missing = REQUIRED.filter((key) => !(key in meta));
  if (missing.length) throw new ModelError(`${url} lacks ${missing.join(", ")}: export the model again with tinycats export-onnx`);
  if (meta.output !== "velocity") throw new ModelError(`${url}: the graph's output is ${meta.output}, not the guided velocity`);
  return meta;
}

export function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256(bytes) {
  return hex(await crypto.subtle.digest("SHA-256", bytes));
}

/**
 * The bytes of the ONNX file for `precision`, verified. `onProgress(received, total)` while
 * downloading. Returns { bytes, fromCache, url }.
 */
export async function loadModelFile(base, meta, precision, onProgress) {
  const entry = meta.files[precision];
  if (!entry) throw new ModelError(`this model has no ${precision} file (it has: ${Object.keys(meta.files).join(", ")})`);
  const url = new URL(entry.path, new URL(SIDECAR, base)).href;
  const key = `${url}?sha256=${entry.sha256}`;
  const cache = "caches" in self ? await caches.open(CACHE_NAME) : null;
  const cached = cache ? await cache.match(key) : undefined;
  if (cached) {
    const bytes = new Uint8Array(await cached.arrayBuffer());
    if ((await sha256(bytes)) === entry.sha256) return { bytes, fromCache: true, url };
    await cache.delete(key); // damaged in the cache: fetch again
  }
  const response = await fetchOrExplain(url);
  const total = entry.bytes;
  const bytes = new Uint8Array(total);
  let received = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (received + value.length > total) throw new ModelError(`${url} is larger than the ${total} bytes the sidecar says`);
    bytes.set(value, received);
    received += value.length;
    onProgress(received, total);
  }
  if (received !== total) throw new ModelError(`${url} has ${received} bytes, the sidecar says ${total}: the file is damaged or from another export`);
  const digest = await sha256(bytes);
  if (digest !== entry.sha256) {
    throw new ModelError(`${url} has sha256 ${digest.slice(0, 12)}…, the sidecar says ${entry.sha256.slice(0, 12)}…: the file is damaged or from another export`);
  }
  if (cache) await cache.put(key, new Response(bytes, { headers: { "content-type": "application/octet-stream" } }));
  return { bytes, fromCache: false, url };
}
