import pytest
import torch

from imprf_utils.training.models import BN_EPS, BN_MOMENTUM, MaskedFCN, bmm_replicas, replica_state, stack_states

WIDTHS = (12, 10, 8, 3)


def test_stacked_replicas_equal_single_networks():
    stacked = MaskedFCN(WIDTHS, seeds=(0, 1, 2))
    x = torch.randn(5, 12)
    out = stacked(x)
    for k, seed in enumerate((0, 1, 2)):
        single = MaskedFCN(WIDTHS, seeds=(seed,))
        torch.testing.assert_close(out[k], single(x)[0])
    assert not torch.allclose(out[0], out[1])


def test_glorot_normal_std_and_zero_bias():
    model = MaskedFCN((400, 300, 10), seeds=(0,))
    w = model.weights[0]
    expected = (2 / 700) ** 0.5
    assert abs(w.detach().std().item() - expected) < 0.02 * expected  # 120k draws: 0.2% noise
    assert all(torch.count_nonzero(b) == 0 for b in model.biases)


def test_masks_zero_weights_and_block_their_gradient():
    model = MaskedFCN(WIDTHS, seeds=(0,))
    masks = [torch.rand(1, 10, 12) < 0.5, torch.rand(1, 8, 10) < 0.5]
    model.set_masks(masks)
    for w, m in zip(model.weights, masks):
        assert bool((w[~m] == 0).all())
    model(torch.randn(7, 12)).sum().backward()
    for w, m in zip(model.weights, masks):
        assert bool((w.grad[~m] == 0).all())
    assert model.weights[-1].grad.abs().sum() > 0  # the output layer is never masked


def test_the_network_is_w_times_m_whatever_weights_are_loaded():
    """Oracle: relu(h (W ⊙ M)ᵀ + b) layer by layer, for random weights loaded with random masks."""
    model = MaskedFCN(WIDTHS, seeds=(0, 1))
    gen = torch.Generator().manual_seed(1)
    state = {name: torch.randn(t.shape, generator=gen) for name, t in model.state_dict().items() if not name.startswith("mask")}
    masks = {f"mask{layer}": torch.rand(model.masks[layer].shape, generator=gen) < 0.5 for layer in range(2)}
    model.load_state_dict({**state, **masks})
    x = torch.randn(5, 12, generator=gen)
    for k in range(2):
        h = x
        for layer in range(3):
            w = state[f"weights.{layer}"][k] * (masks[f"mask{layer}"][k] if layer < 2 else 1)
            h = h @ w.T + state[f"biases.{layer}"][k]
            h = torch.relu(h) if layer < 2 else h
        torch.testing.assert_close(model(x)[k], h)


def test_loaded_masks_zero_their_weights_and_block_their_gradient_and_the_state_keeps_only_bool_masks():
    """A state loaded with other masks (and weights not 0 where they prune) trains under those masks."""
    model = MaskedFCN(WIDTHS, seeds=(0, 1))
    model.set_masks([torch.rand(2, 10, 12) < 0.5, torch.rand(2, 8, 10) < 0.5])
    gen = torch.Generator().manual_seed(2)
    state = {name: torch.randn(t.shape, generator=gen) for name, t in model.state_dict().items()}
    masks = [torch.rand(model.masks[layer].shape, generator=gen) < 0.5 for layer in range(2)]
    model.load_state_dict({**state, "mask0": masks[0], "mask1": masks[1]})
    model(torch.randn(7, 12)).sum().backward()
    for w, m in zip(model.weights, masks):
        assert bool((w[~m] == 0).all()) and bool((w.grad[~m] == 0).all())
        assert bool((w.grad[m] != 0).any())
    assert sorted(name for name in model.state_dict() if "mask" in name) == ["mask0", "mask1"]
    assert all(t.dtype == torch.bool for name, t in model.state_dict().items() if "mask" in name)


def test_layer_input_is_what_each_linear_map_of_the_forward_pass_sees():
    """Oracle: the forward pass rebuilt from layer_input, layer by layer (BatchNorm in eval mode)."""
    model = MaskedFCN(WIDTHS, seeds=(0, 1), batchnorm=True)
    model(torch.randn(2, 16, 12))  # running statistics away from 0 and 1
    model.eval()
    x = torch.randn(2, 5, 12)
    assert torch.equal(model.layer_input(x, 0), model._normalize(x, 0))
    for layer in (1, 2):
        h = model.layer_input(x, layer - 1) @ model.weights[layer - 1].transpose(1, 2) + model.biases[layer - 1][:, None]
        torch.testing.assert_close(model.layer_input(x, layer), model._normalize(torch.relu(h), layer))
    last = model.layer_input(x, 2) @ model.weights[2].transpose(1, 2) + model.biases[2][:, None]
    torch.testing.assert_close(model(x), last)
    with pytest.raises(ValueError, match="layers 0..2"):
        model.layer_input(x, 3)


def test_bmm_takes_whole_rounds_of_threads_of_small_products_and_all_on_a_gpu(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    cpu, small, large = torch.device("cpu"), 256 * 256 * 256, 1000 * 3072 * 1024
    assert [bmm_replicas(k, cpu, small) for k in (1, 2, 3, 10)] == [0, 2, 2, 10]
    assert bmm_replicas(10, cpu, large) == 0
    assert bmm_replicas(3, torch.device("cuda"), large) == 3


def test_batchnorm_per_replica_matches_torch():
    model = MaskedFCN(WIDTHS, seeds=(0, 1), batchnorm=True)
    x = torch.randn(2, 16, 12)
    bn = torch.nn.BatchNorm1d(12, eps=BN_EPS, momentum=BN_MOMENTUM)
    for k in range(2):
        expected = bn.train()(x[k])
        got = model.layer_input(x, 0)[k]
        torch.testing.assert_close(got, expected)
    fresh = MaskedFCN(WIDTHS, seeds=(0, 1), batchnorm=True)
    fresh(x)  # a training-mode pass updates each replica's running statistics
    torch.testing.assert_close(fresh.running_mean0[1], BN_MOMENTUM * x[1].mean(0))


def test_replica_state_roundtrip():
    model = MaskedFCN(WIDTHS, seeds=(0, 1, 2))
    state = model.state_dict()
    parts = [replica_state(state, k) for k in range(3)]
    assert all(t.shape[0] == 1 for t in parts[1].values())
    for name, t in stack_states(parts).items():
        assert torch.equal(t, state[name])
