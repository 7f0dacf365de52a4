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


def embedded(rng, n, d, lat=16):
    """Embedding-like data: clustered latent points through a fixed random map."""
    a = np.random.default_rng(99).standard_normal((lat, d))
    centres = np.random.default_rng(98).uniform(-1, 1, (32, lat))
    z = centres[rng.integers(0, 32, n)] + 0.3 * rng.standard_normal((n, lat))
    return (z @ a).astype(np.float32)


def recall_at(found, truth):
    return np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)])


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_index_int8_recall_vs_float(metric):
    from conftest import brute_force
    rng = np.random.default_rng(3)
    base, q = embedded(rng, 4000, 64), embedded(rng, 50, 64)
    idx = nearly.Index(64, metric, ef_construction=100)
    idx.add(base)
    assert idx.quantization is None
    truth, _ = brute_force(base, q, 10, metric)
    f_ids, _ = idx.search(q, 10, ef=64)
    idx.set_quantization({"scalar": {"type": "int8", "quantile": 0.99}})
    assert idx.quantization["scalar"]["type"] == "int8"
    st = idx.stats()
    assert st["quant_ready"] and 4000 * 64 <= st["bytes_quant"] < st["bytes_vectors"] / 3
    q_ids, q_sc = idx.search(q, 10, ef=64, quantization={"oversampling": 2.0})
    n_ids, _ = idx.search(q, 10, ef=64, quantization={"rescore": False})
    i_ids, _ = idx.search(q, 10, ef=64, quantization={"ignore": True})
    rf, rq, rn = recall_at(f_ids, truth), recall_at(q_ids, truth), recall_at(n_ids, truth)
    assert rq >= 0.95 and rq >= rf - 0.03, (rf, rq)
    assert rn >= 0.6
    # ignore is the float search; one query at a time gives the batch's answers.
    assert (i_ids == f_ids).all()
    one, one_sc = idx.search(q[3], 10, ef=64, quantization={"oversampling": 2.0})
    assert (one == q_ids[3]).all() and np.allclose(one_sc, q_sc[3])
    # Rescored scores are exact: compare with the float scores of the same ids.
    exact_ids, exact_sc = idx.search(q, 10, exact=True)
    for a, sa, b, sb in zip(q_ids, q_sc, exact_ids, exact_sc):
        common = set(a) & set(b)
        for c in common:
            assert abs(sa[list(a).index(c)] - sb[list(b).index(c)]) < 1e-4
    idx.set_quantization(None)
    assert idx.quantization is None and idx.stats()["bytes_quant"] == 0


def test_index_binary_recall_768():
    from conftest import brute_force
    rng = np.random.default_rng(5)
    base, q = embedded(rng, 3000, 768, lat=48), embedded(rng, 30, 768, lat=48)
    idx = nearly.Index(768, "cosine", ef_construction=100)
    idx.add(base)
    idx.set_quantization('{"binary": {"always_ram": true}}')
    truth, _ = brute_force(base, q, 10, "cosine")
    f_ids, _ = idx.search(q, 10, ef=128, quantization={"ignore": True})
    b_ids, _ = idx.search(q, 10, ef=128, quantization={"oversampling": 8})
    rf, rb = recall_at(f_ids, truth), recall_at(b_ids, truth)
    assert rb >= 0.90 and rb >= rf - 0.06, (rf, rb)
    st = idx.stats()
    assert st["bytes_quant"] * 10 < st["bytes_vectors"]  # 1 bit per dimension + corrections


def test_index_quantization_persisted_and_on_disk(tmp_path):
    rng = np.random.default_rng(8)
    base, q = embedded(rng, 2000, 32), embedded(rng, 20, 32)
    idx = nearly.Index(32, "l2")
    idx.add(base)
    idx.set_quantization({"scalar": {"type": "int8"}})
    before, bsc = idx.search(q, 5, ef=48)
    idx.save(tmp_path / "i.hnsw")
    moved = idx.to_disk(tmp_path)
    assert moved["vectors"] > 2000 * 32 * 4 - 8192 and moved["graph"] > 0
    st = idx.stats()
    assert st["bytes_vectors_on_disk"] == moved["vectors"] and st["bytes_graph_on_disk"] == moved["graph"]
    after, asc = idx.search(q, 5, ef=48)
    assert (before == after).all() and np.array_equal(bsc, asc)
    idx.add(base[:10] + 0.5)  # inserts after the move
    assert len(idx) == 2010
    loaded = nearly.Index.load(tmp_path / "i.hnsw")
    assert loaded.quantization == idx.quantization
    again, _ = loaded.search(q, 5, ef=48)
    assert (again == before).all()
    loaded.close()
    idx.close()


def test_index_quantization_bad_input():
    idx = nearly.Index(8, "l2")
    idx.add(np.random.default_rng(1).standard_normal((50, 8)).astype(np.float32))
    with pytest.raises(nearly.InvalidArgumentError):
        idx.set_quantization({"product": {"compression": "x16"}})
    with pytest.raises(nearly.InvalidArgumentError):
        idx.set_quantization({"scalar": {"type": "int3"}})
    with pytest.raises(nearly.InvalidArgumentError):
        idx.set_quantization(5)
    with pytest.raises(nearly.InvalidArgumentError):
        idx.train_quantization()  # nothing configured
    with pytest.raises(nearly.InvalidArgumentError):
        idx.search(np.zeros(8, np.float32), 3, quantization={"oversampling": 0})
    with pytest.raises(nearly.InvalidArgumentError):
        idx.search(np.zeros(8, np.float32), 3, quantization={"nope": 1})
    # Fewer than 1000 vectors: not trained until asked; searches use floats.
    idx.set_quantization({"scalar": {"type": "int8"}})
    assert not idx.stats()["quant_ready"]
    idx.train_quantization()
    assert idx.stats()["quant_ready"]
    ids, _ = idx.search(np.zeros(8, np.float32), 3)
    assert len(ids) == 3 and (ids >= 0).all()
    with pytest.raises(nearly.Error):
        idx.to_disk("/nonexistent/dir")


def test_index_trains_after_the_add_that_reaches_the_minimum():
    rng = np.random.default_rng(11)
    base = embedded(rng, 1200, 16)
    idx = nearly.Index(16, "l2")
    idx.add(base[:500])
    idx.set_quantization({"scalar": {"type": "int8"}})
    assert not idx.stats()["quant_ready"]
    idx.add(base[500:])  # 1200 >= 1000: trained here, not at the first search
    assert idx.stats()["quant_ready"] and idx.stats()["bytes_quant"] >= 1200 * 16
