"""A real `tinycats train` process killed with SIGKILL (no handler, no cleanup, no finally) at chosen
moments, one of them in the middle of writing a checkpoint: every checkpoint left behind loads,
`--resume auto` continues, and the run ends bitwise where an uninterrupted one ends.

The mid-write moments are made deterministic from the test side only, by the seam of
benchmarks/crash_harness.py (shared with benchmarks/crash_sweep.py): for one named checkpoint file the
child is held either after part of the temporary file is written ("write") or after it is complete and
fsynced but before the rename ("replace"), and a marker file tells the test when to kill.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from tinycats import checkpoint

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from crash_harness import Child, check_all, compare, newest_loadable, prepare, temps  # noqa: E402

STEPS, INTERVAL = 24, 3


def loadable(ck: Path) -> list[str]:
    """The names of every dit_step_*.pt (training states and EMA files) in `ck`, each of which must load."""
    names, problems = check_all(ck)
    assert problems == []
    return names


def test_sigkill_at_any_moment_leaves_only_loadable_checkpoints_and_resume_ends_bitwise(tmp_path):
    work, ck = tmp_path, tmp_path / "ck"
    prepare(work, STEPS, INTERVAL, seed=11)
    # The uninterrupted run, the same command in the same environment, alongside the crashed one.
    reference = Child(work, "ref")
    try:
        # 1. Killed while writing the very first checkpoint (its EMA file, part written): nothing saved.
        first = Child(work, "ck", "write:dit_step_3_ema.pt")
        assert first.wait_for(first.marker.exists, "the hold in the first save"), first.output()
        partial = temps(ck)
        assert partial == [f".dit_step_3_ema.pt.tmp-{first.proc.pid}"] and (ck / partial[0]).stat().st_size > 0
        with pytest.raises(checkpoint.CheckpointError, match="not a readable checkpoint"):
            checkpoint.load(ck / partial[0])  # really half-written
        assert first.kill() == -signal.SIGKILL
        assert loadable(ck) == [] and temps(ck) == partial

        # 2. Starts over (the kill came before any checkpoint) and removes the temp file; killed once
        #    dit_step_9_ema.pt is in place and dit_step_9.pt is complete under its temp name, not renamed.
        second = Child(work, "ck", "replace:dit_step_9.pt")
        assert second.wait_for(second.marker.exists, "the hold before renaming dit_step_9.pt"), second.output()
        complete = temps(ck)
        assert complete == [f".dit_step_9.pt.tmp-{second.proc.pid}"]
        assert checkpoint.load(ck / complete[0])["step"] == 9  # written and fsynced, only the rename missing
        assert second.kill() == -signal.SIGKILL
        assert second.started_from() == 0 and second.removed_temps() == 1
        assert loadable(ck) == [f"dit_step_{s}{e}.pt" for s in (3, 6) for e in ("", "_ema")] + ["dit_step_9_ema.pt"]

        # 3. Resumes from step 6, not from the newest file written (dit_step_9_ema.pt); killed at an
        #    ordinary moment, during step 17.
        third = Child(work, "ck")
        assert third.wait_for_step(16), third.output()
        assert third.kill() == -signal.SIGKILL
        assert third.started_from() == 6 and third.removed_temps() == 1
        assert {"dit_step_9.pt", "dit_step_15.pt", "dit_step_15_ema.pt"} <= set(loadable(ck))

        # 4. Resumes from the newest checkpoint that loads and runs to the end.
        newest = newest_loadable(ck)
        last = Child(work, "ck")
        assert last.end() == 0, last.output()
        assert last.started_from() == newest and f"done: {STEPS} steps" in last.output()
        assert reference.end() == 0, reference.output()
    finally:
        Child.stop_all()

    assert temps(ck) == [] and temps(work / "ref") == []
    saved = loadable(ck)
    assert saved == loadable(work / "ref")  # every step of the interval, each written once or rewritten
    # The last one, and every one before it, bitwise as the uninterrupted run wrote it, every field included.
    result = compare(work / "ref", ck, STEPS)
    assert result["final_equal"] and result["unequal"] == {} and result["checkpoints_compared"] == len(saved), result
    assert all(result["final_state_entries"].values())  # weights, optimizer state and EMA weights all saved
