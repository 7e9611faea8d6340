// Build the static site into the Python package (src/tinycats/page/, package data, so a wheel carries
// it): our page files and the onnxruntime-web files it loads (from node_modules, installed from the
// lockfile), so any static host serves one folder.
import { cpSync, mkdirSync, rmSync } from "node:fs";

const ORT = "node_modules/onnxruntime-web/dist";
// The WebGPU build (its WASM compiled with asyncify, 27 MB) and the plain WASM build (14 MB): a page
// on WASM loads only the second.
const ORT_FILES = [
  "ort.webgpu.min.mjs", "ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm",
  "ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm",
];

const OUT = "../src/tinycats/page";
rmSync(OUT, { recursive: true, force: true });
cpSync("src", OUT, { recursive: true });
mkdirSync(`${OUT}/ort`);
for (const name of ORT_FILES) cpSync(`${ORT}/${name}`, `${OUT}/ort/${name}`);
console.log(`built ${OUT}/ (page + ${ORT_FILES.length} onnxruntime-web files)`);
