// Euler and Heun from t = 0 (noise) to t = 1 (image), in the order of operations of
// src/tinycats/core/solvers.py run on numpy float32 arrays: every product and sum is rounded to
// float32 (Math.fround), and Python-float step sizes are rounded to float32 before they scale
// an array, as numpy does. So a browser sample matches `tinycats sample --onnx` to the last bit
// wherever onnxruntime's kernels agree.

const f = Math.fround;

/** src/tinycats/core/solvers.py's shift_time, in the same order of float64 operations. */
export function shiftTime(t, shift) {
  if (shift === 1) return t;
  const sigma = 1 - t;
  return 1 - (shift * sigma) / (1 + (shift - 1) * sigma);
}

export function timeGrid(steps, shift = 1) {
  return Array.from({ length: steps + 1 }, (_, i) => shiftTime(i / steps, shift));
}

/** Network calls per image (per guided batch) of a sampler. */
export function modelCalls(sampler, steps) {
  if (sampler === "euler") return steps;
  if (sampler === "heun") return 2 * steps - 1;
  throw new Error(`unknown sampler ${sampler}`);
}

function axpy(x, scale, v) {
  const s = f(scale);
  const out = new Float32Array(x.length);
  for (let k = 0; k < x.length; k++) out[k] = f(x[k] + f(s * v[k]));
  return out;
}

function add(a, b) {
  const out = new Float32Array(a.length);
  for (let k = 0; k < a.length; k++) out[k] = f(a[k] + b[k]);
  return out;
}

/**
 * Integrate dx/dt = velocity(x, t) over the (shifted) time grid. `velocity` is async (one network
 * call); `onStep(x, t)` runs after each step and may throw to cancel.
 */
export async function integrate(sampler, velocity, x, steps, onStep, shift = 1) {
  const grid = timeGrid(steps, shift);
  for (let i = 0; i < steps; i++) {
    const [t0, t1] = [grid[i], grid[i + 1]];
    const v0 = await velocity(x, t0);
    if (sampler === "euler" || i === steps - 1) {
      x = axpy(x, t1 - t0, v0);
    } else if (sampler === "heun") {
      const xEuler = axpy(x, t1 - t0, v0);
      const v1 = await velocity(xEuler, t1);
      x = axpy(x, (t1 - t0) * 0.5, add(v0, v1));
    } else {
      throw new Error(`unknown sampler ${sampler}`);
    }
    await onStep(x, t1, v0);
  }
  return x;
}

/** [-1, 1] float -> 0..255 as src/tinycats/pictures.py's to_uint8: clip, (x + 1) * 127.5, round half to even. */
export function toLevel(value) {
  const y = f(f(Math.min(1, Math.max(-1, value)) + 1) * 127.5);
  const r = Math.round(y);
  return r - y === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
