"""benchmarks/crash_sweep.py runs as documented, at tiny counts, and its JSON says what the docstring claims."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_crash_sweep_kills_stops_resumes_and_ends_bitwise(tmp_path):
    out = tmp_path / "sweep.json"
    args = ["--kills", "2", "--term-cycles", "2", "--steps", "24", "--seed", "3", "--json", str(out)]
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "crash_sweep.py"), *args], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| crash sweep |" in done.stdout
    text = out.read_text()
    assert str(tmp_path) not in text and "/tmp" not in text  # relative names only
    r = json.loads(text)
    assert r["ok"] and r["problems"] == [] and r["all_finals_equal"]
    kill, term = r["kill"], r["term"]
    assert kill["kills"] == 2 and kill["checkpoints_not_loading"] == 0 and kill["temp_files_left_at_end"] == 0
    assert kill["kills_mid_write"] == sum(e["mid_write"] for e in kill["events"])
    assert kill["temp_files_removed"] == kill["temp_files_distinct"]
    assert term["term_cycles"] == 2 and term["saved_on_sigterm"] == term["exit_143"] == 2 and term["temp_files_left"] == 0
    for part in (kill, term):
        assert part["final_equal"] and part["checkpoints_equal"] == part["checkpoints_compared"] > 0
        assert part["final_files"] == ["dit_step_24.pt", "dit_step_24_ema.pt"]
    assert r["reference"]["rc"] == 0 and r["command"].startswith("python benchmarks/crash_sweep.py --kills 2 ")
