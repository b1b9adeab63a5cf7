// api.js: the pages' one door to Kopilka's JSON API (docs/api.md). Sessions
// live in HttpOnly cookies the page never sees (X-Kopilka-Session: cookie on
// a login); every cookie-authenticated write carries the session's CSRF
// token, which the login and the "me" routes answer.

let csrf = null;

/* The CSRF token of the session, from a login or a "me" answer. */
export function setCsrf(token) {
  csrf = token || null;
}

/* An error answer of the API: status, code, message, field and, for a
 * form, fields: [{field, message}]; or a network failure (status 0). */
export class ApiError extends Error {
  constructor(status, error, retryAfter) {
    super((error && error.message) || `HTTP ${status}`);
    this.status = status;
    this.code = (error && error.code) || (status ? 'http_' + status : 'network');
    this.field = (error && error.field) || null;
    this.fields = (error && error.fields) || [];
    this.retryAfter = retryAfter || 0;
  }
  /* {field: message} for a form: every field the server named. */
  byField() {
    const m = {};
    for (const f of this.fields) if (f.field && !m[f.field]) m[f.field] = f.message;
    if (this.field && !m[this.field]) m[this.field] = this.message;
    return m;
  }
}

/*
 * api(method, path, body, options) → the answer's JSON (or text for a
 * non-JSON answer); body: an object (JSON), a string or a Blob (a file,
 * sent as it is). options: bearer (a terminal key, sent as
 * Authorization), session (true on a login: the server sets the cookie),
 * contentType with a string body (CSV), timeoutMs (default 15 s), signal.
 * Throws ApiError.
 */
export async function api(method, path, body, options = {}) {
  const headers = { Accept: 'application/json' };
  let payload;
  if (body !== undefined && body !== null) {
    if (typeof body === 'string') {
      payload = body;
      headers['Content-Type'] = options.contentType || 'text/plain; charset=utf-8';
    } else if (typeof Blob !== 'undefined' && body instanceof Blob) {
      /* A file as it is (a catalog item's image): its own type. */
      payload = body;
      headers['Content-Type'] = options.contentType || body.type || 'application/octet-stream';
    } else {
      payload = JSON.stringify(body);
      headers['Content-Type'] = 'application/json';
    }
  }
  if (options.bearer) headers.Authorization = 'Bearer ' + options.bearer;
  else if (csrf && method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrf;
  if (options.session) headers['X-Kopilka-Session'] = 'cookie';
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), options.timeoutMs || 15000);
  if (options.signal) options.signal.addEventListener('abort', () => ctl.abort());
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: payload,
      credentials: 'same-origin',
      signal: ctl.signal,
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, { code: 'network', message: String(e && e.message ? e.message : e) });
  } finally {
    clearTimeout(timer);
  }
  const type = res.headers.get('Content-Type') || '';
  let data = null;
  try {
    data = type.includes('json') ? await res.json() : await res.text();
  } catch {
    data = null;
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data && data.error, Number(res.headers.get('Retry-After')) || 0);
    err.body = data; /* the whole answer, for routes that say more than `error` (imports) */
    throw err;
  }
  if (data && typeof data === 'object' && data.csrf) setCsrf(data.csrf);
  return data;
}
