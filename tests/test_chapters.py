"""Chapters, run as a student runs them (--quick), checked by their real outputs."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_chapter(name, out_dir, *extra):
    script = os.path.join(ROOT, "chapters", f"{name}.py")
    proc = subprocess.run([sys.executable, script, "--quick", "--out", str(out_dir), *extra],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, json.loads((out_dir / "results.json").read_text())


def test_chapter_01_dataset(tmp_path):
    stdout, record = run_chapter("01_dataset", tmp_path)
    assert record["results"]["matches_frozen"] is True
    stats = record["results"]["statistics"]
    assert sum(stats["train_per_class"]) == 4000 and sum(stats["test_per_class"]) == 1000
    assert abs(stats["std"] - 1) < 1e-12 and abs(stats["mean"]) < 1e-12
    assert "equals the frozen dataset (1e-12) | yes" in stdout
    for figure in ("templates", "pipeline", "examples"):
        assert (tmp_path / f"{figure}.png").stat().st_size > 10_000
