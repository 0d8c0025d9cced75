"""Chapter 09 (pixel space): the --quick run's finding, its caches reused, an embedding cached under what made it."""
import dataclasses

import numpy as np
import pytest

from test_chapters import assert_claims, assert_real_png, load_chapter, run_chapter

chapter = load_chapter("09_pixel_space")


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
    assert "| 59.6 " in stdout and "| 32.8 " in stdout and "not shown" in stdout
    assert_real_png(tmp_path / "tsne.png")
    assert_claims(stdout, record, {
        "in pixel space, a 10-nearest-neighbour classifier stays far below a CNN":
            cnn["early_stopped_test_acc"] - pixels["knn_acc"],
        "a linear read-out of the raw signals gets little of the class": pixels["probe_acc"]})

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
