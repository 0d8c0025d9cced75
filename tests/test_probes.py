"""kNN, the linear probe and trustworthiness against hand-made cases and brute force."""
import collections

import numpy as np
import pytest

from mnist1d_np import probes


# ---------------------------------------------------------------- kNN

def test_knn_known_neighbours():
    train_x = np.array([[0.0], [1.0], [2.0], [10.0], [11.0]])
    train_y = np.array([0, 0, 1, 1, 1])
    np.testing.assert_array_equal(probes.knn_predict(train_x, train_y, np.array([[0.4], [10.2]]), k=3), [0, 1])
    assert probes.knn_accuracy(train_x, train_y, np.array([[0.4], [10.2]]), np.array([0, 0]), k=3) == 0.5


def test_knn_label_tie_goes_to_the_smallest_label():
    # Two neighbours, one vote each: label 3 wins though label 5 is nearer.
    train_x, train_y = np.array([[0.0], [1.0]]), np.array([5, 3])
    assert probes.knn_predict(train_x, train_y, np.array([[0.1]]), k=2)[0] == 3
    assert probes.knn_predict(train_x, train_y, np.array([[0.1]]), k=1)[0] == 5


def test_equidistant_neighbours_are_ordered_by_index():
    points = np.array([[3.0], [1.0], [-1.0], [5.0]])
    np.testing.assert_array_equal(probes.nearest_neighbours(np.array([[0.0]]), points, 2), [[1, 2]])
    np.testing.assert_array_equal(probes.nearest_neighbours(np.array([[2.0]]), points, 2), [[0, 1]])


def test_cosine_ignores_length():
    train_x, train_y = np.array([[10.0, 0.0], [0.0, 1.0]]), np.array([0, 1])
    test_x = np.array([[3.0, 0.5]])  # nearer to (0, 1), but at a small angle to (10, 0)
    assert probes.knn_predict(train_x, train_y, test_x, k=1)[0] == 1
    assert probes.knn_predict(train_x, train_y, test_x, k=1, metric="cosine")[0] == 0


def naive_knn_predict(train_x, train_y, test_x, k):
    predictions = []
    for q in test_x:
        order = np.argsort(((train_x - q) ** 2).sum(axis=1), kind="stable")[:k]
        votes = collections.Counter(train_y[order].tolist())
        top = max(votes.values())
        predictions.append(min(label for label, count in votes.items() if count == top))
    return np.array(predictions)


@pytest.mark.parametrize("chunk", [7, probes.CHUNK_ELEMENTS])
def test_knn_matches_brute_force_with_many_ties(rng, monkeypatch, chunk):
    monkeypatch.setattr(probes, "CHUNK_ELEMENTS", chunk)
    train_x = rng.integers(0, 3, size=(60, 2)).astype(float)  # many equal distances
    train_y, test_x = rng.integers(0, 4, size=60), rng.integers(0, 3, size=(25, 2)).astype(float)
    for k in (1, 4, 10, 60):
        np.testing.assert_array_equal(probes.knn_predict(train_x, train_y, test_x, k),
                                      naive_knn_predict(train_x, train_y, test_x, k))


# ---------------------------------------------------------------- linear probe

def test_softmax_objective_gradient_matches_finite_differences(rng):
    x, onehot = rng.normal(size=(7, 3)), np.eye(4)[rng.integers(0, 4, size=7)]
    theta, eps = rng.normal(size=(3 + 1) * 4), 1e-6
    _, analytic = probes.softmax_objective(theta, x, onehot, C=0.7)
    numeric = np.array([(probes.softmax_objective(theta + eps * e, x, onehot, 0.7)[0]
                         - probes.softmax_objective(theta - eps * e, x, onehot, 0.7)[0]) / (2 * eps)
                        for e in np.eye(len(theta))])
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def two_class_minimum(z, y, C):
    """Brute force: with 2 classes the optimum has W = (-w/2, w/2), so the
    objective is sum_i log(1 + exp(-s_i (w z_i + c))) + w^2 / (4C), s = +-1.
    Minimised over (w, c) by a grid that zooms in on its best cell."""
    s = 2.0 * y - 1.0
    centre, half = np.zeros(2), 30.0
    for _ in range(40):
        w, c = np.meshgrid(*(np.linspace(m - half, m + half, 41) for m in centre), indexing="ij")
        margins = s[:, None, None] * (w[None] * z[:, None, None] + c[None])
        values = np.logaddexp(0.0, -margins).sum(axis=0) + w ** 2 / (4 * C)
        best = np.unravel_index(values.argmin(), values.shape)
        centre, half = np.array([w[best], c[best]]), half / 4
    return values.min()


@pytest.mark.parametrize("x, y", [
    ([-2.0, -1.0, 1.0, 2.0, 3.0], [0, 0, 1, 1, 1]),            # separable
    ([-2.0, -1.0, 0.5, 1.0, 2.0, -0.5], [0, 0, 0, 1, 1, 1]),   # not separable
])
@pytest.mark.parametrize("C", [0.3, 1.0, 10.0])
def test_probe_reaches_the_brute_force_optimum(x, y, C):
    x, y = np.array(x)[:, None], np.array(y)
    fit = probes.linear_probe(x, y, x, y, C=C, tol=1e-10)
    z, _ = probes.standardise(x, x)
    assert fit["converged"] and fit["grad_norm"] <= 1e-10 * len(x)
    np.testing.assert_allclose(fit["objective"], two_class_minimum(z[:, 0], y, C), rtol=1e-9)


def test_probe_on_separable_data_is_perfect(rng):
    centres = np.array([[0.0, 5.0], [5.0, 0.0], [-5.0, -5.0]])
    y = np.repeat(np.arange(3), 20)
    x = centres[y] + rng.normal(size=(60, 2))
    fit = probes.linear_probe(x, y, x, y)
    assert fit["accuracy"] == 1.0 and fit["converged"] and fit["iterations"] > 0


def test_lbfgs_minimises_a_quadratic():
    a = np.diag([1.0, 10.0, 100.0])
    fit = probes.lbfgs(lambda v: (0.5 * v @ a @ v - v.sum(), a @ v - 1.0), np.zeros(3), gtol=1e-12)
    np.testing.assert_allclose(fit["x"], 1.0 / np.diag(a), rtol=1e-10)


# ---------------------------------------------------------------- trustworthiness

def naive_trustworthiness(x, embedding, k):
    n = len(x)
    dx = ((x[:, None] - x[None]) ** 2).sum(axis=2)
    de = ((embedding[:, None] - embedding[None]) ** 2).sum(axis=2)
    penalty = 0
    for i in range(n):
        rank = np.empty(n, dtype=int)
        rank[np.argsort(dx[i], kind="stable")] = np.arange(n)  # self has rank 0
        neighbours = [j for j in np.argsort(de[i], kind="stable") if j != i][:k]
        penalty += sum(max(0, rank[j] - k) for j in neighbours)
    return 1 - 2 / (n * k * (2 * n - 3 * k - 1)) * penalty


def naive_penalties(x, embedding, k):
    """Each point's sum over its k embedding neighbours of max(0, rank in x - k), by sorting."""
    n = len(x)
    dx = ((x[:, None] - x[None]) ** 2).sum(axis=2)
    de = ((embedding[:, None] - embedding[None]) ** 2).sum(axis=2)
    penalties = np.zeros(n, dtype=int)
    for i in range(n):
        others = [p for p in range(n) if p != i]
        neighbours = [j for j in np.argsort(de[i], kind="stable") if j != i][:k]
        for j in neighbours:
            rank = 1 + sum(dx[i, p] < dx[i, j] for p in others)  # 1 + the other points strictly nearer
            penalties[i] += max(0, rank - k)
    return penalties


@pytest.mark.parametrize("chunk", [300, probes.CHUNK_ELEMENTS])
def test_trustworthiness_over_some_points_is_their_share_of_the_sum(rng, monkeypatch, chunk):
    monkeypatch.setattr(probes, "CHUNK_ELEMENTS", chunk)
    n, k = 45, 4
    x = rng.integers(0, 3, size=(n, 3)).astype(float)          # many equal distances in x ...
    embedding = rng.integers(0, 4, size=(n, 2)).astype(float)  # ... and coinciding points in the embedding
    penalties = naive_penalties(x, embedding, k)
    for points in (rng.choice(n, 12, replace=False), np.array([7]), np.arange(n)[::-1]):
        expected = 1 - 2 / (len(points) * k * (2 * n - 3 * k - 1)) * penalties[points].sum()
        assert probes.trustworthiness(x, embedding, k, points=points) == pytest.approx(expected, rel=1e-12)
    whole = probes.trustworthiness(x, embedding, k)
    assert whole == probes.trustworthiness(x, embedding, k, points=rng.permutation(n))
    assert whole == pytest.approx(1 - 2 / (n * k * (2 * n - 3 * k - 1)) * penalties.sum(), rel=1e-12)


def test_a_point_among_coinciding_ones_has_the_same_neighbours_either_way():
    # Points 0, 1 and 2 coincide: point 2's nearest are 0 and 1 (by index), itself excluded.
    embedding = np.array([[0.0, 0], [0, 0], [0, 0], [1, 0], [5, 5]])
    every = probes.nearest_neighbours(embedding, embedding, 2, exclude_self=True)
    some = probes._neighbours_of(np.array([2, 0, 4]), embedding, 2)
    np.testing.assert_array_equal(some, every[[2, 0, 4]])
    np.testing.assert_array_equal(some[0], [0, 1])


def test_trustworthiness_of_identity_is_one(rng):
    x = rng.normal(size=(50, 5))
    assert probes.trustworthiness(x, x, k=5) == 1.0
    assert probes.trustworthiness(x, 3.0 * x + 1.0, k=10) == 1.0


def test_trustworthiness_matches_its_definition(rng, monkeypatch):
    monkeypatch.setattr(probes, "CHUNK_ELEMENTS", 500)
    x, embedding = rng.normal(size=(40, 6)), rng.normal(size=(40, 2))
    value = probes.trustworthiness(x, embedding, k=4)
    np.testing.assert_allclose(value, naive_trustworthiness(x, embedding, 4), rtol=1e-12)
    assert 0.3 < value < 0.8  # a random embedding: about 0.5


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("call, argument", [
    (lambda x, y: probes.knn_accuracy(x, y[:-1], x, y), "train_y"),
    (lambda x, y: probes.knn_accuracy(x, y, x[:, :2], y), "test_x"),
    (lambda x, y: probes.knn_accuracy(x, y, x, y, k=21), "k"),
    (lambda x, y: probes.knn_accuracy(x, y, x, y, k=0), "k"),
    (lambda x, y: probes.knn_accuracy(x, y, x, y, metric="manhattan"), "metric"),
    (lambda x, y: probes.knn_accuracy(np.where(x > 1, np.nan, x), y, x, y), "train_x"),
    (lambda x, y: probes.linear_probe(x, y, x, y[:5]), "test_y"),
    (lambda x, y: probes.linear_probe(x, y, x, y, C=0), "C"),
    (lambda x, y: probes.linear_probe(x, np.zeros_like(y), x, y), "train_y"),
    (lambda x, y: probes.linear_probe(x[0], y, x, y), "train_x"),
    (lambda x, y: probes.trustworthiness(x, x[:-1]), "embedding"),
    (lambda x, y: probes.trustworthiness(x, x, k=10), "k"),
    (lambda x, y: probes.trustworthiness(x, np.full_like(x, np.inf)), "embedding"),
    (lambda x, y: probes.trustworthiness(x, x, k=3, points=np.array([0, 20])), "points"),
    (lambda x, y: probes.trustworthiness(x, x, k=3, points=np.array([3, 3])), "points"),
    (lambda x, y: probes.trustworthiness(x, x, k=3, points=np.array([0.5])), "points"),
])
def test_bad_input_names_the_argument(rng, call, argument):
    x, y = rng.normal(size=(20, 3)), np.arange(20) % 2
    with pytest.raises(ValueError, match=rf"^{argument} "):
        call(x, y)
