"""Chapter 09 run as a student runs it (--quick), checked by its outputs, then rerun from its caches."""
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_quick(out_dir):
    script = os.path.join(ROOT, "chapters", "09_pixel_space.py")
    proc = subprocess.run([sys.executable, script, "--quick", "--out", str(out_dir)],
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, json.loads((out_dir / "results.json").read_text())


def test_chapter_09_quick_and_resume(tmp_path):
    proc, record = run_quick(tmp_path)
    results = record["results"]
    pixels, cnn = results["pixels"], results["cnn"]
    assert record["quick"] and results["n_points"] == 1000
    # 800 training signals: kNN and the probe well above chance (10 %), below the 4000-example figures + margin.
    assert 20 < pixels["knn_acc"] < 70 and 20 < pixels["probe_acc"] < 45
    assert pixels["probe_converged"] and cnn["probe_converged"]
    # What learning does: the CNN's hidden layer is far more linearly readable than the pixels,
    # and its t-SNE keeps neighbourhoods at least as well.
    assert cnn["probe_acc"] > pixels["probe_acc"] + 20 and cnn["final_test_acc"] > 60
    for side in (pixels, cnn):
        assert 0 < side["kl"] < 4 and 0.85 < side["trustworthiness"] <= 1
    assert "59.6" in proc.stdout and "32.8" in proc.stdout and "not shown" in proc.stdout
    assert (tmp_path / "tsne.png").stat().st_size > 20_000

    again, record_again = run_quick(tmp_path)  # the CNN checkpoint and both embeddings are reused
    assert "t-SNE (" not in again.stderr and "CNN training 1/" not in again.stderr
    for side in ("pixels", "cnn"):
        for key, value in results[side].items():
            np.testing.assert_equal(record_again["results"][side][key], value)
