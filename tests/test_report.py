"""The README's results table is generated from the chapters' JSON."""
import json

import pytest

from mnist1d_np import report


def write_record(folder, chapter, quick, rows, seconds=75.0):
    path = folder / chapter / "results.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"chapter": chapter, "quick": quick, "wall_time_s": seconds, "date": "2026-11-25",
                                "machine": {"platform": "Linux-6.1-x86_64", "processor": "x86_64",
                                            "cpu_count": 2}, "table": rows, "results": {}}))


def test_rows_come_from_the_json_of_full_runs(tmp_path, capsys):
    write_record(tmp_path, "04_meta_learning_rate", False, [["final lr, start 1.5", "0.62", "0.6240"]], 13.2)
    write_record(tmp_path, "05_meta_activation", True, [["learned test acc. (%)", "68.4", "44.0 ± 0.6"]])
    (tmp_path / "06_double_descent").mkdir()
    (tmp_path / "06_double_descent" / "results.json").write_text("{")   # damaged: skipped, with a warning
    lines = report.report(str(tmp_path)).splitlines()
    assert lines[2:] == ["| 04: final lr, start 1.5 | 0.62 | 0.6240 | 13 s | 2026-11-25 | x86_64, 2 CPUs, Linux |"]
    assert "skipping" in capsys.readouterr().err
    with_quick = report.report(str(tmp_path), include_quick=True).splitlines()
    assert with_quick[3] == ("| 05: learned test acc. (%) (--quick) | 68.4 | 44.0 ± 0.6 | 75 s | 2026-11-25 "
                             "| x86_64, 2 CPUs, Linux |")


def test_the_runtime_counts_every_invocation_of_the_run(tmp_path):
    write_record(tmp_path, "03_lottery_tickets", False, [["acc", "75.6", "72.2"]], seconds=2.0)
    path = tmp_path / "03_lottery_tickets" / "results.json"
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "total_wall_time_s": 1290.0}))  # a rerun of a 21.5-min run
    assert "| 21.5 min |" in report.report(str(tmp_path)).splitlines()[2]


def test_a_missing_folder_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        report.main([str(tmp_path / "nowhere")])
    assert "is not a folder" in capsys.readouterr().err
