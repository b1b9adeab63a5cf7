// action.js: what the back office's forms share: one action at a time
// (busy while it runs, its ApiError kept for the form's fields), a 401
// handed to the page's onExpired (the shell shows the login again), and the
// conversions between the browser's date inputs and the API's times.
import { useState } from 'preact/hooks';
import { ApiError } from './api.js';

function asApiError(e) {
  return e instanceof ApiError ? e : new ApiError(0, { message: String((e && e.message) || e) });
}

/*
 * useAction(onExpired) → {busy, error, setError, run}: run(fn) awaits fn()
 * and answers its value, or null when it threw (the error is then in
 * `error`; a 401 also calls onExpired).
 */
export function useAction(onExpired) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  async function run(fn) {
    setBusy(true);
    setError(null);
    try {
      return await fn();
    } catch (e) {
      const err = asApiError(e);
      if (err.status === 401 && onExpired) onExpired();
      setError(err);
      return null;
    } finally {
      setBusy(false);
    }
  }
  return { busy, error, setError, run };
}

/* A loader for useLoad that hands a 401 to onExpired and rethrows. */
export function expiring(onExpired, load) {
  return () =>
    load().catch((e) => {
      const err = asApiError(e);
      if (err.status === 401 && onExpired) onExpired();
      throw err;
    });
}

/* A datetime-local input's value (the browser's zone) as RFC 3339 UTC;
 * "" → null. */
export function localToRfc3339(value) {
  if (!value) return null;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return null;
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/* A day of the browser's calendar as YYYY-MM-DD (default today). */
export function isoDay(d = new Date()) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

/* The first day of the month `monthsBack` months before d's, YYYY-MM-DD. */
export function monthStart(monthsBack, d = new Date()) {
  return isoDay(new Date(d.getFullYear(), d.getMonth() - monthsBack, 1));
}
