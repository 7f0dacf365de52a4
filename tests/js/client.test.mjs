// Drives `nearly serve` with the official Qdrant JS client (@qdrant/js-client-rest).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { client, RO_KEY, vectors, cosine, dot, euclid, bruteForce, expectApiError } from './helpers.mjs';

const q = client();
const DIM = 8;
const N = 200;
const base = vectors(N, DIM, 11);
const colors = ['red', 'green', 'blue', 'black'];
const points = base.map((v, i) => ({
  id: i + 1,
  vector: v,
  payload: { color: colors[i % 4], n: i, tags: i % 3 === 0 ? ['a', 'b'] : ['c'], nested: { x: i % 5 } },
}));

async function fresh(name, distance = 'Cosine', dim = DIM) {
  await q.deleteCollection(name);
  assert.equal(await q.createCollection(name, { vectors: { size: dim, distance } }), true);
}

test('version check: GET / answers like Qdrant', async () => {
  const info = await q.versionInfo();
  assert.equal(info.title, 'qdrant - vector search engine');
  const [maj, min] = info.version.split('.').map(Number);
  assert.equal(maj, 1);
  assert.ok(Math.abs(min - 19) <= 1, `version ${info.version} is compatible with client 1.19`);
});

test('collection lifecycle', async () => {
  await q.deleteCollection('life');
  assert.equal((await q.collectionExists('life')).exists, false);
  assert.equal(await q.createCollection('life', { vectors: { size: 4, distance: 'Dot' }, hnsw_config: { m: 8 } }), true);
  assert.equal((await q.collectionExists('life')).exists, true);
  const list = await q.getCollections();
  assert.ok(list.collections.some((c) => c.name === 'life'));
  const info = await q.getCollection('life');
  assert.ok(['green', 'yellow'].includes(info.status));
  assert.equal(info.config.params.vectors.size, 4);
  assert.equal(info.config.params.vectors.distance, 'Dot');
  assert.equal(typeof info.segments_count, 'number');
  assert.ok(info.payload_schema && typeof info.payload_schema === 'object');
  assert.equal(await q.updateCollection('life', { optimizers_config: { indexing_threshold: 10000 } }), true);
  await expectApiError(q.createCollection('life', { vectors: { size: 4, distance: 'Dot' } }), 409, /already exists/);
  assert.equal(await q.deleteCollection('life'), true);
  assert.equal((await q.collectionExists('life')).exists, false);
  await expectApiError(q.getCollection('life'), 404, /doesn't exist/);
  // recreateCollection = delete (false when absent) + create
  assert.equal(await q.recreateCollection('life', { vectors: { size: 4, distance: 'Cosine' } }), true);
  assert.equal(await q.deleteCollection('life'), true);
});

test('upsert, retrieve, count, info counts', async () => {
  await fresh('pts');
  const r = await q.upsert('pts', { wait: true, points });
  assert.equal(r.status, 'completed');
  assert.equal(typeof r.operation_id, 'number');
  assert.equal((await q.count('pts')).count, N);
  const info = await q.getCollection('pts');
  assert.equal(info.points_count, N);
  const got = await q.retrieve('pts', { ids: [5, 1, 9999], with_vector: true });
  assert.deepEqual(got.map((p) => p.id), [5, 1]);
  assert.deepEqual(got[0].payload, points[4].payload);
  assert.equal(got[0].vector.length, DIM);
  // cosine collections keep normalised vectors
  const n0 = Math.sqrt(points[4].vector.reduce((s, x) => s + x * x, 0));
  got[0].vector.forEach((x, i) => assert.ok(Math.abs(x - points[4].vector[i] / n0) < 1e-5));
  const noPayload = await q.retrieve('pts', { ids: [2], with_payload: false });
  assert.ok(noPayload[0].payload == null);
  const some = await q.retrieve('pts', { ids: [2], with_payload: ['color'] });
  assert.deepEqual(some[0].payload, { color: points[1].payload.color });
  const excl = await q.retrieve('pts', { ids: [2], with_payload: { exclude: ['tags', 'nested'] } });
  assert.deepEqual(excl[0].payload, { color: points[1].payload.color, n: 1 });
});

test('batch upsert and UUID ids', async () => {
  await fresh('uuids', 'Euclid', 3);
  const ids = ['5c56c793-69f3-4fbf-87e6-c4bf54c28c26', 'a4d7c2b6-0b7c-4b43-9e1e-0a4e9d1c1f00', 42];
  await q.upsert('uuids', {
    wait: true,
    batch: { ids, vectors: [[0, 0, 0], [1, 0, 0], [0, 2, 0]], payloads: [{ k: 1 }, { k: 2 }, { k: 3 }] },
  });
  const got = await q.retrieve('uuids', { ids });
  assert.deepEqual(got.map((p) => p.id).sort(), ids.map(String).sort().map((x) => (x === '42' ? 42 : x)).sort());
  const res = await q.query('uuids', { query: [0.9, 0, 0], limit: 3, params: { exact: true } });
  assert.equal(res.points[0].id, ids[1]);
  assert.ok(Math.abs(res.points[0].score - 0.1) < 1e-5, 'Euclid score is the distance');
  assert.deepEqual(res.points.map((p) => p.id), [ids[1], ids[0], 42]);
  await q.deleteCollection('uuids');
});

test('query: vector, nearest, by id, filters, exact vs brute force', async () => {
  const query = vectors(1, DIM, 99)[0];
  const k = 10;
  const want = bruteForce(points, query, k, cosine);
  const a = await q.query('pts', { query, limit: k, params: { exact: true }, with_payload: true });
  assert.deepEqual(a.points.map((p) => p.id), want.map((w) => w.id));
  a.points.forEach((p, i) => assert.ok(Math.abs(p.score - want[i].s) < 1e-4));
  assert.equal(typeof a.points[0].version, 'number');
  assert.deepEqual(a.points[0].payload, points[want[0].id - 1].payload);
  const b = await q.query('pts', { query: { nearest: query }, limit: k, params: { hnsw_ef: 128 } });
  const overlap = b.points.filter((p) => want.some((w) => w.id === p.id)).length;
  assert.ok(overlap >= 9, `HNSW recall ${overlap}/10`);
  // filter: color = red and n in [10, 120]
  const filter = { must: [{ key: 'color', match: { value: 'red' } }, { key: 'n', range: { gte: 10, lte: 120 } }] };
  const wantF = bruteForce(points, query, 5, cosine, {
    filter: (p) => p.payload.color === 'red' && p.payload.n >= 10 && p.payload.n <= 120,
  });
  const c = await q.query('pts', { query, filter, limit: 5, params: { exact: true }, with_payload: ['color', 'n'] });
  assert.deepEqual(c.points.map((p) => p.id), wantF.map((w) => w.id));
  c.points.forEach((p) => assert.equal(p.payload.color, 'red'));
  // offset + score_threshold
  const d = await q.query('pts', { query, limit: 3, offset: 2, params: { exact: true } });
  assert.deepEqual(d.points.map((p) => p.id), want.slice(2, 5).map((w) => w.id));
  const thr = want[4].s;
  const e = await q.query('pts', { query, limit: 50, score_threshold: thr - 1e-6, params: { exact: true } });
  assert.equal(e.points.length, 5);
  // by point id: the point itself is excluded
  const f = await q.query('pts', { query: 7, limit: 5, params: { exact: true } });
  const wantId = bruteForce(points, points[6].vector, 6, cosine).filter((w) => w.id !== 7).slice(0, 5);
  assert.deepEqual(f.points.map((p) => p.id), wantId.map((w) => w.id));
  // with_vector
  const g = await q.query('pts', { query, limit: 1, with_vector: true });
  assert.equal(g.points[0].vector.length, DIM);
  // batch
  const batch = await q.queryBatch('pts', {
    searches: [{ query, limit: 2, params: { exact: true } }, { query: { nearest: query }, limit: 3, filter, params: { exact: true } }],
  });
  assert.equal(batch.length, 2);
  assert.deepEqual(batch[0].points.map((p) => p.id), want.slice(0, 2).map((w) => w.id));
  assert.deepEqual(batch[1].points.map((p) => p.id), wantF.slice(0, 3).map((w) => w.id));
  // no query: points in id order
  const h = await q.query('pts', { limit: 3, filter: { must: [{ key: 'color', match: { value: 'green' } }] } });
  assert.deepEqual(h.points.map((p) => p.id), [2, 6, 10]);
});

test('query: recommend (average_vector, best_score) excludes the examples', async () => {
  const pos = [3, 8], neg = [20];
  const avg = (ids) => {
    const vs = ids.map((id) => {
      const v = points[id - 1].vector, n = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
      return v.map((x) => x / n);
    });
    return vs[0].map((_, d) => vs.reduce((s, v) => s + v[d], 0) / vs.length);
  };
  const ap = avg(pos), an = avg(neg);
  const target = ap.map((x, d) => x + (x - an[d]));
  const want = bruteForce(points.filter((p) => !pos.includes(p.id) && !neg.includes(p.id)), target, 5, cosine);
  const r = await q.query('pts', { query: { recommend: { positive: pos, negative: neg } }, limit: 5, params: { exact: true } });
  assert.deepEqual(r.points.map((p) => p.id), want.map((w) => w.id));
  const sig = (x) => 0.5 * (x / (1 + Math.abs(x)) + 1);
  const best = points
    .filter((p) => !pos.includes(p.id) && !neg.includes(p.id))
    .map((p) => {
      const mp = Math.max(...pos.map((id) => cosine(points[id - 1].vector, p.vector)));
      const mn = Math.max(...neg.map((id) => cosine(points[id - 1].vector, p.vector)));
      return { id: p.id, s: mp > mn ? sig(mp) : -sig(mn) };
    })
    .sort((a, b) => b.s - a.s)
    .slice(0, 5);
  const rb = await q.query('pts', {
    query: { recommend: { positive: pos, negative: neg, strategy: 'best_score' } },
    limit: 5,
    params: { exact: true },
  });
  assert.deepEqual(rb.points.map((p) => p.id), best.map((w) => w.id));
  rb.points.forEach((p, i) => assert.ok(Math.abs(p.score - best[i].s) < 1e-4));
  // vectors as examples (not excluded), with a filter
  const rv = await q.query('pts', {
    query: { recommend: { positive: [points[2].vector] } },
    filter: { must_not: [{ key: 'color', match: { value: 'red' } }] },
    limit: 3,
    params: { exact: true },
  });
  const wantV = bruteForce(points, points[2].vector, 3, cosine, { filter: (p) => p.payload.color !== 'red' });
  assert.deepEqual(rv.points.map((p) => p.id), wantV.map((w) => w.id));
  await expectApiError(q.query('pts', { query: { recommend: { positive: [99999] } } }), 404, /99999/);
});

test('scroll pagination and count with filters', async () => {
  const seen = [];
  let offset;
  for (;;) {
    const page = await q.scroll('pts', { limit: 64, offset, with_payload: false });
    seen.push(...page.points.map((p) => p.id));
    if (page.next_page_offset == null) break;
    offset = page.next_page_offset;
  }
  assert.deepEqual(seen, points.map((p) => p.id));
  const f = { should: [{ key: 'color', match: { value: 'blue' } }, { key: 'tags', match: { any: ['a'] } }] };
  const want = points.filter((p) => p.payload.color === 'blue' || p.payload.tags.includes('a')).length;
  assert.equal((await q.count('pts', { filter: f })).count, want);
  const page = await q.scroll('pts', { filter: f, limit: 1000 });
  assert.equal(page.points.length, want);
  assert.equal(page.next_page_offset ?? null, null);
  const nested = await q.count('pts', { filter: { must: [{ key: 'nested.x', match: { value: 3 } }] } });
  assert.equal(nested.count, points.filter((p) => p.payload.nested.x === 3).length);
  const ids = await q.count('pts', { filter: { must: [{ has_id: [1, 2, 3, 5000] }] } });
  assert.equal(ids.count, 3);
});

test('payload operations', async () => {
  await fresh('pay', 'Dot', 2);
  await q.upsert('pay', {
    points: [
      { id: 1, vector: [1, 0], payload: { a: 1, b: 2 } },
      { id: 2, vector: [0, 1], payload: { a: 3 } },
      { id: 3, vector: [1, 1] },
    ],
  });
  await q.setPayload('pay', { payload: { c: 'x' }, points: [1, 2] });
  let r = await q.retrieve('pay', { ids: [1, 2, 3] });
  assert.deepEqual(r.map((p) => p.payload), [{ a: 1, b: 2, c: 'x' }, { a: 3, c: 'x' }, {}]);
  await q.setPayload('pay', { payload: { d: true }, filter: { must: [{ key: 'a', match: { value: 3 } }] } });
  r = await q.retrieve('pay', { ids: [2] });
  assert.deepEqual(r[0].payload, { a: 3, c: 'x', d: true });
  await q.overwritePayload('pay', { payload: { only: 1 }, points: [1] });
  r = await q.retrieve('pay', { ids: [1] });
  assert.deepEqual(r[0].payload, { only: 1 });
  await q.deletePayload('pay', { keys: ['c'], points: [2] });
  r = await q.retrieve('pay', { ids: [2] });
  assert.deepEqual(r[0].payload, { a: 3, d: true });
  await q.clearPayload('pay', { points: [2] });
  r = await q.retrieve('pay', { ids: [2] });
  assert.deepEqual(r[0].payload, {});
  await q.setPayload('pay', { payload: { inner: 5 }, points: [3], key: 'obj' });
  r = await q.retrieve('pay', { ids: [3] });
  assert.deepEqual(r[0].payload, { obj: { inner: 5 } });
});

test('update vectors and delete points', async () => {
  await q.updateVectors('pay', { points: [{ id: 1, vector: [0, 5] }] });
  const r = await q.retrieve('pay', { ids: [1], with_vector: true });
  assert.deepEqual(r[0].vector, [0, 5]);
  const top = await q.query('pay', { query: [0, 1], limit: 1, params: { exact: true } });
  assert.equal(top.points[0].id, 1);
  assert.equal(top.points[0].score, 5);
  await expectApiError(q.updateVectors('pay', { points: [{ id: 77, vector: [1, 1] }] }), 404);
  await q.delete('pay', { points: [1] });
  assert.equal((await q.count('pay')).count, 2);
  await q.delete('pay', { filter: { must: [{ has_id: [2] }] } });
  assert.deepEqual((await q.scroll('pay')).points.map((p) => p.id), [3]);
  await q.deleteCollection('pay');
});

test('payload index create and delete', async () => {
  const r = await q.createPayloadIndex('pts', { field_name: 'color', field_schema: 'keyword', wait: true });
  assert.ok(['completed', 'acknowledged'].includes(r.status));
  const info = await q.getCollection('pts');
  assert.ok(info.payload_schema.color, 'payload_schema lists the index');
  // filtered results are unchanged by the index
  assert.equal((await q.count('pts', { filter: { must: [{ key: 'color', match: { value: 'red' } }] } })).count, N / 4);
  await q.deletePayloadIndex('pts', 'color');
  const info2 = await q.getCollection('pts');
  assert.ok(!info2.payload_schema.color);
});

test('aliases', async () => {
  await q.updateCollectionAliases({ actions: [{ create_alias: { collection_name: 'pts', alias_name: 'pts_alias' } }] });
  let al = await q.getAliases();
  assert.ok(al.aliases.some((a) => a.alias_name === 'pts_alias' && a.collection_name === 'pts'));
  assert.equal((await q.count('pts_alias')).count, N);
  await q.updateCollectionAliases({ actions: [{ rename_alias: { old_alias_name: 'pts_alias', new_alias_name: 'pts2' } }] });
  al = await q.getCollectionAliases('pts');
  assert.deepEqual(al.aliases.map((a) => a.alias_name), ['pts2']);
  // a failing action undoes the earlier ones
  await expectApiError(
    q.updateCollectionAliases({
      actions: [
        { create_alias: { collection_name: 'pts', alias_name: 'tmp_alias' } },
        { delete_alias: { alias_name: 'no_such_alias' } },
      ],
    }),
    404,
  );
  al = await q.getAliases();
  assert.ok(!al.aliases.some((a) => a.alias_name === 'tmp_alias'));
  await q.updateCollectionAliases({ actions: [{ delete_alias: { alias_name: 'pts2' } }] });
  assert.equal((await q.getAliases()).aliases.filter((a) => a.collection_name === 'pts').length, 0);
});

test('snapshots: create, list, download, recover, upload, delete', async () => {
  const snap = await q.createSnapshot('pts');
  assert.match(snap.name, /^pts-.*\.snapshot$/);
  assert.ok(snap.size > 0);
  assert.match(snap.checksum, /^[0-9a-f]{64}$/);
  const list = await q.listSnapshots('pts');
  assert.ok(list.some((s) => s.name === snap.name && s.size === snap.size));
  // download streams the file
  const res = await fetch(`${process.env.NEARLY_URL}/collections/pts/snapshots/${snap.name}`, {
    headers: { 'api-key': process.env.NEARLY_TEST_KEY },
  });
  assert.equal(res.status, 200);
  const bytes = new Uint8Array(await res.arrayBuffer());
  assert.equal(bytes.length, snap.size);
  // recover into a new collection from the snapshots directory
  const loc = `file://${process.env.NEARLY_DATA_DIR}/snapshots/pts/${snap.name}`;
  assert.equal(await q.recoverSnapshot('pts_copy', { location: loc, checksum: snap.checksum }), true);
  assert.equal((await q.count('pts_copy')).count, N);
  const a = await q.query('pts_copy', { query: points[0].vector, limit: 3, params: { exact: true } });
  assert.equal(a.points[0].id, 1);
  await expectApiError(q.recoverSnapshot('pts_copy', { location: 'file:///etc/passwd' }), 403, /outside/);
  await expectApiError(q.recoverSnapshot('pts_copy', { location: loc, checksum: '0'.repeat(64) }), 400, /checksum/);
  // upload (multipart, field "snapshot")
  const form = new FormData();
  form.append('snapshot', new Blob([bytes]), snap.name);
  const up = await fetch(`${process.env.NEARLY_URL}/collections/pts_up/snapshots/upload?wait=true`, {
    method: 'POST',
    headers: { 'api-key': process.env.NEARLY_TEST_KEY },
    body: form,
  });
  assert.equal(up.status, 200, await up.clone().text());
  assert.equal((await up.json()).result, true);
  assert.equal((await q.count('pts_up')).count, N);
  // a file that is not a snapshot is refused and changes nothing
  const bad = new FormData();
  bad.append('snapshot', new Blob([new TextEncoder().encode('not a snapshot')]), 'x.snapshot');
  const up2 = await fetch(`${process.env.NEARLY_URL}/collections/pts_up/snapshots/upload`, {
    method: 'POST',
    headers: { 'api-key': process.env.NEARLY_TEST_KEY },
    body: bad,
  });
  assert.equal(up2.status, 400);
  assert.equal((await q.count('pts_up')).count, N);
  assert.equal(await q.deleteSnapshot('pts', snap.name), true);
  assert.ok(!(await q.listSnapshots('pts')).some((s) => s.name === snap.name));
  await expectApiError(q.deleteSnapshot('pts', snap.name), 404);
  await q.deleteCollection('pts_copy');
  await q.deleteCollection('pts_up');
});

test('auth: missing, wrong and read-only keys', async () => {
  const anon = client(null);
  await expectApiError(anon.getCollections(), 401, /API key/);
  const wrong = client('nope');
  await expectApiError(wrong.getCollections(), 401, /Invalid API key/);
  const ro = client(RO_KEY);
  assert.ok((await ro.getCollections()).collections.length >= 1);
  assert.equal((await ro.count('pts')).count, N);
  const r = await ro.query('pts', { query: points[0].vector, limit: 1 });
  assert.equal(r.points.length, 1);
  await expectApiError(ro.upsert('pts', { points: [{ id: 1, vector: points[0].vector }] }), 403, /Write access/);
  await expectApiError(ro.createCollection('ro_made', { vectors: { size: 2, distance: 'Dot' } }), 403);
  await expectApiError(ro.deleteCollection('pts'), 403);
  assert.equal((await q.collectionExists('ro_made')).exists, false);
});

test('errors: dimension, unknown collection, bad id, bad filter — nothing half-applied', async () => {
  await expectApiError(q.upsert('pts', { points: [{ id: 1000, vector: [1, 2, 3] }] }), 400, /dimension/i);
  // a batch with one bad point applies nothing
  await expectApiError(
    q.upsert('pts', { points: [{ id: 5001, vector: points[0].vector }, { id: 5002, vector: [1] }] }),
    400,
    /expected dim: 8, got 1/,
  );
  assert.equal((await q.retrieve('pts', { ids: [5001] })).length, 0);
  await expectApiError(q.upsert('pts', { points: [{ id: -3, vector: points[0].vector }] }), 400, /id/);
  await expectApiError(q.upsert('pts', { points: [{ id: 'not-a-uuid', vector: points[0].vector }] }), 400, /UUID/);
  await expectApiError(q.count('nope'), 404, /Collection `nope` doesn't exist/);
  await expectApiError(q.query('pts', { query: [1, 2], limit: 3 }), 400, /dim/);
  await expectApiError(q.query('pts', { query: points[0].vector, limit: 0 }), 422, /limit/);
  await expectApiError(q.retrieve('pts', { ids: [{ bad: 1 }] }), 400);
  await expectApiError(q.createCollection('bad/name', { vectors: { size: 4, distance: 'Dot' } }), 404);
  await expectApiError(q.createCollection('zero', { vectors: { size: 0, distance: 'Dot' } }), 422, /size/);
  assert.equal((await q.count('pts')).count, N);
});
