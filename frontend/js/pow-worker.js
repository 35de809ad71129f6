/* Proof-of-work solver, run as a Web Worker so the page stays responsive.
   Finds the smallest counter such that
     SHA-256(bytes(challenge) || counter as 8-byte big-endian)
   starts with `difficulty` zero bits (docs/API.md, "Challenge -> session -> vote").
   Message in:  {id, challenge, difficulty}
   Message out: {id, counter, hashes, ms} or {id, error} */
'use strict';

const BATCH = 1024;  // digests in flight per Promise.all round

function base64UrlDecode(text) {
  let s = String(text).replace(/-/g, '+').replace(/_/g, '/');
  while (s.length % 4) s += '=';
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function leadingZeroBits(bytes) {
  let bits = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === 0) { bits += 8; continue; }
    return bits + Math.clz32(b) - 24;
  }
  return bits;
}

/* Writes counter (0 <= counter < 2^53) as 8 bytes big-endian at offset. */
function writeCounter(view, offset, counter) {
  view.setUint32(offset, Math.floor(counter / 4294967296), false);
  view.setUint32(offset + 4, counter >>> 0, false);
}

/* ---- pure-JS SHA-256, used only where crypto.subtle is missing (plain-HTTP pages
   on a non-localhost address are not a "secure context"). ----------------------- */
const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

function sha256Js(message) {
  const bitLength = message.length * 8;
  const padded = new Uint8Array(((message.length + 9 + 63) >> 6) << 6);
  padded.set(message);
  padded[message.length] = 0x80;
  const pv = new DataView(padded.buffer);
  pv.setUint32(padded.length - 8, Math.floor(bitLength / 4294967296), false);
  pv.setUint32(padded.length - 4, bitLength >>> 0, false);
  const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const w = new Uint32Array(64);
  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = pv.getUint32(off + i * 4, false);
    for (let i = 16; i < 64; i++) {
      const a = w[i - 15], b = w[i - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (hh + S1 + ch + K[i] + w[i]) >>> 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) >>> 0;
      hh = g; g = f; f = e; e = (d + t1) >>> 0;
      d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    h[0] = (h[0] + a) >>> 0; h[1] = (h[1] + b) >>> 0; h[2] = (h[2] + c) >>> 0; h[3] = (h[3] + d) >>> 0;
    h[4] = (h[4] + e) >>> 0; h[5] = (h[5] + f) >>> 0; h[6] = (h[6] + g) >>> 0; h[7] = (h[7] + hh) >>> 0;
  }
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) ov.setUint32(i * 4, h[i], false);
  return out;
}

async function solve(challenge, difficulty) {
  const prefix = base64UrlDecode(challenge);
  const n = prefix.length;
  const subtle = self.crypto && self.crypto.subtle;
  const MAX = Number.MAX_SAFE_INTEGER;

  if (subtle) {
    // One buffer per slot of the batch; digest() copies its input, so the buffers
    // can be rewritten for the next round once Promise.all has settled.
    const buffers = [];
    const views = [];
    for (let i = 0; i < BATCH; i++) {
      const buf = new Uint8Array(n + 8);
      buf.set(prefix);
      buffers.push(buf);
      views.push(new DataView(buf.buffer));
    }
    const pending = new Array(BATCH);
    for (let base = 0; base < MAX; base += BATCH) {
      for (let i = 0; i < BATCH; i++) {
        writeCounter(views[i], n, base + i);
        pending[i] = subtle.digest('SHA-256', buffers[i]);
      }
      const digests = await Promise.all(pending);
      for (let i = 0; i < BATCH; i++) {
        if (leadingZeroBits(new Uint8Array(digests[i])) >= difficulty) return base + i;
      }
    }
  } else {
    const buf = new Uint8Array(n + 8);
    buf.set(prefix);
    const view = new DataView(buf.buffer);
    for (let counter = 0; counter < MAX; counter++) {
      writeCounter(view, n, counter);
      if (leadingZeroBits(sha256Js(buf)) >= difficulty) return counter;
    }
  }
  throw new Error('no solution found');
}

self.addEventListener('message', async function (event) {
  const msg = event.data || {};
  const started = Date.now();
  try {
    const difficulty = Number(msg.difficulty);
    if (!Number.isInteger(difficulty) || difficulty < 0 || difficulty > 64) {
      throw new Error('bad difficulty: ' + msg.difficulty);
    }
    const counter = await solve(msg.challenge, difficulty);
    self.postMessage({ id: msg.id, counter: counter, hashes: counter + 1, ms: Date.now() - started });
  } catch (err) {
    self.postMessage({ id: msg.id, error: String(err && err.message || err) });
  }
});
