"""Pruning masks, masked training, sparse kernels and adjacency."""

import numpy as np
import pytest

from mnist1d_np import Tensor, data, grad, nn, ops, pruning, sparse_linear


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


def test_unknown_scope_and_mismatched_masks_raise_value_errors(small_dataset):
    _, params = small_mlp_params()
    with pytest.raises(ValueError, match=r"scope must be one of \('layer', 'global'\)"):
        pruning.magnitude_masks(params, 0.5, scope="unit")
    masks = pruning.magnitude_masks(params, 0.5)
    masks["linear2.weight"] = masks["linear2.weight"][:, :-1]
    with pytest.raises(ValueError, match=r"masks\['linear2.weight'\] has shape \(12, 11\)"):
        pruning.train_masked(params, masks, small_dataset, pruning.RoundConfig(steps=1))
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        pruning.RoundConfig(steps=0)


def test_masks_survive_json_packing():
    _, params = small_mlp_params()
    masks = pruning.magnitude_masks(params, 0.37)
    back = pruning.masks_from_json(pruning.masks_to_json(masks))
    assert list(back) == list(masks) and all(np.array_equal(back[n], masks[n]) for n in masks)


# ---------------------------------------------------------------- masked training

@pytest.mark.parametrize("sparse", [False, True])
def test_pruned_weights_stay_exactly_zero_under_masked_adam(small_dataset, sparse):
    _, params = small_mlp_params(hidden=16, dtype=np.float32)
    masks = pruning.magnitude_masks(params, 0.75)
    final, curves, _ = pruning.train_masked(params, masks, small_dataset,
                                            pruning.RoundConfig(steps=200, eval_every=50), sparse=sparse)
    for name in params:
        assert (final[name][~masks[name]] == 0).all()
        moved = final[name][masks[name]] != params[name][masks[name]]
        assert moved.mean() > 0.5  # most kept weights trained (a few units are dead)
    assert pruning.sparsity_of({n: final[n] != 0 for n in final}) == pytest.approx(pruning.sparsity_of(masks))
    assert curves["eval_steps"] == [0, 50, 100, 150, 199]
    assert curves["train_loss"][-1] < curves["train_loss"][0]


@pytest.mark.parametrize("layers_class", [pruning.DenseLayers, pruning.SparseLayers])
def test_rewinding_restores_the_initial_kept_weights_bit_for_bit(small_dataset, layers_class):
    _, init = small_mlp_params(dtype=np.float32)
    trained, _, _ = pruning.train_masked(init, pruning.magnitude_masks(init, 0.0), small_dataset,
                                         pruning.RoundConfig(steps=30))
    masks = pruning.magnitude_masks(trained, 0.6)   # prune from the trained weights ...
    rewound = layers_class(init, masks, np.float32).export()   # ... and start from the initial ones
    for name in init:
        assert np.array_equal(rewound[name][masks[name]], init[name][masks[name]])
        assert (rewound[name][~masks[name]] == 0).all()


def test_hand_written_backward_equals_autograd_of_the_paper_mlp():
    model, params = small_mlp_params(hidden=9)
    x, y = np.random.default_rng(1).normal(size=(7, 40)), np.arange(7) % 10
    masks = pruning.magnitude_masks(params, 0.0)
    loss, grads = pruning.loss_and_grads(pruning.DenseLayers(params, masks, np.float64), x, y)
    reference = ops.cross_entropy(model(Tensor(x)), y)
    expected = grad(reference, list(model.parameters().values()))
    assert loss == pytest.approx(reference.item(), rel=1e-12)
    for g, e in zip(grads, expected):
        np.testing.assert_allclose(g, e.data, rtol=1e-10, atol=1e-14)


def test_sparse_and_dense_paths_give_the_same_loss_and_gradients():
    _, params = small_mlp_params(hidden=11)
    masks = pruning.random_masks({n: p.shape for n, p in params.items()}, 0.7, np.random.default_rng(2))
    x, y = np.random.default_rng(3).normal(size=(6, 40)), np.arange(6)
    dense_loss, dense_grads = pruning.loss_and_grads(pruning.DenseLayers(params, masks, np.float64), x, y)
    sparse = pruning.SparseLayers(params, masks, np.float64)
    sparse_loss, sparse_grads = pruning.loss_and_grads(sparse, x, y)
    assert sparse_loss == pytest.approx(dense_loss, rel=1e-12)
    for layer, pattern in enumerate(sparse.patterns):
        kept = dense_grads[2 * layer][pattern.rows, pattern.cols]
        np.testing.assert_allclose(sparse_grads[2 * layer], kept, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(sparse_grads[2 * layer + 1], dense_grads[2 * layer + 1], rtol=1e-10, atol=1e-14)


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
