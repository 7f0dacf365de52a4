// HTTP-level tests of the wire format: envelope, status codes, legacy
// endpoints (/points/search, /points/recommend) and what the Python client
// sends (query {"nearest": ...}, float range bounds).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { http, KEY, vectors, cosine, euclid, bruteForce } from './helpers.mjs';

const DIM = 6;
const pts = vectors(120, DIM, 5).map((v, i) => ({ id: i, vector: v, payload: { k: i % 7, name: `p${i}`, price: i * 1.5 } }));

before(async () => {
  await http('DELETE', '/collections/wire');
  const c = await http('PUT', '/collections/wire', { vectors: { size: DIM, distance: 'Euclid' } });
  assert.equal(c.status, 200, c.text);
  const u = await http('PUT', '/collections/wire/points?wait=true', { points: pts });
  assert.equal(u.status, 200, u.text);
});

function envelope(r) {
  assert.equal(r.json.status, 'ok', r.text);
  assert.equal(typeof r.json.time, 'number');
  assert.ok('result' in r.json);
  return r.json.result;
}

function errorEnvelope(r, status, pattern) {
  assert.equal(r.status, status, r.text);
  assert.equal(typeof r.json.status.error, 'string', r.text);
  assert.equal(typeof r.json.time, 'number');
  if (pattern) assert.match(r.json.status.error, pattern);
}

test('GET / and health endpoints need no key', async () => {
  const r = await http('GET', '/', undefined, { key: null });
  assert.equal(r.status, 200);
  assert.equal(r.json.title, 'qdrant - vector search engine');
  assert.match(r.json.version, /^1\.\d+\.\d+$/);
  for (const p of ['/healthz', '/livez', '/readyz']) {
    const h = await http('GET', p, undefined, { key: null });
    assert.equal(h.status, 200);
  }
});

test('Authorization: Bearer works like api-key', async () => {
  const r = await http('GET', '/collections', undefined, { key: null, headers: { authorization: `Bearer ${KEY}` } });
  assert.equal(r.status, 200);
  assert.ok(envelope(r).collections.some((c) => c.name === 'wire'));
  const bad = await http('GET', '/collections', undefined, { key: null, headers: { authorization: 'Bearer x' } });
  errorEnvelope(bad, 401);
});

test('malformed JSON is 400, unknown fields 400, validation 422', async () => {
  errorEnvelope(await http('POST', '/collections/wire/points/search', '{"vector": [1,2', {}), 400, /Json deserialize error/);
  errorEnvelope(await http('POST', '/collections/wire/points/search', '[1,2]'), 400, /object/);
  errorEnvelope(await http('POST', '/collections/wire/points/search', { vector: pts[0].vector, limit: 1, bogus: 1 }), 400, /unknown field `bogus`/);
  errorEnvelope(await http('POST', '/collections/wire/points/search', { vector: pts[0].vector }), 400, /missing field `limit`/);
  errorEnvelope(await http('POST', '/collections/wire/points/search', { vector: pts[0].vector, limit: 0 }), 422, /limit/);
  errorEnvelope(await http('POST', '/collections/wire/points/search', { vector: [1, 'x', 3, 4, 5, 6], limit: 1 }), 400, /element 1/);
  errorEnvelope(await http('PUT', '/collections/wire/points', { points: [{ id: 1 }] }), 400, /missing field `vector`/);
  errorEnvelope(await http('PUT', '/collections/wire/points', { points: [{ id: 1, vector: pts[0].vector, payload: [1] }] }), 400, /payload/);
  errorEnvelope(await http('POST', '/collections/wire/points/scroll', { filter: 3 }), 400, /filter/);
});

test('404 for unknown endpoint, collection, point; 405 for wrong method', async () => {
  errorEnvelope(await http('GET', '/nothing/here'), 404);
  errorEnvelope(await http('GET', '/collections/missing'), 404, /Collection `missing` doesn't exist!/);
  errorEnvelope(await http('GET', '/collections/wire/points/99999'), 404, /99999/);
  errorEnvelope(await http('GET', '/collections/wire/points/not-an-id'), 400, /point id/);
  errorEnvelope(await http('GET', '/collections/wire/points/scroll'), 405);
  errorEnvelope(await http('DELETE', '/collections/aliases'), 405);
});

test('body over the size limit is 413', async () => {
  const big = JSON.stringify({ points: [{ id: 1, vector: pts[0].vector, payload: { blob: 'x'.repeat(5 << 20) } }] });
  const r = await http('PUT', '/collections/wire/points', big);
  assert.equal(r.status, 413);
  assert.match(r.json.status.error, /limit/);
  assert.equal(envelope(await http('POST', '/collections/wire/points/count', {})).count, pts.length);
});

test('legacy /points/search and /points/search/batch', async () => {
  const qv = vectors(1, DIM, 77)[0];
  const want = bruteForce(pts, qv, 5, euclid, { asc: true });
  const r = envelope(await http('POST', '/collections/wire/points/search', { vector: qv, limit: 5, params: { exact: true }, with_payload: true }));
  assert.deepEqual(r.map((p) => p.id), want.map((w) => w.id));
  r.forEach((p, i) => {
    assert.ok(Math.abs(p.score - want[i].s) < 1e-4, 'Euclid score is the distance');
    assert.equal(p.version, 0);
    assert.deepEqual(p.payload, pts[p.id].payload);
    assert.equal(p.vector, null);
  });
  const named = envelope(await http('POST', '/collections/wire/points/search', { vector: { name: '', vector: qv }, limit: 2, params: { exact: true } }));
  assert.deepEqual(named.map((p) => p.id), want.slice(0, 2).map((w) => w.id));
  errorEnvelope(await http('POST', '/collections/wire/points/search', { vector: { name: 'image', vector: qv }, limit: 2 }), 400, /vector name/);
  const filter = { must: [{ key: 'k', match: { any: [1, 2] } }] };
  const wantF = bruteForce(pts, qv, 3, euclid, { asc: true, filter: (p) => [1, 2].includes(p.payload.k) });
  const b = envelope(await http('POST', '/collections/wire/points/search/batch', {
    searches: [{ vector: qv, limit: 1, params: { exact: true } }, { vector: qv, limit: 3, filter, params: { exact: true }, with_vector: true }],
  }));
  assert.equal(b.length, 2);
  assert.deepEqual(b[0].map((p) => p.id), [want[0].id]);
  assert.deepEqual(b[1].map((p) => p.id), wantF.map((w) => w.id));
  assert.equal(b[1][0].vector.length, DIM);
  // score_threshold for Euclid keeps distances below it
  const thr = envelope(await http('POST', '/collections/wire/points/search', { vector: qv, limit: 50, score_threshold: want[2].s + 1e-6, params: { exact: true } }));
  assert.deepEqual(thr.map((p) => p.id), want.slice(0, 3).map((w) => w.id));
});

test('legacy /points/recommend and its batch', async () => {
  const r = envelope(await http('POST', '/collections/wire/points/recommend', { positive: [3, 4], negative: [10], limit: 4, params: { exact: true } }));
  assert.equal(r.length, 4);
  for (const p of r) assert.ok(![3, 4, 10].includes(p.id), 'examples are excluded');
  const avgP = pts[3].vector.map((x, d) => (x + pts[4].vector[d]) / 2);
  const target = avgP.map((x, d) => x + (x - pts[10].vector[d]));
  const want = bruteForce(pts.filter((p) => ![3, 4, 10].includes(p.id)), target, 4, euclid, { asc: true });
  assert.deepEqual(r.map((p) => p.id), want.map((w) => w.id));
  const b = envelope(await http('POST', '/collections/wire/points/recommend/batch', {
    searches: [{ positive: [3], limit: 2 }, { positive: [5], strategy: 'best_score', limit: 2, with_payload: ['name'] }],
  }));
  assert.equal(b.length, 2);
  assert.deepEqual(Object.keys(b[1][0].payload), ['name']);
  errorEnvelope(await http('POST', '/collections/wire/points/recommend', { negative: [3], limit: 2 }), 400, /positive/);
  errorEnvelope(await http('POST', '/collections/wire/points/recommend', { positive: [3], strategy: 'nope', limit: 2 }), 400, /strategy/);
});

test('what the Python client sends: query {"nearest"}, float range bounds', async () => {
  const qv = pts[9].vector;
  const r = envelope(await http('POST', '/collections/wire/points/query', {
    query: { nearest: qv },
    filter: { must: [{ key: 'k', range: { gte: 2.0, lt: 5.0 } }, { key: 'price', range: { gt: 10.0 } }] },
    limit: 5,
    with_payload: true,
    params: { exact: true },
  }));
  const want = bruteForce(pts, qv, 5, euclid, { asc: true, filter: (p) => p.payload.k >= 2 && p.payload.k < 5 && p.payload.price > 10 });
  assert.deepEqual(r.points.map((p) => p.id), want.map((w) => w.id));
  const batch = envelope(await http('POST', '/collections/wire/points/query/batch', { searches: [{ query: qv, limit: 1 }, { query: 9, limit: 1 }] }));
  assert.equal(batch[0].points[0].id, 9);
  assert.notEqual(batch[1].points[0].id, 9);
  errorEnvelope(await http('POST', '/collections/wire/points/query', { query: { fusion: 'rrf' } }), 400, /not supported/);
  errorEnvelope(await http('POST', '/collections/wire/points/query', { query: { indices: [1], values: [1] } }), 400, /sparse/);
});

test('points/batch applies operations in order', async () => {
  const r = envelope(await http('POST', '/collections/wire/points/batch?wait=true', {
    operations: [
      { upsert: { points: [{ id: 1000, vector: pts[0].vector, payload: { t: 1 } }] } },
      { set_payload: { payload: { u: 2 }, points: [1000] } },
      { delete_payload: { keys: ['t'], points: [1000] } },
    ],
  }));
  assert.equal(r.length, 3);
  r.forEach((x) => assert.equal(x.status, 'completed'));
  const p = envelope(await http('GET', '/collections/wire/points/1000'));
  assert.deepEqual(p.payload, { u: 2 });
  assert.equal(p.vector.length, DIM);
  envelope(await http('POST', '/collections/wire/points/delete?wait=true', { points: [1000] }));
  errorEnvelope(await http('POST', '/collections/wire/points/batch', { operations: [{ frobnicate: {} }] }), 400, /operations\[0\]/);
});

test('update_mode insert_only and update_only', async () => {
  envelope(await http('PUT', '/collections/wire/points?wait=true', { points: [{ id: 0, vector: pts[1].vector, payload: { changed: true } }, { id: 2000, vector: pts[1].vector }], update_mode: 'insert_only' }));
  let g = envelope(await http('POST', '/collections/wire/points', { ids: [0, 2000] }));
  assert.deepEqual(g.find((p) => p.id === 0).payload, pts[0].payload, 'existing point kept');
  assert.ok(g.some((p) => p.id === 2000));
  envelope(await http('PUT', '/collections/wire/points?wait=true', { points: [{ id: 2000, vector: pts[1].vector, payload: { v: 2 } }, { id: 2001, vector: pts[1].vector }], update_mode: 'update_only' }));
  g = envelope(await http('POST', '/collections/wire/points', { ids: [2000, 2001] }));
  assert.deepEqual(g.map((p) => p.id), [2000]);
  assert.deepEqual(g[0].payload, { v: 2 });
  envelope(await http('POST', '/collections/wire/points/delete?wait=true', { points: [2000] }));
});

test('snapshot names cannot escape the snapshots directory', async () => {
  for (const name of ['..%2F..%2Fserver.log', '.hidden.snapshot', 'x%2F..%2F..%2Fy.snapshot']) {
    const r = await http('GET', `/collections/wire/snapshots/${name}`);
    assert.ok([400, 404].includes(r.status), `${name}: ${r.status}`);
  }
  const r = await http('PUT', '/collections/wire2/snapshots/recover', { location: 'file:///etc/hostname' });
  errorEnvelope(r, 403, /outside/);
  const rel = await http('PUT', '/collections/wire2/snapshots/recover', { location: '../../x.snapshot' });
  assert.ok([400, 403, 404].includes(rel.status));
  const http_ = await http('PUT', '/collections/wire2/snapshots/recover', { location: 'http://example.invalid/x.snapshot' });
  errorEnvelope(http_, 400, /file:\/\//);
});

test('delete by filter, clear payload by filter, delete_vectors refuses', async () => {
  envelope(await http('PUT', '/collections/wire/points?wait=true', { points: [{ id: 3000, vector: pts[0].vector, payload: { tmp: 1 } }, { id: 3001, vector: pts[0].vector, payload: { tmp: 1 } }] }));
  errorEnvelope(await http('POST', '/collections/wire/points/vectors/delete', { points: [3000], vector: ['x'] }), 400, /vector name/);
  envelope(await http('POST', '/collections/wire/points/payload/clear?wait=true', { filter: { must: [{ key: 'tmp', match: { value: 1 } }] }, points: undefined }));
  const g = envelope(await http('POST', '/collections/wire/points', { ids: [3000, 3001] }));
  g.forEach((p) => assert.deepEqual(p.payload, {}));
  envelope(await http('POST', '/collections/wire/points/delete?wait=true', { filter: { must: [{ has_id: [3000, 3001] }] } }));
  assert.equal(envelope(await http('POST', '/collections/wire/points/count', {})).count, pts.length);
  errorEnvelope(await http('POST', '/collections/wire/points/delete', { points: [1], filter: {} }), 400, /not both/);
});

test('GET /metrics in Prometheus text format; /telemetry', async () => {
  const r = await http('GET', '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.res.headers.get('content-type'), /text\/plain/);
  assert.match(r.text, /^# TYPE rest_responses_total counter$/m);
  assert.match(r.text, /^rest_responses_total\{method="POST",endpoint="search_points",status="200"\} \d+$/m);
  assert.match(r.text, /^rest_responses_duration_seconds_bucket\{method="POST",endpoint="search_points",le="\+Inf"\} \d+$/m);
  assert.match(r.text, /^points_total \d+$/m);
  assert.match(r.text, /^collection_points\{collection="wire"\} \d+$/m);
  assert.match(r.text, /^memory_resident_bytes [1-9]\d*$/m);
  assert.match(r.text, /^collections_total [1-9]\d*$/m);
  const t = envelope(await http('GET', '/telemetry'));
  assert.equal(typeof t.collections.number_of_collections, 'number');
});

test('access log is structured JSON', async () => {
  const fs = await import('node:fs');
  const lines = fs.readFileSync(process.env.NEARLY_LOG, 'utf8').trim().split('\n');
  const reqs = lines.map((l) => JSON.parse(l)).filter((e) => e.msg === 'request');
  assert.ok(reqs.length > 10);
  const e = reqs.find((x) => x.endpoint === 'search_points');
  for (const k of ['ts', 'level', 'method', 'path', 'status', 'ms', 'remote']) assert.ok(k in e, k);
  assert.ok(reqs.some((x) => x.status >= 400 && typeof x.error === 'string'));
});

test('?timeout: a search past its deadline is 408, a bad value 400', async () => {
  const qv = pts[1].vector;
  const ok = await http('POST', '/collections/wire/points/query/batch?timeout=30', { searches: [{ query: qv, limit: 1 }] });
  assert.equal(ok.status, 200, ok.text);
  errorEnvelope(await http('POST', '/collections/wire/points/query/batch?timeout=0.000001', { searches: [{ query: qv, limit: 1 }] }), 408, /Timeout/);
  errorEnvelope(await http('POST', '/collections/wire/points/search?timeout=soon', { vector: qv, limit: 1 }), 400, /timeout/);
});
