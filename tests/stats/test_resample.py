"""The shared resample matrices: seeded (0 included), reproducible, chunk-invariant."""
from __future__ import annotations

import numpy as np
import pytest

from uarbench.stats.resample import (bootstrap_indices, counts_from_indices, iter_bootstrap_indices,
                                     iter_swap_masks, swap_masks)


def test_seed_zero_is_a_seed_reproducible_and_different_from_seed_one():
    a, b = bootstrap_indices(50, 20, seed=0), bootstrap_indices(50, 20, seed=0)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, bootstrap_indices(50, 20, seed=1))
    m0 = swap_masks(50, 20, seed=0)
    assert np.array_equal(m0, swap_masks(50, 20, seed=0))
    assert not np.array_equal(m0, swap_masks(50, 20, seed=1))


def test_shapes_ranges_and_prefix_and_chunk_invariance():
    idx = bootstrap_indices(37, 300, seed=5)
    assert idx.shape == (300, 37) and idx.min() >= 0 and idx.max() <= 36
    assert np.array_equal(idx[:10], bootstrap_indices(37, 10, seed=5))
    chunked = np.concatenate(list(iter_bootstrap_indices(37, 300, seed=5, chunk=7)))
    assert np.array_equal(idx, chunked)
    masks = swap_masks(37, 300, seed=5)
    assert masks.dtype == bool and masks.shape == (300, 37)
    assert np.array_equal(masks, np.concatenate(list(iter_swap_masks(37, 300, seed=5, chunk=11))))
    assert 0.45 < masks.mean() < 0.55
    counts = counts_from_indices(idx, 37)
    assert counts.shape == (300, 37) and (counts.sum(axis=1) == 37).all()
    assert counts[3, idx[3, 0]] == (idx[3] == idx[3, 0]).sum()


@pytest.mark.parametrize("seed", [None, -1, 1.5, True, "0"])
def test_bad_seeds_are_rejected(seed):
    with pytest.raises(ValueError, match="seed"):
        bootstrap_indices(5, 2, seed=seed)


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError):
        swap_masks(0, 10, seed=0)
    with pytest.raises(ValueError):
        swap_masks(10, 0, seed=0)
