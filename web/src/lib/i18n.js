// i18n.js: Russian and English. The language is the browser's (navigator
// languages) until the person picks one, which is remembered in this
// browser; money (minor units), points, dates and times are written in the
// language's own format (Intl).
import { useEffect, useState } from 'preact/hooks';

const KEY = 'kopilka.lang';
export const LANGS = ['ru', 'en'];
let lang = pick();
const listeners = new Set();

function pick() {
  try {
    const saved = localStorage.getItem(KEY);
    if (LANGS.includes(saved)) return saved;
  } catch {
    /* storage refused: the browser's language */
  }
  for (const l of navigator.languages || [navigator.language || 'en']) {
    const base = String(l).slice(0, 2).toLowerCase();
    if (base === 'ru' || base === 'uk' || base === 'be' || base === 'kk') return 'ru';
    if (base === 'en') return 'en';
  }
  return 'en';
}

export function getLang() {
  return lang;
}

export function setLang(l) {
  if (!LANGS.includes(l) || l === lang) return;
  lang = l;
  try {
    localStorage.setItem(KEY, l);
  } catch {
    /* remembered for this page only */
  }
  document.documentElement.lang = l;
  for (const f of listeners) f(l);
}

/* Re-renders the calling component when the language changes. */
export function useLang() {
  const [, set] = useState(lang);
  useEffect(() => {
    listeners.add(set);
    document.documentElement.lang = lang;
    return () => listeners.delete(set);
  }, []);
  return lang;
}

/*
 * makeT(dicts) → t(key, vars): dicts = {ru: {...}, en: {...}}; "{name}" in a
 * string takes vars.name. A key missing in the language falls back to
 * English, then to the key itself (web/build.mjs refuses dictionaries
 * whose languages do not have the same keys).
 */
export function makeT(dicts) {
  return function t(key, vars) {
    let s = (dicts[lang] && dicts[lang][key]) ?? (dicts.en && dicts.en[key]) ?? key;
    if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
    return s;
  };
}

const locale = () => (lang === 'ru' ? 'ru-RU' : 'en-GB');

/* Minor units (kopecks) as money of `currency` (default RUB). */
export function money(minor, currency = 'RUB') {
  if (minor === null || minor === undefined || Number.isNaN(Number(minor))) return '—';
  return new Intl.NumberFormat(locale(), { style: 'currency', currency }).format(Number(minor) / 100);
}

/* Points: whole numbers with the language's grouping. */
export function points(n) {
  if (n === null || n === undefined) return '—';
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: 0 }).format(Number(n));
}

export function number(n, digits = 0) {
  if (n === null || n === undefined) return '—';
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(Number(n));
}

export function percent(share, digits = 1) {
  if (share === null || share === undefined) return '—';
  return new Intl.NumberFormat(locale(), { style: 'percent', maximumFractionDigits: digits }).format(
    Number(share),
  );
}

/* An RFC 3339 time (or YYYY-MM-DD) as a date. */
export function date(iso) {
  if (!iso) return '—';
  const d = new Date(iso.length === 10 ? iso + 'T00:00:00Z' : iso);
  if (Number.isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat(locale(), {
    day: 'numeric',
    month: 'long',
    year: 'numeric',
    timeZone: iso.length === 10 ? 'UTC' : undefined,
  }).format(d);
}

export function dateTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat(locale(), { dateStyle: 'medium', timeStyle: 'short' }).format(d);
}
