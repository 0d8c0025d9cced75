"""t-SNE (van der Maaten & Hinton 2008) with Barnes-Hut repulsion, in numba.

    embedding, kl = tsne(x)                  # x: (n, d) -> (n, 2), KL(P || Q)

The recipe is scikit-learn's and openTSNE's defaults:

1. Affinities. Each point's 3 x perplexity nearest neighbours (exact,
   chunked) get p_j|i = exp(-beta_i d_ij) / sum, with beta_i found by
   bisection so that the row's perplexity exp(entropy) is 30. d is the
   squared euclidean distance, or the cosine distance for metric="cosine".
   P = (p_j|i + p_i|j) / (2n): sparse, about 3 x perplexity x n entries.
2. Start from the first two principal components, scaled to SD 1e-4.
3. Gradient descent on KL(P || Q), q_ij = w_ij / Z, w_ij = 1 / (1 + |y_i - y_j|^2):
       grad_i = 4 (sum_j p_ij w_ij (y_i - y_j) - sum_j w_ij^2 (y_i - y_j) / Z).
   The attraction runs over P's entries. The repulsion runs over all pairs;
   Barnes-Hut groups far points: a quadtree cell of side s whose centre of
   mass is at distance r acts as one point of the cell's weight if s / r <
   theta (0.5). theta = 0 gives the exact O(n^2) gradient.
   Early exaggeration (P x 12) for 250 iterations with momentum 0.5, then
   momentum 0.8; per-coordinate gains (+0.2 while the gradient keeps its
   sign, x 0.8 when it flips, at least 0.01; kept across the two phases, as
   in van der Maaten's reference code), learning rate max(n / 12 / 4, 50) as
   scikit-learn's "auto" (openTSNE's n / 12 without the gradient's factor 4).
4. The KL reported uses the Barnes-Hut estimate of Z, as scikit-learn's does.

A long run (70,000 points: minutes of neighbour search, then minutes of
descent) takes `checkpoint=PATH`: P is cached, the optimiser's state saved
every 50 iterations, and the same call resumes from the last save to the
very embedding of an uninterrupted run (see tsne()).

Threads: numba runs the per-point loops on NUMBA_NUM_THREADS threads (one
per core by default). Each point's sums are its own and are added up in a
fixed order, so the embedding is the same whatever the number of threads.
On a machine crowded with other work, 1 thread can be faster: every
iteration ends in a barrier that waits for all threads to be scheduled.

Memory grows linearly with n: the neighbour search holds a few thousand
distances per query row, P holds O(n) entries, the quadtree O(n) cells.
The kernels are plain Python functions jitted on a separate line; with
NUMBA_DISABLE_JIT=1 they run as Python (slowly: use tiny inputs).
"""
import numpy as np
from numba import njit, prange

from .probes import nearest_neighbours, prepare_metric, check_features
from .resumable import Resumable
from .fileio import digest

LEAF_SIZE = 4          # a quadtree leaf holds at most this many points (exact forces inside)
PERPLEXITY_TOL = 1e-5  # entropy tolerance of the bisection, in nats
PROGRESS_EVERY = 50    # iterations between callbacks


# ---------------------------------------------------------------- affinities

def _row_affinities(distances, target_entropy, out):
    """Bisect beta so that p = exp(-beta d) / sum has entropy target_entropy; p -> out."""
    shifted = distances - distances.min()  # shift-invariant; avoids exp underflow
    beta, beta_low, beta_high = 1.0, 0.0, np.inf
    for _ in range(200):
        weights = np.exp(-beta * shifted)
        total = weights.sum()
        entropy = np.log(total) + beta * (shifted * weights).sum() / total
        if abs(entropy - target_entropy) < PERPLEXITY_TOL:
            break
        if entropy > target_entropy:  # too flat: sharpen
            beta_low = beta
            beta = 2.0 * beta if beta_high == np.inf else 0.5 * (beta + beta_high)
        else:
            beta_high = beta
            beta = 0.5 * (beta + beta_low)
    out[:] = weights / total


def _conditional_affinities(distances, perplexity):
    """p_j|i for each row of distances (n, k) to the k nearest neighbours."""
    result = np.empty_like(distances)
    target = np.log(perplexity)
    for i in prange(distances.shape[0]):
        _row_affinities(distances[i], target, result[i])
    return result


def _neighbour_distances(x, neighbours):
    """|x_i - x_j|^2 for j in neighbours[i]: (n, k)."""
    n, k = neighbours.shape
    result = np.empty((n, k))
    for i in prange(n):
        for a in range(k):
            result[i, a] = np.sum((x[i] - x[neighbours[i, a]]) ** 2)
    return result


_row_affinities = njit(cache=True)(_row_affinities)
_conditional_affinities = njit(cache=True, parallel=True)(_conditional_affinities)
_neighbour_distances = njit(cache=True, parallel=True)(_neighbour_distances)


def _transpose_rows(neighbours, values, n):
    """CSR of the transpose of the (n, k) sparse matrix; each row's columns ascend."""
    indptr = np.zeros(n + 1, dtype=np.int64)
    for j in neighbours.ravel():
        indptr[j + 1] += 1
    indptr = np.cumsum(indptr)
    fill = indptr[:-1].copy()
    indices = np.empty(neighbours.size, dtype=np.int64)
    out = np.empty(neighbours.size)
    for i in range(neighbours.shape[0]):  # i ascends, so each transposed row is sorted
        for a in range(neighbours.shape[1]):
            j = neighbours[i, a]
            indices[fill[j]], out[fill[j]] = i, values[i, a]
            fill[j] += 1
    return indptr, indices, out


def _symmetrise(neighbours, values):
    """CSR (indptr, indices, data) of A + A^T, A the (n, k) sparse matrix, by
    merging each row's sorted columns with the transpose's sorted row."""
    n, k = neighbours.shape
    t_indptr, t_indices, t_values = _transpose_rows(neighbours, values, n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    indices = np.empty(2 * n * k, dtype=np.int64)
    data = np.empty(2 * n * k)
    at = 0
    for i in range(n):
        order = np.argsort(neighbours[i])
        a, b = 0, t_indptr[i]
        while a < k or b < t_indptr[i + 1]:
            col_a = neighbours[i, order[a]] if a < k else n
            col_b = t_indices[b] if b < t_indptr[i + 1] else n
            indices[at] = min(col_a, col_b)
            data[at] = 0.0
            if col_a <= col_b:
                data[at] += values[i, order[a]]
                a += 1
            if col_b <= col_a:
                data[at] += t_values[b]
                b += 1
            at += 1
        indptr[i + 1] = at
    return indptr, indices[:at].copy(), data[:at].copy()


_transpose_rows = njit(cache=True)(_transpose_rows)
_symmetrise = njit(cache=True)(_symmetrise)


def joint_probabilities(x, perplexity=30.0, metric="euclidean", label=None):
    """Sparse symmetric P of x: (n, d), as CSR (indptr, indices, data); data sums to 1.
    label: show the neighbour search's progress under this name (None: silent)."""
    points = prepare_metric(x, metric)
    k = min(len(x) - 1, int(3.0 * perplexity + 1))
    neighbours = nearest_neighbours(points, points, k, exclude_self=True, label=label)
    distances = _neighbour_distances(points, neighbours)
    if metric == "cosine":
        distances = 0.5 * distances  # unit rows: |a - b|^2 / 2 = 1 - cos(a, b)
    indptr, indices, data = _symmetrise(neighbours, _conditional_affinities(distances, perplexity))
    return indptr, indices, data / data.sum()


# ---------------------------------------------------------------- Barnes-Hut quadtree

def _build_quadtree(y, capacity, leaf_size):
    """Quadtree of points y: (n, 2), built by splitting cells into quadrants.

    Returns (order, start, end, first_child, side, centre_of_mass, n_cells):
    the points of cell c are order[start[c]:end[c]]; its children are cells
    first_child[c] .. first_child[c] + 3 (-1 for a leaf). n_cells = -1 when
    `capacity` cells were not enough.
    """
    n = y.shape[0]
    order = np.arange(n)
    scratch = np.empty(n, dtype=np.int64)
    start, end = np.zeros(capacity, np.int64), np.zeros(capacity, np.int64)
    first_child = np.full(capacity, -1, np.int64)
    corner, side, mass = np.zeros((capacity, 2)), np.zeros(capacity), np.zeros((capacity, 2))
    corner[0, 0], corner[0, 1] = y[:, 0].min(), y[:, 1].min()
    side[0] = max(y[:, 0].max() - corner[0, 0], y[:, 1].max() - corner[0, 1]) * (1.0 + 1e-9) + 1e-300
    end[0], n_cells = n, 1
    for c in range(capacity):  # cells are appended as they are split: a breadth-first walk
        if c == n_cells:
            break
        for p in range(start[c], end[c]):
            mass[c] += y[order[p]]
        if end[c] > start[c]:
            mass[c] /= end[c] - start[c]
        if end[c] - start[c] <= leaf_size or side[c] < 1e-10 * side[0]:
            continue  # a leaf (very deep cells hold coinciding points)
        if n_cells + 4 > capacity:
            return order, start, end, first_child, side, mass, -1
        _split(y, order, scratch, c, n_cells, start, end, corner, side)
        first_child[c] = n_cells
        n_cells += 4
    return order, start, end, first_child, side, mass, n_cells


def _split(y, order, scratch, c, child, start, end, corner, side):
    """Sort cell c's points into its four quadrants (a counting sort) as cells child..child+3."""
    half = 0.5 * side[c]
    counts = np.zeros(4, np.int64)
    quadrant = np.empty(end[c] - start[c], np.int64)
    for p in range(start[c], end[c]):
        q = int(y[order[p], 0] >= corner[c, 0] + half) + 2 * int(y[order[p], 1] >= corner[c, 1] + half)
        quadrant[p - start[c]] = q
        counts[q] += 1
    at = start[c]
    for q in range(4):
        start[child + q], end[child + q] = at, at + counts[q]
        corner[child + q, 0] = corner[c, 0] + half * (q % 2)
        corner[child + q, 1] = corner[c, 1] + half * (q // 2)
        side[child + q] = half
        at += counts[q]
    fill = start[child:child + 4].copy()
    for p in range(start[c], end[c]):
        q = quadrant[p - start[c]]
        scratch[fill[q]] = order[p]
        fill[q] += 1
    order[start[c]:end[c]] = scratch[start[c]:end[c]]


_split = njit(cache=True)(_split)
_build_quadtree = njit(cache=True)(_build_quadtree)


def build_quadtree(y, leaf_size=LEAF_SIZE):
    """_build_quadtree with enough cells (the capacity doubles until it fits)."""
    capacity = 8 * len(y) // leaf_size + 64
    while True:
        tree = _build_quadtree(y, capacity, leaf_size)
        if tree[-1] > 0:
            return tree
        capacity *= 2


def _repulsion_on(t, ys, tree, theta):
    """Point t's (in tree order; ys = y[order]) unnormalised repulsion
    sum_j w_tj^2 (y_t - y_j) and z_t = sum_j w_tj, as (fx, fy, z).

    A cell is used whole when side^2 < theta^2 * distance^2 to its centre of
    mass; otherwise its children are visited, and a leaf's points one by one.
    """
    order, start, end, first_child, side, mass, n_cells = tree
    stack = np.empty(256, np.int64)  # depth <= 34 (side > 1e-10 root): at most 3 x 34 + 4 open cells
    stack[0], top = 0, 1
    fx, fy, z = 0.0, 0.0, 0.0
    while top > 0:
        top -= 1
        c = stack[top]
        count = end[c] - start[c]
        if count == 0:
            continue
        dx, dy = ys[t, 0] - mass[c, 0], ys[t, 1] - mass[c, 1]
        d2 = dx * dx + dy * dy
        if first_child[c] >= 0 and side[c] * side[c] < theta * theta * d2:
            w = 1.0 / (1.0 + d2)
            z += count * w
            fx += count * w * w * dx
            fy += count * w * w * dy
        elif first_child[c] >= 0:
            for q in range(4):
                stack[top + q] = first_child[c] + q
            top += 4
        else:
            for p in range(start[c], end[c]):
                if p != t:
                    dx, dy = ys[t, 0] - ys[p, 0], ys[t, 1] - ys[p, 1]
                    w = 1.0 / (1.0 + dx * dx + dy * dy)
                    z += w
                    fx += w * w * dx
                    fy += w * w * dy
    return fx, fy, z


def _attraction_on(i, y, indptr, indices, data):
    """Point i's sum_j p_ij w_ij (y_i - y_j) over P's row i (CSR), as (fx, fy)."""
    fx, fy = 0.0, 0.0
    for e in range(indptr[i], indptr[i + 1]):
        j = indices[e]
        dx, dy = y[i, 0] - y[j, 0], y[i, 1] - y[j, 1]
        pw = data[e] / (1.0 + dx * dx + dy * dy)
        fx += pw * dx
        fy += pw * dy
    return fx, fy


def _forces(y, tree, theta, indptr, indices, data):
    """Attraction (n, 2), unnormalised repulsion (n, 2) and z (n,) of every point.

    One parallel loop per iteration (each one ends in a barrier that waits for
    every thread, which is slow on a busy machine). Points are visited in the
    tree's order: neighbours walk the same cells, which stay in the cache.
    """
    order = tree[0]
    n = y.shape[0]
    ys = np.empty((n, 2))
    for p in range(n):
        ys[p] = y[order[p]]
    attract, repel, z = np.empty((n, 2)), np.empty((n, 2)), np.empty(n)
    for t in prange(n):
        i = order[t]
        repel[i, 0], repel[i, 1], z[i] = _repulsion_on(t, ys, tree, theta)
        attract[i, 0], attract[i, 1] = _attraction_on(i, y, indptr, indices, data)
    return attract, repel, z


def _p_log_w(y, indptr, indices, data):
    """sum_ij p_ij log w_ij over P's entries, row by row: (n,)."""
    n = y.shape[0]
    result = np.zeros(n)
    for i in prange(n):
        for e in range(indptr[i], indptr[i + 1]):
            j = indices[e]
            dx, dy = y[i, 0] - y[j, 0], y[i, 1] - y[j, 1]
            result[i] -= data[e] * np.log1p(dx * dx + dy * dy)
    return result


_repulsion_on = njit(cache=True)(_repulsion_on)
_attraction_on = njit(cache=True)(_attraction_on)
_forces = njit(cache=True, parallel=True)(_forces)
_p_log_w = njit(cache=True, parallel=True)(_p_log_w)


def gradient(y, P, exaggeration=1.0, theta=0.5, with_kl=True):
    """(gradient of KL(exaggeration P || Q): (n, 2), KL(P || Q) or None) at y: (n, 2).

    P: CSR (indptr, indices, data) from joint_probabilities. Z, and hence the
    KL, come from the same Barnes-Hut sums as the repulsion (exact for theta = 0):
    KL = sum p log p - sum p log w + log Z, as sum p = 1.
    """
    attract, repel, z = _forces(y, build_quadtree(y), theta, *P)
    total_z = z.sum()
    grad = 4.0 * (exaggeration * attract - repel / total_z)
    if not with_kl:
        return grad, None
    data = P[2][P[2] > 0]
    return grad, float(np.sum(data * np.log(data)) - _p_log_w(y, *P).sum() + np.log(total_z))


# ---------------------------------------------------------------- optimisation

def pca_initialisation(x, sd=1e-4):
    """The first two principal components of x: (n, d), scaled so the first has SD sd: (n, 2).

    Each component's sign makes its largest loading positive (deterministic).
    """
    centred = x - x.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    components = components[:2]
    signs = np.sign(components[np.arange(2), np.abs(components).argmax(axis=1)])
    y = centred @ (components * signs[:, None]).T
    return y / y[:, 0].std() * sd


def _step(y, P, update, gains, lr, exaggeration, momentum, theta, with_kl):
    """One iteration of gradient descent with momentum and gains: (y, update, gains, KL at y or None)."""
    grad, kl = gradient(y, P, exaggeration, theta, with_kl=with_kl)
    # The last step and the new gradient agree in sign: the step went uphill
    # (overshot) along that coordinate, so its gain shrinks; otherwise it grows.
    same_sign = update * grad > 0
    gains = np.maximum(np.where(same_sign, gains * 0.8, gains + 0.2), 0.01)
    update = momentum * update - lr * gains * grad
    return y + update, update, gains, kl


def tsne(x, perplexity=30.0, n_iter=1000, early_exaggeration=12.0, exaggeration_iter=250,
         learning_rate="auto", theta=0.5, metric="euclidean", init="pca", callback=None,
         checkpoint=None, checkpoint_every=50, label=None):
    """t-SNE embedding of x: (n, d) -> ((n, 2) embedding, final KL(P || Q)).

    perplexity: in [1, n - 1). n_iter: total iterations, the first
    exaggeration_iter with P x early_exaggeration and momentum 0.5, the rest
    with P and momentum 0.8. learning_rate: > 0, or "auto" = max(n / 12 / 4, 50)
    (n / early_exaggeration / 4). theta: Barnes-Hut accuracy in [0, 0.7]
    (0: exact). metric: "euclidean" or "cosine". init: "pca" or an (n, 2)
    array. callback(iteration, kl, embedding) runs every 50 iterations; its
    kl is at the embedding before that iteration's step. label: show a
    progress line (iterations, KL) under this name.

    checkpoint: a path (folder/stem) for a long run that must survive an
    interruption. The affinities P are cached in stem-affinities-<hash>.ckpt.npz
    and the optimiser's state (embedding, velocity, gains, iteration) is saved
    every checkpoint_every iterations in stem-<hash>.ckpt.npz, atomically,
    each file under a hash of what it depends on (the data and every argument
    here but callback and label). The same call again continues from the last
    save, to exactly the embedding of an uninterrupted run; once finished, it
    does no descent at all. Inside resumable.stop_when, a requested stop ends
    the run with KeyboardInterrupt right after a save.
    """
    x = check_features("x", x)
    n = len(x)
    _check_tsne_arguments(n, perplexity, n_iter, early_exaggeration, exaggeration_iter,
                          learning_rate, theta, metric, checkpoint_every)
    init = _checked_init(x, init)
    lr = max(n / early_exaggeration / 4.0, 50.0) if learning_rate == "auto" else float(learning_rate)
    fingerprint = digest if checkpoint is not None else (lambda array: None)  # hashed only to name a checkpoint
    data = {"x": fingerprint(x), "perplexity": float(perplexity), "metric": metric}
    P = _affinities(x, perplexity, metric, checkpoint, data, None if label is None else f"{label}, neighbours")
    identity = {**data, "n_iter": int(n_iter), "early_exaggeration": float(early_exaggeration),
                "exaggeration_iter": int(exaggeration_iter), "learning_rate": lr, "theta": float(theta),
                "init": init if isinstance(init, str) else fingerprint(init)}
    state = {"y": None, "update": None, "gains": None}
    loop = Resumable(checkpoint, identity, state, int(n_iter), label)
    if loop.start == 0:
        y = pca_initialisation(x) if isinstance(init, str) else init
        state.update(y=y, update=np.zeros_like(y), gains=np.ones_like(y))
    for iteration in loop:
        early = iteration < exaggeration_iter
        report = (callback is not None or label is not None) and (iteration + 1) % PROGRESS_EVERY == 0
        y, update, gains, kl = _step(state["y"], P, state["update"], state["gains"], lr,
                                     early_exaggeration if early else 1.0, 0.5 if early else 0.8, theta, report)
        state.update(y=y, update=update, gains=gains)
        if report:
            loop.show(KL=kl)
            if callback is not None:
                callback(iteration + 1, kl, y)
        if checkpoint is not None and (iteration + 1) % checkpoint_every == 0:
            loop.checkpoint()
    return state["y"], gradient(state["y"], P, 1.0, theta)[1]


def _affinities(x, perplexity, metric, checkpoint, identity, label):
    """joint_probabilities(x), cached under `checkpoint`-affinities when a checkpoint is given."""
    if checkpoint is None:
        return joint_probabilities(x, perplexity, metric, label)
    state = {"indptr": None, "indices": None, "data": None}
    for _ in Resumable(f"{checkpoint}-affinities", identity, state, 1):
        state["indptr"], state["indices"], state["data"] = joint_probabilities(x, perplexity, metric, label)
    return state["indptr"], state["indices"], state["data"]


def _checked_init(x, init):
    """init as given ("pca"), or as a float64 copy of the (n, 2) array; ValueError otherwise."""
    if isinstance(init, str):
        if init != "pca":
            raise ValueError(f"init must be 'pca' or an (n, 2) array, got {init!r}")
        return init
    init = check_features("init", init)
    if init.shape != (len(x), 2):
        raise ValueError(f"init must have shape ({len(x)}, 2), got {init.shape}")
    return init.copy()


def _check_tsne_arguments(n, perplexity, n_iter, early_exaggeration, exaggeration_iter,
                          learning_rate, theta, metric, checkpoint_every):
    if n < 4:
        raise ValueError(f"x must have at least 4 rows, got {n}")
    if not 1 <= perplexity < n - 1:
        raise ValueError(f"perplexity must be in [1, n - 1) = [1, {n - 1}), got {perplexity}")
    if not (isinstance(n_iter, (int, np.integer)) and n_iter >= 1):
        raise ValueError(f"n_iter must be an integer >= 1, got {n_iter}")
    if not (isinstance(exaggeration_iter, (int, np.integer)) and 0 <= exaggeration_iter <= n_iter):
        raise ValueError(f"exaggeration_iter must be an integer in [0, n_iter = {n_iter}], got {exaggeration_iter}")
    if not early_exaggeration >= 1:
        raise ValueError(f"early_exaggeration must be >= 1, got {early_exaggeration}")
    if not (learning_rate == "auto" or (np.isscalar(learning_rate) and learning_rate > 0)):
        raise ValueError(f"learning_rate must be 'auto' or > 0, got {learning_rate!r}")
    if not 0 <= theta <= 0.7:
        raise ValueError(f"theta must be in [0, 0.7] (larger lets a cell hold the point itself), got {theta}")
    if metric not in ("euclidean", "cosine"):
        raise ValueError(f"metric must be 'euclidean' or 'cosine', got {metric!r}")
    if not (isinstance(checkpoint_every, (int, np.integer)) and checkpoint_every >= 1):
        raise ValueError(f"checkpoint_every must be an integer >= 1, got {checkpoint_every!r}")
