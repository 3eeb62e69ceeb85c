// The vendor portal: customers with live usage and their custom hosts, add a customer,
// provision a package, suspend/resume packages, pending requests for more seats, the
// usage report, webhooks, API clients.
import { api, logout, seg } from './api.js';
import {
  el, fill, table, empty, showError, notice, onSubmit, actionButton, showSecret, fmtClock,
  fmtMoney, whole, decimal,
} from './ui.js';
import { initUsage } from './usage-chart.js';
import { loadWebhooks } from './vendor-webhooks.js';
import { loadClients } from './vendor-oauth.js';

const $ = (id) => document.getElementById(id);
document.getElementById('logout').addEventListener('click', logout);

function miniBar(p) {
  const total = p.total || 0;
  const pct = (n) => `${total > 0 ? Math.min(100, (100 * n) / total) : 0}%`;
  const commit = el('div', { class: 'zone commit' });
  const over = el('div', { class: 'zone overage' });
  const inCommit = el('div', { class: 'fill in-commit' });
  const beyond = el('div', { class: 'fill beyond' });
  const used = Math.min(p.borrowed, p.commit_qty);
  commit.style.width = pct(p.commit_qty);
  over.style.left = pct(p.commit_qty);
  over.style.width = pct(total - p.commit_qty);
  inCommit.style.width = pct(used);
  beyond.style.left = pct(p.commit_qty);
  beyond.style.width = pct(p.borrowed - used);
  return el('div', {
    class: 'bar mini', role: 'meter', 'aria-valuemin': '0', 'aria-valuemax': String(total),
    'aria-valuenow': String(p.borrowed), 'aria-label': `${p.product_name} seats in use`,
    'aria-valuetext': `${p.borrowed} of ${total} in use; commit ${p.commit_qty}`,
  }, commit, over, inCommit, beyond);
}

function statusBadge(status) {
  return el('span', { class: `badge ${status}` }, status);
}

function packageRow(c, p) {
  const region = $('customers-error');
  const live = c.live !== false;
  const action = p.status === 'revoked' ? '—'
    : actionButton(p.status === 'active' ? 'Suspend' : 'Resume', async () => {
      const status = p.status === 'active' ? 'suspended' : 'active';
      await api('PATCH', `/api/vendor/packages/${seg(p.package_id)}`, { status });
      notice(`${p.product_name} for ${c.company_name} is now ${status}.`);
      await loadCustomers();
    }, {
      region, className: 'small',
      ariaLabel: `${p.status === 'active' ? 'Suspend' : 'Resume'} ${p.product_name} for ${c.company_name}`,
    });
  return {
    attrs: { dataset: { package: p.package_id, product: p.product_name } },
    cells: [
      el('span', {}, p.product_name, el('br'), el('small', { class: 'hint' }, p.product_id)),
      statusBadge(p.status),
      live ? el('div', { class: 'usage-cell' }, miniBar(p),
        el('span', { class: 'counts' }, `${p.borrowed} in use · ${p.commit_qty} commit · ${p.total} total`))
        : el('span', { class: 'hint' }, 'no answer'),
      live ? String(p.overage) : '—',
      live ? String(p.waiting) : '—',
      fmtMoney(p.month_to_date_overage_cost),
      action,
    ],
  };
}

/** Host names typed as a list: separated by commas, spaces or line breaks. */
const hostList = (text) => (text ?? '').split(/[\s,]+/).filter(Boolean);

/** The customer's own host names, shown in a form that replaces them. */
function hostsForm(c) {
  const hosts = c.custom_hosts ?? [];
  const id = `hosts-${c.tenant_id}`;
  const form = el('form', { class: 'inline-form hosts', novalidate: true },
    el('div', { class: 'field' },
      el('label', { for: id }, 'Custom hosts'),
      el('input', {
        id, name: 'custom_hosts', value: hosts.join(', '), autocomplete: 'off', size: 40,
        'aria-label': `Custom hosts of ${c.company_name}`, 'aria-describedby': `${id}-hint`,
      })),
    el('button', { type: 'submit', class: 'small' }, 'Save hosts'),
    el('p', { class: 'hint', id: `${id}-hint` },
      'The customer\'s own host names, besides its subdomain; separate them with commas. ',
      'Each needs a DNS record pointing at this service and a certificate.'),
    el('p', { class: 'error', role: 'alert', hidden: true }));
  onSubmit(form, async (v) => {
    const saved = await api('PUT', `/api/vendor/customers/${seg(c.tenant_id)}/hosts`,
      { custom_hosts: hostList(v.custom_hosts) });
    notice(saved.custom_hosts.length
      ? `${c.company_name} is reached at ${saved.custom_hosts.join(', ')} too.`
      : `${c.company_name} has no custom hosts now.`);
    await loadCustomers();
  });
  return form;
}

function customerCard(c) {
  const products = c.packages ?? [];
  return el('article', { class: 'customer', dataset: { tenant: c.tenant_id } },
    el('header', {},
      el('h3', {}, c.company_name, ' ', el('small', { class: 'hint' }, c.tenant_id)),
      statusBadge(c.status),
      c.usage ? el('span', { class: 'counts' },
        `${c.usage.borrowed} of ${c.usage.total} seats in use · overage ${c.usage.overage}`) : null),
    hostsForm(c),
    products.length
      ? table(`Packages of ${c.company_name}`,
        ['Product', 'Status', 'Seats in use / commit / total', 'Overage now', 'Waiting', 'Overage this month', 'Action'],
        products.map((p) => packageRow(c, p)), { numeric: [3, 4, 5] })
      : empty('No package provisioned yet.'));
}

let customers = [];

async function loadCustomers() {
  try {
    const reply = await api('GET', '/api/vendor/customers');
    customers = reply.customers ?? [];
    showError($('customers-error'), null);
    $('customers-partial').hidden = !reply.partial;
    fill($('customers'), customers.length
      ? customers.map(customerCard)
      : empty('No customers yet: add one below.'));
    $('customers-updated').textContent = `Updated ${fmtClock()}`;
    const select = $('p-tenant');
    const chosen = select.value;
    fill(select, customers.map((c) => el('option', { value: c.tenant_id }, `${c.company_name} (${c.tenant_id})`)));
    if (chosen && customers.some((c) => c.tenant_id === chosen)) select.value = chosen;
  } catch (err) {
    showError($('customers-error'), err);
  }
}

async function loadRequests() {
  try {
    const { requests } = await api('GET', '/api/vendor/requests?status=pending');
    showError($('requests-error'), null);
    if (requests.length === 0) {
      fill($('requests'), empty('No pending requests.'));
      return;
    }
    const region = $('requests-error');
    const decide = (r, verb) => actionButton(verb === 'approve' ? 'Approve' : 'Reject', async () => {
      await api('POST', `/api/vendor/requests/${seg(r.id)}/${verb}`);
      notice(`Request of ${r.tenant_id} for ${r.tool} ${verb === 'approve' ? 'approved' : 'rejected'}.`);
      await Promise.all([loadRequests(), loadCustomers()]);
    }, { region, className: `small${verb === 'reject' ? ' danger' : ''}`, ariaLabel: `${verb} the request of ${r.tenant_id} for ${r.tool}` });
    fill($('requests'), table('Pending requests',
      ['Customer', 'Tool', 'Asks for', 'Now', 'Message', 'Asked at', 'Decision'],
      requests.map((r) => [
        r.tenant_id,
        r.tool,
        [r.requested_total != null ? `total ${r.requested_total}` : null,
          r.requested_overage != null ? `overage ${r.requested_overage}` : null].filter(Boolean).join(', ') || '—',
        `total ${r.limits_before.total}, commit ${r.limits_before.commit_qty}, overage ${r.limits_before.max_overage}`,
        r.message ?? '',
        fmtClock(r.created_at),
        el('span', { class: 'buttons' }, decide(r, 'approve'), decide(r, 'reject')),
      ])));
  } catch (err) {
    showError($('requests-error'), err);
  }
}

onSubmit($('add-customer'), async (v, form) => {
  if (!v.tenant_id || !v.company_name) throw new Error('Enter a tenant id and the company name.');
  const body = { tenant_id: v.tenant_id, company_name: v.company_name };
  if (v.domain) body.domain = v.domain;
  if (v.crm_id) body.crm_id = v.crm_id;
  const hosts = hostList(v.custom_hosts);
  if (hosts.length) body.custom_hosts = hosts;
  const created = await api('POST', '/api/vendor/customers', body);
  form.reset();
  showSecret($('new-customer-secret'), { tenant: created.tenant_id, key: created.admin_api_key });
  await loadCustomers();
  $('p-tenant').value = created.tenant_id;
});

const commitInput = $('p-commit');
const overageInput = $('p-overage');
function showTotal() {
  const t = (Number(commitInput.value) || 0) + (Number(overageInput.value) || 0);
  $('p-total').value = String(t);
}
commitInput.addEventListener('input', showTotal);
overageInput.addEventListener('input', showTotal);

onSubmit($('provision'), async (v, form) => {
  if (!v.tenant_id) throw new Error('Add a customer first, then choose it.');
  if (!v.product_id || !v.product_name) throw new Error('Enter the product id and name.');
  const commit = whole(v.commit_qty, 'Commit seats') ?? 0;
  const over = whole(v.max_overage, 'Max overage seats') ?? 0;
  const body = {
    tenant_id: v.tenant_id,
    product_id: v.product_id,
    product_name: v.product_name,
    commit_qty: commit,
    max_overage: over,
    total: commit + over,
  };
  const cp = decimal(v.commit_price, 'Commit price');
  const op = decimal(v.overage_price_per_license, 'Overage price');
  if (cp !== undefined) body.commit_price = cp;
  if (op !== undefined) body.overage_price_per_license = op;
  await api('POST', '/api/vendor/provision', body);
  const tenant = v.tenant_id;
  form.reset();
  showTotal();
  notice(`${v.product_name} provisioned for ${tenant}: ${commit} commit + ${over} overage seats.`);
  await loadCustomers();
  $('p-tenant').value = tenant;
});

const loadAll = () => Promise.all([loadCustomers(), loadRequests(), loadWebhooks(), loadClients()]);
$('refresh').addEventListener('click', loadAll);
// Back to a tab that was hidden: the counts are read again once.
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible') loadAll();
});

await loadAll();
initUsage();
