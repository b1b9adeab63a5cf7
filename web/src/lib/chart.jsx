// chart.jsx: a chart of figures by month, drawn by uPlot on a canvas, with
// the same figures as a table under it (a <details> anyone can open; the
// canvas itself is hidden from screen readers, the table is what they read).
// uPlot's own stylesheet is imported here so esbuild bundles it with the
// page that uses a chart (no style from elsewhere: the CSP allows 'self').
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './chart.css';
import { Table } from './ui.jsx';

/* Colours that read on white and apart from each other (WCAG AA text
 * contrast against the card's white). */
export const CHART_COLOURS = ['#0b6e4f', '#b3261e', '#8a5a00', '#1d4f80', '#6b3fa0'];

const HEIGHT = 240;

/*
 * MonthChart: labels (one per month, for the table and the legend), ticks
 * (the same months, short, for the x axis; default labels), series [{label, values,
 * format, bars}] (values aligned with labels; format(n) writes a value for
 * the axis, the legend and the table), title (the figure's caption),
 * tableLabel (the <summary> that opens the table), monthLabel (the table's
 * first column), extra (more table-only columns [{key, label, values,
 * format}]), fromZero (the y axis starts at 0 or below: for amounts whose
 * bars would mislead from another base; off by default).
 */
export function MonthChart({ title, labels, ticks = labels, series, tableLabel, monthLabel, extra = [], fromZero = false }) {
  const box = useRef(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return undefined;
    const xs = labels.map((_, i) => i);
    const fmt = series[0] && series[0].format ? series[0].format : String;
    const opts = {
      width: Math.max(200, el.clientWidth),
      height: HEIGHT,
      legend: { show: true, live: false },
      cursor: { show: true, drag: { x: false, y: false } },
      scales: {
        x: { time: false, range: [-0.5, Math.max(0.5, labels.length - 0.5)] },
        ...(fromZero ? { y: { range: (u, lo, hi) => [Math.min(0, lo), hi > 0 ? hi * 1.1 : 1] } } : {}),
      },
      axes: [
        {
          /* As many month labels as fit, about 64 px each. */
          splits: (u) => {
            const room = u.bbox.width / (window.devicePixelRatio || 1);
            const step = Math.max(1, Math.ceil((labels.length * 64) / Math.max(room, 64)));
            return xs.filter((i) => i % step === 0);
          },
          values: (u, splits) => splits.map((i) => ticks[i] ?? ''),
          grid: { show: false },
        },
        { values: (u, splits) => splits.map((v) => fmt(v)), size: 70 },
      ],
      series: [
        { label: monthLabel, value: (u, i) => (i == null ? '' : labels[i] ?? '') },
        ...series.map((s, n) => ({
          label: s.label,
          stroke: CHART_COLOURS[n % CHART_COLOURS.length],
          fill: s.bars ? CHART_COLOURS[n % CHART_COLOURS.length] + '99' : undefined,
          width: 2,
          paths: s.bars ? uPlot.paths.bars({ size: [0.6, 48] }) : undefined,
          points: { show: !s.bars, size: 6 },
          value: (u, v) => (v == null ? '—' : (s.format || String)(v)),
        })),
      ],
    };
    const plot = new uPlot(opts, [xs, ...series.map((s) => s.values)], el);
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(200, el.clientWidth), height: HEIGHT }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [labels.join(), ticks.join(), series.map((s) => s.label + s.values.join()).join('|'), fromZero]);

  const rows = labels.map((month, i) => {
    const r = { month };
    series.forEach((s, n) => (r['s' + n] = s.values[i]));
    extra.forEach((x) => (r[x.key] = x.values[i]));
    return r;
  });
  const columns = [
    { key: 'month', label: monthLabel },
    ...series.map((s, n) => ({ key: 's' + n, label: s.label, num: true, render: (r) => (s.format || String)(r['s' + n]) })),
    ...extra.map((x) => ({ key: x.key, label: x.label, num: true, render: (r) => (x.format || String)(r[x.key]) })),
  ];
  return (
    <figure class="chart card">
      <figcaption class="chart-title">{title}</figcaption>
      <div class="chart-canvas" ref={box} aria-hidden="true" />
      <details class="chart-table">
        <summary>{tableLabel}</summary>
        <Table columns={columns} rows={rows} caption={title} />
      </details>
    </figure>
  );
}
