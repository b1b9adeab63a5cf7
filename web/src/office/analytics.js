// analytics.js: what the reports and the program model sections share: a
// month "YYYY-MM" as words (long for tables, short for an axis), and a
// list of objects' numeric column.
import { getLang } from '../lib/i18n.js';

/* "2026-10" as "Oct 2026", or (short, for an axis) "Oct" except in January
 * and on the first month shown. Anything else is returned as it is. */
export function monthWords(month, short = false, first = false) {
  const m = /^(\d{4})-(\d{2})/.exec(String(month || ''));
  if (!m) return String(month ?? '—');
  const y = Number(m[1]);
  const mo = Number(m[2]);
  return new Intl.DateTimeFormat(getLang() === 'ru' ? 'ru-RU' : 'en-GB', {
    month: 'short',
    year: short && mo !== 1 && !first ? undefined : 'numeric',
    timeZone: 'UTC',
  }).format(new Date(Date.UTC(y, mo - 1, 1)));
}

/* Labels and axis ticks for rows [{month, ...}]. */
export function monthAxes(rows) {
  return {
    labels: rows.map((r) => monthWords(r.month)),
    ticks: rows.map((r, i) => monthWords(r.month, true, i === 0)),
  };
}

/* rows' `key` as numbers (missing = 0). */
export function column(rows, key) {
  return rows.map((r) => Number(r && r[key]) || 0);
}

/* Scalar fields of `obj` whose keys are not in `known` (so a figure the
 * server adds later is still shown, under its field name). */
export function otherScalars(obj, known) {
  if (!obj || typeof obj !== 'object') return [];
  return Object.entries(obj)
    .filter(([k, v]) => !known.includes(k) && (typeof v === 'number' || typeof v === 'string'))
    .map(([key, value]) => ({ key, value }));
}
