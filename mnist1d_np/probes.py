"""Probes: how much of the class is readable from a representation?

Two classic read-outs, and one measure of what an embedding keeps:

- `knn_accuracy`: a k-nearest-neighbour vote (euclidean or cosine distance),
  with scikit-learn's KNeighborsClassifier tie rule: among labels tied for
  the most votes, the smallest wins.
- `linear_probe`: standardise with the training mean and SD, then fit a
  multinomial logistic regression with an unpenalised intercept by
  minimising  sum_i cross_entropy_i + ||W||^2 / (2C)  with L-BFGS (written
  here). That is scikit-learn's LogisticRegression(C) objective, so at
  convergence the accuracies agree with it.
- `trustworthiness`: how many of each point's k embedding neighbours are
  intruders from far away in the original space (1: none, about 0.5: random).

Distances are computed in chunks of rows, so a 50000 x 1000 problem never
holds its whole distance matrix in memory.
"""
import numpy as np
from numba import njit, prange

from .progress import Progress

CHUNK_ELEMENTS = 4_000_000  # distances held at once (32 MB in float64)


# ---------------------------------------------------------------- checks

def check_features(name, x):
    """x as a float64 (samples, features) array, or a ValueError naming it."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (samples, features), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return x


def _check_labels(name, y, n):
    y = np.asarray(y)
    if y.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match its features, got {y.shape}")
    return y


def _check_pair(train_x, train_y, test_x, test_y):
    """Validated float64 features and labels of a train/test problem."""
    train_x, test_x = check_features("train_x", train_x), check_features("test_x", test_x)
    if train_x.shape[1] != test_x.shape[1]:
        raise ValueError(f"test_x must have {train_x.shape[1]} features like train_x, got {test_x.shape[1]}")
    train_y = _check_labels("train_y", train_y, len(train_x))
    test_y = _check_labels("test_y", test_y, len(test_x))
    return train_x, train_y, test_x, test_y


def _check_metric(metric):
    if metric not in ("euclidean", "cosine"):
        raise ValueError(f"metric must be 'euclidean' or 'cosine', got {metric!r}")


# ---------------------------------------------------------------- distances

def _unit_rows(x):
    """Rows scaled to length 1 (zero rows stay zero: distance 1 to everything)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def prepare_metric(x, metric):
    """Rows to compare with squared euclidean distances: x itself, or unit rows
    for cosine (|a - b|^2 / 2 = 1 - cos(a, b) when |a| = |b| = 1)."""
    _check_metric(metric)
    return _unit_rows(x) if metric == "cosine" else x


def squared_distances(a, b, b_squared_norms=None):
    """|a_i - b_j|^2: (len(a), len(b)), by |a|^2 - 2 a.b + |b|^2, clipped at 0."""
    if b_squared_norms is None:
        b_squared_norms = np.einsum("ij,ij->i", b, b)
    d = np.einsum("ij,ij->i", a, a)[:, None] - 2.0 * (a @ b.T) + b_squared_norms[None, :]
    return np.maximum(d, 0.0, out=d)


def row_chunks(n_rows, n_columns):
    """Slices of rows such that each chunk holds about CHUNK_ELEMENTS distances."""
    size = max(1, CHUNK_ELEMENTS // max(n_columns, 1))
    return [slice(start, min(start + size, n_rows)) for start in range(0, n_rows, size)]


def nearest_neighbours(queries, points, k, exclude_self=False, label=None):
    """Indices (len(queries), k) of each query's k nearest points, nearest first.

    Equal distances are ordered by index. exclude_self: queries are points
    (the same array), and each point is not its own neighbour. label: show
    a progress line (rows searched) under this name.
    """
    point_norms = np.einsum("ij,ij->i", points, points)
    result = np.empty((len(queries), k), dtype=np.int64)
    bar = None if label is None else Progress(len(queries), label)
    for rows in row_chunks(len(queries), len(points)):
        self_column = rows.start if exclude_self else -len(points) - len(queries)
        _k_smallest(queries[rows] @ points.T, point_norms, self_column, result[rows])
        if bar is not None:
            bar.update(rows.stop - rows.start)
    return result


def _k_smallest(inner, point_norms, self_column, out):
    """out[r]: the k = out.shape[1] points nearest to query r, by (distance, index).

    |q - p|^2 = |q|^2 - 2 q.p + |p|^2, and |q|^2 is the same for the whole
    row, so ranking |p|^2 - 2 q.p is enough (inner[r, j] = q_r.p_j). Column
    r + self_column is skipped. One pass per row keeps the best k so far in
    a sorted list; a later entry must be strictly smaller to enter and
    inserts after equal ones, so ties go to the smaller index. Few entries
    enter, so this costs about one comparison per entry.
    """
    k = out.shape[1]
    for r in prange(inner.shape[0]):
        best = np.full(k, np.inf)
        for j in range(inner.shape[1]):
            value = point_norms[j] - 2.0 * inner[r, j]
            if value < best[k - 1] and j != r + self_column:
                p = k - 1
                while p > 0 and best[p - 1] > value:
                    best[p], out[r, p] = best[p - 1], out[r, p - 1]
                    p -= 1
                best[p], out[r, p] = value, j


_k_smallest = njit(cache=True, parallel=True)(_k_smallest)


# ---------------------------------------------------------------- kNN

def knn_predict(train_x, train_y, test_x, k=10, metric="euclidean"):
    """Majority vote of the k nearest training points: (len(test_x),) labels.

    Ties between labels go to the smallest label (scikit-learn's rule).
    """
    classes, codes = np.unique(train_y, return_inverse=True)
    neighbours = nearest_neighbours(prepare_metric(test_x, metric), prepare_metric(train_x, metric), k)
    votes = np.zeros((len(test_x), len(classes)), dtype=np.int64)
    np.add.at(votes, (np.arange(len(test_x))[:, None], codes[neighbours]), 1)
    return classes[votes.argmax(axis=1)]  # argmax takes the first, i.e. smallest, label


def knn_accuracy(train_x, train_y, test_x, test_y, k=10, metric="euclidean"):
    """Accuracy in [0, 1] of the k-nearest-neighbour classifier.

    train_x: (n, d), train_y: (n,), test_x: (m, d), test_y: (m,).
    k: 1 <= k <= n. metric: 'euclidean' or 'cosine'.
    """
    train_x, train_y, test_x, test_y = _check_pair(train_x, train_y, test_x, test_y)
    _check_metric(metric)
    if not 1 <= int(k) <= len(train_x):
        raise ValueError(f"k must be in [1, {len(train_x)}] (the training set's size), got {k}")
    return float(np.mean(knn_predict(train_x, train_y, test_x, int(k), metric) == test_y))


# ---------------------------------------------------------------- linear probe

def standardise(train_x, test_x):
    """Both scaled by the training mean and SD (a constant feature keeps SD 1)."""
    mean, sd = train_x.mean(axis=0), train_x.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return (train_x - mean) / sd, (test_x - mean) / sd


def softmax_objective(theta, x, onehot, C):
    """(objective, gradient) of multinomial logistic regression.

    theta: flat ((d + 1) * K,): W (d, K) then the intercept b (K,).
    objective = sum_i -log softmax(x_i W + b)[y_i] + ||W||^2 / (2C).
    """
    d, k = x.shape[1], onehot.shape[1]
    w, b = theta[:d * k].reshape(d, k), theta[d * k:]
    logits = x @ w + b
    logits -= logits.max(axis=1, keepdims=True)  # exp cannot overflow
    exp = np.exp(logits)
    norm = exp.sum(axis=1, keepdims=True)
    loss = np.sum(np.log(norm[:, 0]) - np.einsum("ik,ik->i", logits, onehot)) + np.sum(w * w) / (2 * C)
    residual = exp / norm - onehot  # softmax - onehot
    grad_w = x.T @ residual + w / C
    return loss, np.concatenate([grad_w.ravel(), residual.sum(axis=0)])


def linear_probe(train_x, train_y, test_x, test_y, C=1.0, tol=1e-6, max_iter=2000):
    """Standardised multinomial logistic regression; its test accuracy.

    train_x: (n, d), train_y: (n,), test_x: (m, d), test_y: (m,); C > 0.
    Converged when the largest gradient entry is below tol * n (the gradient
    of the mean loss below tol). Returns {'accuracy', 'train_accuracy',
    'iterations', 'grad_norm' (final gradient's max-norm), 'objective',
    'converged'}.
    """
    train_x, train_y, test_x, test_y = _check_pair(train_x, train_y, test_x, test_y)
    if not C > 0:
        raise ValueError(f"C must be > 0, got {C}")
    classes, codes = np.unique(train_y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"train_y must hold at least 2 classes, got {len(classes)}")
    train_z, test_z = standardise(train_x, test_x)
    onehot = np.eye(len(classes))[codes]
    objective = lambda theta: softmax_objective(theta, train_z, onehot, C)
    theta0 = np.zeros((train_z.shape[1] + 1) * len(classes))
    fit = lbfgs(objective, theta0, gtol=tol * len(train_z), max_iter=max_iter)
    w = fit["x"][:-len(classes)].reshape(-1, len(classes))
    b = fit["x"][-len(classes):]
    accuracy = lambda z, y: float(np.mean(classes[(z @ w + b).argmax(axis=1)] == y))
    return {"accuracy": accuracy(test_z, test_y), "train_accuracy": accuracy(train_z, train_y),
            "iterations": fit["iterations"], "grad_norm": fit["grad_norm"],
            "objective": fit["f"], "converged": fit["converged"]}


# ---------------------------------------------------------------- L-BFGS

def lbfgs(fun, x0, gtol=1e-6, max_iter=1000, memory=10):
    """Minimise fun (x -> (f, gradient)) from x0 by L-BFGS with a Wolfe line search.

    Stops when max|gradient| <= gtol. Returns {'x', 'f', 'grad_norm',
    'iterations', 'converged'}.
    """
    x = np.array(x0, dtype=np.float64)
    f, g = fun(x)
    pairs, iteration = [], 0
    while np.max(np.abs(g)) > gtol and iteration < max_iter:
        direction = -_two_loop(g, pairs)
        if g @ direction >= 0:  # not a descent direction: restart from steepest descent
            pairs, direction = [], -g
        step = 1.0 if pairs else min(1.0, 1.0 / np.max(np.abs(g)))
        step, f_new, g_new = wolfe_line_search(fun, x, f, g, direction, step)
        if step == 0.0:
            break
        s, yv = step * direction, g_new - g
        if s @ yv > 1e-10 * np.sqrt((s @ s) * (yv @ yv)):  # keep the curvature pairs positive
            pairs = (pairs + [(s, yv)])[-memory:]
        x, f, g, iteration = x + s, f_new, g_new, iteration + 1
    grad_norm = float(np.max(np.abs(g)))
    return {"x": x, "f": float(f), "grad_norm": grad_norm, "iterations": iteration,
            "converged": grad_norm <= gtol}


def _two_loop(g, pairs):
    """H g for the L-BFGS inverse-Hessian estimate H built from (s, y) pairs."""
    q, alphas = g.copy(), []
    for s, y in reversed(pairs):
        alpha = (s @ q) / (y @ s)
        q -= alpha * y
        alphas.append(alpha)
    if pairs:
        s, y = pairs[-1]
        q *= (s @ y) / (y @ y)  # scale to the most recent curvature
    for (s, y), alpha in zip(pairs, reversed(alphas)):
        q += s * (alpha - (y @ q) / (y @ s))
    return q


def wolfe_line_search(fun, x, f, g, direction, step, c1=1e-4, c2=0.9, max_evals=40):
    """A step satisfying the strong Wolfe conditions, by bracketing and bisection
    (Nocedal & Wright, Algorithm 3.5 with a bisecting zoom). `low` is always
    a step with sufficient decrease and a downhill slope, `high` one past the
    minimum, so bisecting [low, high] closes in on a Wolfe step. Close to the
    optimum f changes by less than its rounding error; there a flat slope and
    no rise beyond rounding suffice (Hager & Zhang's approximate Wolfe test).

    Returns (step, f(x + step d), gradient there), or (0, f, g) if none was found.
    """
    slope0 = g @ direction
    low, high = 0.0, np.inf
    f_low, f_noise = f, 1e-13 * abs(f)
    for _ in range(max_evals):
        f_new, g_new = fun(x + step * direction)
        slope = g_new @ direction
        decrease = f_new <= f + c1 * step * slope0 or abs(f_new - f) <= f_noise
        if decrease and abs(slope) <= -c2 * slope0:
            return step, f_new, g_new
        if not decrease or f_new >= f_low or slope > 0:
            high = step  # too far, or past the minimum along d: it lies in [low, step]
        else:
            low, f_low = step, f_new  # still descending: look further
        step = 0.5 * (low + high) if np.isfinite(high) else 2.0 * step
    return 0.0, f, g


# ---------------------------------------------------------------- trustworthiness

def trustworthiness(x, embedding, k=10, metric="euclidean", points=None):
    """Trustworthiness in [0, 1] of an embedding (Venna & Kaski 2001).

    x: (n, d) original points; embedding: (n, e); 1 <= k < n / 2.
    T = 1 - 2 / (n k (2n - 3k - 1)) * sum_i sum_{j in N_k(i)} max(0, r(i, j) - k),
    N_k(i): i's k nearest neighbours in the embedding, r(i, j): j's rank
    (1 = nearest) among i's neighbours in x. Ranks count the points strictly
    nearer, so exact distance ties never count as intrusions.

    points: None (every i), or the indices (m,) of the points i to sum over,
    with n replaced by m before the sum: an unbiased estimate of T from m
    points, each still ranked among all n. It costs m / n of the whole
    (whose distances, n^2 d multiply-adds, are the bulk at n = 70000).
    """
    x, embedding = check_features("x", x), check_features("embedding", embedding)
    n = len(x)
    if len(embedding) != n:
        raise ValueError(f"embedding must have {n} rows like x, got {len(embedding)}")
    if not 1 <= int(k) < n / 2:
        raise ValueError(f"k must be in [1, n / 2) = [1, {n / 2:g}), got {k}")
    k, x = int(k), prepare_metric(x, metric)
    if points is None:
        queries = np.arange(n)
        neighbours = nearest_neighbours(embedding, embedding, k, exclude_self=True)
    else:
        queries = _checked_points(points, n)
        neighbours = _neighbours_of(queries, embedding, k)
    x_norms = np.einsum("ij,ij->i", x, x)
    penalty = 0
    # A few query rows at a time: their distances to all n points, then the rank of each
    # embedding neighbour among them (points strictly nearer, self included: -inf).
    # Sized for the (rows, k, n) comparison; at least 64 rows, so that at n = 70000 the distance
    # products stay large enough to run at speed (5 rows at a time ran 4x slower there).
    size = max(64, CHUNK_ELEMENTS // (n * (k + 1)))
    for rows in (slice(start, min(start + size, len(queries))) for start in range(0, len(queries), size)):
        chunk = queries[rows]
        d = squared_distances(x[rows] if points is None else x[chunk], x, x_norms)  # a slice where it can be
        d[np.arange(len(chunk)), chunk] = -np.inf
        to_neighbour = np.take_along_axis(d, neighbours[rows], axis=1)
        ranks = (d[:, None, :] < to_neighbour[:, :, None]).sum(axis=2)
        penalty += int(np.maximum(ranks - k, 0).sum())
    m = len(queries)
    return 1.0 - 2.0 / (m * k * (2.0 * n - 3.0 * k - 1.0)) * penalty


def _checked_points(points, n):
    points = np.asarray(points)
    if points.ndim != 1 or len(points) == 0 or points.dtype.kind not in "iu":
        raise ValueError(f"points must be a non-empty 1-D array of indices, got {points.dtype} {points.shape}")
    if points.min() < 0 or points.max() >= n or len(np.unique(points)) != len(points):
        raise ValueError(f"points must be distinct indices in [0, {n - 1}]")
    return points.astype(np.int64)


def _neighbours_of(queries, embedding, k):
    """Each query point's k nearest other points in the embedding: (len(queries), k), as
    nearest_neighbours(..., exclude_self=True) gives them: the k + 1 nearest with the point
    itself taken out (or, if k + 1 points lie at distance 0 before it, the last one)."""
    nearest = nearest_neighbours(embedding[queries], embedding, k + 1)
    is_self = nearest == queries[:, None]
    drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k)
    keep = np.arange(k + 1)[None, :] != drop[:, None]
    return nearest[keep].reshape(len(queries), k)
