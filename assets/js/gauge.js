// A pool's gauge: one bar whose full width is the pool's total seats, split into the
// commit zone and the overage zone, with the seats in use drawn over both. Updated in
// place, with fixed dimensions, so live updates never move the page.
import { el, fmtMoney } from './ui.js';

const pct = (n, total) => `${total > 0 ? Math.min(100, (100 * n) / total) : 0}%`;

/** Creates the gauge of `s` (a `GET /licenses/status` entry). */
export function createGauge(s) {
  const node = el('article', { class: 'gauge', dataset: { tool: s.tool } },
    el('h3', { class: 'gauge-title' }, s.tool),
    el('div', { class: 'bar', role: 'meter', 'aria-valuemin': '0' },
      el('div', { class: 'zone commit' }),
      el('div', { class: 'zone overage' }),
      el('div', { class: 'fill in-commit' }),
      el('div', { class: 'fill beyond' })),
    el('p', { class: 'figures' },
      el('span', { class: 'big', dataset: { f: 'borrowed' } }), ' in use of ',
      el('span', { dataset: { f: 'total' } }), ' · commit ',
      el('span', { dataset: { f: 'commit' } })),
    el('dl', { class: 'details' },
      el('div', {}, el('dt', {}, 'overage now'), el('dd', { dataset: { f: 'overage' } })),
      el('div', {}, el('dt', {}, 'waiting'), el('dd', { dataset: { f: 'waiting' } })),
      el('div', {}, el('dt', {}, 'overage this month'), el('dd', { dataset: { f: 'cost' } }))));
  updateGauge(node, s);
  return node;
}

/** Updates a gauge in place. */
export function updateGauge(node, s) {
  const total = s.total ?? 0;
  const commit = Math.min(s.commit ?? 0, total);
  const bar = node.querySelector('.bar');
  bar.querySelector('.commit').style.width = pct(commit, total);
  const over = bar.querySelector('.overage');
  over.style.left = pct(commit, total);
  over.style.width = pct(total - commit, total);
  // Seats in use inside the commit, then beyond it (overage), each in its own colour.
  const inCommit = Math.min(s.borrowed, commit);
  bar.querySelector('.in-commit').style.width = pct(inCommit, total);
  const beyond = bar.querySelector('.beyond');
  beyond.style.left = pct(commit, total);
  beyond.style.width = pct(s.borrowed - inCommit, total);
  bar.setAttribute('aria-valuemax', String(total));
  bar.setAttribute('aria-valuenow', String(s.borrowed));
  bar.setAttribute('aria-valuetext',
    `${s.borrowed} of ${total} seats in use; commit ${commit}, overage zone ${total - commit}`);
  bar.setAttribute('aria-label', `${s.tool} seats`);
  const set = (f, v) => { node.querySelector(`[data-f="${f}"]`).textContent = v; };
  set('borrowed', s.borrowed);
  set('total', total);
  set('commit', commit);
  set('overage', s.overage ?? 0);
  set('waiting', s.waiting ?? 0);
  set('cost', fmtMoney(s.current_overage_cost));
  node.dataset.borrowed = String(s.borrowed);
}
