"""Quantized search from Python: quantization_config in the collection
config, params.quantization on search, checked against exact search."""

import numpy as np
import pytest

import nearly

DIM = 32


def clustered(rng, n, centres):
    k = rng.integers(0, len(centres), n)
    return (centres[k] + 0.15 * rng.standard_normal((n, DIM))).astype(np.float32)


def test_quantized_collection_search(tmp_path):
    rng = np.random.default_rng(7)
    centres = rng.uniform(-1, 1, (20, DIM))
    base, q = clustered(rng, 3000, centres), clustered(rng, 30, centres)
    db = nearly.Database(tmp_path / "data")
    col = db.create_collection("q", config={
        "vectors": {"size": DIM, "distance": "Euclid"},
        "hnsw_config": {"full_scan_threshold": 10},
        "quantization_config": {"scalar": {"type": "int8", "quantile": 0.99, "always_ram": True}},
    })
    col.upsert(list(range(len(base))), base)
    hits = total = 0
    for x in q:
        exact = {h.id for h in col.search(x, limit=10, exact=True, with_payload=False)}
        got = col.search(x, limit=10, ef=64, with_payload=False,
                         quantization={"rescore": True, "oversampling": 2.0})
        hits += len(exact & {h.id for h in got})
        total += len(exact)
        # Rescored scores are exact squared-L2 based: nearest first.
        assert [h.score for h in got] == sorted(h.score for h in got)
        ign = col.search(x, limit=10, ef=64, with_payload=False, quantization={"ignore": True})
        assert len(ign) == 10
    assert hits / total >= 0.95
    with pytest.raises(nearly.InvalidArgumentError):
        col.search(q[0], limit=5, quantization={"oversampling": 0.5})
    with pytest.raises(nearly.InvalidArgumentError):
        col.search(q[0], limit=5, quantization={"bogus": 1})
    with pytest.raises(nearly.InvalidArgumentError):
        col.search(q[0], limit=5, quantization=3)
    db.close()


def test_product_quantization_refused(tmp_path):
    db = nearly.Database(tmp_path / "data")
    with pytest.raises(nearly.InvalidArgumentError):
        db.create_collection("p", config={"vectors": {"size": 4, "distance": "Dot"},
                                          "quantization_config": {"product": {"compression": "x16"}}})
    db.close()
