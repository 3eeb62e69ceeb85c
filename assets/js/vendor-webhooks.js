// The vendor portal's webhooks: endpoints with their status (a disabled one says why
// and can be enabled again), adding one (its secret is shown once), deleting one, and
// each endpoint's recent deliveries with a resend button.
import { api, seg } from './api.js';
import {
  el, fill, table, empty, showError, notice, onSubmit, actionButton, confirmButton,
  showSecret, fmtTime,
} from './ui.js';

const $ = (id) => document.getElementById(id);
const EVENTS = ['overage.charged', 'borrow.denied', 'pool.exhausted', 'spend_cap.reached',
  'request.created', 'tenant.quarantined'];

function statusBadge(w) {
  return el('span', { class: `badge ${w.status === 'active' ? 'active' : 'suspended'}` }, w.status);
}

async function showDeliveries(w) {
  const box = $('webhook-deliveries');
  const region = $('webhooks-error');
  const { deliveries } = await api('GET', `/api/vendor/webhooks/${seg(w.id)}/deliveries`);
  const resend = (d) => actionButton('Resend', async () => {
    await api('POST', `/api/vendor/webhooks/${seg(w.id)}/deliveries/${seg(d.id)}/resend`);
    notice(`Delivery ${d.id} queued to be sent again.`);
  }, { region, className: 'small', ariaLabel: `Resend delivery ${d.id}` });
  fill(box,
    el('h3', {}, 'Recent deliveries to ', el('code', {}, w.url)),
    deliveries.length
      ? table(`Recent deliveries to ${w.url}`,
        ['Customer', 'Event', 'Status', 'Attempts', 'Last attempt', 'Answer', 'Next retry', ''],
        deliveries.map((d) => [
          d.tenant_id,
          el('span', {}, d.type, el('br'), el('small', { class: 'hint' }, d.event_id)),
          el('span', { class: `badge ${d.status === 'delivered' ? 'active' : d.status === 'failed' ? 'revoked' : 'suspended'}` }, d.status),
          String(d.attempts),
          fmtTime(d.last_attempt_at),
          d.response_status ? String(d.response_status) : (d.error ?? '—'),
          d.next_attempt_at ? fmtTime(d.next_attempt_at) : '—',
          resend(d),
        ]), { numeric: [3] })
      : empty('Nothing delivered to this endpoint yet.'));
  box.hidden = false;
}

function row(w) {
  const region = $('webhooks-error');
  const actions = el('span', { class: 'buttons' },
    actionButton('Deliveries', () => showDeliveries(w),
      { region, className: 'small', ariaLabel: `Recent deliveries to ${w.url}` }),
    w.status === 'disabled'
      ? actionButton('Enable', async () => {
        await api('POST', `/api/vendor/webhooks/${seg(w.id)}/enable`);
        notice(`Deliveries to ${w.url} resumed.`);
        await loadWebhooks();
      }, { region, className: 'small', ariaLabel: `Enable ${w.url}` })
      : null,
    confirmButton('Delete', 'Really delete', async () => {
      await api('DELETE', `/api/vendor/webhooks/${seg(w.id)}`);
      notice(`Endpoint ${w.url} deleted.`);
      $('webhook-deliveries').hidden = true;
      await loadWebhooks();
    }, { region, className: 'small danger', ariaLabel: `Delete ${w.url}` }));
  return [
    el('span', {}, el('code', {}, w.url), el('br'), el('small', { class: 'hint' }, w.id)),
    w.events.join(', '),
    el('span', {}, statusBadge(w), w.disabled_reason
      ? el('small', { class: 'hint' }, ` since ${fmtTime(w.disabled_at)}: ${w.disabled_reason}`) : null),
    actions,
  ];
}

export async function loadWebhooks() {
  try {
    const { webhooks } = await api('GET', '/api/vendor/webhooks');
    showError($('webhooks-error'), null);
    const disabled = webhooks.filter((w) => w.status === 'disabled');
    const warning = $('webhooks-disabled');
    warning.hidden = disabled.length === 0;
    warning.textContent = disabled.length === 0 ? ''
      : `${disabled.length === 1 ? 'A webhook endpoint was' : `${disabled.length} webhook endpoints were`} `
        + 'disabled after failing for 24 hours: fix the receiver, then enable it below.';
    fill($('webhooks'), webhooks.length
      ? table('Webhook endpoints', ['URL', 'Events', 'Status', 'Actions'], webhooks.map(row))
      : empty('No webhook endpoints yet.'));
  } catch (err) {
    showError($('webhooks-error'), err);
  }
}

fill($('wh-events'), EVENTS.map((e) => el('label', { class: 'check' },
  el('input', { type: 'checkbox', name: 'events', value: e, checked: e === 'overage.charged' }), ` ${e}`)));

onSubmit($('add-webhook'), async (v, form) => {
  const events = [...form.querySelectorAll('input[name="events"]:checked')].map((i) => i.value);
  if (!v.url) throw new Error('Enter the URL events are sent to.');
  if (events.length === 0) throw new Error('Choose at least one event type.');
  const created = await api('POST', '/api/vendor/webhooks', { url: v.url, events });
  form.reset();
  showSecret($('new-webhook-secret'), { url: created.url, secret: created.secret });
  await loadWebhooks();
});
