"""A data directory written by nearly.Database is served as-is by
`nearly serve --data-dir`, and what the server writes is read back by
Python: the embedded and served Nearly share one on-disk format."""

import json
import os
import subprocess
import threading
import urllib.request

import numpy as np
import pytest

import nearly

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NEARLY = os.path.join(ROOT, "build", "nearly")


def has_serve():
    if not os.access(NEARLY, os.X_OK):
        return False
    r = subprocess.run([NEARLY, "serve", "--help"], capture_output=True, timeout=30)
    return r.returncode == 0


pytestmark = pytest.mark.skipif(not has_serve(), reason="build/nearly has no serve command")


class Server:
    def __init__(self, data_dir):
        # The server is the normal build: drop sanitizer preloads that a
        # sanitized run of these tests may have set for the module.
        env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")}
        self.proc = subprocess.Popen([NEARLY, "serve", "--data-dir", str(data_dir), "--port", "0"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        self.port = None
        for line in self.proc.stderr:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("msg") == "listening":
                self.port = rec["port"]
                break
        if self.port is None:
            self.stop()
            raise RuntimeError("nearly serve did not start")
        # keep draining the log so that the server never blocks on a full pipe
        self.drain = threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True)
        self.drain.start()

    def call(self, method, path, body=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            if getattr(self, "drain", None):
                self.drain.join(timeout=10)
            self.proc.stderr.close()


def test_python_writes_server_reads_and_back(tmp_path, rng):
    data = tmp_path / "data"
    vecs = rng.standard_normal((50, 8)).astype(np.float32)
    with nearly.Database(data) as db:
        col = db.collection("docs", dim=8, metric="cosine")
        col.upsert(list(range(50)), vecs, payloads=[{"i": i, "even": i % 2 == 0} for i in range(50)])
        want = [h.id for h in col.search(vecs[3], limit=5, filter={"must": [{"key": "even", "match": {"value": False}}]},
                                        exact=True)]

    srv = Server(data)
    try:
        info = srv.call("GET", "/collections/docs")["result"]
        assert info["points_count"] == 50
        assert info["config"]["params"]["vectors"] == {"size": 8, "distance": "Cosine"}
        pt = srv.call("GET", "/collections/docs/points/7")["result"]
        assert pt["payload"] == {"i": 7, "even": False}
        res = srv.call("POST", "/collections/docs/points/search",
                       {"vector": vecs[3].tolist(), "limit": 5, "params": {"exact": True},
                        "filter": {"must": [{"key": "even", "match": {"value": False}}]}})["result"]
        assert [h["id"] for h in res] == want
        srv.call("PUT", "/collections/docs/points?wait=true",
                 {"points": [{"id": 100, "vector": [1.0] * 8, "payload": {"from": "server"}}]})
    finally:
        srv.stop()

    with nearly.Database(data) as db:
        col = db.collection("docs")
        assert len(col) == 51
        assert col.retrieve(100)[0].payload == {"from": "server"}
        assert col.search([1.0] * 8, limit=1)[0].id == 100
