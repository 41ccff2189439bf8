import pytest
import torch
import torch.nn.utils.prune as prune

from imprf_utils.training.pruning import kept_fraction, magnitude_masks, random_masks, removal_round, top_magnitude_masks


def _oracle_rounds(weight: torch.Tensor, rate: float, rounds: int) -> list[torch.Tensor]:
    """torch.nn.utils.prune applied iteratively: each call prunes `rate` of what remains."""
    layer = torch.nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    with torch.no_grad():
        layer.weight.copy_(weight)
    masks = []
    for _ in range(rounds):
        prune.l1_unstructured(layer, "weight", amount=rate)
        masks.append(layer.weight_mask.bool().clone())
    return masks


def test_magnitude_masks_match_torch_prune_over_rounds():
    gen = torch.Generator().manual_seed(0)
    weights = [torch.randn(40, 30, generator=gen), torch.randn(20, 40, generator=gen)]
    masks = [torch.ones_like(w, dtype=torch.bool) for w in weights]
    oracle = [_oracle_rounds(w, 0.3, 5) for w in weights]
    for k in range(5):
        masks = magnitude_masks(weights, masks, 0.3)
        for layer, m in enumerate(masks):
            assert torch.equal(m, oracle[layer][k])


def test_magnitude_masks_are_layerwise_and_nested():
    gen = torch.Generator().manual_seed(1)
    # The second layer's weights are 100x larger: a global threshold would prune only the first.
    weights = [torch.randn(50, 50, generator=gen), 100 * torch.randn(50, 50, generator=gen)]
    masks = [torch.ones(50, 50, dtype=torch.bool)] * 2
    new = magnitude_masks(weights, masks, 0.3)
    assert [int(m.sum()) for m in new] == [1750, 1750]
    newer = magnitude_masks(weights, new, 0.3)
    assert all(bool((n <= o).all()) for n, o in zip(newer, new))  # nothing comes back
    assert [int(m.sum()) for m in newer] == [1225, 1225]


@pytest.mark.parametrize("rate", [0.0, 1.0, -0.1, 1.5])
def test_magnitude_masks_reject_impossible_rate(rate):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        magnitude_masks([torch.randn(3, 3)], [torch.ones(3, 3, dtype=torch.bool)], rate)


def test_top_magnitude_masks_keep_the_largest():
    w = torch.tensor([[0.1, -5.0, 0.3], [2.0, -0.2, 0.0]])
    (m,) = top_magnitude_masks([w], [2])
    assert m.tolist() == [[False, True, False], [True, False, False]]


def test_random_masks_same_density_deterministic_and_seed_dependent():
    masks = [torch.rand(30, 20) < 0.25, torch.rand(10, 30) < 0.6]
    a = random_masks(masks, torch.Generator().manual_seed(3))
    b = random_masks(masks, torch.Generator().manual_seed(3))
    c = random_masks(masks, torch.Generator().manual_seed(4))
    assert [int(m.sum()) for m in a] == [int(m.sum()) for m in masks]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    assert kept_fraction(a) == pytest.approx(kept_fraction(masks))


def test_removal_round():
    level0 = torch.ones(2, 3, dtype=torch.bool)
    level1 = torch.tensor([[1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    level2 = torch.tensor([[1, 0, 0], [0, 1, 1]], dtype=torch.bool)
    assert removal_round([level0, level1, level2]).tolist() == [[3, 2, 1], [2, 3, 3]]
    with pytest.raises(ValueError, match="not nested"):
        removal_round([level0, level2, level1 | level2])
