// receipt.jsx: the receipt of a purchase or a return as the server
// answered it: the store, till, receipt number, time and cashier, the
// lines and figures in the page's language, then the answer's own
// receipt_lines. On paper (the print stylesheet in till.css) it is the only
// thing printed, 80 mm wide.
import { dateTime, makeT, money, points } from '../lib/i18n.js';
import { strings } from './strings.js';

const t = makeT(strings);

function Row({ label, children, strong }) {
  return (
    <div class={strong ? 'r-row r-strong' : 'r-row'}>
      <span>{label}</span>
      <span class="r-num">{children}</span>
    </div>
  );
}

export function Receipt({ kind, answer: a, cashier, pairing }) {
  const purchase = kind === 'purchase';
  return (
    <section class="receipt" aria-label={t('receipt')}>
      <h2 class="r-title">{purchase ? t('receiptSale') : t('receiptReturn')}</h2>
      <div class="r-head">
        <Row label={t('storeLabel')}>{a.store}</Row>
        <Row label={t('tillLabel')}>{'T' + (pairing ? pairing.tag : '')}</Row>
        <Row label={t('receiptLabel')}>{a.receipt}</Row>
        {!purchase && <Row label={t('originalReceipt')}>{a.original_receipt + (a.original_store !== a.store ? ` (${a.original_store})` : '')}</Row>}
        <Row label={t('timeLabel')}>{dateTime(a.at)}</Row>
        <Row label={t('cashierLabel')}>{cashier}</Row>
        <Row label={t('cardLabel')}>{a.card}</Row>
      </div>
      <ul class="r-lines">
        {(a.lines || []).map((l, i) => (
          <li key={i}>
            <div class="r-row">
              <span>{l.sku} × {l.qty}</span>
              <span class="r-num">{purchase ? money(l.amount) : t('pointsN', { n: points(-l.earned_reversed) })}</span>
            </div>
            {purchase && l.discount > 0 && <Row label={t('discount')}>−{money(l.discount)}</Row>}
            {purchase && l.paid_with_points > 0 && <Row label={t('byPoints')}>−{money(l.paid_with_points)}</Row>}
            {!purchase && l.paid_with_points_refunded > 0 && (
              <Row label={t('pointsRefunded')}>{money(l.paid_with_points_refunded)}</Row>
            )}
          </li>
        ))}
      </ul>
      {purchase ? (
        <div class="r-totals">
          <Row label={t('amount')}>{money(a.amount)}</Row>
          {a.discount > 0 && <Row label={t('discount')}>−{money(a.discount)}</Row>}
          {a.burned > 0 && <Row label={t('byPoints')}>−{money(a.paid_with_points)} ({t('pointsN', { n: points(a.burned) })})</Row>}
          <Row label={t('toPay')} strong>{money(a.paid)}</Row>
          <Row label={t('earnedDone')}>{points(a.earned)}</Row>
          <Row label={t('balance')}>{points(a.balance)}</Row>
        </div>
      ) : (
        <div class="r-totals">
          <Row label={t('spendReversed')}>{money(a.spend_reversed)}</Row>
          <Row label={t('earnedReversed')}>{points(a.earned_reversed)}</Row>
          <Row label={t('burnedRefunded')}>{points(a.burned_refunded)}</Row>
          <Row label={t('balance')} strong>{points(a.balance)}</Row>
        </div>
      )}
      {(a.receipt_lines || []).length > 0 && (
        <ul class="r-server" aria-label={t('receiptLines')}>
          {a.receipt_lines.map((l, i) => (
            <li key={i}>{l}</li>
          ))}
        </ul>
      )}
      {a.replayed && <p class="r-note">{t('replayedNote')}</p>}
    </section>
  );
}
