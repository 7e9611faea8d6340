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

/**
 * The solvers' one update, x + scale * v0 (Euler) or x + scale * (v0 + v1) (Heun's average), on
 * Float32Arrays, into three state buffers in turn (no array per step; a step's output never
 * aliases its inputs). gpu.js has the same interface on GPU buffers: integrate() takes either.
 */
export class CpuArithmetic {
  constructor(count) {
    this.states = Array.from({ length: 3 }, () => new Float32Array(count));
    this.next = 0;
  }

  step(x, scale, v0, v1 = null) {
    const out = this.states[this.next++ % 3];
    const s = f(scale);
    if (v1 === null) for (let k = 0; k < out.length; k++) out[k] = f(x[k] + f(s * v0[k]));
    else for (let k = 0; k < out.length; k++) out[k] = f(x[k] + f(s * f(v0[k] + v1[k])));
    return out;
  }

  endStep() {}

  /** x + (1 - t) v, the clean-image estimate a preview shows. */
  async estimate(x, t, v) {
    return x.map((value, k) => value + (1 - t) * v[k]);
  }

  async read(x) {
    return x;
  }

  destroy() {}
}

/**
 * Integrate dx/dt = velocity(x, t) over the (shifted) time grid. `velocity` is async (one network
 * call); `onStep(x, t, v)` runs after each step and may throw to cancel. `arithmetic` holds x and
 * the velocities where they are computed (CpuArithmetic, or gpu.js's GpuArithmetic on the device).
 */
export async function integrate(sampler, velocity, x, steps, onStep, shift, arithmetic) {
  if (sampler !== "euler" && sampler !== "heun") throw new Error(`unknown sampler ${sampler}`);
  const grid = timeGrid(steps, shift);
  for (let i = 0; i < steps; i++) {
    const [t0, t1] = [grid[i], grid[i + 1]];
    const v0 = await velocity(x, t0);
    const last = x;
    if (sampler === "euler" || i === steps - 1) {
      x = arithmetic.step(last, t1 - t0, v0);
    } else {
      const v1 = await velocity(arithmetic.step(last, t1 - t0, v0), t1);
      x = arithmetic.step(last, (t1 - t0) * 0.5, v0, v1);
    }
    await onStep(x, t1, v0);
    arithmetic.endStep();
  }
  return x;
}

/** [-1, 1] float -> 0..255 as src/tinycats/pictures.py's to_uint8: clip, (x + 1) * 127.5, round half to even. */
export function toLevel(value) {
  const y = f(f(Math.min(1, Math.max(-1, value)) + 1) * 127.5);
  const r = Math.round(y);
  return r - y === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
