// The management API on the same origin, with the logged-in user's ID token.
// Tokens live in sessionStorage (one tab, gone with the tab); the ID token is refreshed a
// minute before it expires, and a 401 ends the session (the shell shows the login page).

const STORE = 'ppc.session';
const BASE = '/api/v1';
const EARLY_MS = 60_000;

let session = readSession();
let timer = null;
let refreshing = null;
const expiredListeners = new Set();

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = (body && body.error) || 'http_error';
    this.fields = (body && body.fields) || {};
  }
}

function readSession() {
  try {
    const raw = sessionStorage.getItem(STORE);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

function keep(tokens) {
  session = {
    idToken: tokens.id_token,
    refreshToken: tokens.refresh_token || (session && session.refreshToken),
    expiresAt: Date.now() + (Number(tokens.expires_in) || 3600) * 1000,
  };
  sessionStorage.setItem(STORE, JSON.stringify(session));
  schedule();
}

function schedule() {
  clearTimeout(timer);
  if (!session) return;
  const wait = Math.max(1_000, session.expiresAt - Date.now() - EARLY_MS);
  timer = setTimeout(() => refresh().catch(() => expire()), wait);
}

export function isLoggedIn() {
  return session !== null;
}

export function onExpired(listener) {
  expiredListeners.add(listener);
}

export async function login(email, password) {
  keep(await call('POST', '/auth/login', { email, password }, { auth: false }));
}

/** A new ID token from the refresh token; one request at a time. */
export function refresh() {
  if (!session || !session.refreshToken) return Promise.reject(new ApiError(401, null));
  refreshing ??= call('POST', '/auth/refresh', { refresh_token: session.refreshToken }, { auth: false })
    .then(keep)
    .finally(() => { refreshing = null; });
  return refreshing;
}

export function logout() {
  clearTimeout(timer);
  session = null;
  sessionStorage.removeItem(STORE);
}

function expire() {
  logout();
  for (const listener of expiredListeners) listener();
}

async function call(method, path, body, { auth = true, raw = false } = {}) {
  const headers = { Accept: raw ? '*/*' : 'application/json' };
  if (auth) {
    if (!session) throw new ApiError(401, { message: 'not logged in' });
    if (session.expiresAt - Date.now() < 10_000) await refresh().catch(() => expire());
    if (!session) throw new ApiError(401, { message: 'session expired' });
    headers.Authorization = `Bearer ${session.idToken}`;
  }
  if (body !== undefined && body !== null) headers['Content-Type'] = 'application/json';
  const reply = await fetch(BASE + path, {
    method,
    headers,
    body: body === undefined || body === null ? undefined : JSON.stringify(body),
    cache: 'no-store',
  });
  if (reply.status === 401 && auth) {
    expire();
    throw new ApiError(401, { message: 'your session has ended; log in again' });
  }
  if (raw && reply.ok) return reply;
  const text = await reply.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { message: text };
  }
  if (!reply.ok) throw new ApiError(reply.status, data);
  return data;
}

export const get = (path) => call('GET', path);
export const post = (path, body) => call('POST', path, body ?? {});
export const put = (path, body) => call('PUT', path, body ?? {});
export const del = (path) => call('DELETE', path);

/** `?a=1&b=2` from an object, leaving out empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/** Fetch with the token and hand the body to the browser as a file download. */
export async function download(path, filename) {
  const reply = await call('GET', path, null, { raw: true });
  const blob = await reply.blob();
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

schedule();
