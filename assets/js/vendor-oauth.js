// The vendor portal's API clients (OAuth 2.0 client credentials): the clients with their
// scope, creating one (its secret is shown once), revoking one (its tokens stop at once).
import { api, seg } from './api.js';
import {
  el, fill, table, empty, showError, notice, onSubmit, confirmButton, showSecret, fmtTime,
} from './ui.js';

const $ = (id) => document.getElementById(id);
const SCOPES = ['customers:read', 'customers:write', 'provision', 'usage:read'];

function row(c) {
  const status = c.revoked
    ? el('span', {}, el('span', { class: 'badge revoked' }, 'revoked'),
      el('small', { class: 'hint' }, ` ${fmtTime(c.revoked_at)}`))
    : el('span', { class: 'badge active' }, 'active');
  const revoke = c.revoked ? null : confirmButton('Revoke', 'Really revoke', async () => {
    await api('DELETE', `/api/vendor/oauth-clients/${seg(c.client_id)}`);
    notice(`Client ${c.name} revoked: its tokens no longer work.`);
    await loadClients();
  }, { region: $('clients-error'), className: 'small danger', ariaLabel: `Revoke ${c.name}` });
  return [
    el('span', {}, c.name, el('br'), el('small', { class: 'hint' }, el('code', {}, c.client_id))),
    c.scope,
    fmtTime(c.created_at),
    status,
    revoke ?? '',
  ];
}

export async function loadClients() {
  try {
    const { clients } = await api('GET', '/api/vendor/oauth-clients');
    showError($('clients-error'), null);
    fill($('clients'), clients.length
      ? table('API clients', ['Name', 'Scope', 'Created', 'Status', 'Actions'], clients.map(row))
      : empty('No API clients yet.'));
  } catch (err) {
    showError($('clients-error'), err);
  }
}

fill($('client-scopes'), SCOPES.map((s) => el('label', { class: 'check' },
  el('input', { type: 'checkbox', name: 'scopes', value: s, checked: true }), ` ${s}`)));

onSubmit($('add-client'), async (v, form) => {
  const scopes = [...form.querySelectorAll('input[name="scopes"]:checked')].map((i) => i.value);
  if (!v.name) throw new Error('Enter a name for the client (the system that will use it).');
  if (scopes.length === 0) throw new Error('Choose at least one scope.');
  const created = await api('POST', '/api/vendor/oauth-clients', { name: v.name, scope: scopes.join(' ') });
  form.reset();
  showSecret($('new-client-secret'), {
    name: created.name, client_id: created.client_id, secret: created.client_secret,
  });
  await loadClients();
});
