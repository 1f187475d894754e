"""Vectorised sampling helpers shared by the simulation steps."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def apportion(weights: Sequence[float], total: int) -> np.ndarray:
    """Split `total` into integer counts proportional to `weights` (largest remainder, ties to the first)."""
    w = np.asarray(weights, dtype=np.float64)
    if total <= 0 or w.sum() <= 0:
        return np.zeros(len(w), dtype=np.int64)
    exact = w / w.sum() * total
    counts = np.floor(exact).astype(np.int64)
    short = total - int(counts.sum())
    if short:
        order = np.argsort(-(exact - counts), kind="stable")
        counts[order[:short]] += 1
    return counts


def exact_labels(rng: np.random.Generator, weights: Sequence[float], total: int) -> np.ndarray:
    """`total` labels 0..k-1 in shuffled order whose counts match `weights` as closely as integers allow."""
    counts = apportion(weights, total)
    return rng.permutation(np.repeat(np.arange(len(counts), dtype=np.int8), counts))


def categorical(rng: np.random.Generator, weights: Sequence[float], size: int) -> np.ndarray:
    """`size` independent draws of labels 0..k-1 with probabilities proportional to `weights`."""
    cdf = np.cumsum(np.asarray(weights, dtype=np.float64))
    cdf /= cdf[-1]
    return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), len(cdf) - 1).astype(np.int16)


def grouped_categorical(
    rng: np.random.Generator, group: np.ndarray, table: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """One draw per row from the row's group's weights (`table[group]`), looping over groups, not rows."""
    result = np.zeros(len(group), dtype=np.int16) if out is None else out
    for g in range(len(table)):
        rows = np.flatnonzero(group == g)
        if len(rows):
            result[rows] = categorical(rng, table[g], len(rows))
    return result


def segment_index(counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., c-1 for each count c, concatenated (position of each row within its segment)."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    starts = np.cumsum(counts) - counts
    return np.arange(total, dtype=np.int64) - np.repeat(starts, counts)


def segment_cumsum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Running sums of `values` restarting at every segment of the given lengths (inclusive)."""
    totals = np.cumsum(values)
    counts = np.asarray(counts, dtype=np.int64)
    if len(totals) == 0:
        return totals
    starts = np.cumsum(counts) - counts
    before = np.where(starts > 0, totals[np.maximum(starts - 1, 0)], 0)
    return totals - np.repeat(before, counts)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a bijection on uint64, so distinct inputs give distinct outputs."""
    z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))
