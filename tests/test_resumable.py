"""resumable.Resumable: the one loop that saves its state and continues after an interruption."""
import os

import numpy as np
import pytest

from mnist1d_np import resumable


def make_state(seed=0):
    weights = np.zeros(3)
    return {"weights": weights, "view": weights[1:], "rng": np.random.default_rng(seed),
            "history": [], "nested": {"moments": [np.ones(2)], "step": 0}}


def body(state, i):
    """One iteration: every kind of value in the state changes."""
    state["weights"] += state["rng"].normal(size=3)
    state["history"].append(float(state["weights"].sum()))
    state["nested"]["moments"][0] *= 2
    state["nested"]["step"] = i + 1


def run(path, state, total=6, stop_after=None, identity=None):
    loop = resumable.Resumable(path, identity or {"config": 1}, state, total, label=None)
    for i in loop:
        body(state, i)
        if stop_after is not None and i == stop_after:
            raise KeyboardInterrupt  # a Ctrl-C between checkpoints
        if i % 2 == 1:
            loop.checkpoint()
    return loop


def test_an_interrupted_loop_resumes_in_place_to_the_uninterrupted_numbers(tmp_path):
    straight = make_state()
    run(None, straight)
    cut = make_state()
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "loop.ckpt.npz", cut, stop_after=4)   # checkpoints after 1 and 3: 4 is lost
    resumed = make_state()
    view = resumed["view"]
    loop = run(tmp_path / "loop.ckpt.npz", resumed)
    assert loop.start == 4
    assert resumed["history"] == straight["history"] and resumed["nested"]["step"] == 6
    np.testing.assert_array_equal(resumed["weights"], straight["weights"])
    np.testing.assert_array_equal(resumed["nested"]["moments"][0], straight["nested"]["moments"][0])
    assert view.base is resumed["weights"] and view[0] == resumed["weights"][1]  # restored in place
    assert resumed["rng"].random() == straight["rng"].random()


def test_a_finished_loop_is_a_cache(tmp_path):
    first = make_state()
    run(tmp_path / "c", first, total=3)   # the last iteration (2) is saved even without a checkpoint call
    again = make_state()
    loop = run(tmp_path / "c", again, total=3)
    assert loop.start == loop.total and again["history"] == first["history"]


def test_another_identity_neither_uses_nor_overwrites_the_checkpoint(tmp_path):
    run(tmp_path / "c", make_state(), identity={"config": 1})
    other = make_state(seed=5)
    loop = run(tmp_path / "c", other, identity={"config": 2})
    assert loop.start == 0 and len(other["history"]) == 6
    assert len(list(tmp_path.glob("c-*.ckpt.npz"))) == 2
    assert run(tmp_path / "c", make_state(), identity={"config": 1}).start == 6


def test_a_stop_request_takes_effect_right_after_a_checkpoint(tmp_path):
    requests = iter([False, True])
    state = make_state()
    with pytest.raises(KeyboardInterrupt), resumable.stop_when(lambda: next(requests)):
        run(tmp_path / "s", state)
    assert len(state["history"]) == 4  # stopped after the second checkpoint (iteration 3), saved
    assert run(tmp_path / "s", make_state()).start == 4
    assert not resumable.stop_requested()  # only inside stop_when


def test_without_a_path_nothing_is_written_but_stops_still_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(KeyboardInterrupt), resumable.stop_when(lambda: True):
        run(None, make_state())
    assert os.listdir(tmp_path) == []


def test_a_live_array_of_another_shape_is_an_error_not_a_silent_resume(tmp_path):
    run(tmp_path / "c", make_state(), total=2)
    wrong = make_state()
    wrong["weights"] = np.zeros(4)
    with pytest.raises(ValueError, match=r"state\['weights'\] was saved as float64\(3,\)"):
        resumable.Resumable(tmp_path / "c", {"config": 1}, wrong, 2)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="total must be an integer >= 0"):
        resumable.Resumable(None, {}, {}, -1)
    with pytest.raises(TypeError, match="state must be a dict"):
        resumable.Resumable(None, {}, [], 3)


def test_values_come_back_exactly_nan_and_numpy_scalars_included(tmp_path):
    state = {"losses": [1.5], "best": np.float32(0.25), "count": np.int64(3)}
    loop = resumable.Resumable(tmp_path / "x", {}, state, 3)
    for i in loop:
        state["losses"].append(float("nan") if i == 0 else float("inf"))
        state["best"] = np.float32(0.5)
        loop.checkpoint()
        if i == 1:
            break
    again = {"losses": [], "best": np.float32(0), "count": np.int64(0)}
    assert resumable.Resumable(tmp_path / "x", {}, again, 3).start == 2
    assert np.isnan(again["losses"][1]) and again["losses"][::2] == [1.5, float("inf")]
    assert type(again["best"]) is np.float32 and again["best"] == 0.5 and type(again["count"]) is np.int64


@pytest.mark.parametrize("state, message", [
    ({"pair": (np.zeros(2), np.ones(2))}, r"state\['pair'\] is a tuple"),
    ({"history": {"sizes": (1, 2)}}, r"state\['history'\]\['sizes'\] is a tuple"),
    ({"per_step": {0: np.zeros(2)}}, r"state\['per_step'\] has the key 0, which would come back as '0'")])
def test_what_a_checkpoint_would_not_give_back_is_refused_before_any_work(tmp_path, state, message):
    with pytest.raises(TypeError, match=message):
        resumable.Resumable(tmp_path / "t", {}, state, 2)
    assert not list(tmp_path.iterdir())


def test_a_key_that_is_not_a_string_added_during_the_run_is_refused_at_the_checkpoint(tmp_path):
    state = {"per_step": {}}
    loop = resumable.Resumable(tmp_path / "t", {}, state, 2)
    with pytest.raises(TypeError, match="has the key 0"):
        for i in loop:
            state["per_step"][i] = float(i)
            loop.checkpoint()


def test_a_checkpoint_longer_than_the_loop_is_not_used(tmp_path):
    run(tmp_path / "c", make_state(), total=4)
    shorter = make_state()
    with pytest.warns(UserWarning, match="saved 4 iterations of a loop of 2"):
        loop = resumable.Resumable(tmp_path / "c", {"config": 1}, shorter, 2)
    assert loop.start == 0 and shorter["history"] == []


def test_a_list_of_arrays_that_grew_and_a_generator_added_during_the_run_come_back(tmp_path):
    """State built up during the loop has no live counterpart in a fresh process: it is rebuilt."""
    def grow(path, stop_after=None):
        state = {"snapshots": [], "extra": {}}
        loop = resumable.Resumable(path, {"config": 2}, state, 5)
        for i in loop:
            state["snapshots"].append(np.full(2, float(i)))
            if i == 1:
                state["extra"]["rng"] = np.random.default_rng(7)
            if "rng" in state["extra"]:
                state["snapshots"][-1] += state["extra"]["rng"].normal(size=2)
            if stop_after is not None and i == stop_after:
                raise KeyboardInterrupt
            loop.checkpoint()
        return state
    straight = grow(None)
    with pytest.raises(KeyboardInterrupt):
        grow(tmp_path / "grow.ckpt.npz", stop_after=3)   # saved after 0, 1 and 2
    resumed = grow(tmp_path / "grow.ckpt.npz")
    np.testing.assert_array_equal(np.array(resumed["snapshots"]), np.array(straight["snapshots"]))
    assert resumed["extra"]["rng"].bit_generator.state == straight["extra"]["rng"].bit_generator.state


def test_a_stopwatch_adds_the_seconds_of_an_interrupted_invocation_to_the_one_that_finishes(tmp_path):
    import time
    path = tmp_path / "run.ckpt.npz"
    with pytest.raises(KeyboardInterrupt):
        with resumable.stopwatch(path) as first:
            time.sleep(0.05)
            raise KeyboardInterrupt
    assert first.seconds >= 0.05 and first.invocations == 1
    (saved,) = tmp_path.glob("run-*.ckpt.npz")   # a sweep deletes it with the run's other checkpoints
    with resumable.stopwatch(path) as second:
        time.sleep(0.02)
    assert second.invocations == 2 and first.seconds + 0.02 <= second.seconds < first.seconds + 1.0
    with resumable.stopwatch(None) as alone:     # no file: this invocation only
        time.sleep(0.01)
    assert 0.01 <= alone.seconds < 1.0 and alone.invocations == 1 and list(tmp_path.glob("*")) == [saved]
