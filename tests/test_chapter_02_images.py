"""Chapter 02's image column (--images), offline: tiny IDX files made here stand in for
Fashion-MNIST. The chapter trains the four image models beside MNIST-1D, tabulates their
accuracy and cost, judges the paper's claims on them, and resumes without retraining."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from test_chapter_02_classifiers import table_1_claims
from test_chapters import ROOT, assert_claims, assert_real_png
from test_images import tiny_arrays, write_folder

from mnist1d_np import images, nn, train

MODELS = ("logistic", "mlp", "cnn", "gru")
TINY = ("--set", "steps=20", "--set", "eval_every=10", "--set", "image_train=50")  # 50 of the 60 training images
NO_PAPER_ROW = "none (the paper has no Fashion-MNIST row)"


def chapter_env(tmp_path, proxy=None):
    """The chapter's environment: its own cache, no image folder variable; with `proxy`, every
    HTTP(S) request goes to it (a closed port on 127.0.0.1: a download fails at once)."""
    env = {k: v for k, v in os.environ.items()
           if k != images.ENV_VAR and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg-cache")
    if proxy:
        env["http_proxy"] = env["https_proxy"] = proxy
    return env


def run_02(tmp_path, out, *flags, proxy=None, check=True):
    script = os.path.join(ROOT, "chapters", "02_classifiers.py")
    proc = subprocess.run([sys.executable, script, "--quick", "--out", str(out), *flags], capture_output=True,
                          text=True, timeout=300, env=chapter_env(tmp_path, proxy))
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture
def tiny_fashion(tmp_path):
    arrays = tiny_arrays(np.random.default_rng(5), n_train=60, n_test=20)
    folder = tmp_path / "fashion"
    write_folder(folder, arrays, spec=images.FASHION)
    return folder, arrays


def expected_flops(model, dataset, n_train, n_test, record):
    """nn.flops_per_example x the examples seen, counted here from train.FixedOrder's batches."""
    image_shape = (28, 28) if dataset == "fashion" else None
    net = nn.make_model(model, np.random.default_rng(0), dtype=np.float32, image_shape=image_shape)
    per = nn.flops_per_example(net, (784,) if image_shape else (40,))
    settings = record["settings"]
    batches = train.FixedOrder(np.zeros((n_train, 1)), np.zeros(n_train), settings["batch_size"])
    trained = sum(len(batches(step)[0]) for step in range(settings["steps"]))
    evaluations = len(record["results"]["curves"][f"{model}/{dataset}"][0]["eval_steps"])
    return trained * (per["forward"] + per["backward"]) + evaluations * (n_train + n_test) * per["forward"]


def test_the_image_column_its_cost_and_claims_and_a_rerun_that_trains_nothing(tmp_path, tiny_fashion):
    folder, arrays = tiny_fashion
    out = tmp_path / "out"
    proc = run_02(tmp_path, out, "--images", "fashion", "--images-dir", str(folder), "--workers", "2", *TINY)
    record = json.loads((out / "results.json").read_text())
    results = record["results"]
    # the set, and its standardisation: the 50 training images' mean pixel and pixel SD
    used = arrays["train_images"][:50].astype(np.float64) / 255
    assert results["images"]["name"] == "fashion" and results["images"]["source"] == str(folder)
    assert (results["images"]["train_examples"], results["images"]["test_examples"]) == (50, 20)
    assert results["images"]["standardisation"] == pytest.approx({"mean": used.mean(), "sd": used.std()}, rel=1e-6)
    # the image column, beside MNIST-1D and shuffled, in the table and the output
    summary, cost = results["summary"], results["cost"]
    assert set(summary) == {f"{m}/{d}" for m in MODELS for d in ("mnist1d", "shuffled", "fashion")}
    table = {row[0]: row[1:] for row in record["table"]}
    for model in MODELS:
        accuracy = summary[f"{model}/fashion"]
        assert table[f"{model} test acc., fashion (%)"] == [
            NO_PAPER_ROW, f"{accuracy['early_stopped_mean']:.1f} ± {accuracy['early_stopped_sd']:.1f}"]
        assert accuracy["early_stopped_test_acc"] == [
            100 * max(r["test_acc"]) for r in results["curves"][f"{model}/fashion"]]
        assert f"{model} test acc., fashion (%)" in proc.stdout
    # the cost: FLOPs counted from the shapes and the examples seen; seconds as each run measured them
    for model in MODELS:
        for dataset, (n_train, n_test) in (("mnist1d", (4000, 1000)), ("fashion", (50, 20))):
            entry = cost[f"{model}/{dataset}"]
            assert entry["flops"]["total"] == expected_flops(model, dataset, n_train, n_test, record)
            seconds = [r["seconds"] for r in results["curves"][f"{model}/{dataset}"]]
            assert entry["seconds"] == seconds and all(0 < s < 60 for s in seconds)
            assert entry["seconds_mean"] == pytest.approx(np.mean(seconds))
        pair = [cost[f"{model}/{d}"] for d in ("mnist1d", "fashion")]
        assert table[f"{model} GFLOPs per run, mnist1d / fashion"] == [
            "—", " / ".join(f"{c['flops']['total'] / 1e9:.3g}" for c in pair)]
        assert table[f"{model} seconds per run, mnist1d / fashion"] == [
            "—", " / ".join(f"{c['seconds_mean']:.1f} ± {c['seconds_sd']:.1f}" for c in pair)]
    # the paper's claims, recomputed here from the saved results
    mean = lambda model, dataset: summary[f"{model}/{dataset}"]["early_stopped_mean"]
    spread = lambda dataset: max(mean(m, dataset) for m in MODELS) - min(mean(m, dataset) for m in MODELS)
    ratio = lambda kind: min((cost[f"{m}/fashion"]["flops"]["total"] / cost[f"{m}/mnist1d"]["flops"]["total"])
                             if kind == "flops" else cost[f"{m}/fashion"]["seconds_mean"] /
                             cost[f"{m}/mnist1d"]["seconds_mean"] for m in MODELS)
    assert_claims(proc.stdout, record, {
        **table_1_claims(summary),
        "on the 28x28 image set the four models lie within 6 points": spread("fashion"),
        "MNIST-1D spreads the models over 30 points wider than the image set": spread("mnist1d") - spread("fashion"),
        "every model's run costs over 10 times the FLOPs on the image set": ratio("flops"),
        "every model's run takes over 10 times the seconds on the image set": ratio("seconds")})
    assert [c["criterion"] for c in record["claims"][6:]] == [
        {"compare": "<", "threshold": 6}, {"compare": ">", "threshold": 30},
        {"compare": ">", "threshold": 10}, {"compare": ">", "threshold": 10}]
    assert [c["paper"] for c in record["claims"][6:8]] == [99 - 94, (94 - 32) - (99 - 94)]  # Table 1
    assert table["spread over the models, fashion (points)"] == [NO_PAPER_ROW, str(round(spread("fashion"), 1))]
    assert_real_png(out / "cost.png")
    assert "image column: not run" not in proc.stdout
    # A rerun reads every run back: nothing retrained, each run's seconds as it measured them.
    runs = {p.name: p.read_bytes() for p in (out / "runs").iterdir()}
    assert len(runs) == 12 and not [name for name in runs if name.endswith(".npz")]  # checkpoints and clocks gone
    again = run_02(tmp_path, out, "--images", "fashion", "--images-dir", str(folder), "--workers", "2", *TINY)
    assert "12 of 12 already finished" in again.stderr
    assert {p.name: p.read_bytes() for p in (out / "runs").iterdir()} == runs
    assert json.loads((out / "results.json").read_text())["results"]["cost"] == cost


def test_images_dir_without_images_is_refused_before_anything_is_written(tmp_path, tiny_fashion):
    proc = run_02(tmp_path, tmp_path / "out", "--images-dir", str(tiny_fashion[0]), check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: --images-dir {tiny_fashion[0]}: give --images")
    assert not (tmp_path / "out").exists()


def test_a_missing_image_set_is_one_error_that_says_how_to_get_it(tmp_path):
    """An empty folder and an empty cache: the download is tried through a proxy on a closed
    port of 127.0.0.1, so it fails at once without leaving the machine."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_02(tmp_path, tmp_path / "out", "--images", "fashion", "--images-dir", str(empty),
                  proxy=f"http://127.0.0.1:{closed_port}", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: --images fashion: Fashion-MNIST is not on this machine")
    assert str(tmp_path / "xdg-cache" / "mnist1d_np" / "images" / "fashion") in proc.stderr  # where to put them
    assert "--images-dir DIR" in proc.stderr and images.ENV_VAR in proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_run_stopped_and_resumed_reports_the_seconds_of_both_invocations(tmp_path, monkeypatch):
    """A run stopped by a sweep's Ctrl-C (at its first checkpoint) and then finished reports the
    time of both: not the seconds of the invocation that only finished it. The stopwatch reads a
    scripted clock (60 s for the stopped invocation, 2 s for the one that finishes), so the sum
    is exact: wall-clock time would make a stopped run's few milliseconds race the overhead of
    the second invocation outside the timed block."""
    import types
    from test_chapters import load_chapter
    from mnist1d_np import resumable, runmany
    readings = iter([1000.0, 1060.0, 5000.0, 5002.0])    # start and end of each invocation
    monkeypatch.setattr(resumable, "time", types.SimpleNamespace(perf_counter=lambda: next(readings)))
    ch = load_chapter("02_classifiers")
    settings = ch.Settings(steps=40, eval_every=10, seeds=1, models=("mlp",))
    (_, config), = [(key, c) for key, c in ch.sweep(settings, 0) if key[1] == "mnist1d"]
    context = runmany.Context(str(tmp_path / "run.ckpt.npz"))
    with pytest.raises(KeyboardInterrupt), resumable.stop_when(lambda: True):
        ch.train_one(config, context)
    result = ch.train_one(config, context)   # resumes after its first evaluation, at step 0
    assert len(result["eval_steps"]) == 5
    assert result["seconds"] == 62.0 and next(readings, None) is None


def test_image_train_out_of_range_ends_the_chapter_in_one_line(tmp_path, monkeypatch, capsys):
    from test_chapters import load_chapter
    ch = load_chapter("02_classifiers")
    monkeypatch.setattr(sys, "argv", ["02", "--quick", "--set", "image_train=0", "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as stop:
        ch.main()
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("image_train must be an integer >= 1, got 0")
    assert not (tmp_path / "out").exists()


def test_an_image_runs_identity_is_the_pixels_it_reads_not_their_folder(tmp_path, monkeypatch, tiny_fashion):
    """The same pixels from another folder (uncompressed) plan the same runs, so they are reused;
    one changed pixel, or another image_train, plans other runs; and a worker that finds other
    files than the ones the sweep was planned with refuses them."""
    from test_chapters import load_chapter
    monkeypatch.setenv(images.ENV_VAR, "unset")  # restored after the test: the chapter points it at the set
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    ch = load_chapter("02_classifiers")
    folder, arrays = tiny_fashion
    settings = ch.Settings(image_train=50)
    planned = lambda where, s=settings: images.run_spec(images.load_images("fashion", images_dir=str(where)),
                                                        s.image_train)
    first = planned(folder)
    copy = tmp_path / "copy"
    write_folder(copy, arrays, spec=images.FASHION, compressed=False)
    assert planned(copy) == first
    assert planned(folder, ch.Settings(image_train=40))["digest"] != first["digest"]
    changed = {**arrays, "train_images": arrays["train_images"].copy()}
    changed["train_images"][3, 10, 10] ^= 1
    write_folder(tmp_path / "changed", changed, spec=images.FASHION)
    assert planned(tmp_path / "changed") != first
    beyond = {**arrays, "train_images": arrays["train_images"].copy()}
    beyond["train_images"][55, 0, 0] ^= 1  # an image past the first 50: not read by these runs
    write_folder(tmp_path / "beyond", beyond, spec=images.FASHION)
    assert planned(tmp_path / "beyond") == first
    assert os.environ[images.ENV_VAR] == str(tmp_path / "beyond")  # where the sweep's workers will look
    monkeypatch.setenv(images.ENV_VAR, str(folder))  # as in a worker process, which loads the set itself
    part = images.for_run(first)
    assert np.array_equal(part["x"], images.load_images("fashion", images_dir=str(folder))["x"][:50])
    assert ch.image_training_data(tuple(sorted(first.items())))["x"].shape == (50, 784)
    monkeypatch.setenv(images.ENV_VAR, str(tmp_path / "changed"))
    with pytest.raises(images.ImagesError, match="not the Fashion-MNIST files this sweep was planned with"):
        images.for_run(first)


def test_the_mnist_column_is_set_against_table_1s_mnist_row():
    from test_chapters import load_chapter
    ch = load_chapter("02_classifiers")
    paper = ch.image_paper("mnist", "MNIST", MODELS)
    assert [str(paper[f"{m} test acc., mnist (%)"]) for m in MODELS] == ["94 ± 0.5", ">99", ">99", ">99"]
    assert paper["spread over the models, mnist (points)"] == "≈ 5 (>99 - 94)"
    assert paper["spread over the models, mnist1d (points)"] == 94 - 32
    fashion = ch.image_paper("fashion", "Fashion-MNIST", MODELS)
    assert set(fashion.values()) - {94 - 32} == {NO_PAPER_ROW}
