"""The multi-seed reproduction: the claims report from saved results, and resuming an interrupted run."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from mnist1d_np import report
from mnist1d_np.fileio import write_json


def claim(statement, value, compare=">", threshold=15, verdict="holds", paper=26):
    return {"statement": statement, "source": "Table 1", "quantity": "CNN minus MLP (points)", "value": value,
            "paper": paper, "reading": "", "criterion": {"compare": compare, "threshold": threshold},
            "verdict": verdict}


def saved_run(out, seed, chapter, claims, commit="a" * 40, curve=None, wall=60.0):
    write_json(os.path.join(out, f"seed-{seed}", chapter, "results.json"), {
        "chapter": chapter, "quick": False, "seed": seed, "arguments": {"ablations": False},
        "code": {"version": "0.1.0", "commit": commit, "uncommitted_changes": False},
        "total_wall_time_s": wall, "wall_time_s": wall, "date": "2026-12-02", "table": [["q", "1", "2"]],
        "claims": claims, "curve": curve, "results": {}})


def test_the_report_judges_each_claim_over_the_seeds_from_the_saved_values(tmp_path):
    out = str(tmp_path)
    curve = lambda y: {"title": "t", "xlabel": "step", "ylabel": "acc", "xscale": "linear",
                       "series": {"cnn": [[0, 1, 2], y]}}
    # The stored verdict of seed 1 is wrong on purpose: the report judges again from value and criterion.
    saved_run(out, 0, "02_classifiers", [claim("cnn beats mlp", 20.0), claim("gru beats mlp", None)],
              curve=curve([10, 50, 80]))
    saved_run(out, 1, "02_classifiers", [claim("cnn beats mlp", 10.0, verdict="holds"), claim("gru beats mlp", 16.0)],
              commit="b" * 40, curve=curve([12, 55, 85]), wall=90.0)
    write_json(os.path.join(out, "reproduce_times.json"),
               {"runs": {"seed-0/02_classifiers": {"wall_s": 61, "cpu_s": 110.0, "invocations": 1}}, "wall_s": 200.0})
    paths = report.write_claims_report(out)
    summary = json.loads(open(paths["json"]).read())
    first, second = summary["chapters"]["02_classifiers"]["claims"]
    assert first["values"] == {"0": 20.0, "1": 10.0} and first["verdicts"] == {"0": "holds", "1": "does not hold"}
    assert (first["mean"], first["sd"], first["summary"]) == (15.0, 5.0, "holds in 1 of 2 seeds")
    assert second["summary"] == "holds in 1 of 1 seed" and second["measured"] == 1
    text = open(paths["markdown"]).read()
    assert "| 02 | cnn beats mlp | Table 1 | CNN minus MLP (points) | > 15 | 26 | 20 / 10 (seeds 0, 1) | 15 ± 5 | " \
           "holds in 1 of 2 seeds |" in text
    assert "| — / 16 (seeds 0, 1) | 16 | holds in 1 of 1 seed |" in text  # one seed measured: no SD
    assert "| 02_classifiers | 0, 1 | 60 s / 90 s | 110 s / — |" in text   # wall from the results, CPU from the ledger
    assert "The reproduction's wall time, every invocation of `reproduce`: 3.3 min." in text
    assert "made by different code" in text and f"commit {'a' * 12}: 02 seed 0" in text and \
        f"commit {'b' * 12}: 02 seed 1" in text
    assert paths["figures"] == {"02_classifiers": os.path.join(out, "figures", "02_classifiers.png")}
    assert os.path.getsize(paths["figures"]["02_classifiers"]) > 10_000


def test_the_report_command_regenerates_it_without_running_anything(tmp_path):
    saved_run(str(tmp_path), 3, "09_pixel_space", [claim("knn far below", 30.0, threshold=20)])
    proc = subprocess.run([sys.executable, "-m", "mnist1d_np.report", "--claims", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "holds in 1 of 1 seed" in proc.stdout and "Every result: version 0.1.0, commit aaaaaaaaaaaa." in proc.stdout
    assert (tmp_path / "REPRODUCTION.md").read_text() in proc.stdout + "\n"


@pytest.mark.parametrize("args, message", [(["--chapters", "10"], "--chapters: 10 not among 01 02"),
                                           (["--workers", "0"], "--workers must be at least 1"),
                                           (["--seeds", "-1"], "--seeds: -1 not in [0, 2**32 - 1]")])
def test_bad_arguments_are_refused_before_anything_runs(tmp_path, args, message):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "mnist1d_np.reproduce", "--out", str(out), *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()


def test_a_quick_reproduction_does_not_overwrite_a_full_run(tmp_path):
    saved_run(str(tmp_path), 0, "01_dataset", [claim("generator", 1.0, ">=", 1)])
    before = (tmp_path / "seed-0" / "01_dataset" / "results.json").read_bytes()
    proc = subprocess.run([sys.executable, "-m", "mnist1d_np.reproduce", "--quick", "--chapters", "01",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "holds full runs (seed-0/01_dataset)" in proc.stderr
    assert (tmp_path / "seed-0" / "01_dataset" / "results.json").read_bytes() == before


def test_an_interrupted_reproduction_continues_where_it_stopped(tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "mnist1d_np.reproduce", "--quick", "--chapters", "01", "04", "--seeds", "0", "1",
           "--workers", "2", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = lambda: sorted(str(p.relative_to(out)) for p in out.glob("seed-*/*/results.json"))
    deadline = time.time() + 300
    while not results() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)  # as Ctrl-C would: the chapters get one SIGINT each, from reproduce
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, stderr[-2000:]
    assert stderr.rstrip().endswith(f"run the same command again to continue; kept: every finished chapter run "
                                    f"and what the running ones saved, in {out}")
    finished = results()
    assert 1 <= len(finished) < 4 and "Traceback" not in stderr
    stamps = {name: os.stat(out / name).st_mtime_ns for name in finished}

    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"{len(finished)} done already" in proc.stderr
    assert {name: os.stat(out / name).st_mtime_ns for name in finished} == stamps  # not run again
    assert len(results()) == 4
    ledger = json.loads((out / "reproduce_times.json").read_text())
    assert sorted(ledger["runs"]) == ["seed-0/01_dataset", "seed-0/04_meta_learning_rate",
                                      "seed-1/01_dataset", "seed-1/04_meta_learning_rate"]
    assert all(run["cpu_s"] > 0 for run in ledger["runs"].values())
    for name in finished:  # a finished run was launched once
        assert ledger["runs"][os.path.dirname(name)]["invocations"] == 1
    text = (out / "REPRODUCTION.md").read_text()
    assert "**--quick runs**" in text and "| 01 | the SciPy-free generator makes the paper's frozen dataset" in text
    assert "holds in 2 of 2 seeds" in text and "04_meta_learning_rate | 0, 1 |" in text
