// Shared set-up for the tests: the server address and keys come from run.sh.
import { QdrantClient } from '@qdrant/js-client-rest';

export const URL_ = process.env.NEARLY_URL;
export const KEY = process.env.NEARLY_TEST_KEY;
export const RO_KEY = process.env.NEARLY_TEST_RO_KEY;

export function client(apiKey = KEY) {
  return new QdrantClient({ url: URL_, apiKey, checkCompatibility: false });
}

// Raw HTTP for the wire-format tests.
export async function http(method, path, body, { key = KEY, headers = {}, raw = false } = {}) {
  const h = { ...headers };
  if (key) h['api-key'] = key;
  let payload;
  if (body !== undefined) {
    payload = typeof body === 'string' || body instanceof Uint8Array || body instanceof FormData ? body : JSON.stringify(body);
    if (!(body instanceof FormData) && !h['content-type']) h['content-type'] = 'application/json';
  }
  const res = await fetch(URL_ + path, { method, headers: h, body: payload });
  const text = raw ? null : await res.text();
  let json = null;
  if (text) { try { json = JSON.parse(text); } catch { json = null; } }
  return { status: res.status, json, text, res };
}

// Deterministic vectors.
export function rng(seed) {
  let s = BigInt(seed) || 1n;
  return () => {
    s ^= s << 13n; s &= (1n << 64n) - 1n;
    s ^= s >> 7n;
    s ^= s << 17n; s &= (1n << 64n) - 1n;
    return Number(s % 2000000n) / 1000000 - 1;
  };
}

export function vectors(n, dim, seed = 7) {
  const r = rng(seed);
  return Array.from({ length: n }, () => Array.from({ length: dim }, () => r()));
}

export const cosine = (a, b) => {
  let d = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) { d += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return d / Math.sqrt(na * nb);
};
export const dot = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0);
export const euclid = (a, b) => Math.sqrt(a.reduce((s, x, i) => s + (x - b[i]) ** 2, 0));

// Exact top-k ids by a score function, best first (higher is better unless asc).
export function bruteForce(points, q, k, score, { asc = false, filter = () => true } = {}) {
  return points
    .filter(filter)
    .map((p) => ({ id: p.id, s: score(q, p.vector) }))
    .sort((a, b) => (asc ? a.s - b.s : b.s - a.s))
    .slice(0, k);
}

export async function expectApiError(promise, status, pattern) {
  try {
    await promise;
  } catch (e) {
    const st = e.status ?? e.response?.status;
    if (st !== status) throw new Error(`expected HTTP ${status}, got ${st}: ${e.message} ${JSON.stringify(e.data ?? '')}`);
    const msg = e.data?.status?.error ?? '';
    if (pattern && !pattern.test(msg)) throw new Error(`error message '${msg}' does not match ${pattern}`);
    return e;
  }
  throw new Error(`expected HTTP ${status}, but the call succeeded`);
}
