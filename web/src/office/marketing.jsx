// marketing.jsx: the back office's Segments (#/segments) and Campaigns
// (#/campaigns) sections (campaign.manage; docs/marketing.md "Segments and
// campaigns", docs/api.md): a segment's filter edited as JSON with its count
// and a sample shown live (POST /v1/admin/segments/preview, a moment after
// the last keystroke), saved, changed, deleted; a campaign drafted (grant,
// budget, control share, message by language), previewed (who, how much,
// the message by channel), started now or at a time, cancelled, its
// progress polled while it runs, and its results against the control group.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from '../lib/api.js';
import { dateTime, makeT, money, number, percent } from '../lib/i18n.js';
import { Alert, Button, Field } from '../lib/ui.jsx';
import { ErrorAlert, Facts, LoadState, Panel, ScrollTable, tp, useAction, useApiLoad } from './people.jsx';
import { strings } from './marketing.strings.js';

const t = makeT(strings);
const LIVE_MS = 400;
const POLL_MS = 1000;

/* Text as a JSON object, or {error}. */
function parseFilter(text) {
  try {
    const v = JSON.parse(text || '{}');
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return { error: t('notObject') };
    return { value: v };
  } catch (e) {
    return { error: t('notJson', { why: e.message }) };
  }
}

/* The count and sample of a filter, asked a moment after it last changed. */
function useLiveCount(text, onExpired) {
  const [state, set] = useState({ busy: false, count: null, sample: [], error: null });
  const seq = useRef(0);
  useEffect(() => {
    const parsed = parseFilter(text);
    if (parsed.error) {
      set({ busy: false, count: null, sample: [], error: { message: parsed.error } });
      return undefined;
    }
    const my = ++seq.current;
    set((s) => ({ ...s, busy: true }));
    const timer = setTimeout(async () => {
      try {
        const a = await api('POST', '/v1/admin/segments/preview', { filter: parsed.value });
        if (my === seq.current) set({ busy: false, count: a.count, sample: a.sample, error: null });
      } catch (e) {
        if (e.status === 401 && onExpired) onExpired();
        if (my === seq.current) set({ busy: false, count: null, sample: [], error: e });
      }
    }, LIVE_MS);
    return () => clearTimeout(timer);
  }, [text]);
  return state;
}

function LiveCount({ live }) {
  if (live.error) return <ErrorAlert error={live.error} />;
  if (live.count === null) return <p class="muted">{tp('loading')}</p>;
  return (
    <div aria-live="polite">
      <p>
        <strong>{t('countIs', { n: number(live.count) })}</strong>
        {live.busy && <span class="muted"> {t('counting')}</span>}
      </p>
      {live.sample.length > 0 && (
        <p class="muted">
          {t('sample')}{' '}
          {live.sample.map((s, i) => (
            <span key={s.customer}>
              {i ? ', ' : ''}
              <a href={'#/customers/' + s.customer}>#{s.customer}</a>
            </span>
          ))}
        </p>
      )}
    </div>
  );
}

/* ------------------------------------------------------------- segments */

export function Segments({ onExpired }) {
  const list = useApiLoad(() => api('GET', '/v1/admin/segments'), [], onExpired);
  const [editing, setEditing] = useState({ id: 0, name: '', filter: '{\n  "period": {"days": 90},\n  "spend": {"min": 100000}\n}' });
  const act = useAction(onExpired);
  const live = useLiveCount(editing.filter, onExpired);
  async function save(ev) {
    ev.preventDefault();
    const parsed = parseFilter(editing.filter);
    if (parsed.error) return;
    const body = { name: editing.name.trim(), filter: parsed.value };
    const done = await act.run(async () => {
      const g = editing.id
        ? await api('PATCH', `/v1/admin/segments/${editing.id}`, body)
        : await api('POST', '/v1/admin/segments', body);
      setEditing({ id: g.id, name: g.name, filter: JSON.stringify(g.filter, null, 2) });
      return t('saved', { name: g.name, n: number(g.count) });
    });
    if (done) list.reload();
  }
  async function remove(g) {
    const done = await act.run(async () => {
      await api('DELETE', `/v1/admin/segments/${g.id}`);
      return t('deleted', { name: g.name });
    });
    if (done) {
      if (editing.id === g.id) setEditing({ id: 0, name: '', filter: '{}' });
      list.reload();
    }
  }
  return (
    <>
      <h1>{t('segments')}</h1>
      <p class="muted">{t('segmentsAbout')}</p>
      <Panel title={editing.id ? t('editSegment', { name: editing.name }) : t('newSegment')}>
        <form onSubmit={save}>
          <Field label={t('name')} name="name" value={editing.name} required error={act.fields.name}
            onInput={(e) => setEditing({ ...editing, name: e.currentTarget.value })} />
          <Field label={t('filter')} name="filter" kind="textarea" rows={8} value={editing.filter}
            hint={t('filterHint')} error={act.fields.filter}
            onInput={(e) => setEditing({ ...editing, filter: e.currentTarget.value })} />
          <LiveCount live={live} />
          <div class="actions">
            <Button type="submit" busy={act.busy}>{editing.id ? t('saveChanges') : t('save')}</Button>
            {editing.id > 0 && (
              <Button kind="secondary" type="button" onClick={() => setEditing({ id: 0, name: '', filter: '{}' })}>
                {t('newSegment')}
              </Button>
            )}
          </div>
        </form>
        {act.done && <Alert kind="ok">{act.done}</Alert>}
        <ErrorAlert error={act.error} shown={['name']} />
      </Panel>
      <Panel title={t('saved_')}>
        {list.data ? (
          <ScrollTable
            label={t('saved_')}
            caption={t('saved_')}
            rows={list.data.segments}
            rowKey={(g) => g.id}
            empty={t('noSegments')}
            columns={[
              { key: 'name', label: t('name') },
              { key: 'filter', label: t('filter'), render: (g) => <code>{JSON.stringify(g.filter)}</code> },
              { key: 'updated_at', label: t('updated'), render: (g) => dateTime(g.updated_at) },
              {
                key: 'do',
                label: tp('actions'),
                render: (g) => (
                  <div class="actions">
                    <Button kind="secondary" aria-label={t('editOf', { name: g.name })}
                      onClick={() => setEditing({ id: g.id, name: g.name, filter: JSON.stringify(g.filter, null, 2) })}>
                      {t('edit')}
                    </Button>
                    <Button kind="danger" busy={act.busy} aria-label={t('deleteOf', { name: g.name })} onClick={() => remove(g)}>
                      {t('delete')}
                    </Button>
                  </div>
                ),
              },
            ]}
          />
        ) : (
          <LoadState load={list} />
        )}
      </Panel>
    </>
  );
}

/* ------------------------------------------------------------ campaigns */

const EMPTY = {
  name: '', segment: '', rule: '', kind: 'premium', points: '500', validity_days: '30', budget: '0', control: '10',
  subject_ru: '', text_ru: '', subject_en: '', text_en: '',
};

function draftBody(f) {
  const by = (ru, en) => {
    const o = {};
    if (ru.trim()) o.ru = ru;
    if (en.trim()) o.en = en;
    return o;
  };
  const text = by(f.text_ru, f.text_en);
  return {
    name: f.name.trim(),
    segment: Number(f.segment),
    // A program rule on "campaign" gives kind, points and validity itself.
    grant: f.rule.trim()
      ? { rule: f.rule.trim() }
      : Number(f.points) > 0
        ? { kind: f.kind.trim(), points: Number(f.points), validity_days: Number(f.validity_days) || 0 }
        : null,
    budget: Number(f.budget) || 0,
    control_share: (Number(f.control) || 0) / 100,
    message: Object.keys(text).length ? { text, subject: by(f.subject_ru, f.subject_en) } : null,
  };
}

function NewCampaign({ segments, onExpired, created }) {
  const [f, setF] = useState(EMPTY);
  const act = useAction(onExpired);
  const set = (k) => (e) => setF({ ...f, [k]: e.currentTarget.value });
  async function submit(ev) {
    ev.preventDefault();
    const c = await act.run(() => api('POST', '/v1/admin/campaigns', draftBody(f)));
    if (c) {
      setF(EMPTY);
      act.clear();
      created(c);
    }
  }
  const fe = act.fields;
  return (
    <Panel title={t('newCampaign')}>
      <form onSubmit={submit}>
        <Field label={t('name')} name="name" value={f.name} required error={fe.name} onInput={set('name')} />
        <Field label={t('segment')} name="segment" kind="select" value={f.segment} required error={fe.segment} onChange={set('segment')}>
          <option value="">{t('choose')}</option>
          {segments.map((g) => (
            <option key={g.id} value={g.id}>{g.name}</option>
          ))}
        </Field>
        <Field label={t('grantRule')} name="rule" value={f.rule} hint={t('grantRuleHint')} error={fe['grant.rule']} onInput={set('rule')} />
        <div class="inline">
          <Field label={t('kind')} name="kind" value={f.kind} disabled={!!f.rule.trim()} error={fe['grant.kind']} onInput={set('kind')} />
          <Field label={t('points')} name="points" type="number" min="0" value={f.points} disabled={!!f.rule.trim()} error={fe['grant.points']} onInput={set('points')} />
          <Field label={t('validity')} name="validity_days" type="number" min="0" value={f.validity_days} disabled={!!f.rule.trim()}
            error={fe['grant.validity_days']} onInput={set('validity_days')} />
        </div>
        <div class="inline">
          <Field label={t('budget')} name="budget" type="number" min="0" value={f.budget} hint={t('budgetHint')} error={fe.budget} onInput={set('budget')} />
          <Field label={t('control')} name="control" type="number" min="0" max="90" value={f.control} error={fe.control_share} onInput={set('control')} />
        </div>
        <Field label={t('subjectRu')} name="subject_ru" value={f.subject_ru} onInput={set('subject_ru')} />
        <Field label={t('textRu')} name="text_ru" kind="textarea" rows={3} value={f.text_ru} error={fe['message.text.ru']} onInput={set('text_ru')} />
        <Field label={t('subjectEn')} name="subject_en" value={f.subject_en} onInput={set('subject_en')} />
        <Field label={t('textEn')} name="text_en" kind="textarea" rows={3} value={f.text_en} error={fe['message.text.en']} onInput={set('text_en')} />
        <Button type="submit" busy={act.busy}>{t('createDraft')}</Button>
      </form>
      <ErrorAlert error={act.error} shown={['name', 'segment', 'grant.rule', 'grant.kind', 'grant.points', 'grant.validity_days', 'budget', 'control_share', 'message.text.ru', 'message.text.en']} />
    </Panel>
  );
}

function Preview({ p }) {
  return (
    <section aria-label={t('preview')}>
      <Facts
        items={[
          [t('count'), number(p.count)],
          [t('controlGroup'), number(p.control)],
          [t('targeted'), number(p.targeted)],
          [t('grants'), number(p.grants)],
          [t('overBudget'), number(p.over_budget)],
          [t('pointsTotal'), number(p.points)],
          [t('cost'), money(p.cost_minor, p.currency || 'RUB')],
        ]}
      />
      {p.distribution && (
        <>
          <h3>{t('distribution', { rule: p.distribution.rule })}</h3>
          <Facts
            items={[
              [t('distMin'), number(p.distribution.min)],
              [t('distMedian'), number(p.distribution.median)],
              [t('distMax'), number(p.distribution.max)],
              [t('distZero'), number(p.distribution.zero)],
              ...(p.distribution.zero_why ? [[t('distZeroWhy'), p.distribution.zero_why]] : []),
            ]}
          />
        </>
      )}
      {p.limits.length > 0 && (
        <ScrollTable
          label={t('limits')}
          caption={t('limits')}
          rows={p.limits}
          rowKey={(l) => l.rule}
          columns={[
            { key: 'rule', label: t('rule') },
            { key: 'category', label: t('category'), render: (l) => l.category || t('anyCategory') },
            { key: 'max_share', label: t('maxShare'), render: (l) => percent(l.max_share, 0) },
          ]}
        />
      )}
      {p.messages.map((m) => (
        <div class="card" key={m.channel + m.language}>
          <h3>{t('messageAs', { channel: m.channel, language: m.language })}</h3>
          {m.subject && <p><strong>{m.subject}</strong></p>}
          <p>{m.text}</p>
        </div>
      ))}
    </section>
  );
}

function CampaignView({ id, onExpired, changed }) {
  const [tick, setTick] = useState(0);
  const c = useApiLoad(() => api('GET', `/v1/admin/campaigns/${id}`), [id, tick], onExpired);
  const [preview, setPreview] = useState(null);
  const [results, setResults] = useState(null);
  const [at, setAt] = useState('');
  const act = useAction(onExpired);
  const running = c.data && (c.data.state === 'scheduled' || c.data.state === 'starting' || c.data.state === 'running');
  useEffect(() => {
    if (!running) return undefined;
    const timer = setTimeout(() => setTick(tick + 1), POLL_MS);
    return () => clearTimeout(timer);
  }, [running, tick]);
  useEffect(() => {
    setPreview(null);
    setResults(null);
  }, [id]);
  if (!c.data) return <LoadState load={c} />;
  const x = c.data;
  const pr = x.progress;
  async function start(ev) {
    ev.preventDefault();
    const body = at ? { at: new Date(at).toISOString().replace(/\.\d{3}Z$/, 'Z') } : {};
    const done = await act.run(async () => {
      await api('POST', `/v1/admin/campaigns/${id}/start`, body);
      return t('startedNote');
    });
    if (done) {
      setTick(tick + 1);
      changed();
    }
  }
  async function cancel() {
    const done = await act.run(async () => {
      await api('POST', `/v1/admin/campaigns/${id}/cancel`);
      return t('cancelledNote');
    });
    if (done) {
      setTick(tick + 1);
      changed();
    }
  }
  return (
    <Panel title={t('campaignN', { name: x.name })}>
      <Facts
        items={[
          [t('state'), t('state.' + x.state)],
          [t('grant'), !x.grant ? t('noGrant')
            : x.grant.rule ? t('grantByRule', { rule: x.grant.rule, kind: x.grant.kind, version: x.grant.program_version || '—' })
              : t('grantIs', { points: number(x.grant.points), kind: x.grant.kind, days: x.grant.validity_days })],
          [t('budget'), x.budget ? number(x.budget) : t('noCap')],
          [t('control'), percent(x.control_share, 0)],
          [t('startAt'), x.start_at ? dateTime(x.start_at) : '—'],
          [t('granted'), number(x.granted)],
          [t('note'), x.note],
        ]}
      />
      <h3>{t('progress')}</h3>
      <Facts
        items={[
          [t('members'), number(pr.members)],
          [t('pending'), number(pr.pending)],
          [t('grantedMembers'), number(pr.granted)],
          [t('budgetStopped'), number(pr.budget)],
          [t('controlGroup'), number(pr.control)],
          [t('messagesSent'), number(pr.messages_sent)],
        ]}
      />
      {act.done && <Alert kind="ok">{act.done}</Alert>}
      <ErrorAlert error={act.error} />
      <div class="actions">
        <Button kind="secondary" busy={act.busy}
          onClick={() => act.run(async () => { setPreview(await api('POST', `/v1/admin/campaigns/${id}/preview`)); })}>
          {t('preview')}
        </Button>
        {x.state !== 'draft' && (
          <Button kind="secondary" busy={act.busy}
            onClick={() => act.run(async () => { setResults(await api('GET', `/v1/admin/campaigns/${id}/results?window_days=30`)); })}>
            {t('results')}
          </Button>
        )}
        {(x.state === 'draft' || running) && (
          <Button kind="danger" busy={act.busy} onClick={cancel}>{t('cancel')}</Button>
        )}
      </div>
      {x.state === 'draft' && (
        <form class="inline" onSubmit={start}>
          <Field label={t('startAtLabel')} name="at" type="datetime-local" value={at} hint={t('startHint')}
            onInput={(e) => setAt(e.currentTarget.value)} />
          <Button type="submit" busy={act.busy}>{t('start')}</Button>
        </form>
      )}
      {preview && <Preview p={preview} />}
      {results && <h3>{t('campaignPoints')}</h3>}
      {results && (
        <Facts
          items={[
            [t('grantedMembers'), number(results.grants)],
            [t('granted'), number(results.points)],
            [t('pointsSpent'), number(results.points_spent)],
            [t('pointsExpired'), number(results.points_expired)],
            [t('messagesSent'), number(results.messages_sent)],
          ]}
        />
      )}
      {results && (
        <ScrollTable
          label={t('results')}
          caption={t('results')}
          rows={[['targeted', results.targeted], ['control', results.control]]}
          rowKey={(r) => r[0]}
          columns={[
            { key: 'group', label: t('group'), render: (r) => t('group.' + r[0]) },
            { key: 'customers', label: t('customers'), num: true, render: (r) => number(r[1].customers) },
            { key: 'before', label: t('perBefore'), num: true, render: (r) => money(r[1].per_customer_before_minor) },
            { key: 'after', label: t('perAfter'), num: true, render: (r) => money(r[1].per_customer_after_minor) },
          ]}
        />
      )}
    </Panel>
  );
}

export function Campaigns({ onExpired }) {
  const list = useApiLoad(() => api('GET', '/v1/admin/campaigns'), [], onExpired);
  const segs = useApiLoad(() => api('GET', '/v1/admin/segments'), [], onExpired);
  const [open, setOpen] = useState(0);
  return (
    <>
      <h1>{t('campaigns')}</h1>
      <p class="muted">{t('campaignsAbout')}</p>
      {segs.data ? (
        <NewCampaign segments={segs.data.segments} onExpired={onExpired}
          created={(c) => { setOpen(c.id); list.reload(); }} />
      ) : (
        <LoadState load={segs} />
      )}
      {open > 0 && <CampaignView id={open} onExpired={onExpired} changed={list.reload} />}
      <Panel title={t('list')}>
        {list.data ? (
          <ScrollTable
            label={t('list')}
            caption={t('list')}
            rows={list.data.campaigns}
            rowKey={(c) => c.id}
            empty={t('noCampaigns')}
            columns={[
              { key: 'name', label: t('name') },
              { key: 'state', label: t('state'), render: (c) => t('state.' + c.state) },
              { key: 'start_at', label: t('startAt'), render: (c) => (c.start_at ? dateTime(c.start_at) : '—') },
              { key: 'granted', label: t('granted'), num: true, render: (c) => number(c.granted) },
              {
                key: 'do',
                label: tp('actions'),
                render: (c) => (
                  <Button kind="secondary" aria-label={t('openOf', { name: c.name })} onClick={() => setOpen(c.id)}>
                    {t('open')}
                  </Button>
                ),
              },
            ]}
          />
        ) : (
          <LoadState load={list} />
        )}
      </Panel>
    </>
  );
}
