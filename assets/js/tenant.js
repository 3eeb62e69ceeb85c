// The tenant dashboard: pools, active borrows, the wait queue, live through
// `GET /events` (Server-Sent Events; no polling), and for admins the budget, API keys
// and users (tenant-admin.js).
import { api, logout, seg } from './api.js';
import {
  el, fill, table, empty, showError, notice, confirmButton, fmtTime, fmtClock, fmtRemaining,
} from './ui.js';
import { createGauge, updateGauge } from './gauge.js';
import { initAdmin, loadBudget } from './tenant-admin.js';

const isAdmin = document.querySelector('meta[name="portal-role"]')?.content === 'admin';
const $ = (id) => document.getElementById(id);

document.getElementById('logout').addEventListener('click', logout);

let lastStatus = [];

async function loadPools() {
  try {
    const status = await api('GET', '/licenses/status');
    lastStatus = status;
    const box = $('pools');
    showError($('pools-error'), null);
    if (status.length === 0) {
      fill(box, empty('No pools yet: your vendor has not provisioned any tool.'));
      return;
    }
    box.querySelector('.empty')?.remove();
    const seen = new Set();
    for (const s of status) {
      seen.add(s.tool);
      const existing = [...box.querySelectorAll('.gauge')].find((g) => g.dataset.tool === s.tool);
      if (existing) updateGauge(existing, s);
      else box.append(createGauge(s));
    }
    for (const g of box.querySelectorAll('.gauge')) {
      if (!seen.has(g.dataset.tool)) g.remove();
    }
    box.removeAttribute('aria-busy');
  } catch (err) {
    showError($('pools-error'), err);
  }
}

const expiryText = (iso) => `${fmtClock(iso)} (${fmtRemaining(iso)})`;

// The remaining lease time is recomputed locally (no request) every 15 s.
setInterval(() => {
  for (const t of document.querySelectorAll('#borrows time.expiry')) {
    t.textContent = expiryText(t.getAttribute('datetime'));
  }
}, 15_000);

async function loadBorrows() {
  try {
    const borrows = await api('GET', '/borrows');
    showError($('borrows-error'), null);
    if (borrows.length === 0) {
      fill($('borrows'), empty('No seat is borrowed right now.'));
      return;
    }
    const headings = ['Tool', 'User', 'Borrowed', 'Lease expires', 'Overage'];
    if (isAdmin) headings.push('Action');
    const rows = borrows.map((b) => {
      const cells = [
        b.tool,
        b.user,
        fmtClock(b.borrowed_at),
        el('time', { datetime: b.lease_expires_at, title: fmtTime(b.lease_expires_at), class: 'expiry' },
          expiryText(b.lease_expires_at)),
        b.is_overage ? el('span', { class: 'badge overage' }, 'overage') : 'no',
      ];
      if (isAdmin) {
        cells.push(confirmButton('Force return', 'Confirm return', async () => {
          await api('POST', '/licenses/return', { id: b.id });
          notice(`Returned ${b.user}'s seat of ${b.tool}.`);
          await refresh();
        }, { region: $('borrows-error'), className: 'small', ariaLabel: `Force return of ${b.user}'s ${b.tool} seat` }));
      }
      return { attrs: { dataset: { borrow: b.id } }, cells };
    });
    fill($('borrows'), table('Active borrows', headings, rows));
  } catch (err) {
    showError($('borrows-error'), err);
  }
}

async function loadQueue() {
  const waiting = lastStatus.filter((s) => s.waiting > 0);
  if (waiting.length === 0) {
    fill($('queue'), empty('Nobody is waiting for a seat.'));
    return;
  }
  try {
    const listings = await Promise.all(waiting.map((s) => api('GET', `/licenses/${seg(s.tool)}/queue`)));
    const rows = listings.flatMap((l) => l.queue.map((w) => [l.tool, w.position, w.user, fmtClock(w.since)]));
    fill($('queue'), rows.length
      ? table('Wait queue', ['Tool', 'Position', 'User', 'Waiting since'], rows, { numeric: [1] })
      : empty('Nobody is waiting for a seat.'));
  } catch (err) {
    fill($('queue'), el('p', { class: 'error', role: 'alert' }, err.message));
  }
}

async function refresh() {
  await Promise.all([loadPools(), loadBorrows(), isAdmin ? loadBudget() : null]);
  await loadQueue();
}

// Events arrive in bursts (a build farm starting); refresh once per burst.
let pending = null;
function scheduleRefresh() {
  if (pending) return;
  pending = setTimeout(async () => {
    pending = null;
    await refresh();
  }, 150);
}

const KIND_TEXT = {
  borrow: 'borrowed',
  return: 'returned',
  expire: 'lease expired',
  denied: 'was refused',
  queued: 'is waiting for',
};

function logEvent(kind, data) {
  const list = $('activity');
  list.querySelector('.quiet')?.remove();
  const what = KIND_TEXT[kind] ?? kind;
  const reason = data.reason ? ` (${String(data.reason).replaceAll('_', ' ')})` : '';
  const item = el('li', { class: `ev ${kind}` },
    el('time', { datetime: data.at }, fmtClock(data.at)), ' ',
    el('strong', {}, data.user ?? 'someone'), ` ${what} `, el('span', { class: 'tool' }, data.tool ?? ''),
    data.is_overage ? el('span', { class: 'badge overage' }, 'overage') : null, reason);
  list.prepend(item);
  while (list.children.length > 50) list.lastElementChild.remove();
}

function setLive(state, text) {
  const s = $('live-state');
  s.dataset.state = state;
  s.textContent = text;
}

function connect() {
  const source = new EventSource('/events');
  let opened = false;
  source.addEventListener('open', () => {
    setLive('live', 'Live');
    // Whatever happened while (re)connecting is not in the stream: read it once.
    if (opened) scheduleRefresh();
    opened = true;
  });
  source.addEventListener('error', () => {
    setLive('reconnecting', source.readyState === EventSource.CLOSED ? 'Disconnected' : 'Reconnecting…');
    if (source.readyState === EventSource.CLOSED) {
      // A refused stream (session ended) is not retried by the browser.
      api('GET', '/api/auth/me').then(() => setTimeout(connect, 3000)).catch(() => {});
    }
  });
  // A denial may end a wait in the queue: every kind refreshes.
  for (const kind of Object.keys(KIND_TEXT)) {
    source.addEventListener(kind, (ev) => {
      let data = {};
      try { data = JSON.parse(ev.data); } catch { /* keep the kind */ }
      logEvent(kind, data);
      scheduleRefresh();
    });
  }
}

const activity = $('activity');
activity.append(el('li', { class: 'ev quiet' }, 'Waiting for activity…'));
// Back to a tab that was hidden: read once (a package provisioned meanwhile sends no event).
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') scheduleRefresh();
});

await refresh();
connect();
if (isAdmin) initAdmin();
