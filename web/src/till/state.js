// state.js: what the till keeps in this browser (localStorage): its
// pairing (the store's terminal key), the receipt counter, the sale and the
// return under way, and the one purchase or return whose answer has not
// come yet. Views read it with useTill() and change it with update(); a
// change is saved at once, so a reload (or a crash of the browser) finds
// the basket, its receipt number and an unconfirmed purchase where they
// were.
import { useEffect, useState } from 'preact/hooks';

const KEYS = {
  pairing: 'kopilka.till.pairing',
  counter: 'kopilka.till.counter',
  sale: 'kopilka.till.sale',
  ret: 'kopilka.till.return',
  pending: 'kopilka.till.pending',
  categories: 'kopilka.till.categories',
  consent: 'kopilka.till.consent',
};

export function load(name, fallback) {
  try {
    const text = localStorage.getItem(KEYS[name]);
    return text === null ? fallback : JSON.parse(text);
  } catch {
    return fallback;
  }
}

export function save(name, value) {
  try {
    if (value === null || value === undefined) localStorage.removeItem(KEYS[name]);
    else localStorage.setItem(KEYS[name], JSON.stringify(value));
  } catch {
    /* storage refused: kept in memory for this page only */
  }
}

export const emptySale = () => ({ card: null, lines: [], burn: 0, receipt: null, done: null });
export const emptyReturn = () => ({ receipt: null, done: null });

/* A value views follow: get(), set(patch) (merged and announced to every
 * view that follows it), use() (the hook that follows it). */
export function shared(initial) {
  let value = initial;
  const listeners = new Set();
  return {
    get: () => value,
    set(patch) {
      value = { ...value, ...patch };
      for (const f of listeners) f(value);
    },
    use() {
      const [v, setV] = useState(value);
      useEffect(() => {
        listeners.add(setV);
        setV(value);
        return () => listeners.delete(setV);
      }, []);
      return v;
    },
  };
}

/* The state every view shares. customer: the identify answer for
 * sale.card (memory only: personal figures are not kept in storage). */
const till = shared({
  pairing: load('pairing', null),
  sale: { ...emptySale(), ...load('sale', {}) },
  ret: { ...emptyReturn(), ...load('ret', {}) },
  customer: null,
});

export const getTill = till.get;
export const useTill = till.use;

/* update(fn): fn(state) → the parts that change; saved and announced. */
export function update(fn) {
  const patch = fn(till.get());
  till.set(patch);
  const now = till.get();
  if ('pairing' in patch) save('pairing', now.pairing);
  if ('sale' in patch) save('sale', now.sale);
  if ('ret' in patch) save('ret', now.ret);
}

/* A tag for a till paired with a pasted key: its terminal id is not
 * known, so letters (never a bare number, which a created key's id is). */
export function randomTag() {
  const bytes = crypto.getRandomValues(new Uint8Array(3));
  return 'x' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function today() {
  const d = new Date();
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}`;
}

/*
 * A new receipt number, unique within the store: T<till tag>-<date>-<n>,
 * n counting from 1 each day in this browser. The counter is saved before
 * the number is used, so no number is ever handed out twice here; the tag
 * tells this till from the store's others.
 */
export function nextReceipt() {
  const pairing = till.get().pairing;
  const tag = (pairing && pairing.tag) || 'x';
  const date = today();
  const c = load('counter', null);
  const n = c && c.date === date && Number.isInteger(c.n) ? c.n + 1 : 1;
  save('counter', { date, n });
  return `T${tag}-${date}-${String(n).padStart(4, '0')}`;
}

/* Categories typed before, newest first, for the basket's suggestions. */
export function rememberCategory(category) {
  if (!category) return;
  const list = load('categories', []).filter((c) => c !== category);
  save('categories', [category, ...list].slice(0, 30));
}
