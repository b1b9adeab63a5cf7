// amounts.js: what the cashier types, read exactly: money in roubles with
// up to two decimals ("1250", "1 250,50", "99.9") as minor units, counts
// and points as whole numbers. No floating point touches money.

/* Minor units of a typed price, or null when it is not one. */
export function parseMoney(text) {
  const s = String(text).replace(/[\s\u00a0]/g, '');
  const m = /^(\d{1,11})(?:[.,](\d{1,2}))?$/.exec(s);
  if (!m) return null;
  return Number(m[1]) * 100 + Number((m[2] || '').padEnd(2, '0'));
}

/* The typed form of minor units ("1250.50"), for editing a line. */
export function moneyText(minor) {
  const whole = Math.floor(minor / 100);
  const cents = minor % 100;
  return cents ? `${whole}.${String(cents).padStart(2, '0')}` : String(whole);
}

/* A whole number from min to max, or null. */
export function parseWhole(text, min, max) {
  const s = String(text).replace(/[\s\u00a0]/g, '');
  if (!/^\d{1,12}$/.test(s)) return null;
  const n = Number(s);
  return n >= min && n <= max ? n : null;
}

/* What the cashier scanned or typed to identify a customer, as the
 * bodies of POST /v1/identify to try in turn: digits alone are a card
 * number, and also a phone when there are 10 to 12 of them (a card number
 * of Kopilka's form has 13); a "+", spaces, dashes or brackets make a
 * phone. */
export function identifyTries(text) {
  const s = String(text).trim();
  if (/^\d+$/.test(s)) return s.length >= 10 && s.length <= 12 ? [{ card: s }, { phone: s }] : [{ card: s }];
  if (/^[+\d\s().-]+$/.test(s) && /\d/.test(s)) return [{ phone: s }];
  return [{ card: s }];
}
