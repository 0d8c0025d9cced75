"""The human quiz, driven without a person: piped answers, the Agg backend, Ctrl-C, scoring."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mnist1d_np import data, quiz
from mnist1d_np.fileio import write_json
from test_chapters import ROOT, assert_real_png, load_chapter

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
ENV.pop("MPLBACKEND", None)
ENV.pop("DISPLAY", None)
ENV.pop("WAYLAND_DISPLAY", None)  # headless: the quiz writes its pages as PNGs


@pytest.fixture(scope="module")
def labels():
    """The test labels of the normal and the shuffled dataset (the same examples)."""
    return data.make_dataset(quiz.dataset_args(False))["y_test"]


def line(digits):
    return "".join(map(str, digits)) + "\n"


def run_quiz(cwd, stdin, *flags):
    return subprocess.run([sys.executable, "-m", "mnist1d_np.quiz", *flags], input=stdin, cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=60)


def answers(record):
    return {k: record[k] for k in ("indices", "guesses", "truth")}


class Scripted:
    """A display that shows nothing and reads its lines from a list (a KeyboardInterrupt in
    the list is raised, as a Ctrl-C would be)."""

    def __init__(self, lines):
        self.lines, self.shown = list(lines), []

    def show(self, fig, name):
        self.shown.append(name)
        quiz.plotting.plt.close(fig)

    def read_line(self):
        if not self.lines:
            return ""
        item = self.lines.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item


def test_a_full_quiz_of_20_through_piped_input_re_asking_bad_lines(tmp_path, labels):
    right, wrong = labels[:10], (labels[10:20] + 1) % 10
    stdin = line(right) + "12345\n" + "abcdefghij\n" + " ".join(map(str, wrong)) + "\n"
    proc = run_quiz(tmp_path, stdin, "--examples", "20", "--study", "templates")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("type them again") == 2
    assert "10 of 10 right" in proc.stdout and "0 of 10 right; mistakes at 11, 12" in proc.stdout
    record = json.loads((tmp_path / "results" / "quiz" / "mnist1d-quiz1-20.json").read_text())
    assert record["indices"] == list(range(20)) and record["truth"] == labels[:20].tolist()
    assert record["guesses"] == right.tolist() + wrong.tolist() and record["complete"]
    assert record["shuffled"] is False and record["dataset_args"] == quiz.dataset_args(False)
    assert len(record["page_seconds"]) == 2
    pages = tmp_path / "results" / "quiz" / "mnist1d-quiz1-20-pages"
    assert sorted(p.name for p in pages.iterdir()) == ["page-01-truth.png", "page-01.png", "page-02-truth.png",
                                                        "page-02.png", "study.png"]
    assert_real_png(pages / "page-01.png")
    assert f"page: {os.path.join('results', 'quiz', 'mnist1d-quiz1-20-pages', 'page-01.png')}" in proc.stdout


def test_quiz_2_and_a_short_last_page(tmp_path, labels):
    display = Scripted([line(labels[100:110]), line(labels[110:113])])
    record = quiz.take(str(tmp_path / "q.json"), quiz=2, examples=13, study="none", display=display, say=print)
    assert record["indices"] == list(range(100, 113)) and quiz.score(record)["correct"] == 13
    assert display.shown == ["page-01", "page-01-truth", "page-02", "page-02-truth"]


def test_ctrl_c_then_the_same_command_gives_the_uninterrupted_quiz(tmp_path, labels):
    lines = [line(labels[:10]), line(labels[10:20] * 0), line(labels[20:25])]
    whole = quiz.take(str(tmp_path / "whole.json"), examples=25, display=Scripted(lines), say=print)
    path = str(tmp_path / "stopped.json")
    with pytest.raises(KeyboardInterrupt):
        quiz.take(path, examples=25, display=Scripted(lines[:1] + [KeyboardInterrupt()]), say=print)
    assert len(json.load(open(path))["indices"]) == 10
    resumed = quiz.take(path, examples=25, display=Scripted(lines[1:]), say=print)
    assert answers(resumed) == answers(whole) and answers(json.load(open(path))) == answers(whole)


def test_sigint_and_end_of_input_stop_in_one_line_and_the_command_continues(tmp_path, labels):
    flags = ("--examples", "30", "--study", "none", "--file", "q.json")
    proc = subprocess.Popen([sys.executable, "-m", "mnist1d_np.quiz", *flags], cwd=tmp_path, env=ENV, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdin.write(line(labels[:10]))
    proc.stdin.flush()
    deadline = time.monotonic() + 30
    while not (tmp_path / "q.json").exists():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in stderr
    assert stderr.strip().splitlines() == ["interrupted: 10 answers saved in q.json; the same command continues"]
    ended = run_quiz(tmp_path, line(labels[10:20]), *flags)  # then standard input ends
    assert ended.returncode == 1
    assert ended.stderr.strip() == "standard input ended: 20 answers saved in q.json; the same command continues"
    done = run_quiz(tmp_path, line(labels[20:30]), *flags)
    assert done.returncode == 0 and "done: 30 of 30 right" in done.stdout
    assert answers(json.loads((tmp_path / "q.json").read_text())) == {
        "indices": list(range(30)), "guesses": labels[:30].tolist(), "truth": labels[:30].tolist()}


def test_a_file_of_another_quiz_is_refused_in_one_line(tmp_path, labels):
    path = str(tmp_path / "q.json")
    quiz.take(path, examples=10, display=Scripted([line(labels[:10])]), say=print)
    before = open(path).read()
    for flags in (dict(shuffled=True), dict(quiz=2), dict(examples=20), dict(args={"seed": 43})):
        with pytest.raises(quiz.QuizError, match="holds another quiz"):
            quiz.take(path, **{"examples": 10, **flags}, display=Scripted([]), say=print)
    proc = run_quiz(tmp_path, "", "--file", "q.json", "--examples", "10", "--shuffled")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "shuffled False (this quiz: True)" in proc.stderr and open(path).read() == before
    bad = run_quiz(tmp_path, "", "--examples", "101")
    assert bad.returncode == 2 and "--examples must be in [1, 100], got 101" in bad.stderr


def test_the_shuffled_quiz_shows_chapter_02s_shuffled_dataset(labels):
    ch = load_chapter("02_classifiers")
    assert quiz.dataset_args(True) == data.get_dataset_args(as_dict=True, **ch.DATASETS["shuffled"])
    shown = data.make_dataset(quiz.dataset_args(True))
    trained_on = ch.make_data(tuple(sorted(ch.DATASETS["shuffled"].items())))
    assert np.array_equal(shown["x_test"], trained_on["x_test"]) and np.array_equal(shown["y_test"], labels)
    perm = quiz.position_permutation(quiz.dataset_args(True))
    normal = data.make_dataset(quiz.dataset_args(False))["x_test"]
    assert not np.array_equal(perm, np.arange(40)) and np.allclose(shown["x_test"], normal[:, perm], atol=1e-12)


# ---------------------------------------------------------------- scoring

def test_the_notebooks_plus_minus_is_the_population_sd_over_root_n():
    mean, plus_minus = quiz.notebook_plus_minus(quiz.NOTEBOOK_SCORES)  # 96, 96, 96, 97, 94
    assert mean == pytest.approx(95.8) and round(plus_minus, 2) == 0.44
    assert plus_minus == pytest.approx(np.sqrt(4.8 / 5) / np.sqrt(5))  # squared deviations sum to 4.8
    assert round(np.std(quiz.NOTEBOOK_SCORES, ddof=1) / np.sqrt(5), 2) == 0.49  # not the sample SD
    assert quiz.notebook_plus_minus([93.0]) == (93.0, None)


def test_wilson_interval_against_hand_computed_values():
    # 96 of 100, z = 1.95996: (0.96 + z²/200 ± z √(0.96 · 0.04 / 100 + z²/40000)) / (1 + z²/100)
    # = (0.979207 ± 0.042942) / 1.038415, worked by hand
    low, high = quiz.wilson(96, 100)
    assert (low, high) == (pytest.approx(0.90163, abs=1e-5), pytest.approx(0.98434, abs=1e-5))
    assert quiz.wilson(0, 10)[0] == pytest.approx(0.0, abs=1e-12)
    assert quiz.wilson(0, 10)[1] == pytest.approx(0.27753, abs=1e-5)


def quiz_record(q, guesses, truth, shuffled=False):
    n = len(truth)
    return {**quiz.identity(q, n, shuffled, quiz.dataset_args(shuffled)), "indices": list(range(100 * (q - 1),
            100 * (q - 1) + n)), "guesses": guesses, "truth": truth, "page_seconds": [1.0], "complete": True}


def test_scoring_files_against_hand_computed_numbers(tmp_path):
    files = []
    for q, guesses, truth, shuffled in ((1, [1, 2, 3, 4], [1, 2, 3, 5], False), (2, [0, 0, 7, 7], [0, 0, 7, 7], False),
                                        (1, [3, 3, 3, 3], [3, 1, 2, 3], True)):
        files.append(str(tmp_path / f"{q}{shuffled}.json"))
        write_json(files[-1], quiz_record(q, guesses, truth, shuffled))
    fake_cnn = lambda args: (lambda indices: [0] * len(indices))  # noqa: E731  (always guesses 0)
    said = []
    summary = quiz.score_files(files, str(tmp_path / "score"), fake_cnn, said.append)
    normal, shuffled = summary["mnist1d"], summary["shuffled"]
    assert (normal["correct"], normal["answered"], normal["accuracy"]) == (7, 8, 87.5)
    assert normal["mean"] == 87.5 and normal["plus_minus"] == pytest.approx(12.5 / np.sqrt(2))  # scores 75, 100
    assert normal["wilson_95"] == pytest.approx([100 * v for v in quiz.wilson(7, 8)])
    assert shuffled["plus_minus"] is None and shuffled["accuracy"] == 50.0
    assert normal["errors_by_class"]["person"].tolist() == [0, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    assert normal["errors_by_class"]["cnn"].tolist() == [0, 1, 1, 1, 0, 1, 0, 2, 0, 0]
    assert normal["cnn_accuracy"] == 25.0
    assert any("mnist1d: 7 of 8 = 87.5 %" in s for s in said)
    assert_real_png(tmp_path / "score" / "errors_by_class.png")
    assert json.loads((tmp_path / "score" / "scores.json").read_text())["summary"]["shuffled"]["correct"] == 2
    proc = subprocess.run([sys.executable, "-m", "mnist1d_np.quiz", "--score", *files, "--cnn-steps", "0",
                           "--out", str(tmp_path / "cli")], env=ENV, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "quizzes 87.5 ± 8.8 (2 quizzes, 8 examples)" in proc.stdout


def test_plotting_chooses_agg_only_without_a_display():
    code = "import mnist1d_np.plotting as p, matplotlib; print(p.headless(), matplotlib.get_backend().lower())"
    headless = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=60)
    assert headless.stdout.split() == ["True", "agg"]
    chosen = subprocess.run([sys.executable, "-c", code], env={**ENV, "MPLBACKEND": "svg"}, capture_output=True,
                            text=True, timeout=60)
    assert chosen.stdout.split() == ["False", "svg"]
    display = subprocess.run([sys.executable, "-c", "import mnist1d_np.plotting as p; print(p.headless())"],
                             env={**ENV, "DISPLAY": ":99"}, capture_output=True, text=True, timeout=60)
    assert display.stdout.split() == ["False"]


def test_in_a_notebook_pages_are_drawn_inline_and_answers_come_from_input(monkeypatch):
    import types
    fig, _ = quiz.plotting.figure()  # before IPython is faked: matplotlib looks for it
    shown = []
    ipython = types.ModuleType("IPython")
    ipython.display = types.ModuleType("IPython.display")
    ipython.display.display = shown.append
    monkeypatch.setitem(sys.modules, "ipykernel.kernelapp", types.ModuleType("ipykernel.kernelapp"))
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", ipython.display)
    display = quiz.default_display("q.json", print)
    assert isinstance(display, quiz.Notebook)
    display.show(fig, "page-01")
    assert shown == [fig]
    monkeypatch.setattr("builtins.input", lambda prompt: "1234567890")
    assert display.read_line() == "1234567890\n"


def test_a_window_takes_keys_or_terminal_lines(monkeypatch):
    window = quiz.Window(print)
    key = lambda k: window._key(type("Event", (), {"key": k})())  # noqa: E731
    for k in ["1", "2", "x", "3", "backspace", "4", "enter"]:
        key(k)
    assert window.read_line() == "124\n"  # x ignored, 3 erased
    read, write = os.pipe()
    os.write(write, b"5555555555\n")
    monkeypatch.setattr(sys, "stdin", os.fdopen(read))
    monkeypatch.setattr(quiz.plotting.plt, "pause", lambda seconds: None)
    assert window.read_line() == "5555555555\n"
    os.close(write)
    plt = quiz.plotting.plt
    monkeypatch.setattr(plt, "show", lambda block: None)
    figures = {name: plt.figure() for name in ("study", "page-01", "page-01-truth", "page-02")}
    for name, fig in figures.items():
        window.show(fig, name)
    open_now = {name for name, fig in figures.items() if plt.fignum_exists(fig.number)}
    assert open_now == {"study", "page-01-truth", "page-02"}  # the last truth stays next to the new page
    plt.close("all")
