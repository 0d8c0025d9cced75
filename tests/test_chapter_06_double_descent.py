"""Chapter 06 (deep double descent): its --quick run's JSON, and its reading of the curves."""
import json
import os
import subprocess
import sys

import pytest
from test_chapters import load_chapter as load_chapter_named

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "chapters", "06_double_descent.py")


def load_chapter():
    return load_chapter_named("06_double_descent")


def run_quick(out):
    proc = subprocess.run([sys.executable, SCRIPT, "--quick", "--workers", "1", "--out", str(out)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, json.loads((out / "results.json").read_text())


def test_quick_run_has_a_row_per_width_with_real_percentages(tmp_path):
    stdout, record = run_quick(tmp_path)
    quick = record["settings"]
    curves = record["results"]["curves"]
    assert record["results"]["main_curves"] == {"mlp_clean": "mlp2_noise0", "mlp_noisy": "mlp2_noise15",
                                                "cnn_noisy": "cnn_noise15"}
    expected = {"mlp2_noise0": quick["mlp_widths"], "mlp2_noise15": quick["mlp_widths"],
                "cnn_noise15": quick["cnn_channels"]}
    assert set(curves) == set(expected) == set(record["results"]["peaks"])
    n_train = int(quick["num_samples"] * quick["train_split"])
    for name, widths in expected.items():
        assert [row["width"] for row in curves[name]] == list(widths)
        for row in curves[name]:
            for split in ("train_error", "test_error"):
                per_epoch = row["curves"][split]
                assert len(per_epoch) == quick["epochs"] and per_epoch[-1] == row[split]
                assert all(0 <= e <= 100 for e in per_epoch)
            assert row["train_error"] * n_train / 100 == pytest.approx(round(row["train_error"] * n_train / 100))
        assert min(row["test_error"] for row in curves[name]) < 85  # learned: chance is 90 %
    # Same init and batch order, different labels: the noisy curve differs from the clean one.
    assert [r["train_error"] for r in curves["mlp2_noise0"]] != [r["train_error"] for r in curves["mlp2_noise15"]]
    assert "MLP, 15 % noise: peak test error (%)" in stdout
    assert (tmp_path / "double_descent.png").stat().st_size > 10_000
    _, again = run_quick(tmp_path)  # a rerun reuses every finished model
    assert again["results"]["curves"] == curves


NOTEBOOK_NOISY_MLP = {  # width: (train error, test error), the notebook's printout
    2: (71.68, 69.59), 3: (68.65, 67.50), 4: (62.75, 62.55), 5: (57.95, 57.45), 7: (54.45, 54.80),
    9: (47.45, 48.97), 12: (46.47, 50.28), 16: (39.70, 47.24), 21: (38.08, 50.84), 27: (29.55, 50.69),
    36: (19.02, 52.80), 47: (5.47, 54.05), 61: (0.0, 54.02), 80: (0.0, 52.08), 104: (0.0, 50.23),
    135: (0.0, 48.39), 177: (0.0, 47.88), 230: (0.0, 46.54), 300: (0.0, 45.47)}
NOTEBOOK_CLEAN_MLP = {
    2: (67.15, 68.53), 3: (63.88, 66.83), 4: (54.78, 58.27), 5: (57.23, 61.37), 7: (48.03, 54.20),
    9: (41.28, 49.33), 12: (38.40, 50.08), 16: (28.80, 44.55), 21: (19.95, 42.63), 27: (12.05, 41.02),
    36: (1.35, 41.66), 47: (0.0, 41.01), 61: (0.0, 41.24), 80: (0.0, 39.59), 104: (0.0, 38.61),
    135: (0.0, 38.58), 177: (0.0, 38.09), 230: (0.0, 37.10), 300: (0.0, 37.25)}


def rows(table):
    return [{"width": w, "train_error": tr, "test_error": te} for w, (tr, te) in table.items()]


def test_peak_and_threshold_read_from_the_notebooks_curves():
    chapter = load_chapter()
    noisy, clean = chapter.find_peak(rows(NOTEBOOK_NOISY_MLP)), chapter.find_peak(rows(NOTEBOOK_CLEAN_MLP))
    assert (noisy["width"], noisy["test_error"], noisy["threshold"]) == (47, 54.05, 61)
    assert noisy["valley_width"] == 16 and noisy["height"] == pytest.approx(54.05 - 47.24)
    assert clean["threshold"] == 47 and clean["height"] < 1  # the clean curve has no peak
    for name, peak in (("mlp_noisy", noisy), ("mlp_clean", clean)):  # the table's notebook column
        assert chapter.PAPER[name]["height"] == pytest.approx(peak["height"], abs=1e-9)
        assert chapter.PAPER[name]["threshold"] == peak["threshold"]
    assert chapter.MLP_WIDTHS == tuple(NOTEBOOK_NOISY_MLP)
    assert chapter.interpolation_threshold(rows({4: (3.0, 50.0), 8: (0.5, 40.0)})) is None
