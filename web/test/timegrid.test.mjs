// The browser's time grid against the vectors Python's core/solvers.py time_grid also meets.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { timeGrid } from "../src/solvers.js";

const vectors = JSON.parse(readFileSync(new URL("../../tests/time_grid_vectors.json", import.meta.url)));

test("the shifted time grid equals Python's bit for bit", () => {
  for (const c of vectors.cases) assert.deepEqual(timeGrid(c.steps, c.shift), c.grid, `steps ${c.steps} shift ${c.shift}`);
});

test("no shift is the evenly spaced grid", () => {
  assert.deepEqual(timeGrid(4), [0, 0.25, 0.5, 0.75, 1]);
});
