"""nearly.Database / Collection: the embedded storage layer from Python,
checked against plain-Python reference computations."""

import os
import subprocess
import sys
import threading
import uuid

import numpy as np
import pytest

import nearly
from conftest import brute_force, recall

DIM = 16
COLORS = ["red", "green", "blue"]


@pytest.fixture
def db(tmp_path):
    d = nearly.Database(tmp_path / "data")
    yield d
    d.close()


def fill(col, rng, n=400):
    vecs = rng.standard_normal((n, DIM)).astype(np.float32)
    payloads = [{"color": COLORS[i % 3], "n": i, "tags": ["even" if i % 2 == 0 else "odd"]} for i in range(n)]
    col.upsert(list(range(n)), vecs, payloads=payloads)
    return vecs, payloads


def test_create_open_list_drop(db):
    assert db.list_collections() == []
    with pytest.raises(nearly.NotFoundError):
        db.collection("a")
    a = db.collection("a", dim=DIM)
    assert (a.name, a.dim, a.metric, len(a)) == ("a", DIM, "cosine", 0)
    b = db.create_collection("b", 8, metric="l2", m=8, ef_construction=64)
    assert b.metric == "l2" and b.info()["config"]["hnsw_config"]["m"] == 8
    with pytest.raises(nearly.AlreadyExistsError):
        db.create_collection("b", 8)
    with pytest.raises(ValueError, match="dimension"):
        db.collection("a", dim=DIM + 1)
    assert db.collection("a").dim == DIM
    assert sorted(db.list_collections()) == ["a", "b"]
    assert "a" in db and "zzz" not in db
    db.drop_collection("a")
    assert db.list_collections() == ["b"]
    with pytest.raises(nearly.NotFoundError):
        db.drop_collection("a")
    with pytest.raises(ValueError):
        db.create_collection("bad/name", 4)
    with pytest.raises(ValueError):
        db.create_collection("x", 4, metric="hamming")
    with pytest.raises(ValueError):
        db.create_collection("x", config={"vectors": {"size": 0, "distance": "Cosine"}})
    with pytest.raises(TypeError):
        db.create_collection("x")


@pytest.mark.parametrize("metric", ["cosine", "l2", "dot"])
def test_search_against_brute_force(db, rng, metric):
    col = db.collection("c", dim=DIM, metric=metric)
    vecs, _ = fill(col, rng)
    q = rng.standard_normal((20, DIM)).astype(np.float32)
    truth, tscores = brute_force(vecs, q, 10, metric)
    exact = [col.search(x, limit=10, exact=True, with_payload=False) for x in q]
    for i, hits in enumerate(exact):
        assert [h.id for h in hits] == truth[i].tolist()
        np.testing.assert_allclose([h.score for h in hits], tscores[i], rtol=1e-3, atol=1e-3)
        assert all(h.payload is None and h.vector is None for h in hits)
    approx = col.search(q, limit=10, ef=64)  # 2-D: one list per query
    assert len(approx) == 20
    assert recall(np.array([[h.id for h in r] for r in approx]), truth) >= 0.9


def test_filtered_search_count_scroll(db, rng):
    col = db.collection("c", dim=DIM)
    vecs, payloads = fill(col, rng)
    flt = {"must": [{"key": "color", "match": {"value": "red"}}, {"key": "n", "range": {"gte": 100}}]}
    allowed = [i for i, p in enumerate(payloads) if p["color"] == "red" and p["n"] >= 100]
    assert col.count(filter=flt) == len(allowed)
    assert col.count() == len(col) == 400
    q = rng.standard_normal(DIM).astype(np.float32)
    hits = col.search(q, limit=5, filter=flt, exact=True)
    truth, _ = brute_force(vecs[allowed], q[None], 5, "cosine", ids=np.array(allowed))
    assert [h.id for h in hits] == truth[0].tolist()
    assert all(h.payload["color"] == "red" for h in hits)
    hits = col.search(q, limit=5, filter=flt)
    assert {h.id for h in hits} <= set(allowed)
    # must_not / should
    odd = {"must_not": [{"key": "tags", "match": {"value": "even"}}]}
    assert col.count(filter=odd) == 200
    # scroll walks every matching point in id order, page by page
    seen, offset = [], None
    while True:
        page, offset = col.scroll(limit=7, offset=offset, filter=flt)
        seen += [r.id for r in page]
        if offset is None:
            break
    assert seen == allowed
    with pytest.raises(ValueError, match="range|gte|filter"):
        col.count(filter={"must": [{"key": "n", "range": {"gte": "x"}}]})
    with pytest.raises(TypeError):
        col.count(filter=[1, 2])


def test_retrieve_payload_selectors_and_vectors(db, rng):
    col = db.collection("c", dim=DIM, metric="l2")
    vecs, _ = fill(col, rng, n=20)
    recs = col.retrieve([5, 999, 3])
    assert [r.id for r in recs] == [5, 3]
    assert recs[0].payload == {"color": "blue", "n": 5, "tags": ["odd"]}
    assert col.retrieve(5, with_payload=["n"])[0].payload == {"n": 5}
    assert col.retrieve(5, with_payload={"exclude": ["tags", "color"]})[0].payload == {"n": 5}
    assert col.retrieve(5, with_payload=False)[0].payload is None
    r = col.retrieve([4], with_vector=True)[0]
    np.testing.assert_allclose(r.vector, vecs[4], rtol=1e-6)
    assert r.vector.dtype == np.float32
    assert isinstance(r, tuple) and r.id == r[0]
    with pytest.raises(TypeError):
        col.retrieve(5, with_payload=3)


def test_uuid_ids_and_payload_ops(db, rng):
    col = db.collection("c", dim=4)
    u = uuid.UUID("5c56c793-69f3-4fbf-87e6-c4bf54c28c26")
    col.upsert([u, "0a0b0c0d-0000-0000-0000-000000000001", 2**64 - 1],
               [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]],
               payloads=[{"a": 1}, None, {"b": {"c": 2}}])
    ids = [r.id for r in col.scroll(limit=10)[0]]
    assert ids == [2**64 - 1, "0a0b0c0d-0000-0000-0000-000000000001", str(u)]
    assert col.retrieve(str(u).upper())[0].payload == {"a": 1}
    col.set_payload({"x": True}, ids=[u, 2**64 - 1])
    assert col.retrieve(u)[0].payload == {"a": 1, "x": True}
    col.set_payload({"d": 4}, ids=2**64 - 1, key="b")
    assert col.retrieve(2**64 - 1)[0].payload == {"b": {"c": 2, "d": 4}, "x": True}
    col.delete_payload(["x"], filter={"must": [{"key": "a", "match": {"value": 1}}]})
    assert col.retrieve(u)[0].payload == {"a": 1}
    col.overwrite_payload({"z": "new"}, ids=[u])
    assert col.retrieve(u)[0].payload == {"z": "new"}
    col.clear_payload(ids=[u])
    assert col.retrieve(u)[0].payload == {}
    with pytest.raises(TypeError):
        col.set_payload({"x": 1})  # neither ids nor filter
    with pytest.raises(TypeError):
        col.set_payload({"x": 1}, ids=[1], filter={"must": []})
    with pytest.raises(TypeError):
        col.set_payload([1], ids=[u])
    for bad in (-1, 2**64, 1.5, True, "not-a-uuid", object()):
        with pytest.raises((TypeError, ValueError)):
            col.upsert([bad], [[1, 1, 1, 1]])
    assert len(col) == 3


def test_delete_and_upsert_replace(db, rng):
    col = db.collection("c", dim=DIM)
    fill(col, rng, n=100)
    assert col.delete(ids=[1, 2, 3, 5000]) == 3
    assert col.delete(filter={"must": [{"key": "color", "match": {"value": "blue"}}]}) == 32
    assert len(col) == 65
    new = np.ones(DIM, np.float32)
    col.upsert(0, new, payloads={"replaced": True})
    r = col.retrieve(0, with_vector=True)[0]
    assert r.payload == {"replaced": True}
    np.testing.assert_allclose(r.vector, new / np.linalg.norm(new), rtol=1e-5)
    assert col.search(new, limit=1)[0].id == 0
    with pytest.raises(TypeError):
        col.delete()


def test_bad_upserts_apply_nothing(db, rng):
    col = db.collection("c", dim=4)
    col.upsert([1], [[1, 2, 3, 4]])
    with pytest.raises(ValueError, match="dimension 4"):
        col.upsert([2, 3], [[1, 2, 3]])
    with pytest.raises(ValueError, match="NaN"):
        col.upsert([2, 3], [[1, 2, 3, 4], [1, float("nan"), 3, 4]])
    with pytest.raises(ValueError, match="2 ids but 1 vectors"):
        col.upsert([2, 3], [[1, 2, 3, 4]])
    with pytest.raises(ValueError, match="payloads"):
        col.upsert([2, 3], [[1, 2, 3, 4]] * 2, payloads=[{}])
    with pytest.raises(TypeError, match="payload 1"):
        col.upsert([2, 3], [[1, 2, 3, 4]] * 2, payloads=[{}, "x"])
    with pytest.raises(ValueError):  # NaN is not JSON
        col.upsert([2], [[1, 2, 3, 4]], payloads=[{"x": float("nan")}])
    with pytest.raises(TypeError):  # not JSON-serialisable
        col.upsert([2], [[1, 2, 3, 4]], payloads=[{"x": object()}])
    with pytest.raises(TypeError):
        col.upsert([2], np.zeros((1, 4), np.complex64))
    assert len(col) == 1
    with pytest.raises(ValueError):
        col.search([1, 2, 3, float("inf")])
    with pytest.raises(ValueError):
        col.search([1, 2, 3, 4], limit=0)


def test_search_options(db, rng):
    col = db.collection("c", dim=DIM, metric="dot")
    vecs, _ = fill(col, rng, n=200)
    q = rng.standard_normal(DIM).astype(np.float32)
    full = col.search(q, limit=20, exact=True)
    assert [h.id for h in col.search(q, limit=5, offset=3, exact=True)] == [h.id for h in full[3:8]]
    thr = full[9].score
    got = col.search(q, limit=20, exact=True, score_threshold=thr)
    assert [h.id for h in got] == [h.id for h in full[:10]]
    assert all(h.vector is not None and h.vector.shape == (DIM,) for h in col.search(q, limit=2, with_vector=True))


def test_huge_limits_never_crash(db, rng):
    col = db.collection("c", dim=4)
    col.upsert(list(range(10)), rng.standard_normal((10, 4)))
    for kw in (dict(limit=10**12), dict(limit=2**62), dict(limit=5, offset=10**15), dict(limit=5, ef=10**12),
               dict(limit=10**12, exact=True)):
        try:
            assert len(col.search([1, 2, 3, 4], **kw)) <= 10
        except ValueError:
            pass
    page, nxt = col.scroll(limit=2**62)
    assert len(page) == 10 and nxt is None
    with pytest.raises((ValueError, OverflowError)):
        col.scroll(limit=-1)


def test_persistence_across_reopen(tmp_path, rng):
    path = tmp_path / "data"
    with nearly.Database(path) as db:
        col = db.collection("keep", dim=DIM, metric="l2")
        vecs, payloads = fill(col, rng, n=300)
        col.delete(ids=[7])
        q = vecs[:5] + 0.01
        before = [[h.id for h in r] for r in col.search(q, limit=5, exact=True)]
    assert db.closed and col.closed
    with nearly.Database(str(path)) as db:
        col = db.collection("keep")
        assert (col.dim, col.metric, len(col)) == (DIM, "l2", 299)
        assert col.retrieve(8)[0].payload == payloads[8]
        assert col.retrieve(7) == []
        after = [[h.id for h in r] for r in col.search(q, limit=5, exact=True)]
        assert after == before
        col.checkpoint()
    with nearly.Database(path) as db:
        assert len(db.collection("keep")) == 299


def test_snapshot_restore_and_aliases(db, rng, tmp_path):
    col = db.collection("c", dim=DIM)
    fill(col, rng, n=50)
    snap = tmp_path / "c.snapshot"
    col.snapshot(snap)
    col.delete(ids=list(range(10)))
    restored = db.restore_snapshot("c2", snap)
    assert len(restored) == 50 and len(col) == 40
    with pytest.raises(nearly.Error):
        db.restore_snapshot("c", snap)  # exists, no overwrite
    assert len(db.restore_snapshot("c", snap, overwrite=True)) == 50
    bad = tmp_path / "bad.snapshot"
    bad.write_bytes(snap.read_bytes()[:100])
    with pytest.raises(nearly.Error):
        db.restore_snapshot("c3", bad)
    assert "c3" not in db
    db.create_alias("latest", "c2")
    assert db.collection("latest").name == "c2"
    assert db.list_aliases() == [{"alias_name": "latest", "collection_name": "c2"}]
    db.rename_alias("latest", "newest")
    db.delete_alias("newest")
    assert db.list_aliases() == []
    with pytest.raises(nearly.NotFoundError):
        db.delete_alias("newest")


def test_dropped_collection_handle(db):
    col = db.collection("gone", dim=4)
    col.upsert([1], [[1, 2, 3, 4]])
    db.drop_collection("gone")
    assert "gone" not in db
    # The handle outlives the drop: using it raises, never crashes.
    try:
        col.upsert([2], [[1, 2, 3, 4]])
        col.search([1, 2, 3, 4])
    except nearly.Error:
        pass
    col.close()
    again = db.collection("gone", dim=4)
    assert len(again) == 0


def test_closed_objects(tmp_path, rng):
    db = nearly.Database(tmp_path / "d")
    col = db.collection("c", dim=4)
    col.upsert([1], [[1, 2, 3, 4]])
    db.close()
    db.close()  # idempotent
    for call in (lambda: col.upsert([2], [[1, 2, 3, 4]]), lambda: col.search([1, 2, 3, 4]), lambda: len(col),
                 lambda: col.retrieve([1]), lambda: col.scroll(), lambda: col.count(), lambda: col.info(),
                 lambda: col.delete(ids=[1]), lambda: db.collection("c"), lambda: db.list_collections(),
                 lambda: "c" in db):
        with pytest.raises(nearly.ClosedError):
            call()
    # a released collection handle alone
    db = nearly.Database(tmp_path / "d")
    col = db.collection("c")
    with col:
        assert len(col) == 1
    with pytest.raises(nearly.ClosedError):
        len(col)
    assert len(db.collection("c")) == 1
    db.close()
    with pytest.raises(TypeError):
        nearly.Collection()


def test_directory_lock_between_processes(tmp_path):
    path = tmp_path / "locked"
    db = nearly.Database(path)
    code = ("import nearly, sys\n"
            "try:\n    nearly.Database(sys.argv[1])\nexcept nearly.BusyError as e:\n    print('busy', e)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env,
                         timeout=60)
    assert out.stdout.startswith("busy"), (out.stdout, out.stderr)
    db.close()
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env,
                         timeout=60)
    assert out.returncode == 0 and out.stdout == ""


def test_threads(db, rng):
    col = db.collection("c", dim=DIM)
    vecs = rng.standard_normal((800, DIM)).astype(np.float32)
    errors = []

    def writer(lo):
        try:
            for s in range(lo, lo + 200, 20):
                col.upsert(list(range(s, s + 20)), vecs[s:s + 20],
                           payloads=[{"w": lo}] * 20, wait=False)
        except Exception as e:  # pragma: no cover
            errors.append(e)

    def reader():
        try:
            for _ in range(20):
                col.search(vecs[0], limit=5, filter={"must": [{"key": "w", "match": {"value": 0}}]})
                col.count()
        except Exception as e:  # pragma: no cover
            errors.append(e)

    ts = [threading.Thread(target=writer, args=(lo,)) for lo in (0, 200, 400, 600)]
    ts += [threading.Thread(target=reader) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    assert len(col) == 800
    assert col.count(filter={"must": [{"key": "w", "match": {"value": 600}}]}) == 200


def test_close_during_calls_never_crashes(tmp_path, rng):
    db = nearly.Database(tmp_path / "d")
    col = db.collection("c", dim=DIM)
    vecs = rng.standard_normal((3000, DIM)).astype(np.float32)
    outcome = []

    def worker():
        try:
            for s in range(0, 3000, 500):
                col.upsert(list(range(s, s + 500)), vecs[s:s + 500])
                col.search(vecs[:50], limit=10)
            outcome.append("done")
        except nearly.ClosedError:
            outcome.append("closed")

    t = threading.Thread(target=worker)
    t.start()
    refused = 0
    while True:
        try:
            db.close()
            break
        except RuntimeError:
            refused += 1
    t.join()
    assert outcome in (["done"], ["closed"])
    assert db.closed
