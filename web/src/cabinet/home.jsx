// home.jsx: the cabinet's first view: the balance by point kind (available
// and pending) and what expires when, the tier and its privileges, and the
// customer's cards with their barcode and QR (GET /v1/me/cards/{n}/...),
// each to show at the till full screen or to block when lost. ShowCard is
// that full-screen view (#/show/<number>).
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { date, points } from '../lib/i18n.js';
import { Alert, Button, navigate } from '../lib/ui.jsx';
import { byKind, groupDigits, kindName, mainCard, pts, t, unit, useAction, useFocus } from './util.js';

const cardPath = (n, what) => `/v1/me/cards/${encodeURIComponent(n)}/${what}`;

/* The card's points in each currency it has any (docs/coalition.md
 * "Currencies"): shown when there is more than the program's own. The
 * figure above is the program currency's; nothing converts. */
function Currencies({ card }) {
  const list = card.balances || [];
  if (list.length < 2) return null;
  return (
    <>
      <h3 id="cur-h">{t('by_currency')}</h3>
      <table class="cab-kinds" aria-labelledby="cur-h">
        <thead>
          <tr>
            <th scope="col">{t('currency')}</th>
            <th scope="col" class="num">{t('available')}</th>
          </tr>
        </thead>
        <tbody>
          {list.map((b) => (
            <tr key={b.currency}>
              <th scope="row">{b.currency}</th>
              <td class="num">{points(b.available)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

function Balance({ card }) {
  const { kinds, expiring } = byKind(card);
  return (
    <section class="card cab-balance" aria-labelledby="bal-h">
      <h2 id="bal-h" class="figure-label">{t('balance')}</h2>
      <p class="cab-big">
        {points(card.available)} <span class="cab-unit">{unit(card.available)}</span>
      </p>
      {card.pending > 0 && <p class="muted">{t('pending_total', { pts: pts(card.pending) })}</p>}
      {card.debt > 0 && <Alert kind="info">{t('debt', { n: points(card.debt) })}</Alert>}
      {kinds.length > 0 && (
        <table class="cab-kinds">
          <caption class="sr-only">{t('by_kind')}</caption>
          <thead>
            <tr>
              <th scope="col">{t('kind')}</th>
              <th scope="col" class="num">{t('available')}</th>
              <th scope="col" class="num">{t('pending')}</th>
            </tr>
          </thead>
          <tbody>
            {kinds.map((k) => (
              <tr key={k.kind}>
                <th scope="row">{kindName(k.kind)}</th>
                <td class="num">{points(k.available)}</td>
                <td class="num">{points(k.pending)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Currencies card={card} />
      <h3>{t('expires_title')}</h3>
      {expiring.length === 0 ? (
        <p class="muted">{kinds.length ? t('nothing_expires') : t('no_points_yet')}</p>
      ) : (
        <ul class="cab-list">
          {expiring.slice(0, 12).map((x, i) => (
            <li key={i}>
              <span>{t('expires_line', { pts: pts(x.points), kind: kindName(x.kind).toLowerCase() })}</span>
              <strong>{date(x.expires_at)}</strong>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

function Tier({ card }) {
  const tier = card.tier;
  if (!tier && !card.personal_discount) return null;
  return (
    <section class="card" aria-labelledby="tier-h">
      <h2 id="tier-h">{tier ? t('tier', { name: tier.name }) : t('your_discount')}</h2>
      <ul class="cab-facts">
        {tier && tier.earn_multiplier && tier.earn_multiplier !== '1' && (
          <li>{t('tier_multiplier', { x: tier.earn_multiplier })}</li>
        )}
        {tier && tier.discount && !/^0(\.0+)?%?$/.test(String(tier.discount)) ? (
          <li>{t('tier_discount', { d: String(tier.discount) })}</li>
        ) : null}
        {card.personal_discount && <li>{t('personal_discount', { d: card.personal_discount })}</li>}
      </ul>
      {tier && tier.privileges && tier.privileges.length > 0 && (
        <>
          <h3>{t('privileges')}</h3>
          <ul>
            {tier.privileges.map((p) => (
              <li key={p}>{p}</li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}

const STATE_BADGE = { active: 'badge-ok', issued: 'badge-warn', blocked: 'badge-danger' };

function CardView({ card, reload, onExpired }) {
  const [asking, setAsking] = useState(false);
  const [done, setDone] = useState(false);
  const act = useAction(onExpired);
  const cancelRef = useFocus(asking);
  async function block() {
    const r = await act.run(() => api('POST', cardPath(card.card, 'block'), { reason: 'lost' }));
    if (r !== undefined) {
      setAsking(false);
      setDone(true);
      reload();
    }
  }
  const usable = card.state === 'active' || card.state === 'issued';
  return (
    <section class="card cab-card" aria-label={t('card_n', { n: card.card })}>
      <div class="cab-card-head">
        <h3>{t('card_n', { n: groupDigits(card.card) })}</h3>
        <span class={'badge ' + (STATE_BADGE[card.state] || '')}>{t('state_' + card.state)}</span>
      </div>
      {done && <Alert kind="ok">{t('blocked_done')}</Alert>}
      {usable && (
        <div class="cab-codes">
          <img class="cab-barcode" src={cardPath(card.card, 'barcode.svg')} alt={t('barcode_of', { n: card.card })} />
          <img class="cab-qr" src={cardPath(card.card, 'qr.svg')} alt={t('qr_of', { n: card.card })} />
        </div>
      )}
      {usable && (
        <div class="row cab-actions">
          <Button onClick={() => navigate('/show/' + encodeURIComponent(card.card))}>{t('show_till')}</Button>
          {card.state === 'active' && !asking && (
            <Button kind="secondary" onClick={() => setAsking(true)}>{t('block_card')}</Button>
          )}
        </div>
      )}
      {card.state === 'blocked' && <p class="muted">{t('blocked_note')}</p>}
      {asking && (
        <div class="cab-confirm" role="group" aria-label={t('block_card')}>
          <p>
            <strong>{t('block_confirm', { n: card.card })}</strong>
          </p>
          <p class="muted">{t('block_explain')}</p>
          <Alert kind="error">{act.err && act.err.message}</Alert>
          <div class="row">
            <Button kind="danger" busy={act.busy} onClick={block}>{t('block_yes')}</Button>
            <button type="button" class="btn btn-secondary" ref={cancelRef} onClick={() => setAsking(false)}>
              {t('cancel')}
            </button>
          </div>
        </div>
      )}
    </section>
  );
}

export function Home({ me, reload, onExpired }) {
  const card = mainCard(me);
  const cards = (me.cards || []).filter((c) => c.state !== 'replaced');
  return (
    <div class="cab-home">
      <h1>{me.profile && me.profile.full_name ? t('hello', { name: me.profile.full_name }) : t('home_title')}</h1>
      {!card ? (
        <Alert kind="info">{t('no_cards')}</Alert>
      ) : (
        <div class="cab-cols">
          <div>
            <Balance card={card} />
            <Tier card={card} />
          </div>
          <div>
            <h2>{cards.length > 1 ? t('my_cards') : t('my_card')}</h2>
            {cards.map((c) => (
              <CardView card={c} key={c.card} reload={reload} onExpired={onExpired} />
            ))}
          </div>
        </div>
      )}
    </div>
  );
}

/* The card, full screen and as large as it goes, for the till's scanner:
 * white, the screen kept awake where the browser allows it. */
export function ShowCard({ me, number }) {
  const card = (me.cards || []).find((c) => c.card === number);
  const closeRef = useRef(null);
  useEffect(() => {
    let lock = null;
    const wl = navigator.wakeLock;
    if (wl && wl.request) wl.request('screen').then((l) => (lock = l), () => null);
    const onKey = (e) => e.key === 'Escape' && navigate('/');
    addEventListener('keydown', onKey);
    if (closeRef.current) closeRef.current.focus();
    return () => {
      removeEventListener('keydown', onKey);
      if (lock) lock.release().catch(() => null);
    };
  }, []);
  return (
    <main class="cab-show">
      <h1 class="sr-only">{t('card_n', { n: number })}</h1>
      {!card ? (
        <Alert kind="error">{t('no_such_card')}</Alert>
      ) : (
        <>
          <img class="cab-show-barcode" src={cardPath(number, 'barcode.svg')} alt={t('barcode_of', { n: number })} />
          <p class="cab-show-number" aria-hidden="true">{groupDigits(number)}</p>
          <img class="cab-show-qr" src={cardPath(number, 'qr.svg')} alt={t('qr_of', { n: number })} />
          <p class="cab-show-balance">{t('show_balance', { pts: pts(card.available) })}</p>
        </>
      )}
      <a class="btn btn-secondary cab-show-close" href="#/" ref={closeRef}>{t('close')}</a>
    </main>
  );
}
