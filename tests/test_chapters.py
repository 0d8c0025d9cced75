"""Chapters, run as a student runs them (--quick), checked by their real outputs."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def assert_real_png(path, min_colors=20):
    """A decodable PNG of a plausible size that shows something (not one flat colour)."""
    import matplotlib.image
    pixels = matplotlib.image.imread(str(path))
    assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 200
    colors = np.unique(pixels.reshape(-1, pixels.shape[2]), axis=0)
    assert len(colors) >= min_colors


def run_chapter(name, out_dir, *extra):
    script = os.path.join(ROOT, "chapters", f"{name}.py")
    proc = subprocess.run([sys.executable, script, "--quick", "--out", str(out_dir), *extra],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, json.loads((out_dir / "results.json").read_text())


def load_chapter(name):
    """Import chapters/NN_name.py as a module, to test its functions directly."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "chapters", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_claims(stdout, record, expected):
    """A run's claims (results.json's "claims", and the lines after the table): in order, every field,
    each value equal to `expected` {statement: the value computed by the test from the saved results,
    or None: not measured}, and each verdict what the value and the criterion say."""
    from mnist1d_np import __version__
    records = record["claims"]
    assert [c["statement"] for c in records] == list(expected)
    assert "The paper's claims, judged on this run:" in stdout
    for claim in records:
        assert set(claim) == {"statement", "source", "quantity", "value", "paper", "reading", "criterion", "verdict"}
        assert claim["source"] and claim["quantity"] and set(claim["criterion"]) == {"compare", "threshold"}
        want = expected[claim["statement"]]
        if want is None:
            assert claim["value"] is None and claim["verdict"] == "not measured"
        else:
            assert claim["value"] == pytest.approx(want, rel=1e-9, abs=1e-9)
            compare, threshold = claim["criterion"]["compare"], claim["criterion"]["threshold"]
            supported = {">": want > threshold, ">=": want >= threshold, "<": want < threshold,
                         "<=": want <= threshold}[compare]
            assert claim["verdict"] == ("holds" if supported else "does not hold")
        assert f"{claim['verdict']}" in stdout and claim["statement"] in stdout
    assert record["code"]["version"] == __version__


# ---------------------------------------------------------------- every chapter, as a lesson and a notebook

CHAPTERS = sorted(name[:-3] for name in os.listdir(os.path.join(ROOT, "chapters")) if name.endswith(".py"))


def source(name):
    return open(os.path.join(ROOT, "chapters", f"{name}.py")).read()


def try_it(name):
    """The docstring's closing *Try it* section."""
    doc = load_chapter(name).__doc__
    assert "Try it" in doc, f"{name}: no Try it section"
    return doc[doc.index("Try it"):]


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_reads_as_a_lesson_and_opens_as_a_notebook(name):
    """Cell markers for VS Code / Jupyter; settings, the paper's numbers and the table in one style."""
    text = source(name)
    assert text.count("\n# %%") >= 3
    for part in ("\nclass Settings", "\nQUICK = ", "\nPAPER = ", "experiment.start(", "run.finish(",
                 "experiment.run_chapter_main(main"):
        assert part in text, f"{name} has no {part.strip()!r}"
    assert len(try_it(name).splitlines()) >= 3


# The bookkeeping a chapter must leave to the library (issue: chapters as lessons).
LIBRARY_ONLY = {"a checkpoint": r"(save|load)_checkpoint|checkpoint_path\(|fileio\.",
                "a table": r"format_table|print_table",
                "a progress stream": r"class \w*Stream|\.isatty", "an identity": r"def \w*identity|short_hash"}


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapters_leave_checkpoints_tables_progress_and_identities_to_the_library(name):
    import re
    for what, pattern in LIBRARY_ONLY.items():
        found = re.findall(pattern, source(name))
        assert not found, f"{name} handles {what} itself: {found}"


# One vocabulary across chapters: these names are spelled differently elsewhere.
FORBIDDEN_FIELDS = {"learning_rate": "lr", "inner_lr": "lr", "total_steps": "steps", "inner_steps": "steps",
                    "num_trials": "seeds", "batch": "batch_size", "inner_batch": "batch_size", "hidden": "hidden_size",
                    "num_retrains": "rounds", "n_iter": "tsne_iterations", "k": "knn_k"}


@pytest.mark.parametrize("name", CHAPTERS)
def test_settings_speak_one_vocabulary(name):
    import dataclasses
    ch = load_chapter(name)
    fields = {f.name: f.default for f in dataclasses.fields(ch.Settings)}
    wrong = {f: FORBIDDEN_FIELDS[f] for f in fields if f in FORBIDDEN_FIELDS}
    assert not wrong, f"{name}: rename {wrong}"
    if "seeds" in fields:
        assert isinstance(fields["seeds"], int), "seeds is a count of runs, not a tuple of offsets"
    text = source(name)
    assert "DTYPE =" not in text and 'settings["' not in text and "config[\"" not in text
    if "float32" in text:
        assert fields.get("dtype") == "float32", f"{name} trains in float32: make dtype a setting"


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_setting_a_try_it_names_exists(name, monkeypatch, capsys):
    """`--set name=value` names a Settings field, `--flag` a flag of the chapter, UPPER_CASE a
    module-level name; the docstring says what --seed does."""
    import dataclasses
    import re
    ch = load_chapter(name)
    monkeypatch.setattr(sys, "argv", [name, "--help"])
    with pytest.raises(SystemExit):
        ch.main()
    flags = set(re.findall(r"(--[a-z][a-z-]*)", capsys.readouterr().out))
    section = try_it(name)
    fields = {f.name for f in dataclasses.fields(ch.Settings)}
    for setting in re.findall(r"--set (\w+)=", section):
        assert setting in fields, f"{name}: Try it sets {setting!r}, which Settings does not have"
    for flag in re.findall(r"`(--[a-z][a-z-]*)", section):
        assert flag in flags, f"{name}: Try it names {flag}, which the chapter does not take"
    for upper in re.findall(r"\b([A-Z][A-Z_]{3,})\b", section):
        assert hasattr(ch, upper), f"{name}: Try it names {upper}, which the chapter does not define"
    assert "--seed" in ch.__doc__.split("Try it")[0], f"{name}: the docstring does not say what --seed changes"


@pytest.mark.parametrize("name, change, message", [
    ("03_lottery_tickets", "rounds=1", "rounds must be >= 2, got 1"),
    ("03_lottery_tickets", "iterative_rate=1.5", "iterative_rate must be in (0, 1), got 1.5"),
    ("06_double_descent", "mlp_widths=", "mlp_widths must be integers >= 1, got ()"),
    ("08_pooling", "steps=0", "steps must be an integer >= 1, got 0"),
    ("09_pixel_space", "metric=manhattan", "metric must be euclidean or cosine, got 'manhattan'"),
    ("09_pixel_space", "trust_points=0", "trust_points must be an integer >= 1, got 0")])
def test_a_setting_out_of_range_ends_the_chapter_in_one_line_before_anything_is_written(
        name, change, message, tmp_path, monkeypatch, capsys):
    ch = load_chapter(name)
    monkeypatch.setattr(sys, "argv", [name, "--quick", "--set", change, "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as stop:
        ch.main()
    assert stop.value.code == 2 and capsys.readouterr().err.strip().splitlines()[-1].endswith(message)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", CHAPTERS)
def test_docstrings_hold_no_dated_measurements(name):
    """Measured results and run times belong to the README's notes, not to a lesson."""
    import re
    doc = load_chapter(name).__doc__
    assert not re.findall(r"20\d\d-\d\d-\d\d", doc), f"{name}: a dated measurement in the docstring"
    assert not re.findall(r"\d+(\.\d+)? (min|s) (of CPU|on)|measured on", doc), f"{name}: a run time in the docstring"


def test_a_chapter_run_in_a_notebook_kernel_uses_quick(tmp_path):
    """No command line in a notebook: the chapter runs with its --quick settings."""
    script = os.path.join(ROOT, "chapters", "01_dataset.py")
    code = ("import sys, types; sys.modules['ipykernel.kernelapp'] = types.ModuleType('ipykernel.kernelapp'); "
            f"sys.argv = ['kernel']; import os; os.chdir({str(tmp_path)!r}); "
            f"exec(compile(open({script!r}).read(), {script!r}, 'exec'), {{'__name__': '__main__'}})")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((tmp_path / "results" / "01_dataset" / "results.json").read_text())
    assert record["quick"] is True and record["settings"]["timing_repeats"] == 1
