// The browser's noise against the fixed vectors that numpy's implementation also meets.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { standardNormal } from "../src/noise.js";
import { toLevel } from "../src/solvers.js";

const vectors = JSON.parse(readFileSync(new URL("../../tests/noise_vectors.json", import.meta.url)));
const bits = (value) => {
  const view = new DataView(new ArrayBuffer(4));
  view.setFloat32(0, value);
  return view.getUint32(0).toString(16).padStart(8, "0");
};

test("the first values and far positions of every stream match the numpy vectors bit for bit", () => {
  for (const c of vectors.cases) {
    assert.deepEqual(Array.from(standardNormal(BigInt(c.seed), c.index, 11), bits), c.first_11, `seed ${c.seed} index ${c.index}`);
    const full = standardNormal(BigInt(c.seed), c.index, 49152);
    for (const [k, expected] of Object.entries(c.at)) assert.equal(bits(full[Number(k)]), expected, `position ${k}`);
  }
});

test("a shorter stream is a prefix of a longer one, and seeds and indices give other streams", () => {
  assert.deepEqual(standardNormal(5, 2, 7), standardNormal(5, 2, 8).subarray(0, 7));
  assert.notDeepEqual(standardNormal(5, 2, 8), standardNormal(5, 3, 8));
  assert.notDeepEqual(standardNormal(5, 2, 8), standardNormal(6, 2, 8));
});

test("levels round half to even like numpy", () => {
  assert.equal(toLevel(-1), 0);
  assert.equal(toLevel(1), 255);
  assert.equal(toLevel(2), 255);
  assert.equal(toLevel(0), 128); // 127.5 rounds to the even 128
  assert.equal(toLevel(1 / 127.5 - 1), 1); // exactly 1.0 in float32 -> 1
  assert.equal(toLevel(Math.fround(0.5 / 127.5) - 1), 0); // 0.5 rounds to the even 0
});
