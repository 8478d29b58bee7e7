"""The shared, seeded resamples of paired significance tests (sacrebleu's design).

Every system of one table is resampled with the *same* rows: bootstrap resample ``b`` draws the
same report indices for all systems (paired bootstrap, Koehn 2004), and approximate-randomization
trial ``t`` swaps the same reports between every pair (Riezler & Maxwell 2005). Both come from
``numpy.random.Generator(PCG64(seed))``; ``seed`` must be an int >= 0 and 0 is a seed like any
other (never ``if seed:``).

Hand-written: numpy has the generator but no paired-resampling helpers. Draws are row by row
(bootstrap index = floor(u * n) from uniform doubles u; swap = one raw random bit per report), so
the matrices can be produced in chunks and the first B' rows of a B-row matrix equal the B'-row
matrix of the same seed.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

CHUNK_ELEMENTS = 1 << 22   # ~4M entries per chunk: bounds memory of (rows, n) matrices


def generator(seed: int) -> np.random.Generator:
    """The seeded generator of every resampling in uarbench."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0 (0 is a valid seed), got {seed!r}")
    return np.random.Generator(np.random.PCG64(int(seed)))


def _check(n: int, rows: int, what: str) -> None:
    if n < 1:
        raise ValueError(f"need at least one report to resample, got n={n}")
    if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 1:
        raise ValueError(f"{what} must be an int >= 1, got {rows!r}")


def chunk_rows(n: int) -> int:
    return max(1, CHUNK_ELEMENTS // max(n, 1))


def iter_bootstrap_indices(n: int, n_resamples: int, *, seed: int,
                           chunk: int | None = None) -> Iterator[np.ndarray]:
    """Consecutive row blocks of the (n_resamples, n) bootstrap index matrix."""
    _check(n, n_resamples, "n_resamples")
    rng, chunk = generator(seed), chunk or chunk_rows(n)
    for lo in range(0, n_resamples, chunk):
        u = rng.random((min(chunk, n_resamples - lo), n))
        yield np.minimum((u * n).astype(np.int64), n - 1)             # (c, n) row indices


def bootstrap_indices(n: int, n_resamples: int = 1000, *, seed: int = 0) -> np.ndarray:
    """(n_resamples, n) int64: the reports drawn, with replacement, by each resample."""
    return np.concatenate(list(iter_bootstrap_indices(n, n_resamples, seed=seed)))


def counts_from_indices(indices: np.ndarray, n: int) -> np.ndarray:
    """(c, n) index rows -> (c, n) float64 counts (how often each report was drawn)."""
    c = len(indices)
    flat = (indices + np.arange(c)[:, None] * n).ravel()
    return np.bincount(flat, minlength=c * n).reshape(c, n).astype(np.float64)


def iter_bootstrap_counts(n: int, n_resamples: int, *, seed: int,
                          chunk: int | None = None) -> Iterator[np.ndarray]:
    """Consecutive row blocks of the (n_resamples, n) resample-count matrix."""
    for idx in iter_bootstrap_indices(n, n_resamples, seed=seed, chunk=chunk):
        yield counts_from_indices(idx, n)


def iter_swap_masks(n: int, trials: int, *, seed: int,
                    chunk: int | None = None) -> Iterator[np.ndarray]:
    """Consecutive row blocks of the (trials, n) swap-mask matrix (True: swap that report).

    Each trial takes ceil(n / 64) raw 64-bit outputs of the generator and uses their first n
    bits (little-endian bytes, most significant bit of each byte first), one fair coin each.
    """
    _check(n, trials, "trials")
    rng, chunk = generator(seed), chunk or chunk_rows(n)
    words = -(-n // 64)
    for lo in range(0, trials, chunk):
        c = min(chunk, trials - lo)
        raw = rng.bit_generator.random_raw(c * words).astype("<u8")          # (c * words,)
        bits = np.unpackbits(raw.view(np.uint8).reshape(c, words * 8), axis=1)
        yield bits[:, :n].astype(bool)                                      # (c, n) bool


def swap_masks(n: int, trials: int = 10000, *, seed: int = 0) -> np.ndarray:
    """(trials, n) bool: which reports trade outputs between the two systems in each trial."""
    return np.concatenate(list(iter_swap_masks(n, trials, seed=seed)))
