// The shell: login gate, role-aware navigation, hash routes (#/overview, #/calls/CA...).

import * as api from './api.js';
import { h } from './ui.js';
import { loginPage } from './pages/login.js';
import { overviewPage } from './pages/overview.js';
import { buyersPage } from './pages/buyers.js';
import { campaignsPage } from './pages/campaigns.js';
import { numbersPage } from './pages/numbers.js';
import { callsPage, callPage } from './pages/calls.js';
import { publishersPage } from './pages/publishers.js';
import { reportsPage } from './pages/reports.js';
import { usersPage } from './pages/users.js';
import { poolsPage } from './pages/pools.js';
import { bidsPage } from './pages/bids.js';
import { phonesPage } from './pages/phones.js';

const RANK = { agent: 1, admin: 2, super_admin: 3 };

// Pages in navigation order; `role` is the least role that sees the page.
const PAGES = [
  { path: 'overview', title: 'Overview', role: 'agent', render: overviewPage },
  { path: 'calls', title: 'Call log', role: 'agent', render: (view, params) => (params[0] ? callPage(view, params) : callsPage(view)) },
  { path: 'reports', title: 'Reports', role: 'agent', render: reportsPage },
  { path: 'phones', title: 'SIP phones', role: 'agent', render: phonesPage },
  { path: 'campaigns', title: 'Campaigns', role: 'admin', render: campaignsPage },
  { path: 'buyers', title: 'Buyers & targets', role: 'admin', render: buyersPage },
  { path: 'numbers', title: 'Numbers', role: 'admin', render: numbersPage },
  { path: 'pools', title: 'Pools (DNI)', role: 'admin', render: poolsPage },
  { path: 'publishers', title: 'Publishers', role: 'admin', render: publishersPage },
  { path: 'bids', title: 'Bids', role: 'admin', render: bidsPage },
  { path: 'users', title: 'Users', role: 'admin', render: usersPage },
];

const state = { me: null, cleanup: null };
const main = document.getElementById('main');
const nav = document.getElementById('nav');
const topbar = document.querySelector('.topbar');

const allowed = (page) => state.me && RANK[state.me.role] >= RANK[page.role];

function showShell(visible) {
  topbar.hidden = !visible;
  nav.hidden = !visible;
}

function renderNav(current) {
  nav.replaceChildren(
    ...PAGES.filter(allowed).map((page) =>
      h('a', {
        href: `#/${page.path}`,
        'aria-current': page.path === current ? 'page' : null,
        text: page.title,
      })));
}

let routing = 0;

function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash; // hashchange routes
}

async function route() {
  const mine = ++routing;
  if (state.cleanup) state.cleanup();
  state.cleanup = null;
  if (!api.isLoggedIn()) {
    state.me = null;
    showShell(false);
    document.title = 'Log in · Pay-per-call';
    const view = h('div');
    main.replaceChildren(view);
    loginPage(view, () => go(/^#\/(login)?$|^$/.test(location.hash) ? '#/overview' : location.hash));
    return;
  }
  if (!state.me) {
    await loadMe();
    if (mine !== routing || !state.me) return;
  }
  const [route_, search = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const [path, ...rest] = route_.split('/');
  const page = PAGES.find((p) => p.path === (path || 'overview'));
  showShell(true);
  renderNav(page && page.path);
  const view = h('div');
  main.replaceChildren(view);
  if (!page) {
    document.title = 'Not found · Pay-per-call';
    view.append(h('h1', { text: 'Not found' }), h('p', {}, 'No such page. ', h('a', { href: '#/overview', text: 'Back to the overview' })));
  } else if (!allowed(page)) {
    document.title = 'Not allowed · Pay-per-call';
    view.append(h('h1', { text: 'Not allowed' }), h('p', { text: `${page.title} needs the ${page.role} role.` }));
  } else {
    document.title = `${page.title} · Pay-per-call`;
    try {
      const cleanup = (await page.render(view, rest.map(decodeURIComponent), state.me, new URLSearchParams(search))) || null;
      if (mine !== routing) {
        if (cleanup) cleanup();
        return;
      }
      state.cleanup = cleanup;
    } catch (err) {
      if (err instanceof api.ApiError && err.status === 401) return;
      view.append(h('p', { class: 'form-error', role: 'alert', text: `Could not load this page: ${err.message}` }));
    }
  }
  main.focus({ preventScroll: true });
}

async function loadMe() {
  try {
    state.me = await api.get('/me');
    document.getElementById('who').textContent = `${state.me.email} · ${state.me.role.replace('_', ' ')}`;
  } catch (err) {
    state.me = null;
    if (!(err instanceof api.ApiError && err.status === 401)) {
      // 401 already ended the session (onExpired routes to the login page).
      api.logout();
      route();
    }
  }
}

api.onExpired(() => {
  state.me = null;
  route();
});

document.getElementById('logout').addEventListener('click', () => {
  api.logout();
  state.me = null;
  go('#/login');
});

const toggle = document.querySelector('.menu-toggle');
toggle.addEventListener('click', () => {
  const open = toggle.getAttribute('aria-expanded') !== 'true';
  toggle.setAttribute('aria-expanded', String(open));
  nav.classList.toggle('collapsed', !open);
});
if (window.matchMedia('(max-width: 900px)').matches) nav.classList.add('collapsed');
nav.addEventListener('click', (event) => {
  if (event.target.closest('a') && window.matchMedia('(max-width: 900px)').matches) {
    nav.classList.add('collapsed');
    toggle.setAttribute('aria-expanded', 'false');
  }
});

window.addEventListener('hashchange', route);
route();
