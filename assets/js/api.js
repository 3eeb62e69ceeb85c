// The JSON API, called with the session cookie (sent by the browser: same host) and,
// on anything that changes state, the CSRF token that the page shell carries.

const csrfToken = document.querySelector('meta[name="csrf-token"]')?.content ?? '';

/** An answer of the API that is not a success, with its readable `detail`. */
export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail);
    this.status = status;
    this.code = code;
  }
}

function describe(status, body) {
  if (body && typeof body.detail === 'string' && body.detail) {
    // The API's details are sentences without the capital: show them as sentences.
    const d = body.detail.charAt(0).toUpperCase() + body.detail.slice(1);
    return new ApiError(status, body.error ?? 'error', /[.!?]$/.test(d) ? d : `${d}.`);
  }
  if (status === 0) {
    return new ApiError(0, 'network', 'The server could not be reached. Check the connection and try again.');
  }
  return new ApiError(status, 'http_' + status, `The server answered ${status} without an explanation.`);
}

/**
 * Calls the API: resolves to the parsed JSON (or null), rejects with an ApiError.
 * A 401 means the session ended (logged out elsewhere, expired): back to the login page.
 */
export async function api(method, path, body, { redirectOn401 = true } = {}) {
  const headers = { Accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrfToken;
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw describe(0, null);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (res.ok) return data;
  if (res.status === 401 && redirectOn401 && data?.error !== 'invalid_credentials') {
    window.location.assign('/login');
  }
  throw describe(res.status, data);
}

/** Ends the session and goes to the login page. */
export async function logout() {
  try {
    await api('POST', '/api/auth/logout', undefined, { redirectOn401: false });
  } finally {
    window.location.assign('/login');
  }
}

/** Encodes one path segment (tool names may contain spaces or slashes). */
export const seg = (s) => encodeURIComponent(s);
