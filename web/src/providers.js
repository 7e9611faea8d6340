// Which execution provider runs the model, and which of the repo's ONNX files it runs.
//
//   ep=wasm    WASM alone.
//   ep=webgpu  WebGPU alone: no adapter, no device or no session is an error, never a quiet fallback.
//   ep=auto    WebGPU when a hardware adapter gives a device and a session, else WASM with the reason.
//              A software adapter (SwiftShader, or one the browser marks as a fallback) emulates the
//              GPU on the CPU and is slower than WASM, so auto passes it by; ep=webgpu still takes it.
import { ModelError } from "./model.js";

export const EPS = ["auto", "webgpu", "wasm"];
export const PRECISIONS = ["auto", "fp32", "int8"];
// The limits onnxruntime asks the adapter for when it makes its own device: the adapter's maxima.
const LIMITS = ["maxBufferSize", "maxStorageBufferBindingSize", "maxComputeWorkgroupStorageSize", "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX", "maxComputeWorkgroupSizeY", "maxComputeWorkgroupSizeZ", "maxComputeWorkgroupsPerDimension", "maxStorageBuffersPerShaderStage"];
const FEATURES = ["shader-f16", "subgroups"];

/** A WebGPU adapter and device, or the reason there is none: { device, adapter, software } or { reason }. */
async function webgpuDevice() {
  if (!("gpu" in navigator)) return { reason: "this browser has no WebGPU (navigator.gpu is missing)" };
  let adapter;
  try {
    adapter = await navigator.gpu.requestAdapter();
  } catch (err) {
    return { reason: `WebGPU requestAdapter() failed (${err.message})` };
  }
  if (!adapter) return { reason: "WebGPU has no adapter here (requestAdapter() returned null)" };
  const info = adapter.info ?? {};
  const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(" ") || "unnamed adapter";
  const software = Boolean(adapter.isFallbackAdapter || info.isFallbackAdapter) || /swiftshader/i.test(name);
  try {
    const device = await adapter.requestDevice({
      requiredLimits: Object.fromEntries(LIMITS.filter((key) => key in adapter.limits).map((key) => [key, adapter.limits[key]])),
      requiredFeatures: FEATURES.filter((feature) => adapter.features.has(feature)),
    });
    return { device, adapter: name, software, f16: adapter.features.has("shader-f16") };
  } catch (err) {
    return { reason: `the WebGPU adapter (${name}) gave no device (${err.message})` };
  }
}

/** { provider: "webgpu" | "wasm", reason, device?, adapter? } for the page's `ep`. */
export async function pickProvider(ep) {
  if (ep === "wasm") return { provider: "wasm", reason: "ep=wasm" };
  const gpu = await webgpuDevice();
  if (ep === "webgpu") {
    if (!gpu.device) throw new ModelError(`ep=webgpu, but ${gpu.reason}: open the page with ep=auto or ep=wasm`);
    return { provider: "webgpu", reason: `ep=webgpu on ${gpu.adapter}`, ...gpu };
  }
  if (!gpu.device) return { provider: "wasm", reason: gpu.reason };
  if (gpu.software) {
    gpu.device.destroy();
    return { provider: "wasm", reason: `the only WebGPU adapter is ${gpu.adapter}, a CPU emulation slower than WASM` };
  }
  return { provider: "webgpu", reason: `WebGPU adapter ${gpu.adapter}`, ...gpu };
}

/**
 * The file to run: `precision` unless it is auto. Auto is fp32 on WebGPU, whose EP has no kernels
 * for the int8 file's dynamic quantisation (MatMulInteger, DynamicQuantizeLinear run on the CPU
 * with copies), and int8 on WASM, where it is 1.3-1.6x as fast per image as fp32 at the parity the
 * browser tests enforce (docs/performance.md). Returns { precision, why }.
 */
export function choosePrecision(precision, provider, meta) {
  if (precision !== "auto") {
    if (!meta.files[precision]) throw new ModelError(`this model has no ${precision} file (it has: ${Object.keys(meta.files).join(", ")})`);
    return { precision, why: `precision=${precision}` };
  }
  if (provider === "webgpu") return { precision: "fp32", why: "fp32: WebGPU has no kernels for the int8 file's dynamic quantisation" };
  if (meta.files.int8) return { precision: "int8", why: "int8: faster than fp32 on WASM" };
  return { precision: "fp32", why: "fp32: this model has no int8 file" };
}
