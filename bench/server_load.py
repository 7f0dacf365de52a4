#!/usr/bin/python3
"""Loads random vectors into a running `nearly serve` over HTTP and writes
wrk Lua scripts with query / upsert bodies.  Used by bench/server_bench.sh.

  server_load.py URL COLLECTION N DIM BATCH OUTDIR
Prints one JSON line: upsert throughput of the load (batched PUT /points).
"""
import http.client
import json
import sys
import time
import urllib.parse

import numpy as np


def main():
    url, coll, n, dim, batch, outdir = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
    u = urllib.parse.urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)

    def call(method, path, body=None):
        data = None if body is None else json.dumps(body)
        conn.request(method, path, body=data, headers={"content-type": "application/json"})
        r = conn.getresponse()
        out = r.read()
        if r.status != 200:
            raise SystemExit(f"{method} {path}: {r.status} {out[:300]!r}")
        return json.loads(out)

    call("DELETE", f"/collections/{coll}")
    call("PUT", f"/collections/{coll}", {"vectors": {"size": dim, "distance": "Cosine"}})
    rng = np.random.default_rng(42)
    base = rng.standard_normal((n, dim), dtype=np.float32)
    lat = []
    t0 = time.perf_counter()
    for s in range(0, n, batch):
        pts = [{"id": int(i), "vector": [round(float(x), 5) for x in base[i]], "payload": {"g": int(i % 10)}}
               for i in range(s, min(n, s + batch))]
        body = json.dumps({"points": pts})
        t = time.perf_counter()
        conn.request("PUT", f"/collections/{coll}/points?wait=true", body=body, headers={"content-type": "application/json"})
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise SystemExit(f"upsert: {r.status}")
        lat.append(time.perf_counter() - t)
    total = time.perf_counter() - t0
    # wait until indexed (status green) before searching
    for _ in range(600):
        info = call("GET", f"/collections/{coll}")["result"]
        if info.get("status") == "green":
            break
        time.sleep(0.5)
    lat.sort()
    print(json.dumps({"op": "upsert_batch", "points": n, "dim": dim, "batch": batch, "seconds": round(total, 3),
                      "points_per_s": round(n / total), "batch_p50_ms": round(lat[len(lat) // 2] * 1e3, 2),
                      "batch_p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3, 2)}))

    queries = rng.standard_normal((256, dim), dtype=np.float32)
    def lua_bodies(kind):
        out = []
        for q in queries:
            v = [round(float(x), 5) for x in q]
            if kind == "query":
                out.append(json.dumps({"query": v, "limit": 10}))
            elif kind == "query_filter":
                out.append(json.dumps({"query": v, "limit": 10, "filter": {"must": [{"key": "g", "match": {"value": 3}}]}}))
            else:
                out.append(json.dumps({"vector": v, "limit": 10, "with_payload": True}))
        return out
    for kind, path in (("query", f"/collections/{coll}/points/query"),
                       ("query_filter", f"/collections/{coll}/points/query"),
                       ("search", f"/collections/{coll}/points/search")):
        with open(f"{outdir}/{kind}.lua", "w") as f:
            f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nlocal bodies = {\n')
            for b in lua_bodies(kind):
                f.write("  [[" + b + "]],\n")
            f.write("}\nlocal i = 0\nrequest = function()\n  i = i + 1\n")
            f.write(f'  return wrk.format(nil, "{path}", nil, bodies[(i % #bodies) + 1])\nend\n')
    # single-point upserts with fresh ids (wait=false and wait=true variants)
    vec = [round(float(x), 5) for x in queries[0]]
    for wait in ("false", "true"):
        with open(f"{outdir}/upsert_{wait}.lua", "w") as f:
            f.write('wrk.method = "PUT"\nwrk.headers["Content-Type"] = "application/json"\n')
            f.write(f'local vec = "{json.dumps(vec)}"\n')
            f.write("local i = 0\nlocal base = %d\nrequest = function()\n  i = i + 1\n" % (n + (0 if wait == "false" else 10_000_000)))
            f.write('  local body = \'{"points":[{"id":\' .. (base + i + math.random(0, 1000000) * 100) .. \',"vector":\' .. vec .. \',"payload":{"g":1}}]}\'\n')
            f.write(f'  return wrk.format(nil, "/collections/{coll}/points?wait={wait}", nil, body)\nend\n')


if __name__ == "__main__":
    main()
