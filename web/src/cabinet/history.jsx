// history.jsx: the account's operations, newest first, a page at a time
// (GET /v1/me/history?before=&limit=), each with the explanation of every
// point: the rules that earned, limited or spent them.
import { useEffect, useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { dateTime, getLang, money, points } from '../lib/i18n.js';
import { Alert, Button } from '../lib/ui.jsx';
import { opName, t, useAction } from './util.js';

const PAGE = 20;

/* "+1 500" / "−300": a signed number of points. */
function signed(n) {
  if (!n) return '0';
  return (n > 0 ? '+' : '−') + points(Math.abs(n));
}

/* Kinds of explanation the cabinet words itself (strings.js: ex_<kind>);
 * any other is shown in the engine's words. */
const WORDED = new Set(['earn_percent', 'burn_limit', 'discount_fixed', 'discount_cumulative', 'tier',
  'first_purchase_min', 'annual_spend_bonus', 'join_min_purchase', 'burn_min_balance', 'grant', 'return',
  'refund', 'adjustment', 'expiry', 'opening', 'reward', 'reward_cancel']);

/* An explanation in the page's language. English pages show the engine's
 * own text (it names the category, the rule and the sums); Russian ones
 * the cabinet's words for the kinds it knows. */
function explainText(x) {
  if (getLang() === 'en' && x.text) return x.text;
  if (x.kind === 'transfer') {
    const family = /family/.test(x.text || '');
    return t((family ? 'ex_family_' : 'ex_transfer_') + (x.points < 0 ? 'out' : 'in'));
  }
  if (!WORDED.has(x.kind)) return x.text || x.rule || x.kind;
  const reason = x.kind === 'adjustment' ? (x.text || '').replace(/^[^:]*:\s*/, '') : '';
  return t('ex_' + x.kind, { rate: x.rate || '', base: money(x.base), rule: x.rule || '—', reason: reason || '—' });
}

/* One line of an explanation, and the points or discount it accounts for
 * (a burn limit's points are a cap, not a movement). */
function ExplainLine({ x }) {
  let what = null;
  if (x.discount) what = t('ex_discount', { m: money(x.discount) });
  else if (x.kind === 'burn_limit' && x.points) what = t('ex_cap', { n: points(x.points) });
  else if (x.points) what = signed(x.points);
  return (
    <li>
      <span>{explainText(x)}</span>
      {what && <span class="cab-ex-figure">{what}</span>}
    </li>
  );
}

function Operation({ op }) {
  const explain = op.explain || [];
  const delta = op.points !== undefined ? op.points : (op.earned || 0) - (op.spent || 0);
  return (
    <li class="card cab-op">
      <div class="cab-op-head">
        <div>
          <h2 class="cab-op-title">{opName(op.type)}</h2>
          <div class="muted">
            {dateTime(op.at)}
            {op.store ? ' · ' + t('store', { s: op.store }) : ''}
            {op.receipt ? ' · ' + t('receipt_n', { r: op.receipt }) : ''}
          </div>
        </div>
        <div class={'cab-op-points ' + (delta < 0 ? 'neg' : 'pos')} aria-label={t('points_delta', { n: signed(delta) })}>
          {signed(delta)}
        </div>
      </div>
      <dl class="cab-op-figures">
        {op.amount ? (<><dt>{t('amount')}</dt><dd>{money(op.amount)}</dd></>) : null}
        {op.earned ? (<><dt>{t('earned')}</dt><dd>{points(op.earned)}</dd></>) : null}
        {op.spent ? (<><dt>{t('spent')}</dt><dd>{points(op.spent)}</dd></>) : null}
        {op.card ? (<><dt>{t('card')}</dt><dd>{op.card}</dd></>) : null}
      </dl>
      {explain.length > 0 ? (
        <div class="cab-explain">
          <h3>{t('why')}</h3>
          <ul>
            {explain.map((x, i) => (
              <ExplainLine x={x} key={i} />
            ))}
          </ul>
        </div>
      ) : (
        <p class="muted">{t('no_explain')}</p>
      )}
    </li>
  );
}

export function History({ onExpired }) {
  const [ops, setOps] = useState([]);
  const [next, setNext] = useState(null);
  const [loaded, setLoaded] = useState(false);
  const act = useAction(onExpired);
  async function load(before) {
    const q = `?limit=${PAGE}` + (before ? `&before=${encodeURIComponent(before)}` : '');
    const r = await act.run(() => api('GET', '/v1/me/history' + q));
    if (!r) return;
    setOps((prev) => (before ? [...prev, ...(r.history || [])] : r.history || []));
    setNext(r.next_before || null);
    setLoaded(true);
  }
  useEffect(() => {
    load(null);
  }, []);
  return (
    <div class="cab-history">
      <h1>{t('history_title')}</h1>
      <Alert kind="error">{act.err && act.err.message}</Alert>
      {!loaded && act.busy && <p class="muted">{t('loading')}</p>}
      {loaded && ops.length === 0 && <p class="muted">{t('history_empty')}</p>}
      <ol class="cab-ops">
        {ops.map((op, i) => (
          <Operation op={op} key={op.op_id || i} />
        ))}
      </ol>
      {next && (
        <Button kind="secondary" busy={act.busy} onClick={() => load(next)}>{t('more')}</Button>
      )}
    </div>
  );
}
