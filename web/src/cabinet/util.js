// util.js: what the cabinet's views share: the words (t), running an API
// call with its busy state and error, a countdown for "send the code
// again", a phone-or-e-mail reader, idempotency keys, and the balance of a
// card split by point kind.
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from '../lib/api.js';
import { getLang, makeT, points } from '../lib/i18n.js';
import { strings } from './strings.js';

export const t = makeT(strings);

/* The version of the consent texts the cabinet shows (strings.js:
 * consent_rules, consent_marketing, marketing_text): recorded with a
 * consent when the program names no version of its own. Change it with
 * the texts. */
export const TEXT_VERSION = 'cabinet-2026-01';

/* An error as an ApiError (a thrown script error becomes one too). */
export function asApiError(e) {
  return e instanceof ApiError ? e : new ApiError(0, { message: String((e && e.message) || e) });
}

/*
 * useAction(onUnauthorized) → {busy, err, run(fn)}: run awaits fn(),
 * keeps the error (an ApiError) for the form, and hands a 401 (the session
 * ended) to onUnauthorized. run resolves to fn's answer, or undefined on an
 * error.
 */
export function useAction(onUnauthorized) {
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState(null);
  async function run(fn) {
    setBusy(true);
    setErr(null);
    try {
      return await fn();
    } catch (e) {
      const ae = asApiError(e);
      if (ae.status === 0) ae.message = t('network');
      if (ae.status === 401 && onUnauthorized) onUnauthorized();
      else setErr(ae);
      return undefined;
    } finally {
      setBusy(false);
    }
  }
  return { busy, err, setErr, run };
}

/* A ref whose element takes the focus each time `when` turns truthy (a
 * confirmation opening, a result shown). */
export function useFocus(when) {
  const ref = useRef(null);
  useEffect(() => {
    if (when && ref.current) ref.current.focus();
  }, [!!when]);
  return ref;
}

/* A countdown in seconds (for "send again in N s"): [left, start(seconds)]. */
export function useCountdown() {
  const [left, setLeft] = useState(0);
  const until = useRef(0);
  useEffect(() => {
    if (left <= 0) return undefined;
    const id = setInterval(() => {
      const l = Math.max(0, Math.ceil((until.current - Date.now()) / 1000));
      setLeft(l);
    }, 250);
    return () => clearInterval(id);
  }, [left > 0]);
  function start(seconds) {
    until.current = Date.now() + seconds * 1000;
    setLeft(seconds);
  }
  return [left, start];
}

/* What the person typed in "phone or e-mail": {email} when it has an @,
 * else {phone}. */
export function contactBody(text) {
  const v = text.trim();
  return v.includes('@') ? { email: v } : { phone: v };
}

/* A fresh idempotency key for a write (letters, digits, dashes). */
export function newKey(prefix) {
  const bytes = new Uint8Array(8);
  crypto.getRandomValues(bytes);
  return prefix + '-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/* A card number in groups of four (the last group takes up to five
 * digits: 13 digits read 4 4 5), for reading aloud and comparing. */
export function groupDigits(n) {
  const s = String(n);
  if (!/^\d{9,}$/.test(s)) return s;
  const groups = [];
  let i = 0;
  while (s.length - i > 5) {
    groups.push(s.slice(i, i + 4));
    i += 4;
  }
  groups.push(s.slice(i));
  return groups.join(' ');
}

/* "1 500 баллов", "21 балл", "1 point": a number of points with the word
 * in the language's plural form (strings.js: pt_one, pt_few, pt_many,
 * pt_other). unit(n) is the word alone. */
export function unit(n) {
  const form = new Intl.PluralRules(getLang() === 'ru' ? 'ru-RU' : 'en-GB').select(Number(n) || 0);
  return t('pt_' + form);
}
export function pts(n) {
  return points(n) + '\u00a0' + unit(n);
}

/* The name of a point kind in the page's language (unknown kinds: as named). */
export function kindName(kind) {
  const key = 'kind_' + kind;
  const s = t(key);
  return s === key ? kind : s;
}

/* The name of an operation type (purchase, return, grant, ...). */
export function opName(type) {
  const key = 'op_' + type;
  const s = t(key);
  return s === key ? type : s;
}

/*
 * A card's points split by kind: [{kind, available, pending}] from its
 * lots (a lot whose active_from is still ahead is pending), and the lots
 * that expire, soonest first: [{kind, points, expires_at}].
 */
export function byKind(card, now = Date.now()) {
  const kinds = new Map();
  const expiring = [];
  for (const lot of card.lots || []) {
    if (!lot.remaining || lot.remaining <= 0) continue;
    const k = kinds.get(lot.kind) || { kind: lot.kind, available: 0, pending: 0 };
    const pending = lot.active_from && Date.parse(lot.active_from) > now;
    if (pending) k.pending += lot.remaining;
    else k.available += lot.remaining;
    kinds.set(lot.kind, k);
    if (lot.expires_at) expiring.push({ kind: lot.kind, points: lot.remaining, expires_at: lot.expires_at, pending });
  }
  expiring.sort((a, b) => Date.parse(a.expires_at) - Date.parse(b.expires_at));
  return { kinds: [...kinds.values()], expiring };
}

/* The card that pays: the first active one, else the first. */
export function mainCard(me) {
  const cards = (me.cards || []).filter((c) => c.state !== 'replaced');
  return cards.find((c) => c.state === 'active') || cards[0] || null;
}
