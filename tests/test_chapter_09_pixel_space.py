"""Chapter 09 (pixel space): the --quick run's finding, its caches reused, an embedding cached under what made it."""
import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

from mnist1d_np import claims, images, probes
from test_chapters import ROOT, assert_claims, assert_real_png, load_chapter, run_chapter
from test_images import write_folder

chapter = load_chapter("09_pixel_space")


@pytest.fixture(autouse=True)
def _no_user_images(tmp_path, monkeypatch):
    """The chapter (a subprocess, which inherits this environment) sees no image set of the user's."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv(images.ENV_VAR, raising=False)


def test_chapter_09_quick_and_rerun_from_its_caches(tmp_path):
    stdout, record = run_chapter("09_pixel_space", tmp_path)
    results = record["results"]
    pixels, cnn = results["pixels"], results["cnn"]
    assert results["n_points"] == 1000
    # 800 training signals: kNN and the probe well above chance (10 %), below the 4000-example figures + margin.
    assert 20 < pixels["knn_acc"] < 70 and 20 < pixels["probe_acc"] < 45
    assert pixels["probe"]["converged"] and cnn["probe"]["converged"]
    # What learning does, already after 300 steps: the CNN's hidden layer is far more linearly
    # readable than the pixels, and its t-SNE keeps neighbourhoods better.
    assert cnn["probe_acc"] > pixels["probe_acc"] + 20 and cnn["final_test_acc"] > 60
    assert cnn["trustworthiness"] > pixels["trustworthiness"]
    for side in (pixels, cnn):
        assert 0 < side["kl"] < 4 and 0.85 < side["trustworthiness"] <= 1
    assert "| 59.6 " in stdout and "| 32.8 " in stdout and "| not run (--images mnist)" in stdout
    # Without --images: no image set is read, and one line says how to get MNIST.
    assert "images" not in results and "run with --images mnist (`python -m mnist1d_np.images mnist` " in stdout
    assert_real_png(tmp_path / "tsne.png")
    assert_claims(stdout, record, {
        "in pixel space, a 10-nearest-neighbour classifier stays far below a CNN":
            cnn["early_stopped_test_acc"] - pixels["knn_acc"],
        "a linear read-out of the raw signals gets little of the class": pixels["probe_acc"],
        "MNIST's pixels form clear clusters, MNIST-1D's do not": None,
        "on the t-SNE maps MNIST's classes lie apart, MNIST-1D's do not": None})

    caches = {path.name: path.stat().st_mtime_ns for path in tmp_path.glob("*.ckpt.npz")}
    assert len(caches) == 3  # the CNN and the two embeddings
    _, again = run_chapter("09_pixel_space", tmp_path)
    assert {path.name: path.stat().st_mtime_ns for path in tmp_path.glob("*.ckpt.npz")} == caches  # no work
    for side in ("pixels", "cnn"):
        assert again["results"][side] == results[side]


def test_an_embedding_is_cached_under_its_points_and_t_sne_settings(tmp_path, monkeypatch):
    points = np.random.default_rng(0).normal(size=(120, 5))
    settings = chapter.Settings(tsne_iterations=100, exaggeration_iter=50, perplexity=10.0)
    calls = []
    real_tsne = chapter.tsne.tsne
    monkeypatch.setattr(chapter.tsne, "tsne", lambda *a, **kw: calls.append(kw) or real_tsne(*a, **kw))
    cache = str(tmp_path / "tsne_points")
    first, kl = chapter.embed(points, settings, cache, "points")
    again, kl_again = chapter.embed(points, dataclasses.replace(settings, steps=5, knn_k=3), cache, "points")
    assert len(calls) == 1 and kl_again == kl  # settings the t-SNE does not read keep the cache
    np.testing.assert_array_equal(again, first)
    other, _ = chapter.embed(points, dataclasses.replace(settings, perplexity=5.0), cache, "points")
    scaled, _ = chapter.embed(1.5 * points, settings, cache, "points")
    assert len(calls) == 3 and not np.allclose(other, first) and not np.allclose(scaled, first)


def test_the_cnn_resumes_to_identical_numbers_and_keeps_seeds_apart(tmp_path, capsys):
    from mnist1d_np import resumable
    settings = chapter.Settings(steps=20)  # evaluated (and saved) after steps 1 and 20
    whole_model, whole = chapter.train_cnn(settings, 0, str(tmp_path / "whole.ckpt.npz"))
    with resumable.stop_when(lambda: True), pytest.raises(KeyboardInterrupt):  # a stop at the first checkpoint
        chapter.train_cnn(settings, 0, str(tmp_path / "cut.ckpt.npz"))
    capsys.readouterr()
    model, resumed = chapter.train_cnn(settings, 0, str(tmp_path / "cut.ckpt.npz"))
    assert "after 1 of 20" in capsys.readouterr().err and resumed == whole
    for a, b in zip(whole_model.parameters().values(), model.parameters().values()):
        np.testing.assert_array_equal(a.data, b.data)
    # Another seed in the same folder trains its own network (the seed-0 checkpoint would give `whole`).
    _, other = chapter.train_cnn(settings, 1, str(tmp_path / "cut.ckpt.npz"))
    _, fresh = chapter.train_cnn(settings, 1, str(tmp_path / "fresh.ckpt.npz"))
    assert other == fresh != whole


# ---------------------------------------------------------------- the image set beside MNIST-1D

def clustered_images(rng, n_train=150, n_test=50):
    """{role: uint8 array} of ten classes, each a random 28x28 template plus noise: clear clusters."""
    templates = rng.integers(0, 256, size=(10, 28, 28))
    def split(n):
        labels = np.arange(n) % 10
        noisy = templates[labels] + rng.normal(0, 25, size=(n, 28, 28))
        return np.clip(noisy, 0, 255).astype(np.uint8), labels.astype(np.uint8)
    (train_images, train_labels), (test_images, test_labels) = split(n_train), split(n_test)
    return {"train_images": train_images, "train_labels": train_labels,
            "test_images": test_images, "test_labels": test_labels}


TINY = ["--set", "train_points=300", "--set", "test_points=100", "--set", "steps=30", "--set", "tsne_iterations=100",
        "--set", "exaggeration_iter=50", "--set", "trust_points=120"]


def test_chapter_09_sets_an_image_set_beside_mnist1d(tmp_path, rng):
    folder, out = tmp_path / "fashion", tmp_path / "out"
    arrays = clustered_images(rng)
    write_folder(str(folder), arrays, images.FASHION)
    stdout, record = run_chapter("09_pixel_space", out, "--images", "fashion", "--images-dir", str(folder), *TINY)
    results = record["results"]
    image, pixels = results["images"], results["pixels"]
    # The quick settings ask for 1600 + 400 images; the tiny set has 150 + 50, all used.
    assert (image["name"], image["n_train"], image["n_test"], image["trustworthiness_points"]) == ("fashion", 150, 50, 120)
    x = {role: arrays[role].reshape(len(arrays[role]), -1).astype(np.float32) / np.float32(255)
         for role in ("train_images", "test_images")}
    assert image["knn_acc"] == 100 * probes.knn_accuracy(x["train_images"], arrays["train_labels"],
                                                         x["test_images"], arrays["test_labels"], 10)
    # Clear clusters: every test image lies among its class in pixel space, nearly every one on the
    # map (after 100 t-SNE iterations); MNIST-1D's map (300 train points voting) is far from that.
    assert image["knn_acc"] == 100 and image["map_knn_acc"] >= 90 and image["mnist1d_map_knn_acc"] < 80
    assert 0 < image["kl"] < 3 and 0.9 < image["trustworthiness"] <= 1
    assert set(image["seconds"]) == {"kNN", "t-SNE", "trustworthiness"} and image["seconds"]["t-SNE"] > 0
    for row in ("Fashion-MNIST: kNN test acc., pixels (%)", "Fashion-MNIST: t-SNE of 200 points, KL / trustworthiness",
                "kNN test acc. on the t-SNE map, Fashion-MNIST / MNIST-1D (%)", "| not run (--images mnist)"):
        assert row in stdout
    assert "run with --images mnist" not in stdout
    assert_real_png(out / "tsne.png")
    import matplotlib.image
    assert matplotlib.image.imread(str(out / "tsne.png")).shape[1] > 1800  # three panels, not two
    progress = sorted(path.name.split("-")[0] for path in out.glob("tsne_fashion_progress*.ckpt.npz"))
    assert progress == ["tsne_fashion_progress", "tsne_fashion_progress"]  # the affinities and the descent
    mnist_claims = {"MNIST's pixels form clear clusters, MNIST-1D's do not": None,
                    "on the t-SNE maps MNIST's classes lie apart, MNIST-1D's do not": None}
    assert_claims(stdout, record, {
        "in pixel space, a 10-nearest-neighbour classifier stays far below a CNN":
            results["cnn"]["early_stopped_test_acc"] - pixels["knn_acc"],
        "a linear read-out of the raw signals gets little of the class": pixels["probe_acc"], **mnist_claims})
    # The same numbers, had the set been MNIST: the two claims of the figure are judged.
    as_mnist = {**results, "images": {**image, "name": "mnist"}}
    judged = {r["statement"]: r for r in claims.evaluate(chapter.CLAIMS, as_mnist)}
    first, second = (judged[statement] for statement in mnist_claims)
    assert first["value"] == pytest.approx(image["knn_acc"] - pixels["knn_acc"])
    assert second["value"] == pytest.approx(image["map_knn_acc"] - image["mnist1d_map_knn_acc"])
    for record_ in (first, second):
        assert record_["verdict"] == ("holds" if record_["value"] > 20 else "does not hold")
    assert "MNIST t-SNE" in chapter.image_rows(as_mnist["images"])


def test_images_dir_without_images_is_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "chapters", "09_pixel_space.py"), "--quick",
                           "--out", str(out), "--images-dir", str(tmp_path)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and "give --images {mnist,fashion} too" in proc.stderr and not out.exists()


def test_the_trustworthiness_sample_is_fixed_and_all_points_when_small():
    assert chapter.trust_sample(100, 100) is None and chapter.trust_sample(100, 500) is None
    sample = chapter.trust_sample(70000, 5000)
    assert len(np.unique(sample)) == 5000 and np.all(np.diff(sample) > 0) and sample.max() < 70000
    np.testing.assert_array_equal(sample, chapter.trust_sample(70000, 5000))
