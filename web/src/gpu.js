// The solvers' update on the WebGPU device, so that the state stays where the network computes:
// onnxruntime writes each velocity into a GPU buffer (preferredOutputLocation "gpu-buffer"), one
// compute pass forms x + scale * (v0 + w * v1) into the next state buffer, and that buffer is the
// next call's input. Nothing is read back but the previews and the final image.
//
// The same update as solvers.js's cpuArithmetic, in float32, but the GPU may fuse the multiply and
// the add (WGSL allows it), so the state can differ from the CPU's in the last bit (docs/web.md).

const WORKGROUP = 256;
const SHADER = /* wgsl */ `
struct Params { scale: f32, w: f32, n: u32, width: u32 };
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> v0: array<f32>;
@group(0) @binding(2) var<storage, read> v1: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.y * p.width + id.x;
  if (i < p.n) { out[i] = x[i] + p.scale * (v0[i] + p.w * v1[i]); }
}`;
/** Float32 state buffers on `device` for `count` values, and the update between them. */
export class GpuArithmetic {
  constructor(ort, device, count, dims) {
    Object.assign(this, { ort, device, count, dims, tensors: [] });
    this.pipeline = device.createComputePipeline({ layout: "auto", compute: { module: device.createShaderModule({ code: SHADER }), entryPoint: "main" } });
    // Three state buffers in turn: a step's output never aliases its inputs (x, and Heun's Euler guess).
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
    this.states = Array.from({ length: 3 }, () => device.createBuffer({ size: 4 * count, usage }));
    this.preview = device.createBuffer({ size: 4 * count, usage });
    this.next = 0;
    this.params = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  }

  /** The initial noise, uploaded once, as the first state tensor. */
  upload(values) {
    const buffer = this.states[this.next++ % 3];
    this.device.queue.writeBuffer(buffer, 0, values);
    return this.wrap(buffer);
  }

  wrap(buffer) {
    return this.ort.Tensor.fromGpuBuffer(buffer, { dataType: "float32", dims: this.dims });
  }

  /** Keep an onnxruntime output (a velocity) until the step it belongs to ends. */
  own(tensor) {
    this.tensors.push(tensor);
    return tensor;
  }

  step(x, scale, v0, v1 = null) {
    return this.update(this.states[this.next++ % 3], x, scale, v0, v1);
  }

  /** out = x + scale * (v0 + w * v1), w = 0 without v1, in one compute pass. */
  update(out, x, scale, v0, v1 = null) {
    const width = Math.min(Math.ceil(this.count / WORKGROUP), 65535);
    const rows = Math.ceil(this.count / (WORKGROUP * width));
    const params = new ArrayBuffer(16);
    new Float32Array(params, 0, 2).set([scale, v1 === null ? 0 : 1]);
    new Uint32Array(params, 8, 2).set([this.count, width * WORKGROUP]);
    this.device.queue.writeBuffer(this.params, 0, params);
    const group = this.device.createBindGroup({
      layout: this.pipeline.getBindGroupLayout(0),
      entries: [x.gpuBuffer, v0.gpuBuffer, (v1 ?? v0).gpuBuffer, out, this.params].map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    const encoder = this.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(this.pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(width, rows);
    pass.end();
    this.device.queue.submit([encoder.finish()]);
    return this.wrap(out);
  }

  endStep() {
    this.tensors.splice(0).forEach((tensor) => tensor.dispose());
  }

  /** x + (1 - t) v, the clean-image estimate a preview shows, read back. */
  async estimate(x, t, v) {
    return this.read(this.update(this.preview, x, 1 - t, v));
  }

  /** A state tensor's values, copied back to the CPU. */
  async read(tensor) {
    const staging = this.device.createBuffer({ size: 4 * this.count, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const encoder = this.device.createCommandEncoder();
    encoder.copyBufferToBuffer(tensor.gpuBuffer, 0, staging, 0, 4 * this.count);
    this.device.queue.submit([encoder.finish()]);
    try {
      await staging.mapAsync(GPUMapMode.READ);
      return new Float32Array(staging.getMappedRange().slice(0));
    } finally {
      staging.destroy();
    }
  }

  destroy() {
    this.endStep();
    [...this.states, this.preview, this.params].forEach((buffer) => buffer.destroy());
  }
}
