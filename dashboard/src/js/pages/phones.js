// SIP phones: the account's SIP edges (name, domain, phones online, last sync) and, per edge,
// its operators' phones like a PBX's device list (extension, label, operator, online/offline,
// user agent, source address, last seen, SIP address); refreshed every few seconds.
// Admins add edges (the edge secret is shown once), add phones (username, password, realm and
// SIP server shown once), set a new password (shown once) and revoke phones; agents read.

import * as api from '../api.js';
import { badge, field, h, nextId, onSubmit, table, toast, value, when } from '../ui.js';

const DEFAULT_REFRESH_SECONDS = 10;
const EXTENSION_PATTERN = '[A-Za-z0-9_.\\-]{1,32}';
const RANK = { agent: 1, admin: 2, super_admin: 3 };

function refreshSeconds() {
  // Tests shorten the interval through sessionStorage (as on the overview); people get the default.
  const asked = Number(sessionStorage.getItem('ppc.refreshSeconds'));
  return asked > 0 ? asked : DEFAULT_REFRESH_SECONDS;
}

const path = (...parts) => parts.map((part) => `/${encodeURIComponent(part)}`).join('');

function detail(rows) {
  return h('dl', { class: 'detail' }, rows.map(([term, text, attrs = {}]) => [
    h('dt', { text: term }),
    h('dd', attrs, text),
  ]));
}

export async function phonesPage(view, _params, me) {
  const admin = RANK[me.role] >= RANK.admin;
  // Only admins may list users (for the operator picker and names); agents see their own.
  const users = admin ? (await api.get('/users')).users : [];
  const operator = (userId) => {
    if (!userId) return '';
    if (userId === me.user_id) return `${me.email} (you)`;
    const found = users.find((u) => u.id === userId);
    return found ? found.email : userId;
  };

  const status = h('p', { class: 'hint', 'aria-live': 'polite' });
  const refreshButton = h('button', { type: 'button', text: 'Refresh now' });
  // What is shown only once (an edge secret, a phone's password) goes into its edge's section.
  const once = h('div'); // for an edge whose section is not there (yet)
  const edgesBox = h('div');
  const sectionsBox = h('div');
  const sections = new Map(); // edge id → {el, title, summary, devices, shown}
  let latest = 0;

  function showOnce(edgeId, panel) {
    once.replaceChildren();
    for (const entry of sections.values()) entry.once.replaceChildren();
    (sections.get(edgeId)?.once || once).replaceChildren(panel);
    panel.focus();
  }

  function onceClose() {
    return h('button', { type: 'button', text: 'I have copied it', onclick: (event) => {
      const section = event.target.closest('section.edge');
      event.target.closest('.once').remove();
      (section || refreshButton).focus();
    } });
  }

  function secretPanel(edge) {
    const titleId = nextId('edge-secret');
    return h('section', { class: 'panel once', 'aria-labelledby': titleId, tabindex: '-1' },
      h('h3', { id: titleId, text: `Edge secret of ${edge.name}` }),
      h('p', { role: 'alert', text: 'Copy this secret now: it is shown only once.' }),
      h('p', { class: 'secret', 'data-testid': 'edge-secret', text: edge.secret }),
      h('p', { class: 'hint' },
        'Put it into the edge\'s ', h('code', { text: 'EDGE_SHARED_SECRET' }),
        ` setting, with SIP_DOMAIN=${edge.domain}. A new secret replaces this one.`),
      onceClose());
  }

  function passwordPanel(edge, device, rotated) {
    const titleId = nextId('phone-password');
    return h('section', { class: 'panel once', 'aria-labelledby': titleId, tabindex: '-1' },
      h('h3', { id: titleId, text: `Phone ${device.extension} on ${edge.name}${rotated ? ': new password' : ''}` }),
      h('p', { role: 'alert', text: 'Type these into the phone now: the password is shown only once.' }),
      detail([
        ['SIP server', device.realm, { 'data-testid': 'phone-server' }],
        ['Port', '5060 (UDP or TCP; 5061 with TLS when the edge has a certificate)'],
        ['Username (SIP user ID and authentication ID)', device.username, { 'data-testid': 'phone-username' }],
        ['Password', device.password, { class: 'secret', 'data-testid': 'phone-password' }],
        ['Realm (domain)', device.realm, { 'data-testid': 'phone-realm' }],
        ['SIP address', device.sip_uri],
      ]),
      h('p', { class: 'hint', text: rotated
        ? 'The old password stops working once the edge has the new one (within seconds).'
        : 'Register expiration 60 minutes or less, NAT keep-alive on, and SIP ALG off on the office router.' }),
      onceClose());
  }

  async function rotatePassword(edge, device) {
    if (!window.confirm(`Set a new password for ${device.extension}? The phone stops registering until the new one is typed in.`)) return;
    try {
      const result = await api.post(`/sip-edges${path(edge.id, 'devices', device.extension, 'password')}`);
      await tick();
      showOnce(edge.id, passwordPanel(edge, result.device, true));
    } catch (err) {
      toast(`Could not set a new password: ${err.message}`);
    }
  }

  async function revoke(edge, device) {
    if (!window.confirm(`Revoke phone ${device.extension} on ${edge.name}? It can no longer register or take calls.`)) return;
    try {
      await api.del(`/sip-edges${path(edge.id, 'devices', device.extension)}`);
      toast(`Phone ${device.extension} revoked`);
      await tick();
      sections.get(edge.id)?.el.focus();
    } catch (err) {
      toast(`Could not revoke: ${err.message}`);
    }
  }

  async function rotateSecret(edge) {
    if (!window.confirm(`Make a new secret for ${edge.name}? The edge stops syncing until its EDGE_SHARED_SECRET is updated.`)) return;
    try {
      const result = await api.post(`/sip-edges${path(edge.id, 'secret')}`);
      await tick();
      showOnce(edge.id, secretPanel(result.edge));
    } catch (err) {
      toast(`Could not make a new secret: ${err.message}`);
    }
  }

  function deviceTable(edge, devices) {
    const columns = [
      { label: 'Extension', value: (d) => d.extension },
      { label: 'Label', value: (d) => d.label || '' },
      { label: 'Operator', value: (d) => h('span', { class: 'wrap', text: operator(d.user_id) }) },
      { label: 'Status', value: (d) => h('span', { dataset: { status: d.status } }, badge(d.status),
        d.status === 'online' && d.contacts > 1 ? ` ${d.contacts} contacts` : null) },
      { label: 'Phone', value: (d) => d.user_agent || '' },
      { label: 'Source address', value: (d) => h('span', { class: 'wrap', text: d.source || '' }) },
      { label: 'Last seen', value: (d) => (d.last_seen ? when(d.last_seen) : 'never') },
      { label: 'SIP address', value: (d) => h('code', { class: 'wrap', text: d.sip_uri }) },
    ];
    if (admin) {
      columns.push({ label: 'Actions', value: (d) => h('div', { class: 'actions' },
        h('button', { type: 'button', 'aria-label': `New password for ${d.extension} on ${edge.name}`, text: 'New password', onclick: () => rotatePassword(edge, d) }),
        h('button', { type: 'button', class: 'danger', 'aria-label': `Revoke ${d.extension} on ${edge.name}`, text: 'Revoke', onclick: () => revoke(edge, d) })) });
    }
    return table(columns, devices, {
      label: `Phones on ${edge.name}`,
      empty: admin ? 'No phones yet: add one below.' : 'No phones yet.',
    });
  }

  function phoneForm(edge) {
    const form = h('form', { 'aria-label': `New phone on ${edge.name}` },
      h('h3', { text: 'Add a phone' }),
      h('div', { class: 'row' },
        field({ name: 'extension', label: 'Extension', required: true, maxlength: 32, pattern: EXTENSION_PATTERN, placeholder: '1001', hint: 'the phone\'s username: letters, digits, . _ -', autocomplete: 'off' }),
        field({ name: 'label', label: 'Label', maxlength: 120, placeholder: 'Front desk' }),
        field({ name: 'user_id', label: 'Operator', type: 'select', options: [['', '(none)'], ...users.map((u) => [u.id, u.email])] })),
      h('button', { type: 'submit', class: 'primary', text: 'Add phone' }));
    onSubmit(form, {
      build: (f) => ({
        extension: value(f, 'extension'),
        label: value(f, 'label') || null,
        user_id: value(f, 'user_id') || null,
      }),
      send: (body) => api.post(`/sip-edges${path(edge.id, 'devices')}`, body),
      done: async (result) => {
        form.reset();
        await tick();
        showOnce(edge.id, passwordPanel(edge, result.device, false));
      },
    });
    return form;
  }

  function edgeSection(edge) {
    const titleId = nextId('edge');
    const entry = {
      title: h('h2', { id: titleId }),
      summary: h('p', { class: 'hint' }),
      devices: h('div'),
      once: h('div'),
      shown: null,
    };
    entry.el = h('section', { class: 'panel edge', 'aria-labelledby': titleId, tabindex: '-1' },
      entry.title, entry.summary, entry.devices, entry.once, admin ? phoneForm(edge) : null);
    return entry;
  }

  function render(edges, devices) {
    edgesBox.replaceChildren(table([
      { label: 'Edge', value: (e) => e.name },
      { label: 'SIP domain', value: (e) => e.domain },
      { label: 'Phones online', value: (e) => `${e.online} / ${e.devices}`, num: true },
      { label: 'Last sync', value: (e) => (e.last_sync_at ? when(e.last_sync_at) : 'never') },
      { label: 'Secret', value: (e) => h('code', { text: `${e.secret_prefix}…` }) },
      admin ? { label: 'Actions', value: (e) => h('button', { type: 'button', 'aria-label': `New secret for ${e.name}`, text: 'New secret', onclick: () => rotateSecret(e) }) } : null,
    ].filter(Boolean), edges, {
      label: 'SIP edges',
      empty: admin ? 'No SIP edges yet: add the first one below.' : 'No SIP edges yet.',
    }));

    const seen = new Set();
    for (const edge of edges) {
      seen.add(edge.id);
      let entry = sections.get(edge.id);
      if (!entry) {
        entry = edgeSection(edge);
        sections.set(edge.id, entry);
      }
      entry.title.textContent = `${edge.name} · ${edge.domain}`;
      entry.summary.textContent = `${edge.online} of ${edge.devices} phones online; last sync ${edge.last_sync_at ? when(edge.last_sync_at) : 'never'}.`;
      const mine = devices.filter((d) => d.edge_id === edge.id);
      const shown = JSON.stringify(mine);
      if (shown !== entry.shown) {
        // Replaced only when something changed, and the focused button keeps its focus.
        const focused = entry.devices.contains(document.activeElement) ? document.activeElement.getAttribute('aria-label') : null;
        entry.devices.replaceChildren(deviceTable(edge, mine));
        entry.shown = shown;
        const again = focused && entry.devices.querySelector(`[aria-label="${CSS.escape(focused)}"]`);
        if (again) again.focus();
        else if (focused) entry.el.focus();
      }
    }
    for (const [id, entry] of sections) {
      if (!seen.has(id)) {
        entry.el.remove();
        sections.delete(id);
      }
    }
    // Moving a section out of the page and back would take the focus from whatever is in it
    // (a password shown once, a button): the sections are put back only when they change.
    const wanted = edges.map((edge) => sections.get(edge.id).el);
    const current = [...sectionsBox.children];
    if (wanted.length !== current.length || wanted.some((el, i) => el !== current[i])) {
      sectionsBox.replaceChildren(...wanted);
    }
  }

  async function load() {
    const mine = ++latest;
    const [{ edges }, { devices, online }] = await Promise.all([api.get('/sip-edges'), api.get('/sip-devices')]);
    if (mine !== latest) return; // a later load answers for both
    render(edges, devices);
    status.textContent = `${online} of ${devices.length} phones online. Updated ${new Date().toLocaleTimeString('en-US')}; refreshes every ${refreshSeconds()} s.`;
  }

  async function tick() {
    try {
      await load();
    } catch (err) {
      if (!(err instanceof api.ApiError && err.status === 401)) status.textContent = `Could not refresh: ${err.message}`;
    }
  }

  let edgeForm = null;
  if (admin) {
    edgeForm = h('form', { class: 'panel', 'aria-labelledby': 'new-edge' },
      h('h2', { id: 'new-edge', text: 'New SIP edge' }),
      h('p', { class: 'hint', text: 'The edge runs in or near the office at a public address; its phones register to the SIP domain (an A record pointing at the edge).' }),
      h('div', { class: 'row' },
        field({ name: 'name', label: 'Edge name', required: true, maxlength: 120, placeholder: 'Chicago office' }),
        field({ name: 'domain', label: 'SIP domain', required: true, maxlength: 253, placeholder: 'sip.office.example.com', autocomplete: 'off', spellcheck: 'false' })),
      h('button', { type: 'submit', class: 'primary', text: 'Create edge' }));
    onSubmit(edgeForm, {
      build: (f) => ({ name: value(f, 'name'), domain: value(f, 'domain') }),
      send: (body) => api.post('/sip-edges', body),
      done: async (result) => {
        edgeForm.reset();
        toast(`Edge ${result.edge.name} created`);
        await tick();
        showOnce(result.edge.id, secretPanel(result.edge));
      },
    });
  }

  await load();
  view.append(...[
    h('h1', { text: 'SIP phones' }),
    h('div', { class: 'toolbar' }, refreshButton, status),
    once,
    h('h2', { text: 'Edges' }),
    edgesBox,
    sectionsBox,
    edgeForm,
  ].filter(Boolean));
  refreshButton.addEventListener('click', tick);
  const timer = setInterval(tick, refreshSeconds() * 1000);
  return () => clearInterval(timer);
}
