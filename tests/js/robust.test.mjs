// Robustness: mutated and random request bodies on every endpoint never
// crash the server or produce a 5xx, and never change data when refused.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { http, rng, vectors } from './helpers.mjs';

const DIM = 4;
const C = '/collections/robust';

before(async () => {
  await http('DELETE', C);
  assert.equal((await http('PUT', C, { vectors: { size: DIM, distance: 'Cosine' } })).status, 200);
  const pts = vectors(50, DIM, 3).map((v, i) => ({ id: i, vector: v, payload: { k: i % 3, s: `x${i}`, a: [i, i + 1] } }));
  assert.equal((await http('PUT', `${C}/points?wait=true`, { points: pts })).status, 200);
});

const seeds = [
  ['POST', '/points/search', { vector: [0.1, 0.2, 0.3, 0.4], limit: 3, filter: { must: [{ key: 'k', match: { value: 1 } }] }, with_payload: ['s'] }],
  ['POST', '/points/query', { query: { recommend: { positive: [1, 2], negative: [[0, 0, 1, 0]], strategy: 'best_score' } }, limit: 2 }],
  ['POST', '/points/query', { query: { nearest: 3 }, filter: { should: [{ key: 'a', range: { gte: 2.0 } }] }, params: { hnsw_ef: 16, exact: false } }],
  ['POST', '/points/recommend', { positive: [1], negative: [2], limit: 2, offset: 1, score_threshold: 0.1 }],
  ['POST', '/points/scroll', { limit: 5, offset: 3, filter: { must_not: [{ has_id: [4] }] }, with_payload: { exclude: ['a'] } }],
  ['POST', '/points/count', { filter: { must: [{ key: 's', match: { any: ['x1', 'x2'] } }] }, exact: true }],
  ['POST', '/points', { ids: [1, 2, 'e8a1d0a4-6b7a-4b1e-9d5e-1a2b3c4d5e6f'], with_vector: true }],
  ['POST', '/points/search/batch', { searches: [{ vector: [1, 0, 0, 0], limit: 1 }] }],
  ['POST', '/points/query/batch', { searches: [{ query: [1, 0, 0, 0], limit: 1 }] }],
  ['POST', '/points/recommend/batch', { searches: [{ positive: [5], limit: 1 }] }],
];
// writes: refused mutations must leave the data unchanged; accepted ones
// go to ids >= 1000 which are removed afterwards
const writes = [
  ['PUT', '/points?wait=true', { points: [{ id: 1000, vector: [1, 2, 3, 4], payload: { z: 1 } }] }],
  ['POST', '/points/payload?wait=true', { payload: { q: 1 }, points: [1000] }],
  ['PUT', '/points/vectors?wait=true', { points: [{ id: 1000, vector: [4, 3, 2, 1] }] }],
  ['POST', '/points/payload/delete?wait=true', { keys: ['q'], points: [1000] }],
];

function mutate(v, r, depth = 0) {
  const x = r();
  const junk = [null, true, -1, 1e308, 'x', '', [], {}, [[[]]], 1.5, 18446744073709551615, '../../etc', { $: 1 }];
  if (depth > 3 || x < -0.6) return junk[Math.floor(((r() + 1) / 2) * junk.length) % junk.length];
  if (Array.isArray(v)) {
    const out = v.map((e) => (r() < 0 ? mutate(e, r, depth + 1) : e));
    if (r() > 0.7) out.push(mutate(v[0], r, depth + 1));
    if (r() > 0.8) out.splice(0, 1);
    return out;
  }
  if (v && typeof v === 'object') {
    const out = {};
    for (const [k, e] of Object.entries(v)) {
      const y = r();
      if (y > 0.85) continue;
      out[y < -0.85 ? k + '_' : k] = y < 0 ? mutate(e, r, depth + 1) : e;
    }
    return out;
  }
  return x > 0.3 ? junk[Math.floor(((r() + 1) / 2) * junk.length) % junk.length] : v;
}

async function snapshotOfData() {
  const r = await http('POST', `${C}/points/scroll`, { limit: 1000, with_vector: true });
  return JSON.stringify(r.json.result.points.filter((p) => p.id < 1000));
}

test('mutated requests never crash the server nor give a 5xx', async () => {
  const r = rng(2024);
  const before = await snapshotOfData();
  let n = 0;
  for (let round = 0; round < 25; round++) {
    for (const [m, p, body] of [...seeds, ...writes]) {
      const b = mutate(body, r);
      const res = await http(m, C + p, b);
      n++;
      assert.ok(res.status < 500, `${m} ${p} ${JSON.stringify(b)} -> ${res.status} ${res.text}`);
      if (res.status !== 200) assert.equal(typeof res.json?.status?.error, 'string', res.text);
    }
  }
  // raw garbage bodies
  const garbage = ['', '{', 'null', '"x"', '[]', '{"a":}', '\u0000\u0001', '{"limit": 1e999}', '{"vector": [1,2,3,4], "limit": 99999999999999999999}'];
  for (const g of garbage) {
    for (const [m, p] of seeds) {
      const res = await http(m, C + p, g);
      n++;
      assert.ok(res.status < 500 && res.status >= 200, `${p} ${JSON.stringify(g)} -> ${res.status} ${res.text}`);
    }
  }
  assert.ok(n > 300);
  await http('POST', `${C}/points/delete?wait=true`, { filter: { must: [{ key: 'z', match: { value: 1 } }] } });
  await http('POST', `${C}/points/delete?wait=true`, { points: [1000] });
  assert.equal(await snapshotOfData(), before, 'refused writes changed nothing');
  assert.equal((await http('GET', '/')).status, 200);
});

test('deeply nested JSON and odd paths are refused cleanly', async () => {
  const deep = '{"filter":' + '{"must":['.repeat(3000) + ']}'.repeat(3000) + '}';
  const r = await http('POST', `${C}/points/count`, deep);
  assert.ok(r.status === 400 || r.status === 200, `${r.status}`);
  for (const p of ['/collections/' + 'a'.repeat(300), '/collections/.x', '/collections/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r']) {
    const res = await http('GET', p);
    assert.ok(res.status === 404 || res.status === 422 || res.status === 400, `${p}: ${res.status}`);
  }
  const res = await http('PUT', '/collections/' + 'b'.repeat(300), { vectors: { size: 2, distance: 'Dot' } });
  assert.equal(res.status, 422);
  assert.equal((await http('GET', '/')).status, 200);
});

test('concurrent mixed requests all get their own correct answer', async () => {
  const jobs = [];
  for (let i = 0; i < 240; i++) {
    const id = i % 50;
    switch (i % 4) {
      case 0: jobs.push(http('GET', `${C}/points/${id}`).then((r) => assert.equal(r.json.result.id, id, r.text))); break;
      case 1: jobs.push(http('POST', `${C}/points/count`, { filter: { must: [{ key: 'k', match: { value: id % 3 } }] } })
        .then((r) => assert.equal(r.json.result.count, [17, 17, 16][id % 3], r.text))); break;
      case 2: jobs.push(http('POST', `${C}/points/query`, { query: id, limit: 3 })
        .then((r) => { assert.equal(r.status, 200, r.text); assert.ok(!r.json.result.points.some((p) => p.id === id)); })); break;
      default: jobs.push(http('POST', `${C}/points/scroll`, { offset: id, limit: 2, with_payload: false })
        .then((r) => assert.equal(r.json.result.points[0].id, id, r.text)));
    }
  }
  await Promise.all(jobs);
});
