"""Crash sweep: `tinycats train` killed (SIGKILL) and stopped (SIGTERM) many times, resumed with
--resume auto each time, must end bitwise where an uninterrupted run ends.

    python benchmarks/crash_sweep.py --kills 20 --term-cycles 30 --steps 240 --seed 0

Runs the real command as a child process on the CPU (preset tinydit-test, 16 px, 18 images, a
checkpoint every --checkpoint-interval steps, a log line every step) in a temporary folder, with the
child, seam and checks of benchmarks/crash_harness.py (shared with tests/test_crash.py):

  reference  one uninterrupted run.
  kill       --kills SIGKILLs at seeded random moments: while the child starts (imports, data,
             lock), a few milliseconds after a random step's log line, or in the middle of a
             checkpoint write, held there by the harness's sitecustomize.py (after part of the
             temporary file is written, or once it is complete but not yet renamed). A kill that
             leaves the child's `.dit_step_*.pt.tmp-PID` behind landed mid-write, whatever aimed it.
             After each kill every dit_step_*.pt in the folder must load (checkpoint.load verifies
             the content checksum), and the restart must resume from the newest one and remove the
             temporary files.
  term       --term-cycles SIGTERMs, each after a random step's log line or while a checkpoint
             write is held: the child must save, exit 143 and name the checkpoint, which must be at
             the step it stopped at; the next cycle must resume there.

The kill and term parts run side by side, in their own folders, after the reference. Both
folders' final dit_step_N.pt and _ema.pt (and every checkpoint they share with the reference)
are compared with the reference's over every field, with no exception: tensors by torch.equal
(dtype included), everything else by ==. Prints a table; writes JSON (relative names only) to
--json (default benchmarks/results/crash_sweep.json). Exits 1 when anything failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from tinycats import checkpoint

try:
    from crash_harness import Child, check_all, compare, newest_loadable, prepare, temps
except ImportError:  # run as a module from the repository root
    from benchmarks.crash_harness import Child, check_all, compare, newest_loadable, prepare, temps

ROOT = Path(__file__).resolve().parents[1]
TERM_EXIT = 128 + signal.SIGTERM


def start_problem(child: Child, expected: int) -> str | None:
    """What is wrong with where the child said it started (None: right, or it did not get to say)."""
    said = child.started_from()
    if said is None or said == expected:
        return None
    return f"resumed at step {said}, the newest checkpoint that loads is at step {expected}"


def run_to_end(work: Path, ck: str, problems: list[str]) -> Child:
    """The restart after a part's last kill or stop: it must resume where it should and finish."""
    expected = newest_loadable(work / ck)
    child = Child(work, ck)
    if (rc := child.end()) != 0:
        problems.append(f"{ck} part: the last run ended with rc {rc}:\n{child.output()[-2000:]}")
    if wrong := start_problem(child, expected):
        problems.append(f"{ck} part, last run: {wrong}")
    return child


def kill_part(work: Path, args: argparse.Namespace, rng: random.Random, startup_s: float) -> tuple[dict, list[str]]:
    """--kills SIGKILLs, each at a seeded random moment of a fresh restart, then a run to the end."""
    folder, began = work / "kill", time.perf_counter()
    events: list[dict] = []
    problems: list[str] = []
    found: list[str] = []  # the temp files each restart found (one left alone by a startup kill is found again)
    removed = not_loading = 0
    for i in range(args.kills):
        start = newest_loadable(folder)
        due = [m for m in range(start + 1, args.steps + 1) if m % args.checkpoint_interval == 0][:2]
        kind = rng.choices(["startup", "step", "seam"], weights=[0.15, 0.55, 0.30])[0]
        if kind == "seam" and not due:
            kind = "step"
        if kind == "step" and start + 1 > args.steps - 1:
            kind = "startup"
        aim: dict = {"kind": kind, "from_step": start}
        found += temps(folder)
        if kind == "seam":
            step, part = rng.choice(due), rng.choice([checkpoint.ema_path, checkpoint.train_path])
            aim["hold"] = f"{rng.choice(['write', 'replace'])}:{part(folder, step).name}"
            child = Child(work, "kill", aim["hold"])
            reached = child.wait_for(child.marker.exists, f"the hold {aim['hold']}")
        elif kind == "step":
            aim["after_step"] = min(args.steps - 1, start + rng.randint(1, 2 * args.checkpoint_interval + 2))
            aim["delay_ms"] = round(rng.uniform(0, 40), 1)
            child = Child(work, "kill")
            reached = child.wait_for_step(aim["after_step"])
            time.sleep(aim["delay_ms"] / 1000)
        else:
            aim["delay_s"] = round(rng.uniform(0.2, 0.95) * startup_s, 2)
            child = Child(work, "kill")
            reached = child.wait_for(lambda c=child, d=aim["delay_s"]: time.perf_counter() - c.started >= d, "the delay")
        if not reached:
            problems.append(f"kill {i + 1}: the child ended (rc {child.proc.returncode}) before its moment")
            break
        in_training = child.training_at is not None
        if (rc := child.kill()) != -signal.SIGKILL:
            problems.append(f"kill {i + 1}: rc {rc}, not killed")
        if wrong := start_problem(child, start):
            problems.append(f"kill {i + 1}: {wrong}")
        removed += child.removed_temps()
        own = [t for t in temps(folder) if t.endswith(f".tmp-{child.proc.pid}")]
        checked, bad = check_all(folder)
        not_loading += len(bad)
        problems += [f"kill {i + 1}: {b}" for b in bad]
        events.append(
            {
                **aim,
                "landed": "training" if in_training else "startup",
                "last_step_logged": child.last_step() if in_training else None,
                "mid_write": bool(own),
                "temp_files": own,
                "checkpoints_checked": len(checked),
                "restart_from": newest_loadable(folder),
            }
        )
    found += temps(folder)
    removed += run_to_end(work, "kill", problems).removed_temps()
    left_at_end = temps(folder)
    problems += [f"kill part: {t} left at the end" for t in left_at_end]
    if removed != len(set(found)):
        problems.append(f"kill part: {len(set(found))} distinct temp files found at restarts, {removed} reported removed")
    mid = [e for e in events if e["mid_write"]]
    result = {
        "kills": len(events),
        "kills_by_kind": {k: sum(e["kind"] == k for e in events) for k in ("startup", "step", "seam")},
        "kills_landed_in_training": sum(e["landed"] == "training" for e in events),
        "kills_mid_write": len(mid),
        "kills_mid_write_aimed": sum(e["kind"] == "seam" for e in mid),
        "kills_mid_write_by_timing": sum(e["kind"] != "seam" for e in mid),
        "checkpoints_checked_after_kills": sum(e["checkpoints_checked"] for e in events),
        "checkpoints_not_loading": not_loading,
        "temp_files_at_restarts": len(found),
        "temp_files_distinct": len(set(found)),
        "temp_files_removed": removed,
        "temp_files_left_at_end": len(left_at_end),
        "restarts_from_scratch": sum(e["restart_from"] == 0 for e in events),
        "steps_redone": sum(max(0, (e["last_step_logged"] or 0) - e["restart_from"]) for e in events),
        **compare(work / "ref", folder, args.steps),
        "events": events,
        "wall_s": round(time.perf_counter() - began, 1),
    }
    return result, problems


def term_part(work: Path, args: argparse.Namespace, rng: random.Random) -> tuple[dict, list[str]]:
    """--term-cycles SIGTERM stops, each of which must save where it stopped, then a run to the end."""
    folder, began = work / "term", time.perf_counter()
    events: list[dict] = []
    problems: list[str] = []
    for i in range(args.term_cycles):
        start = newest_loadable(folder)
        room = args.steps - 2 - start  # stop at most at steps - 1, so every cycle has a step to stop in
        if room < 1:
            problems.append(f"term {i + 1}: no step left to stop in (at {start} of {args.steps}); use more --steps")
            break
        due = [m for m in range(start + 1, args.steps - 1) if m % args.checkpoint_interval == 0][:1]
        kind = "seam" if due and rng.random() < 0.2 else "step"
        aim: dict = {"kind": kind, "from_step": start}
        if kind == "seam":  # SIGTERM while a checkpoint write is held before its rename, then let it go on
            part = rng.choice([checkpoint.ema_path, checkpoint.train_path])
            aim["hold"] = f"replace:{part(folder, due[0]).name}"
            expected = (due[0] + 1,)  # the signal is seen at the end of the next step
            child = Child(work, "term", aim["hold"])
            reached = child.wait_for(child.marker.exists, f"the hold {aim['hold']}")
        else:
            per = max(1, room // (args.term_cycles - i + 1))
            aim["after_step"] = at = min(args.steps - 2, start + rng.randint(1, 2 * per))
            expected = (at, at + 1)
            child = Child(work, "term")
            reached = child.wait_for_step(at)
        if not reached:
            problems.append(f"term {i + 1}: the child ended (rc {child.proc.returncode}) before its moment")
            break
        child.proc.send_signal(signal.SIGTERM)
        if kind == "seam":
            child.release.touch()
        rc = child.end()
        if wrong := start_problem(child, start):
            problems.append(f"term {i + 1}: {wrong}")
        m = re.search(r"stopped at step (\d+) by a signal; resume with --resume (\S+)", child.output())
        event = {**aim, "rc": rc, "stopped_at": int(m.group(1)) if m else None, "saved_loads": False}
        if rc != TERM_EXIT or m is None:
            problems.append(f"term {i + 1}: rc {rc}, no checkpoint named on SIGTERM:\n{child.output()[-2000:]}")
        elif event["stopped_at"] not in expected or Path(m.group(2)).name != f"dit_step_{event['stopped_at']}.pt":
            problems.append(f"term {i + 1}: stopped at {event['stopped_at']} (expected {expected}), named {m.group(2)}")
        else:
            step = event["stopped_at"]
            try:
                states = [checkpoint.load(path(folder, step)) for path in (checkpoint.train_path, checkpoint.ema_path)]
                event["saved_loads"] = all(s["step"] == step for s in states) and newest_loadable(folder) == step
            except checkpoint.CheckpointError as exc:
                problems.append(f"term {i + 1}: {exc}")
            if not event["saved_loads"]:
                problems.append(f"term {i + 1}: the checkpoint of step {step} is not the newest that loads")
        event["temp_files_left"] = len(left := temps(folder))
        problems += [f"term {i + 1}: {t} left after the stop" for t in left]
        events.append(event)
    run_to_end(work, "term", problems)
    result = {
        "term_cycles": len(events),
        "term_cycles_by_kind": {k: sum(e["kind"] == k for e in events) for k in ("step", "seam")},
        "saved_on_sigterm": sum(e["saved_loads"] for e in events),
        "exit_143": sum(e["rc"] == TERM_EXIT for e in events),
        "steps_lost": sum(max(0, e.get("after_step", 0) - (e["stopped_at"] or 0)) for e in events),
        "temp_files_left": sum(e["temp_files_left"] for e in events) + len(temps(folder)),
        **compare(work / "ref", folder, args.steps),
        "events": events,
        "wall_s": round(time.perf_counter() - began, 1),
    }
    return result, problems


TABLE = """\
| crash sweep | |
|---|---|
| SIGKILLs (at startup / after a step / held mid-write) | {k[kills]} \
({k[kills_by_kind][startup]}/{k[kills_by_kind][step]}/{k[kills_by_kind][seam]}) |
|   landed mid-write (aimed + by timing) | {k[kills_mid_write]} ({k[kills_mid_write_aimed]} + {k[kills_mid_write_by_timing]}) |
|   checkpoint files checked after kills / not loading | {k[checkpoints_checked_after_kills]} / {k[checkpoints_not_loading]} |
|   temp files at restarts (distinct) / removed / left | {k[temp_files_at_restarts]} ({k[temp_files_distinct]}) \
/ {k[temp_files_removed]} / {k[temp_files_left_at_end]} |
|   restarts from scratch / steps redone | {k[restarts_from_scratch]} / {k[steps_redone]} |
|   final equal to reference (checkpoints equal) | {k[final_equal]} ({k[checkpoints_equal]}/{k[checkpoints_compared]}) |
| SIGTERM cycles (after a step / during a write) | {t[term_cycles]} \
({t[term_cycles_by_kind][step]}/{t[term_cycles_by_kind][seam]}) |
|   saved and newest / exit 143 / temp files left / steps lost | {t[saved_on_sigterm]} / {t[exit_143]} \
/ {t[temp_files_left]} / {t[steps_lost]} |
|   final equal to reference (checkpoints equal) | {t[final_equal]} ({t[checkpoints_equal]}/{t[checkpoints_compared]}) |
| problems | {problems} |
| wall time s (reference, kill, term) / processes | {r[wall_s]:.0f} ({r[reference][wall_s]:.0f}, {k[wall_s]:.0f}, \
{t[wall_s]:.0f}) / {r[processes_started]} |"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs, each followed by --resume auto (default: 20)")
    parser.add_argument("--term-cycles", type=int, default=30, help="SIGTERM stop/resume cycles (default: 30)")
    parser.add_argument("--steps", type=int, default=240, help="training steps of every run (default: 240)")
    parser.add_argument("--checkpoint-interval", type=int, default=4, help="save every N steps (default: 4)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments and of training (default: 0)")
    parser.add_argument("--work-dir", type=Path, help="keep the runs here (default: a temporary folder, deleted)")
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "crash_sweep.json", help="default: %(default)s"
    )
    args = parser.parse_args()
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="crash_sweep-") as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        prepare(work, args.steps, args.checkpoint_interval, args.seed)
        try:
            ref = Child(work, "ref")
            ref_rc = ref.end()
            startup_s = (ref.training_at or time.perf_counter()) - ref.started
            reference = {"rc": ref_rc, "wall_s": round(time.perf_counter() - ref.started, 1), "startup_s": round(startup_s, 1)}
            problems = [] if ref_rc == 0 else [f"reference: rc {ref_rc}:\n{ref.output()[-2000:]}"]
            with ThreadPoolExecutor(2) as pool:  # side by side in their own folders: each is mostly process start-up
                kill_run = pool.submit(kill_part, work, args, random.Random(f"{args.seed}-kill"), startup_s)
                term_run = pool.submit(term_part, work, args, random.Random(f"{args.seed}-term"))
            (kill, kill_problems), (term, term_problems) = kill_run.result(), term_run.result()
            problems += kill_problems + term_problems
        finally:
            Child.stop_all()
    for part, r in (("kill", kill), ("term", term)):
        if not r["final_equal"]:
            problems.append(f"{part}: the final checkpoints differ from the reference: {r['unequal']}")
    if kill["kills"] < args.kills or term["term_cycles"] < args.term_cycles:
        problems.append(f"{kill['kills']} kills and {term['term_cycles']} SIGTERM cycles, fewer than asked")
    result = {
        "command": (
            f"python benchmarks/crash_sweep.py --kills {args.kills} --term-cycles {args.term_cycles} --steps {args.steps} "
            f"--checkpoint-interval {args.checkpoint_interval} --seed {args.seed}"
        ),
        "settings": {
            "model": "tinydit-test",
            "image_size": 16,
            "images": 18,
            "batch_size": 4,
            "steps": args.steps,
            "checkpoint_interval": args.checkpoint_interval,
            "log_interval": 1,
            "seed": args.seed,
            "device": "cpu",
        },
        "reference": reference,
        "kill": kill,
        "term": term,
        "all_finals_equal": kill["final_equal"] and term["final_equal"],
        "problems": problems,
        "ok": not problems,
        "wall_s": round(time.perf_counter() - began, 1),
        "processes_started": len(Child.started_all),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpus": os.cpu_count(),
    }
    print(TABLE.format(r=result, k=kill, t=term, problems=len(problems)))
    for line in problems:
        print(f"problem: {line}", file=sys.stderr)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    raise SystemExit(0 if not problems else 1)


if __name__ == "__main__":
    main()
