// sender.js: sends a purchase or a return until the server answers. The
// request is saved (localStorage) before it is sent the first time; a
// timeout, a network error or a 502/503/504 resends the SAME receipt and
// body after a growing pause, for as long as it takes (a reload resumes
// it). The server applies a receipt once (docs/api.md, "When storage
// fails"), so a resend of a purchase it already made answers the first
// answer ("replayed": true): a purchase is never doubled. Any other
// answer ends the sending: an answer (201/200) or a refusal (4xx).
import { api } from '../lib/api.js';
import { getTill, load, save, shared } from './state.js';

const PAUSE_FIRST_MS = 500;
const PAUSE_MAX_MS = 15000;
const TIMEOUT_MS = 10000;

/* status: pending ({kind, path, receipt, body} or null), attempt (1 = the
 * first send), lastError (what made the latest attempt fail), waitMs
 * (the pause before the next). */
const status = shared({ pending: load('pending', null), attempt: 0, lastError: null, waitMs: 0 });
const set = status.set;
const handlers = {};
let running = false;
let wake = null;

export const useSender = status.use;

/* onAnswer(kind, fn): fn(pending, answer | null, error | null) when a
 * request of that kind is answered or refused (module-wide, so an answer
 * that comes while another view is shown still lands). */
export function onAnswer(kind, fn) {
  handlers[kind] = fn;
}

/* Network failures and an overloaded or failing server: worth resending. */
export function retryable(e) {
  return e.status === 0 || e.status === 502 || e.status === 503 || e.status === 504;
}

function pause(ms) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    wake = () => {
      clearTimeout(timer);
      resolve();
    };
  });
}

async function run() {
  if (running || !status.get().pending) return;
  running = true;
  const p = status.get().pending;
  let waitMs = PAUSE_FIRST_MS;
  try {
    for (let attempt = status.get().attempt + 1; ; attempt++) {
      set({ attempt });
      const key = getTill().pairing && getTill().pairing.key;
      try {
        const answer = await api('POST', p.path, p.body, { bearer: key, timeoutMs: TIMEOUT_MS });
        save('pending', null);
        set({ pending: null, attempt: 0, lastError: null, waitMs: 0 });
        handlers[p.kind]?.(p, answer, null);
        return;
      } catch (e) {
        if (!retryable(e)) {
          save('pending', null);
          set({ pending: null, attempt: 0, lastError: null, waitMs: 0 });
          handlers[p.kind]?.(p, null, e);
          return;
        }
        const ms = e.retryAfter ? Math.min(e.retryAfter * 1000, PAUSE_MAX_MS) : waitMs;
        set({ lastError: e, waitMs: ms });
        await pause(ms);
        waitMs = Math.min(waitMs * 2, PAUSE_MAX_MS);
      }
    }
  } finally {
    running = false;
    wake = null;
  }
}

/* Sends {kind, path, receipt, body} until answered. */
export function send(pending) {
  if (status.get().pending) return;
  save('pending', pending);
  set({ pending, attempt: 0, lastError: null, waitMs: 0 });
  run();
}

/* Resumes a request a reload left unanswered; "resend now" skips the pause. */
export function resume() {
  if (wake) wake();
  else run();
}
