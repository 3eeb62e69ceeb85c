// Small DOM helpers: elements are built with textContent (never innerHTML), so text
// from the API can never become markup.

/** Creates an element: el('td', {class: 'n'}, 'text', childNode, ...). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (v === true) node.setAttribute(k, '');
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** Replaces the children of `parent` in one step (no flash of empty content). */
export function fill(parent, ...children) {
  parent.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined));
  parent.removeAttribute('aria-busy');
}

/** A table with a header row; `rows` are arrays of cells (nodes or text). */
export function table(caption, headings, rows, { numeric = [] } = {}) {
  return el('table', {},
    caption ? el('caption', { class: 'visually-hidden' }, caption) : null,
    el('thead', {}, el('tr', {}, headings.map((h, i) =>
      el('th', { scope: 'col', class: numeric.includes(i) ? 'n' : null }, h)))),
    el('tbody', {}, rows.map((r) => el('tr', r.attrs ?? {}, (r.cells ?? r).map((c, i) =>
      el('td', { class: numeric.includes(i) ? 'n' : null }, c))))));
}

export function empty(text) {
  return el('p', { class: 'empty' }, text);
}

/** Shows (or with null hides) an error message in an alert region. */
export function showError(region, err) {
  if (!region) return;
  if (!err) {
    region.hidden = true;
    region.textContent = '';
    return;
  }
  region.textContent = err.message || String(err);
  region.hidden = false;
}

let noticeTimer;
/** A short confirmation in the page's status region. */
export function notice(text) {
  const n = document.getElementById('notice');
  if (!n) return;
  n.textContent = text;
  n.classList.add('visible');
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => n.classList.remove('visible'), 4000);
}

/** The form's fields as an object of trimmed strings. */
export function formValues(form) {
  const out = {};
  for (const [k, v] of new FormData(form).entries()) out[k] = typeof v === 'string' ? v.trim() : v;
  return out;
}

/**
 * Wires a form: on submit the handler runs with the values; while it runs the submit
 * button is disabled; an error lands in the form's own alert region.
 */
export function onSubmit(form, handler) {
  const region = form.querySelector('[role="alert"]');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const button = form.querySelector('button[type="submit"]');
    showError(region, null);
    if (button) button.disabled = true;
    try {
      await handler(formValues(form), form);
    } catch (err) {
      showError(region, err);
    } finally {
      if (button) button.disabled = false;
    }
  });
}

/** A button that runs an action, showing errors in `region`. */
export function actionButton(label, action, { region, className, ariaLabel } = {}) {
  const b = el('button', { type: 'button', class: className, 'aria-label': ariaLabel });
  b.textContent = label;
  b.addEventListener('click', async () => {
    b.disabled = true;
    showError(region, null);
    try {
      await action(b);
    } catch (err) {
      showError(region, err);
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

/**
 * A destructive button: the first click asks to confirm (the label changes), the
 * second within five seconds acts. Keyboard and screen readers get the same steps.
 */
export function confirmButton(label, confirmLabel, action, opts = {}) {
  let armed = false;
  let timer;
  const disarm = (btn) => {
    armed = false;
    btn.textContent = label;
    btn.classList.remove('armed');
    if (opts.ariaLabel) btn.setAttribute('aria-label', opts.ariaLabel);
  };
  const b = actionButton(label, async (btn) => {
    if (!armed) {
      armed = true;
      btn.textContent = confirmLabel;
      btn.classList.add('armed');
      if (opts.ariaLabel) btn.setAttribute('aria-label', `${confirmLabel} (${opts.ariaLabel})`);
      timer = setTimeout(() => disarm(btn), 5000);
      return;
    }
    clearTimeout(timer);
    disarm(btn);
    await action(btn);
  }, opts);
  return b;
}

/** Shows a one-time secret box and moves focus to it. */
export function showSecret(box, fields) {
  for (const [k, v] of Object.entries(fields)) {
    const f = box.querySelector(`[data-field="${k}"]`);
    if (f) f.textContent = v;
  }
  box.hidden = false;
  box.focus();
  const dismiss = box.querySelector('[data-action="dismiss"]');
  dismiss.onclick = () => {
    for (const f of box.querySelectorAll('[data-field]')) f.textContent = '';
    box.hidden = true;
  };
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });

export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : dateTime.format(d);
}

export function fmtClock(iso) {
  const d = iso ? new Date(iso) : new Date();
  return Number.isNaN(d.getTime()) ? String(iso) : timeOnly.format(d);
}

/** "in 12 min", "in 40 s", "expired". */
export function fmtRemaining(iso, now = Date.now()) {
  const ms = new Date(iso).getTime() - now;
  if (!Number.isFinite(ms)) return '';
  if (ms <= 0) return 'expired';
  const s = Math.round(ms / 1000);
  if (s < 90) return `in ${s} s`;
  const m = Math.round(s / 60);
  if (m < 90) return `in ${m} min`;
  return `in ${Math.round(m / 60)} h`;
}

const money = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
export function fmtMoney(n) {
  return typeof n === 'number' ? money.format(n) : '—';
}

/** A number input's value: a whole number, or undefined when blank. */
export function whole(value, field) {
  if (value === '' || value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${field} must be a whole number of 0 or more.`);
  return n;
}

/** A price input's value: a number, or undefined when blank. */
export function decimal(value, field) {
  if (value === '' || value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${field} must be a number of 0 or more.`);
  return n;
}
