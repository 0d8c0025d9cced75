"""Be the human baseline: the paper's human quiz, on MNIST-1D and on its shuffled twin.

Table 1's last column is a person: 96 ± 1 on MNIST-1D and "~30 ± 10" with
the 40 positions shuffled. The first number comes from the original
notebook (building-mnist1d.ipynb): one author studied the training set,
then took five quizzes of 100 test examples, shown 10 at a time; after each
10 they typed their guesses, saw the truth and went on. The five scores
were 96, 96, 96, 97 and 94 (NOTEBOOK_SCORES): 95.8 ± 0.44, where ± is the
population SD of the five scores (ddof=0: 0.98) divided by √5. (The sample
SD, ddof=1, would give ± 0.49.) The shuffled number has no quiz behind it;
`--shuffled` measures it.

Take a quiz (answers on standard input, one line of digits per page):

    python -m mnist1d_np.quiz                        # quiz 1: 100 examples, after a page of training examples
    python -m mnist1d_np.quiz --quiz 2 --study templates
    python -m mnist1d_np.quiz --shuffled             # the same examples, positions shuffled
    python -m mnist1d_np.quiz --score results/quiz/*.json

Which examples: quiz K (1 to 10) shows the test examples 100(K-1), ...,
100(K-1) + N - 1 (N = --examples, at most 100) of the paper's dataset
(get_dataset_args() defaults), in the test set's own order, which the
generator has already shuffled. So quiz 2 shows new examples, and everyone's
quiz 1 shows the same ones. --shuffled shows the same examples with their
positions permuted by chapter 02's permutation (data.shuffled_positions()).

Where it runs: with a display, a matplotlib window (type the answers in the
terminal, or as keys in the window, then Enter); in Jupyter, inline figures
and input(); with no display, each page is written to a PNG whose path is
printed. Standard input carries nothing but answers (10 digits a page,
fewer on a shorter last page; spaces and commas are ignored; a bad line is
asked again), so a quiz can be scripted.

Saving: after every page, atomically, to --file (default
results/quiz/<mnist1d|shuffled>-quiz<K>.json, with -<N> added when N is not
100): the indices, guesses, truth, seconds per page, the dataset's
arguments and the mode. Ctrl-C or the end of standard input stops with one
line; the same command continues, and ends with the same indices, guesses
and truth as a quiz taken in one go. A file of another quiz is refused.

Scoring (--score FILE...): accuracy per quiz and overall, the notebook's ±
(from two quizzes on), a 95 % Wilson interval, and the errors by class next
to those of an early-stopped CNN (the paper's loop, 6000 steps: some seconds) on the
same examples.
"""
import argparse
import functools
import glob
import json
import math
import os
import select
import sys
import time

import numpy as np

from . import data, kernel, nn, plotting, train
from .fileio import atomic_write, canonical_identity, read_json, write_json

NOTEBOOK_SCORES = (96, 96, 96, 97, 94)  # building-mnist1d.ipynb: its five quizzes of 100 test examples (%)
QUIZ_SIZE = 100   # examples per quiz: quiz K starts at test example QUIZ_SIZE * (K - 1)
PAGE_SIZE = 10    # examples shown at a time
SEQUENCE = "test examples in the test set's order; quiz K starts at 100 (K - 1)"
FORMAT = "mnist1d_np quiz, version 1"
FOLDER = os.path.join("results", "quiz")
STUDY = ("examples", "templates", "none")
WILSON_Z = 1.959963984540054  # the normal distribution's 97.5 % quantile: a 95 % interval
CNN_SEED = 0  # the scoring CNN's initialisation: nn.make_model("cnn", default_rng(CNN_SEED))


class QuizError(ValueError):
    """A quiz that cannot go on (a file of another quiz, a bad file): one line for the student."""


class EndOfAnswers(Exception):
    """Standard input ended before the quiz did."""


# ---------------------------------------------------------------- which examples

def dataset_args(shuffled, **overrides):
    """The quiz's dataset arguments as a dict: the paper's, with chapter 02's shuffled
    positions if `shuffled`, and `overrides`."""
    extra = data.shuffled_positions() if shuffled else {}
    return data.get_dataset_args(as_dict=True, **{**extra, **overrides})


@functools.lru_cache(maxsize=4)
def make_dataset(args_json):
    """data.make_dataset of the arguments in args_json, made once per process."""
    return data.make_dataset(json.loads(args_json))


def quiz_indices(quiz, examples, n_test):
    """The test indices of quiz `quiz` (1, 2, ...) of `examples` examples: (examples,) int list."""
    start = QUIZ_SIZE * (quiz - 1)
    if not 1 <= examples <= QUIZ_SIZE:
        raise QuizError(f"--examples must be in [1, {QUIZ_SIZE}], got {examples}")
    if quiz < 1 or start + examples > n_test:
        raise QuizError(f"--quiz must be in [1, {n_test // QUIZ_SIZE}] ({n_test} test examples), got {quiz}")
    return list(range(start, start + examples))


def identity(quiz, examples, shuffled, args):
    """What a quiz file must match to be continued: the quiz, its length, its mode and dataset."""
    return canonical_identity({"format": FORMAT, "quiz": quiz, "examples": examples, "shuffled": bool(shuffled),
                               "dataset_args": args, "sequence": SEQUENCE})


def default_file(quiz, examples, shuffled):
    """results/quiz/<mnist1d|shuffled>-quiz<K>[-<N>].json."""
    suffix = "" if examples == QUIZ_SIZE else f"-{examples}"
    return os.path.join(FOLDER, f"{'shuffled' if shuffled else 'mnist1d'}-quiz{quiz}{suffix}.json")


# ---------------------------------------------------------------- the quiz file

def read_quiz_file(path):
    """A quiz file's record; QuizError in one line if it is not one."""
    try:
        record = read_json(path)
    except (OSError, ValueError) as err:
        raise QuizError(f"{path}: not a readable quiz file ({err.__class__.__name__}: {err})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise QuizError(f"{path}: not a quiz file (no format {FORMAT!r})")
    return record


def start_or_resume(path, ident, indices, labels):
    """The record to go on with: the one in `path` if it is this quiz's, else a new one.
    indices: the quiz's test indices; labels: the test labels, (n_test,) (a saved file is
    checked against both)."""
    if not os.path.exists(path):
        return {**ident, "indices": [], "guesses": [], "truth": [], "page_seconds": [], "complete": False}
    record = read_quiz_file(path)
    saved = {key: record.get(key) for key in ident}
    if saved != ident:
        differs = ", ".join(f"{k} {saved[k]!r} (this quiz: {ident[k]!r})" for k in ident if saved[k] != ident[k])
        raise QuizError(f"{path} holds another quiz: {differs}; give another --file, or the flags it was taken with")
    answered = len(record["indices"])
    if record["indices"] != indices[:answered] or record["truth"] != labels[indices[:answered]].tolist() \
            or len(record["guesses"]) != answered:
        raise QuizError(f"{path}: its answers do not match its quiz's examples; refusing to continue it")
    return record


# ---------------------------------------------------------------- answers

def parse_answer(line, count):
    """The digits of one answer line (spaces and commas ignored), or None unless there are `count`."""
    text = line.replace(",", "").replace(" ", "").strip()
    if len(text) != count or not all(c in "0123456789" for c in text):
        return None
    return [int(c) for c in text]


def read_answer(count, read_line, say):
    """One page's `count` guesses; a bad line is asked again. EndOfAnswers when input ends."""
    while True:
        line = read_line()
        if not line:
            raise EndOfAnswers
        guesses = parse_answer(line, count)
        if guesses is not None:
            return guesses
        say(f"need exactly {count} digits 0-9 (one per example, in order), got {line.strip()!r}: type them again")


# ---------------------------------------------------------------- figures

def draw_page(x, t, first, guesses=None, truth=None):
    """A page of signals x: (n, 40) against t: (40,), numbered from `first`; with guesses
    and truth, each panel's title gives both, and the mistakes are red."""
    fig, axes = plotting.figure(2, PAGE_SIZE // 2, width=1.5, height=2.4, squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= len(x):
            ax.axis("off")
            continue
        wrong = truth is not None and guesses[i] != truth[i]
        plotting.plot_signal(ax, x[i], t, color="C3" if wrong else "k", lw=1.2)
        title = f"{first + i}"
        if truth is not None:
            title += f": {truth[i]}" + (f" (you: {guesses[i]})" if wrong else " ✓")
        ax.set_title(title, color="C3" if wrong else "k", fontsize=10)
    return fig


def draw_study(dataset, study, shuffled):
    """The study page: labelled training examples, or the ten templates (on the quiz's 40
    positions, permuted as the quiz's examples are when shuffled)."""
    if study == "examples":
        fig = plotting.plot_examples(dataset, per_class=6)
        fig.suptitle("study: training examples, one row per digit" + (" (positions shuffled)" if shuffled else ""))
        return fig
    templates = dataset["templates"]
    x = data.resample(templates["x"], len(dataset["t"]))
    if shuffled:
        x = x[:, position_permutation(dataset["args"])]
    fig, axes = plotting.figure(1, 10, width=1.0, height=2.2, squeeze=False)
    for label, ax in enumerate(axes[0]):
        plotting.plot_signal(ax, x[label], color=f"C{label}", lw=1.5)
        ax.set_title(str(label))
    fig.suptitle("study: the ten templates" + (" (positions shuffled)" if shuffled else ""))
    return fig


def position_permutation(args):
    """The permutation of the positions that shuffle_seq applies (data.draw_randomness's seq_perm)."""
    args = data.get_dataset_args(**args)
    return data.draw_randomness(args, args.num_samples // 10 * 10)["seq_perm"]


# ---------------------------------------------------------------- where the pages are shown

class Files:
    """No display: every figure is written to folder/name.png, and its path printed."""

    def __init__(self, folder, say):
        self.folder, self.say = folder, say

    def show(self, fig, name):
        path = os.path.join(self.folder, f"{name}.png")
        atomic_write(path, lambda f: plotting.save_figure(fig, f, format="png"))
        self.say(f"{'study page' if name == 'study' else 'page'}: {path}")

    def read_line(self):
        return sys.stdin.readline()


class Notebook:
    """Jupyter: the figure inline, the answers through input()."""

    def show(self, fig, name):
        from IPython.display import display
        display(fig)
        plotting.plt.close(fig)

    def read_line(self):
        try:
            return input("> ") + "\n"
        except EOFError:
            return ""


class Window:
    """Matplotlib windows: the answers typed in the terminal, or as keys in the page's window
    (digits, Backspace, Enter). The study figure stays open; a new page replaces the last
    page, and the truth of a page replaces the last truth, so both stay in view."""

    def __init__(self, say):
        self.say, self.page, self.truth, self.typed, self.sent = say, None, None, [], None

    def show(self, fig, name):
        slot = "truth" if name.endswith("-truth") else "page" if name != "study" else None
        if slot is not None:
            if getattr(self, slot) is not None:
                plotting.plt.close(getattr(self, slot))
            setattr(self, slot, fig)
        fig.canvas.mpl_connect("key_press_event", self._key)
        plotting.plt.show(block=False)
        plotting.plt.pause(0.05)

    def _key(self, event):
        if event.key in tuple("0123456789"):
            self.typed.append(event.key)
        elif event.key == "backspace" and self.typed:
            self.typed.pop()
        elif event.key == "enter":
            self.sent = "".join(self.typed) + "\n"
            self.typed = []
        if self.page is not None:
            self.page.suptitle("typed: " + "".join(self.typed))
            self.page.canvas.draw_idle()

    def read_line(self):
        """The next line from the terminal or the window, whichever comes first; the window
        stays responsive meanwhile (select on the terminal, then let matplotlib draw)."""
        while True:
            if self.sent is not None:
                line, self.sent = self.sent, None
                return line
            if select.select([sys.stdin], [], [], 0.05)[0]:
                return sys.stdin.readline()
            plotting.plt.pause(0.05)


def default_display(path, say):
    """Files in `path`'s folder when headless, a notebook's inline figures, or a window."""
    if kernel.in_kernel():
        return Notebook()
    if plotting.matplotlib.get_backend().lower() in ("agg", "pdf", "ps", "svg", "cairo", "template"):
        return Files(os.path.splitext(path)[0] + "-pages", say)
    return Window(say)


# ---------------------------------------------------------------- taking a quiz

def take(path, quiz=1, examples=QUIZ_SIZE, shuffled=False, study="examples", display=None, say=print,
         args=None, clock=time.monotonic):
    """Take (or continue) a quiz, saving to `path` after every page; returns the record.

    display: Files, Notebook or Window (default: as the machine allows); args: dataset
    argument overrides (tests). EndOfAnswers or KeyboardInterrupt stop it; what is saved
    stays valid, and the same call continues.
    """
    if study not in STUDY:
        raise QuizError(f"--study must be one of {', '.join(STUDY)}, got {study!r}")
    args = dataset_args(shuffled, **(args or {}))
    dataset = {**make_dataset(json.dumps(args, sort_keys=True)), "args": args}
    indices = quiz_indices(quiz, examples, len(dataset["y_test"]))
    record = start_or_resume(path, identity(quiz, examples, shuffled, args), indices, dataset["y_test"])
    display = display or default_display(path, say)
    if record["complete"]:
        say(f"{path}: this quiz is complete ({score(record)['correct']} of {examples} right)")
        return record
    if study != "none":
        display.show(draw_study(dataset, study, shuffled), "study")
    for start in range(len(record["indices"]), examples, PAGE_SIZE):
        ask_page(record, indices[start:start + PAGE_SIZE], dataset, display, say, clock)
        write_json(path, record)
    say(f"done: {score(record)['correct']} of {examples} right; saved {path}")
    return record


def ask_page(record, rows, dataset, display, say, clock):
    """Show one page, read its guesses, show the truth; add them to the record."""
    first = len(record["indices"]) + 1
    page = (first - 1) // PAGE_SIZE + 1
    x, truth = dataset["x_test"][rows], dataset["y_test"][rows].tolist()
    began = clock()
    display.show(draw_page(x, dataset["t"], first), f"page-{page:02d}")
    say(f"page {page}: type the {len(rows)} digits of examples {first}-{first + len(rows) - 1}, then Enter")
    guesses = read_answer(len(rows), display.read_line, say)
    seconds = clock() - began
    wrong = [first + i for i in range(len(rows)) if guesses[i] != truth[i]]
    display.show(draw_page(x, dataset["t"], first, guesses, truth), f"page-{page:02d}-truth")
    say(f"truth: {' '.join(map(str, truth))}  |  {len(rows) - len(wrong)} of {len(rows)} right"
        + (f"; mistakes at {', '.join(map(str, wrong))}" if wrong else ""))
    record["indices"] += list(rows)
    record["guesses"] += guesses
    record["truth"] += truth
    record["page_seconds"].append(round(seconds, 3))
    record["complete"] = len(record["indices"]) == record["examples"]


# ---------------------------------------------------------------- scoring

def score(record):
    """{'correct', 'answered', 'accuracy' (%, of the answered examples), 'complete'} of one quiz."""
    correct = int(sum(g == t for g, t in zip(record["guesses"], record["truth"])))
    answered = len(record["truth"])
    return {"correct": correct, "answered": answered, "accuracy": 100.0 * correct / answered if answered else None,
            "complete": bool(record["complete"])}


def notebook_plus_minus(scores):
    """(mean, ±) of quiz scores as the notebook gives them: ± is the population SD
    (ddof=0) / √n, None below two quizzes. NOTEBOOK_SCORES give (95.8, 0.438)."""
    scores = np.asarray(scores, dtype=float)
    plus_minus = float(scores.std() / math.sqrt(len(scores))) if len(scores) >= 2 else None
    return float(scores.mean()), plus_minus


def wilson(correct, n, z=WILSON_Z):
    """The Wilson score interval (low, high) of a proportion correct / n, as fractions."""
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def summarise(records):
    """{'mnist1d' | 'shuffled': {'quizzes': [score per quiz], 'correct', 'answered', 'accuracy',
    'mean', 'plus_minus', 'wilson_95'}} for the modes present (accuracy: pooled, %)."""
    summary = {}
    for mode in ("mnist1d", "shuffled"):
        scores = [score(r) for r in records if r["shuffled"] == (mode == "shuffled") and r["truth"]]
        if not scores:
            continue
        correct, answered = sum(s["correct"] for s in scores), sum(s["answered"] for s in scores)
        mean, plus_minus = notebook_plus_minus([s["accuracy"] for s in scores])
        summary[mode] = {"quizzes": scores, "correct": correct, "answered": answered,
                         "accuracy": 100.0 * correct / answered, "mean": mean, "plus_minus": plus_minus,
                         "wilson_95": [100 * v for v in wilson(correct, answered)]}
    return summary


def describe(entry):
    """'95.8 ± 0.4 (5 quizzes, 500 examples)', or '93.0 (1 quiz, 100 examples)'."""
    n = len(entry["quizzes"])
    value = f"{entry['mean']:.1f}" + (f" ± {entry['plus_minus']:.1f}" if entry["plus_minus"] is not None else "")
    return f"{value} ({n} quiz{'zes' if n > 1 else ''}, {entry['answered']} examples)"


def read_results(paths, expected_args=None):
    """The records of quiz files; with expected_args {mode: dataset args}, a quiz taken
    on another dataset is refused (QuizError)."""
    records = []
    for path in paths:
        record = read_quiz_file(path)
        mode = "shuffled" if record["shuffled"] else "mnist1d"
        if expected_args is not None and canonical_identity(record["dataset_args"]) != \
                canonical_identity(expected_args[mode]):
            raise QuizError(f"{path}: a quiz on another dataset than this {mode} one; leave it out")
        records.append(record)
    return records


def errors_by_class(truth, guesses):
    """(10,) int: how many examples of each true class were guessed wrong."""
    truth, guesses = np.asarray(truth), np.asarray(guesses)
    return np.bincount(truth[truth != guesses], minlength=10)


def train_cnn(args, steps=train.TrainConfig.steps):
    """predict(indices) -> labels of test examples, by the paper's CNN trained with the
    paper's loop on the dataset of `args` and early-stopped (the parameters of its best
    test evaluation, as Table 1 reports), in float32 like chapter 02."""
    dataset = data.make_dataset(args)
    model = nn.make_model("cnn", np.random.default_rng(CNN_SEED), dtype=np.float32)
    config = train.TrainConfig(steps=steps)
    curves = train.train(model, dataset, config, label=f"CNN for scoring, {steps} steps",
                         keep_parameters_at=train.paper_eval_steps(config.steps, config.eval_every))
    best = train.early_stopped(curves)
    model.load_parameters(curves["parameters_at"][best["step"]])
    from .tensor import Tensor, no_grad

    def predict(indices):
        with no_grad():
            return model(Tensor(dataset["x_test"][indices].astype(np.float32))).data.argmax(axis=1).tolist()
    predict.early_stopped = best
    return predict


def plot_errors(groups):
    """Bars of errors by true class, the person's next to the CNN's, one panel per mode.
    groups: {mode: {'person': (10,), 'cnn': (10,) or None, 'n': examples}}."""
    from matplotlib.ticker import MaxNLocator
    fig, axes = plotting.figure(1, len(groups), width=4.2, height=3.0, squeeze=False)
    for ax, (mode, g) in zip(axes[0], groups.items()):
        classes = np.arange(10)
        ax.bar(classes - 0.2, g["person"], width=0.4, color="C0", label=f"person ({sum(g['person'])})")
        if g["cnn"] is not None:
            ax.bar(classes + 0.2, g["cnn"], width=0.4, color="C1", label=f"CNN, early-stopped ({sum(g['cnn'])})")
        ax.set(xticks=classes, xlabel="true class", ylabel="errors", title=f"{mode}: {g['n']} test examples")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7)
    return fig


def score_files(paths, out, cnn=train_cnn, say=print):
    """Print and save (out/scores.json, out/errors_by_class.png) the scores of quiz files.
    cnn(args) -> predict(indices), or None for no CNN."""
    records = read_results(paths)
    for path, record in zip(paths, records):
        s = score(record)
        shown = "—" if s["accuracy"] is None else f"{s['accuracy']:.1f} %"
        say(f"{path}: {'shuffled' if record['shuffled'] else 'mnist1d'} quiz {record['quiz']}, "
            f"{s['correct']} of {s['answered']} right: {shown}" + ("" if s["complete"] else " (not finished)"))
    summary = summarise(records)
    groups = {}
    for mode, entry in summary.items():
        low, high = entry["wilson_95"]
        say(f"{mode}: {entry['correct']} of {entry['answered']} = {entry['accuracy']:.1f} %; "
            f"quizzes {describe(entry)}; 95 % Wilson interval {low:.1f}-{high:.1f} %")
        chosen = [r for r in records if r["shuffled"] == (mode == "shuffled")]
        truth = sum((r["truth"] for r in chosen), [])
        person = errors_by_class(truth, sum((r["guesses"] for r in chosen), []))
        cnn_errors = None
        if cnn is not None:
            predict = cnn(chosen[0]["dataset_args"])
            cnn_guesses = predict(sum((r["indices"] for r in chosen), []))
            cnn_errors = errors_by_class(truth, cnn_guesses)
            entry["cnn_accuracy"] = 100.0 * (1 - cnn_errors.sum() / len(truth))
            entry["cnn_early_stopped"] = getattr(predict, "early_stopped", None)
            stopped = entry["cnn_early_stopped"]
            say(f"{mode}: the early-stopped CNN on the same examples: {entry['cnn_accuracy']:.1f} %"
                + (f" (stopped at step {stopped['step']}, {100 * stopped['test_acc']:.1f} % on the whole test set)"
                   if stopped else ""))
        entry["errors_by_class"] = {"person": person, "cnn": cnn_errors}
        groups[mode] = {"person": person.tolist(), "cnn": None if cnn_errors is None else cnn_errors.tolist(),
                        "n": len(truth)}
    os.makedirs(out, exist_ok=True)
    write_json(os.path.join(out, "scores.json"), {"files": list(paths), "summary": summary})
    if groups:
        path = os.path.join(out, "errors_by_class.png")
        atomic_write(path, lambda f: plotting.save_figure(plot_errors(groups), f, format="png"))
        say(f"saved {path}")
    return summary


# ---------------------------------------------------------------- command line

def _in_range(name, low, high):
    def check(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be an integer in [{low}, {high}], got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{name} must be in [{low}, {high}], got {value}")
        return value
    return check


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m mnist1d_np.quiz", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--study", choices=STUDY, default="examples",
                        help="shown before the first question, and left in view: labelled training examples, "
                             "the ten templates, or nothing")
    parser.add_argument("--examples", type=_in_range("--examples", 1, QUIZ_SIZE), default=QUIZ_SIZE,
                        help="examples in this quiz, in [1, 100]")
    parser.add_argument("--quiz", type=_in_range("--quiz", 1, 10), default=1,
                        help="which quiz, in [1, 10]: quiz K shows test examples 100 (K - 1) onward")
    parser.add_argument("--shuffled", action="store_true",
                        help="the positions shuffled by chapter 02's permutation")
    parser.add_argument("--file", help="the quiz's JSON file (default: results/quiz/<mnist1d|shuffled>-quiz<K>"
                                       "[-<N>].json)")
    parser.add_argument("--score", nargs="+", metavar="FILE", help="score these quiz files instead of taking one")
    parser.add_argument("--out", default=os.path.join(FOLDER, "score"),
                        help="with --score: the folder for scores.json and errors_by_class.png")
    parser.add_argument("--cnn-steps", type=_in_range("--cnn-steps", 0, 10 ** 6), default=train.TrainConfig.steps,
                        help="with --score: training steps of the CNN compared with you (0: no CNN)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    say = lambda text: print(text, flush=True)  # noqa: E731
    path = args.file or default_file(args.quiz, args.examples, args.shuffled)
    try:
        if args.score:
            paths = sorted({p for pattern in args.score for p in (glob.glob(pattern) or [pattern])})
            cnn = None if args.cnn_steps == 0 else (lambda a: train_cnn(a, args.cnn_steps))
            try:
                score_files(paths, args.out, cnn, say)
            except KeyboardInterrupt:
                print("\ninterrupted: nothing of the scoring was saved; run it again", file=sys.stderr)
                sys.exit(130)
            return
        take(path, args.quiz, args.examples, args.shuffled, args.study, say=say)
    except QuizError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except (KeyboardInterrupt, EndOfAnswers) as stop:
        why = "interrupted" if isinstance(stop, KeyboardInterrupt) else "standard input ended"
        print(f"\n{why}: {_saved(path)}; the same command continues", file=sys.stderr)
        sys.exit(130 if isinstance(stop, KeyboardInterrupt) else 1)


def _saved(path):
    try:
        answered = len(read_json(path)["indices"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"no page answered yet, so nothing saved in {path}"
    return f"{answered} answers saved in {path}"


if __name__ == "__main__":
    main()
