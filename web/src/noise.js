// The initial noise, exactly as src/tinycats/core/noise.py defines it (read the formulas there):
// SplitMix64 as a counter-based generator keyed by (seed, index), Box-Muller in float64,
// rounded to float32. The 64-bit integer steps are done on pairs of 32-bit words (hi, lo), which
// is exact without BigInt (BigInt allocates on every operation). Both sides are checked against
// tests/noise_vectors.json.

const TWO_POW_32 = 2 ** 32;
const TWO_POW_MINUS_53 = 2 ** -53;
const G_HI = 0x9e3779b9, G_LO = 0x7f4a7c15;
const M1_HI = 0xbf58476d, M1_LO = 0x1ce4e5b9;
const M2_HI = 0x94d049bb, M2_LO = 0x133111eb;

// Where the word operations leave their result: two registers rather than an array per call.
let H = 0, L = 0;

/** [H, L] = (hi, lo) * (bh, bl) mod 2^64: the low product exactly from 16-bit halves, the cross terms mod 2^32. */
function mul(hi, lo, bh, bl) {
  const a0 = lo & 0xffff, a1 = lo >>> 16, b0 = bl & 0xffff, b1 = bl >>> 16;
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  const carry = a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16); // the high word of lo * bl, < 2^32
  L = (((mid & 0xffff) << 16) | (p00 & 0xffff)) >>> 0;
  H = (carry + Math.imul(hi, bl) + Math.imul(lo, bh)) >>> 0;
}

/** [H, L] = (ah, al) + (bh, bl) mod 2^64. */
function add(ah, al, bh, bl) {
  const lo = al + bl;
  L = lo >>> 0;
  H = (ah + bh + (lo >= TWO_POW_32 ? 1 : 0)) >>> 0;
}

/** [H, L] = SplitMix64's finaliser of (hi, lo); each z ^ (z >> k) (k < 32) is written out on the words. */
function mix(hi, lo) {
  mul(hi ^ (hi >>> 30), (lo ^ ((lo >>> 30) | (hi << 2))) >>> 0, M1_HI, M1_LO);
  mul(H ^ (H >>> 27), (L ^ ((L >>> 27) | (H << 5))) >>> 0, M2_HI, M2_LO);
  L = (L ^ ((L >>> 31) | (H << 1))) >>> 0;
  H = (H ^ (H >>> 31)) >>> 0;
}

/** A whole number as [hi, lo]: a Number below 2^53, or a BigInt below 2^64 (seeds as Python takes them). */
function words(n) {
  if (typeof n === "bigint") {
    if (n < 0n || n >= 1n << 64n) throw new RangeError(`seed and index must be whole numbers in [0, 2^64), not ${n}`);
    return [Number(n >> 32n), Number(n & 0xffffffffn)];
  }
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`seed and index must be whole numbers >= 0 below 2^53, not ${n}`);
  return [Math.floor(n / TWO_POW_32) >>> 0, n >>> 0];
}

/** The key of the stream of (seed, index), as [hi, lo]. */
export function streamKey(seed, index) {
  const [sh, sl] = words(seed), [ih, il] = words(index);
  add(sh, sl, G_HI, G_LO);
  mix(H, L);
  const [kh, kl] = [H, L];
  mul(ih, il, G_HI, G_LO);
  add(kh, kl, H, L);
  mix(H, L);
  return [H, L];
}

/** The first `count` standard normals of the stream of (seed, index), as float32. */
export function standardNormal(seed, index, count) {
  const out = new Float32Array(count);
  let [ch, cl] = streamKey(seed, index); // the counter key + j * G
  for (let m = 0; 2 * m < count; m++) {
    add(ch, cl, G_HI, G_LO);
    [ch, cl] = [H, L];
    mix(ch, cl);
    const u1 = (H * 2 ** 21 + (L >>> 11) + 1) * TWO_POW_MINUS_53; // exact: z >> 11 has 53 bits
    add(ch, cl, G_HI, G_LO);
    [ch, cl] = [H, L];
    mix(ch, cl);
    const u2 = (H * 2 ** 21 + (L >>> 11)) * TWO_POW_MINUS_53;
    const radius = Math.sqrt(-2 * Math.log(u1));
    const angle = 2 * Math.PI * u2;
    out[2 * m] = radius * Math.cos(angle);
    if (2 * m + 1 < count) out[2 * m + 1] = radius * Math.sin(angle);
  }
  return out;
}
