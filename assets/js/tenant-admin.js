// Tenant admin sections: budget and spend caps, API keys, users.
import { api, seg } from './api.js';
import {
  el, fill, table, empty, showError, notice, onSubmit, confirmButton, showSecret, fmtTime,
  fmtMoney, whole, decimal,
} from './ui.js';

const $ = (id) => document.getElementById(id);

/** A labelled number input inside a budget form. */
function numberField(id, label, name, value, { step = '1', placeholder } = {}) {
  return el('div', { class: 'field' },
    el('label', { for: id }, label),
    el('input', { id, name, type: 'number', min: '0', step, value: value ?? '', placeholder }));
}

function budgetForm(t, index) {
  const region = el('p', { class: 'error', role: 'alert', hidden: true });
  const id = (f) => `b${index}-${f}`;
  const form = el('form', { class: 'budget-row', novalidate: true, dataset: { tool: t.tool } },
    el('fieldset', {},
      el('legend', {}, t.tool),
      el('p', { class: 'hint budget-hint' }, budgetHint(t)),
      el('div', { class: 'field-row' },
        numberField(id('total'), 'Seats (total)', 'total', t.total),
        numberField(id('overage'), 'Max overage seats', 'max_overage', t.max_overage),
        el('button', { type: 'submit', name: 'action', value: 'limits' }, 'Save limits'),
        numberField(id('cap'), 'Monthly spend cap', 'max_spend', t.customer_max_spend,
          { step: '0.01', placeholder: 'no cap' }),
        el('button', { type: 'submit', name: 'action', value: 'cap' }, 'Save cap')),
      region));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const action = ev.submitter?.value ?? 'limits';
    const data = new FormData(form);
    showError(region, null);
    try {
      if (action === 'cap') {
        const raw = String(data.get('max_spend') ?? '').trim();
        const cap = raw === '' ? null : decimal(raw, 'The spend cap');
        await api('PUT', '/config/protection', { tool: t.tool, max_spend: cap });
        notice(cap === null ? `Removed the spend cap of ${t.tool}.` : `Spend cap of ${t.tool} set.`);
      } else {
        const total = String(data.get('total') ?? '').trim();
        const over = String(data.get('max_overage') ?? '').trim();
        await api('PUT', '/config/budget', {
          tool: t.tool,
          total: total === '' ? null : whole(total, 'Seats'),
          max_overage: over === '' ? null : whole(over, 'Max overage seats'),
        });
        notice(`Limits of ${t.tool} saved.`);
      }
      await loadBudget({ rebuild: true });
    } catch (err) {
      showError(region, err);
    }
  });
  return form;
}

function budgetHint(t) {
  return `Vendor limits: ${t.vendor_total} seats (commit ${t.vendor_commit_qty}, overage up to ${t.vendor_max_overage}). `
    + `Overage this month: ${fmtMoney(t.month_to_date_overage_cost)}`
    + (t.remaining_spend == null ? '.' : `, ${fmtMoney(t.remaining_spend)} left under the cap.`);
}

/**
 * Reads the budget. The forms are rebuilt only when the set of pools changes; live
 * updates otherwise refresh the figures and leave what an admin is typing alone.
 */
async function loadBudget({ rebuild = false } = {}) {
  try {
    const { tools } = await api('GET', '/config/budget');
    showError($('budget-error'), null);
    const box = $('budget');
    const forms = [...box.querySelectorAll('form.budget-row')];
    const same = forms.length === tools.length && forms.every((f, i) => f.dataset.tool === tools[i].tool);
    if (same && !rebuild) {
      tools.forEach((t, i) => { forms[i].querySelector('.budget-hint').textContent = budgetHint(t); });
      return;
    }
    fill(box, tools.length ? tools.map(budgetForm) : empty('No pools yet.'));
  } catch (err) {
    showError($('budget-error'), err);
  }
}

/** A key's name; keys moved in from the old license server say so. */
function keyName(k) {
  if (!k.imported) return k.name;
  return el('span', {}, k.name, ' ', el('span', { class: 'hint' }, 'imported — rotate to a pmx_t_ key'));
}

/** How a user's password stands, where it needs attention. */
function userName(u) {
  const hints = { not_set: 'no password — set one below', imported: 'imported password' };
  const hint = hints[u.password];
  return hint ? el('span', {}, u.username, ' ', el('span', { class: 'hint' }, hint)) : u.username;
}

async function loadKeys() {
  try {
    const reply = await api('GET', '/api/keys');
    const keys = Array.isArray(reply) ? reply : (reply.keys ?? []);
    showError($('keys-error'), null);
    const live = keys.filter((k) => !k.revoked);
    if (live.length === 0) {
      fill($('keys'), empty('No API keys.'));
      return;
    }
    fill($('keys'), table('API keys', ['Name', 'Scope', 'Created', 'Last used', 'Action'],
      live.map((k) => ({
        attrs: { dataset: { key: k.key_id } },
        cells: [keyName(k), k.scope, fmtTime(k.created_at), k.last_used_at ? fmtTime(k.last_used_at) : 'never',
          el('span', { class: 'actions' },
            // Rotating issues a pmx_t_ key with the same name and scope and revokes this one.
            confirmButton('Rotate', 'Confirm rotate', async () => {
              const rotated = await api('POST', `/api/keys/${seg(k.key_id)}/rotate`);
              showSecret($('new-key'), { name: k.name, key: rotated.api_key });
              await loadKeys();
            }, { region: $('keys-error'), className: 'small', ariaLabel: `Rotate key ${k.name}` }),
            confirmButton('Revoke', 'Confirm revoke', async () => {
              await api('DELETE', `/api/keys/${seg(k.key_id)}`);
              notice(`Key ${k.name} revoked.`);
              await loadKeys();
            }, { region: $('keys-error'), className: 'small danger', ariaLabel: `Revoke key ${k.name}` }))],
      }))));
  } catch (err) {
    showError($('keys-error'), err);
  }
}

async function loadUsers() {
  try {
    const { users } = await api('GET', '/api/users');
    showError($('users-error'), null);
    const me = $('who').textContent;
    fill($('users'), users.length === 0 ? empty('No users.') : table('Users', ['User', 'Role', 'Created', 'Action'],
      users.map((u) => [userName(u), u.role, fmtTime(u.created_at),
        u.username === me ? el('span', { class: 'hint' }, 'you')
          : confirmButton('Remove', 'Confirm remove', async () => {
            await api('DELETE', `/api/users/${seg(u.username)}`);
            notice(`User ${u.username} removed.`);
            await loadUsers();
          }, { region: $('users-error'), className: 'small danger', ariaLabel: `Remove user ${u.username}` })])));
  } catch (err) {
    showError($('users-error'), err);
  }
}

export function initAdmin() {
  onSubmit($('key-form'), async (v, form) => {
    if (!v.name) throw new Error('Give the key a name, e.g. the build farm that will use it.');
    const created = await api('POST', '/api/keys', { name: v.name, scope: v.scope });
    form.reset();
    showSecret($('new-key'), { name: v.name, key: created.api_key });
    await loadKeys();
  });
  onSubmit($('user-form'), async (v, form) => {
    if (!v.username || !v.password) throw new Error('Enter a user name and a password.');
    await api('POST', '/api/users', { username: v.username, password: v.password, role: v.role });
    form.reset();
    notice(`User ${v.username} added.`);
    await loadUsers();
  });
  onSubmit($('password-form'), async (v, form) => {
    if (!v.username || !v.password) throw new Error('Enter the user name and the new password.');
    await api('PUT', `/api/users/${seg(v.username)}/password`, { password: v.password });
    form.reset();
    notice(`Password of ${v.username} set; their sessions have ended.`);
    await loadUsers();
  });
  // The budget is read by the dashboard's refresh, with the pools.
  loadKeys();
  loadUsers();
}

/** Pools changed (provisioned, limits moved): the budget follows. */
export { loadBudget };
