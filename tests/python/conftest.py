"""Shared helpers for the Python tests (run with PYTHONPATH=build/python)."""

import numpy as np
import pytest


def brute_force(base, queries, k, metric, ids=None):
    """Exact top-k (ids, scores) with numpy, scores in the Qdrant convention."""
    base = np.asarray(base, dtype=np.float64)
    queries = np.asarray(queries, dtype=np.float64)
    if ids is None:
        ids = np.arange(len(base))
    if metric == "cosine":
        b = base / np.maximum(np.linalg.norm(base, axis=1, keepdims=True), 1e-30)
        q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-30)
        s = q @ b.T
        order = np.argsort(-s, axis=1, kind="stable")
    elif metric == "dot":
        s = queries @ base.T
        order = np.argsort(-s, axis=1, kind="stable")
    else:
        s = np.sqrt(np.maximum(((queries[:, None, :] - base[None, :, :]) ** 2).sum(-1), 0))
        order = np.argsort(s, axis=1, kind="stable")
    order = order[:, :k]
    return np.asarray(ids)[order], np.take_along_axis(s, order, axis=1)


def recall(found, truth):
    hits = 0
    for f, t in zip(found, truth):
        hits += len(set(int(x) for x in f if x >= 0) & set(int(x) for x in t))
    return hits / truth.size


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
