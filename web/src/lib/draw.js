// draw.js: a prize draw verified in the browser (docs/marketing.md, "The
// procedure kopilka-draw-v1"), from its published JSON alone, with WebCrypto
// (SHA-256, HMAC-SHA256) and BigInt: the commitment against the seed, the
// entries' order, total and digest, and every winner drawn again. The same
// checks as `kopilka draw verify` (src/service/draws.c).

import { useEffect, useState } from 'preact/hooks';

const enc = new TextEncoder();
const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
const unhex = (s) => Uint8Array.from(s.match(/../g) || [], (h) => parseInt(h, 16));

/* True when this browser can verify (WebCrypto needs HTTPS or localhost). */
export function canVerify() {
  return !!(globalThis.crypto && crypto.subtle);
}

async function sha256(bytes) {
  return hex(await crypto.subtle.digest('SHA-256', bytes));
}

/* The digest of the entries, in their order: SHA-256 of "<id>:<count>\n"... */
export async function entriesDigest(entries) {
  return sha256(enc.encode(entries.map((e) => `${e.id}:${e.count}\n`).join('')));
}

/* The winners by the procedure: [{slot, prize, id}] over entries sorted by id. */
export async function drawWinners(seedHex, entries, prizes) {
  const key = await crypto.subtle.importKey('raw', unhex(seedHex), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const digest = await entriesDigest(entries);
  const left = entries.map((e) => ({ id: e.id, count: BigInt(e.count) }));
  let total = left.reduce((s, e) => s + e.count, 0n);
  const two64 = 1n << 64n;
  const out = [];
  let k = 0;
  for (const prize of prizes) {
    for (let c = 0; c < prize.count; c++, k++) {
      if (total === 0n) continue;
      const limit = two64 - (two64 % total);
      let x;
      for (let j = 0; ; j++) {
        const mac = new Uint8Array(await crypto.subtle.sign('HMAC', key, enc.encode(`kopilka-draw-v1/${digest}/${k}/${j}`)));
        x = mac.slice(0, 8).reduce((v, b) => (v << 8n) | BigInt(b), 0n);
        if (x < limit) break;
      }
      let r = x % total;
      let i = 0;
      for (; i < left.length; i++) {
        if (r < left[i].count) break;
        r -= left[i].count;
      }
      out.push({ slot: k, prize: prize.name, id: left[i].id });
      total -= left[i].count;
      left.splice(i, 1);
    }
  }
  return out;
}

/* Verifies a closed draw's JSON: {ok, problems: [{field, text}], winners}. */
export async function verifyDraw(d) {
  const problems = [];
  const say = (field, text) => problems.push({ field, text });
  if (!/^[0-9a-f]{64}$/.test(d.seed || '')) {
    say('seed', 'not 64 hex digits');
    return { ok: false, problems, winners: [] };
  }
  const commitment = await sha256(unhex(d.seed));
  if (commitment !== d.commitment) say('commitment', `SHA-256(seed) = ${commitment}, published ${d.commitment}`);
  const entries = d.entries || [];
  let total = 0n;
  entries.forEach((e, i) => {
    if (!(e.count >= 1)) say('entries', `entry ${i} has count ${e.count}`);
    else total += BigInt(e.count);
    if (i > 0 && !(entries[i - 1].id < e.id)) say('entries', `entry ${i} (${e.id}) is out of order`);
  });
  if (String(total) !== String(d.total_entries)) say('total_entries', `the entries sum to ${total}, published ${d.total_entries}`);
  const digest = await entriesDigest(entries);
  if (digest !== d.entries_digest) say('entries_digest', `the entries hash to ${digest}, published ${d.entries_digest}`);
  const sorted = [...entries].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const winners = await drawWinners(d.seed, sorted, d.prizes || []);
  const published = d.winners || [];
  if (winners.length !== published.length) say('winners', `the procedure draws ${winners.length}, published ${published.length}`);
  winners.forEach((w, i) => {
    const p = published[i];
    if (!p || p.slot !== w.slot || p.id !== w.id || p.prize !== w.prize)
      say('winners', `slot ${w.slot} (${w.prize}) goes to ${w.id}, published ${p ? p.id : 'none'}`);
  });
  return { ok: problems.length === 0, problems, winners };
}

/* A URL of the draw's JSON as published, for a download link (null until
 * there is data); revoked when the data changes or the page goes. */
export function useJsonUrl(data) {
  const [url, setUrl] = useState(null);
  useEffect(() => {
    if (!data) return undefined;
    const u = URL.createObjectURL(new Blob([JSON.stringify(data, null, 1)], { type: 'application/json' }));
    setUrl(u);
    return () => URL.revokeObjectURL(u);
  }, [data]);
  return url;
}
