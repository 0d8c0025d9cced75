"""Pruning masks, masked training, sparse kernels and adjacency."""

import numpy as np
import pytest

from mnist1d_np import Tensor, data, grad, nn, ops, pruning, sparse_linear, train
from mnist1d_np.gradcheck import check_grad


def small_mlp_params(hidden=12, seed=0, dtype=np.float64):
    model = nn.MLP(np.random.default_rng(seed), hidden=hidden, dtype=dtype)
    return model, {name: p.data.copy() for name, p in model.parameters().items()}


@pytest.fixture(scope="module")
def small_dataset():
    return data.make_dataset(data.get_dataset_args(num_samples=500))


# ---------------------------------------------------------------- masks

@pytest.mark.parametrize("sparsity", [0.0, 0.13, 0.5, 0.919, 1.0])
def test_layer_masks_drop_exactly_int_sparsity_n_per_layer(sparsity):
    _, params = small_mlp_params()
    masks = pruning.magnitude_masks(params, sparsity)
    assert list(masks) == list(params)
    for layer in ("linear1", "linear2", "linear3"):
        n = params[f"{layer}.weight"].size + params[f"{layer}.bias"].size
        dropped = sum(int((~masks[f"{layer}.{k}"]).sum()) for k in ("weight", "bias"))
        assert dropped == int(sparsity * n)


def test_global_masks_drop_exactly_int_sparsity_n_overall_and_rank_all_layers_together():
    _, params = small_mlp_params()
    masks = pruning.magnitude_masks(params, 0.7, scope="global")
    total = sum(p.size for p in params.values())
    assert sum(int((~m).sum()) for m in masks.values()) == int(0.7 * total)
    kept = np.concatenate([np.abs(params[n][masks[n]]) for n in params])
    dropped = np.concatenate([np.abs(params[n][~masks[n]]) for n in params])
    assert kept.min() >= dropped.max()
    # Layers differ in scale (1/sqrt(fan_in)), so global and layer-wise masks differ.
    per_layer = pruning.magnitude_masks(params, 0.7)
    assert any((per_layer[n] != masks[n]).any() for n in params)


def test_layer_masks_drop_the_smallest_magnitudes_weight_and_bias_together():
    _, params = small_mlp_params()
    masks = pruning.magnitude_masks(params, 0.6)
    for layer in ("linear1", "linear2", "linear3"):
        names = (f"{layer}.weight", f"{layer}.bias")
        kept = np.concatenate([np.abs(params[n][masks[n]]) for n in names])
        dropped = np.concatenate([np.abs(params[n][~masks[n]]) for n in names])
        assert kept.min() >= dropped.max()


def test_ties_are_broken_stably_so_zeros_go_first_in_parameter_order():
    params = {"a.weight": np.array([[0.5, 0.0], [0.0, 0.5]]), "a.bias": np.array([0.5, 0.0])}
    masks = pruning.magnitude_masks(params, 0.5)  # drop int(0.5 * 6) = 3: the three zeros
    assert masks["a.weight"].tolist() == [[True, False], [False, True]]
    assert masks["a.bias"].tolist() == [True, False]
    equal = {"a.weight": np.ones((2, 2)), "a.bias": np.ones(2)}
    masks = pruning.magnitude_masks(equal, 0.5)  # all tied: the first three in order
    assert masks["a.weight"].tolist() == [[False, False], [False, True]]
    assert masks["a.bias"].tolist() == [True, True]


def test_random_masks_have_the_same_counts_and_follow_the_generator():
    _, params = small_mlp_params()
    shapes = {n: p.shape for n, p in params.items()}
    a = pruning.random_masks(shapes, 0.8, np.random.default_rng(3))
    b = pruning.random_masks(shapes, 0.8, np.random.default_rng(3))
    c = pruning.random_masks(shapes, 0.8, np.random.default_rng(4))
    magnitude = pruning.magnitude_masks(params, 0.8)
    for n in params:
        assert a[n].shape == params[n].shape and np.array_equal(a[n], b[n])
    for layer in ("linear1", "linear2", "linear3"):
        count = lambda m: sum(int(m[f"{layer}.{k}"].sum()) for k in ("weight", "bias"))
        assert count(a) == count(magnitude)
    assert any((a[n] != c[n]).any() for n in params)


@pytest.mark.parametrize("bad", [-0.01, 1.01, float("nan"), "0.5", None])
def test_bad_sparsity_raises_a_value_error_naming_it(bad):
    _, params = small_mlp_params()
    with pytest.raises(ValueError, match=r"sparsity must be a number in \[0, 1\]"):
        pruning.magnitude_masks(params, bad)
    with pytest.raises(ValueError, match="sparsity"):
        pruning.random_masks({n: p.shape for n, p in params.items()}, bad, np.random.default_rng(0))


def test_unknown_scope_and_mismatched_masks_raise_value_errors():
    model, params = small_mlp_params()
    with pytest.raises(ValueError, match=r"scope must be one of \('layer', 'global'\)"):
        pruning.magnitude_masks(params, 0.5, scope="unit")
    masks = pruning.magnitude_masks(params, 0.5)
    masks["linear2.weight"] = masks["linear2.weight"][:, :-1]
    with pytest.raises(ValueError, match=r"masks\['linear2.weight'\] has shape \(12, 11\)"):
        pruning.prune(model, masks)
    assert np.array_equal(model.linear2.weight.data, params["linear2.weight"])  # nothing pruned


def test_masks_survive_json_packing():
    _, params = small_mlp_params()
    masks = pruning.magnitude_masks(params, 0.37)
    back = pruning.masks_from_json(pruning.masks_to_json(masks))
    assert list(back) == list(masks) and all(np.array_equal(back[n], masks[n]) for n in masks)


# ---------------------------------------------------------------- pruned models, trained by train.train

def pruned_copy(hidden, sparsity, sparse, seed=0, dtype=np.float32):
    """(model, the init's params, masks, the masks for train.fit) of a pruned residual MLP."""
    model, init = small_mlp_params(hidden=hidden, seed=seed, dtype=dtype)
    masks = pruning.magnitude_masks(init, sparsity)
    return model, init, masks, pruning.prune(model, masks, sparse=sparse)


@pytest.mark.parametrize("sparse", [False, True])
def test_pruned_weights_stay_exactly_zero_under_masked_adam(small_dataset, sparse):
    model, init, masks, kept = pruned_copy(16, 0.75, sparse)
    assert isinstance(model.linear2, pruning.SparseLinear) == sparse
    curves = train.train(model, small_dataset, train.TrainConfig(steps=200, eval_every=50), masks=kept)
    final = pruning.dense_parameters(model)
    for name in init:
        assert (final[name][~masks[name]] == 0).all()
        moved = final[name][masks[name]] != init[name][masks[name]]
        assert moved.mean() > 0.5  # most kept weights trained (a few units are dead)
    assert pruning.sparsity_of({n: final[n] != 0 for n in final}) == pytest.approx(pruning.sparsity_of(masks))
    assert curves["eval_steps"] == [0, 50, 100, 150, 199]
    assert curves["train_loss"][-1] < curves["train_loss"][0]


def test_without_the_masks_pruned_weights_would_move(small_dataset):
    """The check above can fail: train.train without masks lets the zeros learn."""
    model, _, masks, _ = pruned_copy(16, 0.75, sparse=False)
    train.train(model, small_dataset, train.TrainConfig(steps=20, eval_every=10))
    final = pruning.dense_parameters(model)
    assert (final["linear2.weight"][~masks["linear2.weight"]] != 0).mean() > 0.5


@pytest.mark.parametrize("sparse", [False, True])
def test_pruning_a_fresh_network_rewinds_the_kept_weights_bit_for_bit(small_dataset, sparse):
    model, init = small_mlp_params(dtype=np.float32)
    train.train(model, small_dataset, train.TrainConfig(steps=30))
    masks = pruning.magnitude_masks(pruning.dense_parameters(model), 0.6)   # prune from the trained weights ...
    fresh, _ = small_mlp_params(dtype=np.float32)
    pruning.prune(fresh, masks, sparse=sparse)                               # ... rewound to the initial ones
    rewound = pruning.dense_parameters(fresh)
    for name in init:
        assert np.array_equal(rewound[name][masks[name]], init[name][masks[name]])
        assert (rewound[name][~masks[name]] == 0).all()


def hand_written_loss_and_grads(params, masks, x, y):
    """The masked residual MLP's loss and gradients written out in NumPy (an
    independent reference): h1 = relu(x W1 + b1); h2 = h1 + relu(h1 W2 + b2); W3 h2 + b3."""
    w1, b1, w2, b2, w3, b3 = (params[n] * masks[n] for n in params)
    z1 = x @ w1 + b1
    h1 = np.maximum(z1, 0)
    z2 = h1 @ w2 + b2
    h2 = h1 + np.maximum(z2, 0)
    logits = h2 @ w3 + b3
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    d_logits = np.exp(log_probs)
    d_logits[np.arange(len(y)), y] -= 1
    d_logits /= len(y)
    d_h2 = d_logits @ w3.T
    d_z2 = d_h2 * (z2 > 0)
    d_z1 = (d_h2 + d_z2 @ w2.T) * (z1 > 0)
    grads = [x.T @ d_z1, d_z1.sum(0), h1.T @ d_z2, d_z2.sum(0), h2.T @ d_logits, d_logits.sum(0)]
    loss = -log_probs[np.arange(len(y)), y].mean()
    return loss, {n: g * masks[n] for n, g in zip(params, grads)}


@pytest.mark.parametrize("sparse", [False, True])
def test_masked_gradients_equal_the_hand_written_ones(sparse):
    """The engine's gradients of a pruned MLP (the kept-weights kernels when sparse),
    masked as train.fit masks them, against NumPy by hand (float64)."""
    model, init, masks, kept = pruned_copy(11, 0.7, sparse, dtype=np.float64)
    x, y = np.random.default_rng(3).normal(size=(6, 40)), np.arange(6)
    loss = ops.cross_entropy(model(Tensor(x)), y)
    params = model.parameters()
    engine = dict(zip(params, (g.data * kept[n] for n, g in zip(params, grad(loss, list(params.values()))))))
    want_loss, want = hand_written_loss_and_grads(init, masks, x, y)
    assert loss.item() == pytest.approx(want_loss, rel=1e-12)
    for name, g in engine.items():
        if sparse and name.endswith(".weight"):
            pattern = getattr(model, name.split(".")[0]).pattern
            g_dense = np.zeros(masks[name].shape)
            g_dense[pattern.rows, pattern.cols] = g
            g = g_dense
        np.testing.assert_allclose(g, want[name], rtol=1e-10, atol=1e-14, err_msg=name)


# ---------------------------------------------------------------- the kept-weights op

def sparse_case(rng, shape=(7, 5), density=0.6, batch=4):
    mask = rng.random(shape) < density
    pattern = sparse_linear.pattern(mask)
    values = rng.normal(size=len(pattern.rows))
    return pattern, [rng.normal(size=(batch, shape[0])), values, rng.normal(size=shape[1])]


def dense_composition(pattern, relu):
    def f(x, values, bias):
        y = x @ sparse_linear.dense_weight(values, pattern) + bias
        return ops.relu(y) if relu else y
    return f


@pytest.mark.parametrize("relu", [False, True])
def test_sparse_linear_op_equals_the_dense_masked_composition(rng, relu):
    pattern, arrays = sparse_case(rng)
    op = lambda x, v, b: sparse_linear.linear(x, pattern, v, b, relu=relu)
    composed = dense_composition(pattern, relu)
    np.testing.assert_allclose(op(*arrays).data, composed(*arrays).data, rtol=1e-12, atol=1e-12)
    for create_graph in (False, True):  # the kernels' first-order rule, and the recorded Tensor rule
        for needs_grad in ([True, True, True], [False, True, True]):
            got, want = (_grads(f, arrays, needs_grad, create_graph) for f in (op, composed))
            for a, b in zip(got, want):
                np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def _grads(f, arrays, needs_grad, create_graph):
    ts = [Tensor(a, requires_grad=n) for a, n in zip(arrays, needs_grad)]
    y = f(*ts)
    weights = np.random.default_rng(7).normal(size=y.shape)
    return [g.data for g in grad((y * weights).sum(), [t for t in ts if t.requires_grad], create_graph=create_graph)]


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("relu", [False, True])
def test_sparse_linear_op_finite_differences(rng, order, relu):
    """tanh after the op, so that the second order has something to check."""
    pattern, arrays = sparse_case(rng)
    check_grad(lambda x, v, b: ops.tanh(sparse_linear.linear(x, pattern, v, b, relu=relu)), arrays, order=order)


def test_sparse_linear_op_rejects_shapes_that_do_not_fit(rng):
    pattern, (x, values, bias) = sparse_case(rng)
    with pytest.raises(ValueError, match=r"do not fit a \(7, 5\) pattern"):
        sparse_linear.linear(x[:, :6], pattern, values, bias)


# ---------------------------------------------------------------- sparse kernels

@pytest.mark.parametrize("shape, density", [((13, 7), 0.3), ((5, 9), 1.0), ((6, 4), 0.0), ((9, 23), 0.6)])
def test_sparse_kernels_equal_the_dense_masked_computation(shape, density):
    """Densities that leave rows and columns with 0, 1-3, 4 and more kept weights."""
    rng = np.random.default_rng(5)
    weight, bias = rng.normal(size=shape), rng.normal(size=shape[1])
    mask = rng.random(shape) < density
    xT, dyT = rng.normal(size=(shape[0], 8)), rng.normal(size=(shape[1], 8))
    pattern = sparse_linear.pattern(mask)
    values, masked = weight[pattern.rows, pattern.cols], weight * mask
    assert np.array_equal(values, weight[mask])
    outT = sparse_linear.forward(xT, pattern, values, bias)
    np.testing.assert_allclose(outT, (xT.T @ masked + bias).T, rtol=1e-12, atol=1e-12)
    dxT, dvalues = sparse_linear.backward(xT, dyT, pattern, values)
    np.testing.assert_allclose(dxT, masked @ dyT, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dvalues, (xT @ dyT.T)[pattern.rows, pattern.cols], rtol=1e-12, atol=1e-12)
    no_dx, same = sparse_linear.backward(xT, dyT, pattern, values, input_grad=False)
    assert no_dx is None and np.array_equal(same, dvalues)


# ---------------------------------------------------------------- adjacency

def test_adjacency_on_hand_made_masks():
    unit = np.array([1, 1, 0, 1, 1, 1, 0, 0], dtype=bool)
    mask = np.stack([unit, np.ones(8, bool), np.zeros(8, bool)], axis=1)  # (in 8, hidden 3)
    np.testing.assert_allclose(pruning.adjacency(mask, 1), [5 / 8, 1, 0])
    np.testing.assert_allclose(pruning.adjacency(mask, 2), [3 / 7, 1, 0])    # pairs at 0, 3, 4
    np.testing.assert_allclose(pruning.adjacency(mask, 3), [1 / 6, 1, 0])    # the run 3..5
    np.testing.assert_allclose(pruning.adjacency(mask, 4), [0, 1, 0])
    assert pruning.sort_by_adjacency(mask, 2).tolist() == [1, 0, 2]


def test_four_adjacency_depends_on_the_ticket_alone_unlike_the_notebooks_formula():
    """The notebook's 4-adjacency for the lottery ticket multiplied its 4th
    factor by the *random* ticket's mask. Here the lottery ticket has a run
    of four kept weights that the random mask does not."""
    lottery = np.array([[1], [1], [1], [1], [0]], dtype=bool)
    random_ticket = np.array([[1], [0], [1], [0], [0]], dtype=bool)
    assert pruning.adjacency(lottery, 4).tolist() == [0.5]   # window 0 of 2
    notebook = (lottery[:-3] & lottery[1:-2] & lottery[2:-1] & random_ticket[3:]).mean()
    assert notebook == 0.0


@pytest.mark.parametrize("k", [0, 9, 2.0])
def test_adjacency_rejects_a_bad_k(k):
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 8\]"):
        pruning.adjacency(np.ones((8, 3), bool), k)


def test_prune_refuses_masks_it_cannot_apply_and_changes_nothing(rng):
    """A conv layer's weights are not pruned by prune: a mask dropping some is an error, not ignored."""
    model = nn.ConvNet(rng)
    before = {name: p.data.copy() for name, p in model.parameters().items()}
    masks = pruning.magnitude_masks(before, 0.5)
    with pytest.raises(ValueError, match=r"only Linear layers with a bias can be pruned.*conv1.weight"):
        pruning.prune(model, masks)
    assert all(np.array_equal(p.data, before[name]) for name, p in model.parameters().items())
    keep_convs = {name: m if name.startswith("linear") else np.ones_like(m) for name, m in masks.items()}
    kept = pruning.prune(model, keep_convs, sparse=False)
    assert (model.linear.weight.data[~masks["linear.weight"]] == 0).all()
    assert np.array_equal(model.conv1.weight.data, before["conv1.weight"]) and kept["conv1.weight"].all()
