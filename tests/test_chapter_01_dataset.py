"""Chapter 01 (how MNIST-1D is built): the --quick run's real outputs, the followed digit, the frozen check."""
import numpy as np
import pytest

from test_chapters import assert_claims, assert_real_png, load_chapter, run_chapter

chapter = load_chapter("01_dataset")


def test_chapter_01_reproduces_the_frozen_dataset(tmp_path):
    stdout, record = run_chapter("01_dataset", tmp_path)
    results = record["results"]
    assert results["matches_frozen"] is True and results["mismatched_fields"] == []
    stats = results["statistics"]
    assert stats["train_per_class"] == [398, 396, 411, 394, 394, 402, 401, 404, 402, 398]
    assert sum(stats["test_per_class"]) == 1000 and stats["length"] == 40
    assert abs(stats["std"] - 1) < 1e-12 and abs(stats["mean"]) < 1e-12  # standardised over train + test
    assert "equals the frozen dataset (1e-12) | yes" in stdout and "394–411" in stdout
    assert record["settings"]["timing_repeats"] == 1 and results["generation_seconds_median"] > 0
    for figure in ("templates", "pipeline", "examples"):
        assert_real_png(tmp_path / f"{figure}.png")
    assert_claims(stdout, record, {"the SciPy-free generator makes the paper's frozen dataset": 1.0})


def test_the_followed_digit_goes_through_every_stage():
    template = chapter.data.get_templates()["x"][3]
    steps, info = chapter.follow_one_digit(chapter.DATASET_ARGS, 3, seed=0)
    assert set(steps) == set(chapter.PIPELINE)
    np.testing.assert_array_equal(steps["template"], template)
    np.testing.assert_array_equal(steps["pad"], np.concatenate([template, np.zeros(info["pad_length"])]))
    assert len(steps["subsample"]) == 40
    # --seed chooses the draws: another seed moves the digit differently.
    other, other_info = chapter.follow_one_digit(chapter.DATASET_ARGS, 3, seed=7)
    assert other_info != info and not np.allclose(other["subsample"], steps["subsample"])


def test_other_dataset_args_are_reported_not_frozen(monkeypatch):
    monkeypatch.setattr(chapter, "DATASET_ARGS", chapter.data.get_dataset_args(iid_noise_scale=0))
    _, _, results = chapter.examine(chapter.Settings(timing_repeats=1), seed=0)
    assert results["matches_frozen"] is False and "x_sum" in results["mismatched_fields"]
    assert chapter.measured(results)["equals the frozen dataset (1e-12)"].startswith("NO")


def test_a_generator_that_misses_the_frozen_dataset_stops_the_chapter(monkeypatch):
    monkeypatch.setattr(chapter, "frozen_mismatches", lambda dataset: ["x_sum"])
    with pytest.raises(SystemExit, match="x_sum"):
        chapter.examine(chapter.Settings(timing_repeats=1), seed=0)
