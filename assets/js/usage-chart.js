// The vendor's usage report: totals per customer and product over a window, a chart of
// borrows and peak concurrent seats per day (uPlot, vendored in assets/vendor/uplot),
// and the same report as CSV.
import { api } from './api.js';
import { el, fill, table, empty, showError, fmtMoney } from './ui.js';

const $ = (id) => document.getElementById(id);
const DAY = 86_400_000;
/** Most days a chart shows (one request per day). */
const MAX_DAYS = 92;

const isoDay = (ms) => new Date(ms).toISOString().slice(0, 10);

function sumProducts(report, f) {
  return (report.customers ?? []).reduce(
    (acc, c) => acc + c.products.reduce((a, p) => a + Number(p[f] ?? 0), 0), 0);
}

let chart = null;

function drawChart(days, borrows, peaks, overage) {
  const box = $('usage-chart');
  const uPlot = globalThis.uPlot;
  if (!uPlot) {
    fill(box, empty('The chart library did not load; the table below has the figures.'));
    return;
  }
  const data = [days.map((d) => d / 1000), borrows, peaks, overage];
  const width = Math.max(320, box.clientWidth);
  const opts = {
    width,
    height: 260,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
    scales: { x: { time: true } },
    axes: [{}, { label: 'seats / borrows' }],
    series: [
      { label: 'day (UTC)', value: (u, v) => (v == null ? '—' : isoDay(v * 1000)) },
      { label: 'borrows', stroke: '#1d4ed8', width: 2, points: { show: true } },
      { label: 'peak concurrent', stroke: '#b45309', width: 2, points: { show: true } },
      { label: 'overage borrows', stroke: '#b91c1c', width: 2, dash: [6, 4], points: { show: true } },
    ],
  };
  if (chart) chart.destroy();
  box.replaceChildren();
  chart = new uPlot(opts, data, box);
}

async function load(from, toInclusive) {
  const start = Date.parse(`${from}T00:00:00Z`);
  const end = Date.parse(`${toInclusive}T00:00:00Z`) + DAY;
  if (!Number.isFinite(start) || !Number.isFinite(end)) throw new Error('Choose both dates.');
  if (end <= start) throw new Error('"To" must be on or after "From".');
  const nDays = Math.round((end - start) / DAY);
  if (nDays > MAX_DAYS) throw new Error(`Choose at most ${MAX_DAYS} days for the chart.`);
  const query = `from=${isoDay(start)}&to=${isoDay(end)}`;
  $('usage-csv').href = `/api/vendor/usage?format=csv&${query}`;
  $('usage-csv').download = `usage-${isoDay(start)}-${toInclusive}.csv`;

  const report = await api('GET', `/api/vendor/usage?${query}`);
  const rows = (report.customers ?? []).flatMap((c) => c.products.map((p) => [
    c.company_name, p.tool, p.borrows, p.peak_concurrent, p.overage_borrows, fmtMoney(Number(p.overage_amount)),
  ]));
  fill($('usage-table'), rows.length
    ? table('Usage per customer and product',
      ['Customer', 'Product', 'Borrows', 'Peak concurrent', 'Overage borrows', 'Overage amount'],
      rows, { numeric: [2, 3, 4, 5] })
    : empty('No usage in this window.'));

  const days = Array.from({ length: nDays }, (_, i) => start + i * DAY);
  // A handful of requests at a time: each day is one window of the same report.
  const perDay = new Array(nDays);
  for (let i = 0; i < nDays; i += 6) {
    const batch = days.slice(i, i + 6).map((d) =>
      api('GET', `/api/vendor/usage?from=${isoDay(d)}&to=${isoDay(d + DAY)}`));
    (await Promise.all(batch)).forEach((r, j) => { perDay[i + j] = r; });
  }
  drawChart(days,
    perDay.map((r) => sumProducts(r, 'borrows')),
    perDay.map((r) => sumProducts(r, 'peak_concurrent')),
    perDay.map((r) => sumProducts(r, 'overage_borrows')));
}

export function initUsage() {
  const form = $('usage-form');
  const today = Date.parse(`${new Date().toISOString().slice(0, 10)}T00:00:00Z`);
  form.elements.from.value = isoDay(today - 13 * DAY);
  form.elements.to.value = isoDay(today);
  const run = async () => {
    showError($('usage-error'), null);
    try {
      await load(form.elements.from.value, form.elements.to.value);
    } catch (err) {
      showError($('usage-error'), err);
    }
  };
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    run();
  });
  let lastWidth = 0;
  new ResizeObserver(() => {
    const w = Math.max(320, $('usage-chart').clientWidth);
    if (chart && Math.abs(w - lastWidth) > 4) {
      lastWidth = w;
      chart.setSize({ width: w, height: 260 });
    }
  }).observe($('usage-chart'));
  return run();
}
