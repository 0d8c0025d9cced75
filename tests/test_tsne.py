"""t-SNE: affinities, the Barnes-Hut gradient against a dense reference and
finite differences, and whole runs on tiny, well-separated blobs.

Inputs stay tiny so that NUMBA_DISABLE_JIT=1 runs the same tests in seconds."""
import os
import subprocess
import sys

import numpy as np
import pytest

from mnist1d_np import probes, tsne

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def dense(P, n):
    indptr, indices, data = P
    result = np.zeros((n, n))
    for i in range(n):
        result[i, indices[indptr[i]:indptr[i + 1]]] = data[indptr[i]:indptr[i + 1]]
    return result


def dense_gradient_and_kl(y, p):
    """The textbook formulas on all pairs."""
    diff = y[:, None, :] - y[None, :, :]
    w = 1.0 / (1.0 + (diff ** 2).sum(axis=2))
    np.fill_diagonal(w, 0.0)
    q = w / w.sum()
    grad = 4.0 * (((p - q) * w)[:, :, None] * diff).sum(axis=1)
    mask = p > 0
    return grad, np.sum(p[mask] * np.log(p[mask] / q[mask]))


def blobs(rng, per_blob=15, dim=10, spread=20.0):
    centres = spread * rng.normal(size=(3, dim))
    labels = np.repeat(np.arange(3), per_blob)
    return centres[labels] + rng.normal(size=(len(labels), dim)), labels


# ---------------------------------------------------------------- affinities

def test_each_row_reaches_the_perplexity(rng):
    distances = rng.uniform(0, 50, size=(6, 20))
    p = tsne._conditional_affinities(distances, 7.0)
    entropy = -(p * np.log(p)).sum(axis=1)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.exp(entropy), 7.0, rtol=1e-4)


def test_symmetrise_equals_a_plus_its_transpose(rng):
    n, k = 9, 4
    neighbours = np.array([rng.choice([j for j in range(n) if j != i], k, replace=False) for i in range(n)])
    values = rng.uniform(size=(n, k))
    a = np.zeros((n, n))
    a[np.arange(n)[:, None], neighbours] = values
    indptr, indices, data = tsne._symmetrise(neighbours, values)
    np.testing.assert_allclose(dense((indptr, indices, data), n), a + a.T, rtol=1e-15)
    for i in range(n):
        assert np.all(np.diff(indices[indptr[i]:indptr[i + 1]]) > 0)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_joint_probabilities_are_symmetric_and_sum_to_one(rng, metric):
    x = rng.normal(size=(30, 5))
    p = dense(tsne.joint_probabilities(x, perplexity=5.0, metric=metric), 30)
    np.testing.assert_allclose(p, p.T, rtol=1e-14)
    assert abs(p.sum() - 1.0) < 1e-12 and np.all(np.diag(p) == 0) and np.all(p >= 0)


def test_cosine_affinities_ignore_row_lengths(rng):
    x = rng.normal(size=(30, 5))
    scaled = x * rng.uniform(0.5, 3.0, size=(30, 1))
    np.testing.assert_allclose(tsne.joint_probabilities(x, 5.0, "cosine")[2],
                               tsne.joint_probabilities(scaled, 5.0, "cosine")[2], rtol=1e-9)


# ---------------------------------------------------------------- quadtree and gradient

def test_quadtree_cells_hold_their_points(rng):
    y = np.concatenate([rng.normal(size=(40, 2)), np.zeros((10, 2))])  # ten coinciding points
    order, start, end, first_child, side, mass, n_cells = tsne.build_quadtree(y, leaf_size=2)
    assert sorted(order) == list(range(50))
    for c in range(n_cells):
        points = y[order[start[c]:end[c]]]
        if len(points):
            np.testing.assert_allclose(mass[c], points.mean(axis=0), atol=1e-12)
        if first_child[c] >= 0:
            children = range(first_child[c], first_child[c] + 4)
            assert sum(end[d] - start[d] for d in children) == end[c] - start[c]
            assert all(side[d] == side[c] / 2 for d in children)


def test_exact_gradient_and_kl_match_the_dense_formulas(rng):
    x, _ = blobs(rng, per_blob=8)
    P = tsne.joint_probabilities(x, perplexity=4.0)
    y = rng.normal(size=(24, 2))
    grad, kl = tsne.gradient(y, P, theta=0.0)
    want_grad, want_kl = dense_gradient_and_kl(y, dense(P, 24))
    np.testing.assert_allclose(grad, want_grad, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(kl, want_kl, rtol=1e-12)
    bh_grad, bh_kl = tsne.gradient(y, P, theta=0.5)
    assert np.linalg.norm(bh_grad - want_grad) < 0.05 * np.linalg.norm(want_grad)
    assert abs(bh_kl - want_kl) < 0.02 * want_kl


def test_gradient_matches_finite_differences_of_the_kl(rng):
    x, _ = blobs(rng, per_blob=5)
    P = tsne.joint_probabilities(x, perplexity=3.0)
    y, eps = rng.normal(size=(15, 2)), 1e-6
    grad, _ = tsne.gradient(y, P, theta=0.0)
    numeric = np.zeros_like(y)
    for index in np.ndindex(y.shape):
        step = np.zeros_like(y)
        step[index] = eps
        numeric[index] = (tsne.gradient(y + step, P, theta=0.0)[1]
                          - tsne.gradient(y - step, P, theta=0.0)[1]) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------- whole runs

def test_blobs_stay_apart_and_kl_decreases(rng):
    # The 'auto' learning rate's floor of 50 is meant for thousands of points;
    # 45 points overshoot with it, so the test takes a smaller step.
    x, labels = blobs(rng)
    kls = []
    embedding, kl = tsne.tsne(x, perplexity=5.0, n_iter=300, exaggeration_iter=100, learning_rate=10.0,
                              callback=lambda iteration, kl, y: kls.append((iteration, kl)))
    assert [i for i, _ in kls] == [50, 100, 150, 200, 250, 300]
    after = [value for i, value in kls if i > 100]
    assert np.all(np.diff(after) < 0) and kl < after[0]
    distances = np.sqrt(((embedding[:, None] - embedding[None]) ** 2).sum(axis=2))
    same = labels[:, None] == labels[None]
    assert distances[same].max() < distances[~same].min()
    assert probes.trustworthiness(x, embedding, k=5) > 0.9


def test_same_input_same_embedding(rng):
    x, _ = blobs(rng, per_blob=6)
    first = tsne.tsne(x, perplexity=4.0, n_iter=60, exaggeration_iter=20)
    second = tsne.tsne(x, perplexity=4.0, n_iter=60, exaggeration_iter=20)
    np.testing.assert_array_equal(first[0], second[0])
    assert first[1] == second[1]


# ---------------------------------------------------------------- resuming

RUN = dict(perplexity=4.0, n_iter=60, exaggeration_iter=25, checkpoint_every=10)  # the switch inside a block


def stop_after(checkpoints):
    """A should_stop for resumable.stop_when: True from the given checkpoint on."""
    seen = []
    return lambda: seen.append(1) or len(seen) >= checkpoints


@pytest.mark.parametrize("stops", [[1], [3], [2, 3]])  # before, across and after the exaggeration ends
def test_an_interrupted_run_resumes_to_the_uninterrupted_embedding(rng, tmp_path, capsys, stops):
    from mnist1d_np import resumable
    x, _ = blobs(rng, per_blob=6)
    straight = tsne.tsne(x, **RUN)
    stem = str(tmp_path / "run")
    for stop in stops:  # each invocation stops at its own stop-th checkpoint
        with resumable.stop_when(stop_after(stop)), pytest.raises(KeyboardInterrupt):
            tsne.tsne(x, **RUN, checkpoint=stem)
    resumed = tsne.tsne(x, **RUN, checkpoint=stem)
    messages = capsys.readouterr().err
    for done in np.cumsum(stops):  # each later invocation started where the one before stopped
        assert f"after {10 * done} of 60" in messages
    np.testing.assert_array_equal(resumed[0], straight[0])
    assert resumed[1] == straight[1]


def test_a_finished_run_is_read_back_and_its_affinities_are_shared(rng, tmp_path, monkeypatch):
    x, _ = blobs(rng, per_blob=6)
    stem = str(tmp_path / "run")
    first = tsne.tsne(x, **RUN, checkpoint=stem)
    straight_70 = tsne.tsne(x, **{**RUN, "n_iter": 70})
    files = sorted(path.name for path in tmp_path.iterdir())
    assert len(files) == 2 and sum(name.startswith("run-affinities-") for name in files) == 1
    calls = {"steps": 0, "affinities": 0}
    real_step, real_affinities = tsne._step, tsne.joint_probabilities
    monkeypatch.setattr(tsne, "_step", lambda *a: calls.__setitem__("steps", calls["steps"] + 1) or real_step(*a))
    monkeypatch.setattr(tsne, "joint_probabilities",
                        lambda *a: calls.__setitem__("affinities", calls["affinities"] + 1) or real_affinities(*a))
    again = tsne.tsne(x, **RUN, checkpoint=stem)
    assert calls == {"steps": 0, "affinities": 0}
    np.testing.assert_array_equal(again[0], first[0])
    assert again[1] == first[1]
    # Another number of iterations: a new descent, from the same cached affinities.
    longer = tsne.tsne(x, **{**RUN, "n_iter": 70}, checkpoint=stem)
    assert calls == {"steps": 70, "affinities": 0} and len(list(tmp_path.iterdir())) == 3
    np.testing.assert_array_equal(longer[0], straight_70[0])
    # Other data: nothing of the first run is used.
    other = tsne.tsne(x + 1e-3, **RUN, checkpoint=stem)
    assert calls["affinities"] == 1 and not np.array_equal(other[0], first[0])


def test_a_given_initial_embedding_is_part_of_what_a_checkpoint_holds(rng, tmp_path):
    x, _ = blobs(rng, per_blob=6)
    init = rng.normal(size=(len(x), 2)) * 1e-4
    straight = tsne.tsne(x, **RUN, init=init)
    resumed = tsne.tsne(x, **RUN, init=init, checkpoint=str(tmp_path / "run"))
    np.testing.assert_array_equal(resumed[0], straight[0])
    other = tsne.tsne(x, **RUN, init=2 * init, checkpoint=str(tmp_path / "run"))
    assert not np.array_equal(other[0], straight[0]) and len(list(tmp_path.iterdir())) == 3  # P shared


def test_pca_initialisation_has_the_requested_sd(rng):
    x = rng.normal(size=(40, 6)) * np.arange(1, 7)
    y = tsne.pca_initialisation(x)
    assert y.shape == (40, 2) and abs(y[:, 0].std() - 1e-4) < 1e-15
    assert y[:, 0].std() > y[:, 1].std()  # the first component carries the most variance


def test_kernels_run_as_plain_python():
    """The same small gradient with numba's JIT disabled (a fresh process)."""
    code = ("import numpy as np; from mnist1d_np import tsne; rng = np.random.default_rng(1); "
            "x = rng.normal(size=(12, 3)); y = rng.normal(size=(12, 2)); "
            "P = tsne.joint_probabilities(x, 3.0); g, kl = tsne.gradient(y, P, theta=0.5); "
            "print(repr(kl), repr(float(g.sum())))")
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", PYTHONPATH=ROOT)
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert plain.returncode == 0, plain.stderr[-2000:]
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(12, 3)), rng.normal(size=(12, 2))
    g, kl = tsne.gradient(y, tsne.joint_probabilities(x, 3.0), theta=0.5)
    plain_kl, plain_sum = map(float, plain.stdout.split())
    np.testing.assert_allclose([plain_kl, plain_sum], [kl, g.sum()], rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("kwargs, argument", [
    (dict(perplexity=19.0), "perplexity"),
    (dict(perplexity=0.5), "perplexity"),
    (dict(n_iter=0), "n_iter"),
    (dict(exaggeration_iter=1500), "exaggeration_iter"),
    (dict(early_exaggeration=0.5), "early_exaggeration"),
    (dict(learning_rate=-1.0), "learning_rate"),
    (dict(theta=0.9), "theta"),
    (dict(metric="manhattan"), "metric"),
    (dict(init="random"), "init"),
    (dict(init=np.zeros((20, 3))), "init"),
    (dict(checkpoint_every=0), "checkpoint_every"),
])
def test_bad_arguments_name_themselves(rng, kwargs, argument):
    with pytest.raises(ValueError, match=rf"^{argument} "):
        tsne.tsne(rng.normal(size=(20, 3)), **{"perplexity": 5.0, **kwargs})


def test_bad_data_names_x(rng):
    x = rng.normal(size=(20, 3))
    x[3, 1] = np.nan
    with pytest.raises(ValueError, match="^x "):
        tsne.tsne(x, perplexity=5.0)
    with pytest.raises(ValueError, match="^x "):
        tsne.tsne(np.zeros(20), perplexity=5.0)
