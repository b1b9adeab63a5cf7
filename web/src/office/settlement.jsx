// settlement.jsx: the back office's coalition settlement (#/settlement,
// settlement.read; docs/api.md "Settlement", docs/coalition.md): the periods
// (GET /v1/admin/settlement/periods), a period's statements and its matrix
// (GET .../periods/{period}, an open one computed now), the close with a
// confirmation (POST .../periods/{period}/close, settlement.manage), the
// CSV downloads, and one statement laid out to print.
import { useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { dateTime, makeT, money, points } from '../lib/i18n.js';
import { Alert, Button } from '../lib/ui.jsx';
import { ErrorAlert, LoadState, Panel, ScrollTable, useAction, useApiLoad } from './people.jsx';
import { strings } from './settlement.strings.js';

const t = makeT(strings);

/* The figures of a statement in the order the API gives them. */
export const FIGURES = [
  'entries', 'issued', 'burnt_own_at_own_stores', 'burnt_others_at_own_stores',
  'burnt_others_at_own_stores_minor', 'own_burnt_elsewhere', 'own_burnt_elsewhere_minor', 'expired',
  'breakage_paid_minor', 'breakage_received_minor', 'promotions_paid', 'promotions_paid_minor',
  'promotions_received', 'promotions_received_minor', 'fees_paid_minor', 'fees_received_minor',
  'owed_to_party_minor', 'owed_by_party_minor', 'net_position_minor',
];

const partyName = (p) => (p === 'operator' ? t('operator') : p);
const signed = (minor, cur) => (minor > 0 ? '+' : '') + money(minor, cur);

/* One statement laid out to print: its figures, one a row. */
export function Printable({ s, onHide }) {
  const title = s.number ? t('statement', { number: s.number }) : t('statement_open');
  return (
    <Panel title={title} class="printable">
      <p>
        <strong>{partyName(s.party)}</strong> · {s.currency} · {t('period_of', { period: s.period })}
        {s.closed_at && <> · {dateTime(s.closed_at)}</>}
      </p>
      <ScrollTable label={title} rows={FIGURES} rowKey={(f) => f} columns={[
        { key: 'f', label: t('figure'), render: (f) => t('f_' + f) },
        {
          key: 'v', label: t('value'), num: true,
          render: (f) => (f.endsWith('_minor') ? money(s[f], s.currency) : points(s[f])),
        },
      ]} />
      <div class="actions no-print">
        <Button onClick={() => window.print()}>{t('print_now')}</Button>
        <Button kind="secondary" onClick={onHide}>{t('hide')}</Button>
      </div>
    </Panel>
  );
}

function Matrix({ m }) {
  return m.currencies.map((c) => (
    <ScrollTable key={c.currency} label={t('matrix_of', { currency: c.currency })}
      caption={t('matrix_of', { currency: c.currency })} rows={c.parties.map((p, i) => ({ p, i }))}
      rowKey={(r) => r.p} columns={[
        { key: 'p', label: t('payer'), render: (r) => partyName(r.p) },
        ...c.parties.map((to, j) => ({
          key: 'to' + j, label: partyName(to), num: true,
          render: (r) => (c.amounts_minor[r.i][j] ? money(c.amounts_minor[r.i][j], c.currency) : '—'),
        })),
      ]} />
  ));
}

function Period({ period, onExpired }) {
  const load = useApiLoad(() => api('GET', `/v1/admin/settlement/periods/${period}`), [period], onExpired);
  const [printed, setPrinted] = useState(null);
  if (!load.data) return <LoadState load={load} />;
  const d = load.data;
  const last = d.first_number + d.statements_count - 1;
  return (
    <>
      <Panel title={t('period_of', { period })} class={printed ? 'no-print' : ''}>
        {d.state === 'open' ? <Alert kind="info">{t('open_note')}</Alert> : (
          <p>{t('closed_note', { at: dateTime(d.closed_at), by: d.closed_by, first: d.first_number, last })}</p>
        )}
        <p class="actions">
          <a class="btn btn-secondary" href={`/v1/admin/settlement/periods/${period}?format=csv`} download={`settlement-${period}.csv`}>{t('csv')}</a>
          <a class="btn btn-secondary" href={`/v1/admin/settlement/periods/${period}?format=csv&part=matrix`} download={`settlement-${period}-matrix.csv`}>{t('matrix_csv')}</a>
        </p>
        <ScrollTable wide label={t('period_of', { period })} rows={d.statements}
          rowKey={(s) => s.party + '/' + s.currency} columns={[
            { key: 'number', label: t('number'), num: true, render: (s) => s.number ?? '—' },
            {
              key: 'do', label: t('print'), render: (s) => (
                <Button kind="secondary" aria-label={t('print_of', { party: partyName(s.party), currency: s.currency })}
                  onClick={() => setPrinted(s)}>{t('print')}</Button>
              ),
            },
            { key: 'party', label: t('party'), render: (s) => partyName(s.party) },
            { key: 'currency', label: t('currency') },
            { key: 'issued', label: t('issued'), num: true, render: (s) => points(s.issued) },
            { key: 'own', label: t('burnt_own'), num: true, render: (s) => points(s.burnt_own_at_own_stores) },
            { key: 'others', label: t('burnt_others'), num: true, render: (s) => points(s.burnt_others_at_own_stores) },
            { key: 'elsewhere', label: t('burnt_elsewhere'), num: true, render: (s) => points(s.own_burnt_elsewhere) },
            { key: 'expired', label: t('expired'), num: true, render: (s) => points(s.expired) },
            { key: 'pp', label: t('promos_paid'), num: true, render: (s) => money(s.promotions_paid_minor, s.currency) },
            { key: 'pr', label: t('promos_received'), num: true, render: (s) => money(s.promotions_received_minor, s.currency) },
            { key: 'fees', label: t('fees'), num: true, render: (s) => money(s.fees_paid_minor || s.fees_received_minor, s.currency) },
            { key: 'net', label: t('net'), num: true, render: (s) => <strong>{signed(s.net_position_minor, s.currency)}</strong> },
          ]} />
      </Panel>
      <Panel title={t('matrix')} class={printed ? 'no-print' : ''}>
        <Matrix m={d.matrix} />
      </Panel>
      {printed && <Printable s={printed} onHide={() => setPrinted(null)} />}
    </>
  );
}

export function Settlement({ me, onExpired }) {
  const list = useApiLoad(() => api('GET', '/v1/admin/settlement/periods'), [], onExpired);
  const act = useAction(onExpired);
  const [asking, setAsking] = useState(null);
  const [shown, setShown] = useState(null);
  const [note, setNote] = useState(null);
  const mayClose = !!me && me.permissions.includes('settlement.manage');
  async function close(period) {
    setAsking(null);
    const d = await act.run(() => api('POST', `/v1/admin/settlement/periods/${period}/close`));
    if (d) {
      setNote(t('closed_done', { period, first: d.first_number, last: d.first_number + d.statements_count - 1 }));
      setShown(period);
      list.reload();
    }
  }
  return (
    <>
      <h1 class="no-print">{t('title')}</h1>
      <p class="muted no-print">{t('about')}</p>
      <div class="no-print">
        {note && <Alert kind="ok">{note}</Alert>}
        <Panel title={t('periods')}>
          <ErrorAlert error={act.error} shown={[]} />
          {asking && (
            <div class="alert alert-info" role="alertdialog" aria-labelledby="s-ask">
              <p id="s-ask">{t('confirm', { period: asking })}</p>
              <div class="actions">
                <Button onClick={() => close(asking)}>{t('yes')}</Button>
                <Button kind="secondary" onClick={() => setAsking(null)}>{t('no')}</Button>
              </div>
            </div>
          )}
          {list.data ? (
            list.data.periods.length === 0 ? <p>{t('none')}</p> : (
              <ScrollTable label={t('periods')} rows={list.data.periods} rowKey={(p) => p.period} columns={[
                {
                  key: 'period', label: t('period'),
                  render: (p) => p.period + (p.period === list.data.current ? ` (${t('current')})` : ''),
                },
                {
                  key: 'state', label: t('state'),
                  render: (p) => <span class={'badge' + (p.state === 'closed' ? ' badge-ok' : '')}>{t('state_' + p.state)}</span>,
                },
                { key: 'n', label: t('statements_n'), num: true, render: (p) => p.statements_count ?? '—' },
                { key: 'closed', label: t('closed'), render: (p) => (p.closed_at ? `${dateTime(p.closed_at)} · ${p.closed_by}` : '—') },
                {
                  key: 'do', label: t('actions'), render: (p) => (
                    <div class="actions">
                      <Button kind="secondary" aria-label={t('show_of', { period: p.period })} onClick={() => setShown(p.period)}>{t('show')}</Button>
                      {mayClose && p.closable && (
                        <Button busy={act.busy} aria-label={t('close_of', { period: p.period })} onClick={() => setAsking(p.period)}>{t('close')}</Button>
                      )}
                    </div>
                  ),
                },
              ]} />
            )
          ) : (
            <LoadState load={list} />
          )}
        </Panel>
      </div>
      {shown && <Period period={shown} key={shown + ':' + (note || '')} onExpired={onExpired} />}
    </>
  );
}
