// The initial noise, exactly as src/tinycats/core/noise.py defines it (read the formulas there):
// SplitMix64 as a counter-based generator keyed by (seed, index), Box-Muller in float64,
// rounded to float32. Integer steps use BigInt, so they are exact; both sides are checked
// against tests/noise_vectors.json.

const MASK = (1n << 64n) - 1n;
const GOLDEN = 0x9e3779b97f4a7c15n;
const M1 = 0xbf58476d1ce4e5b9n;
const M2 = 0x94d049bb133111ebn;
const TWO_POW_MINUS_53 = 2 ** -53;

function mix(z) {
  z = ((z ^ (z >> 30n)) * M1) & MASK;
  z = ((z ^ (z >> 27n)) * M2) & MASK;
  return z ^ (z >> 31n);
}

export function streamKey(seed, index) {
  return mix((mix((BigInt(seed) + GOLDEN) & MASK) + BigInt(index) * GOLDEN) & MASK);
}

/** The first `count` standard normals of the stream of (seed, index), as float32. */
export function standardNormal(seed, index, count) {
  const key = streamKey(seed, index);
  const out = new Float32Array(count);
  for (let m = 0; 2 * m < count; m++) {
    const z1 = mix((key + BigInt(2 * m + 1) * GOLDEN) & MASK);
    const z2 = mix((key + BigInt(2 * m + 2) * GOLDEN) & MASK);
    const u1 = (Number(z1 >> 11n) + 1) * TWO_POW_MINUS_53;
    const u2 = Number(z2 >> 11n) * TWO_POW_MINUS_53;
    const radius = Math.sqrt(-2 * Math.log(u1));
    const angle = 2 * Math.PI * u2;
    out[2 * m] = radius * Math.cos(angle);
    if (2 * m + 1 < count) out[2 * m + 1] = radius * Math.sin(angle);
  }
  return out;
}
