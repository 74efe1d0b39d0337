// Publishers: list with payouts, create, and API keys (a new key is shown once; revoke).

import * as api from '../api.js';
import { badge, field, h, money, nameOf, onSubmit, table, toast, value, when } from '../ui.js';

export async function publishersPage(view) {
  const [{ publishers }, { campaigns }] = await Promise.all([api.get('/publishers'), api.get('/campaigns')]);
  const reload = () => {
    view.replaceChildren();
    return publishersPage(view);
  };
  const keysPanel = h('div');

  async function showKeys(publisher, issued = null) {
    const { keys } = await api.get(`/publishers/${encodeURIComponent(publisher.id)}/keys`);
    const form = h('form', { class: 'toolbar', 'aria-label': `New API key for ${publisher.name}` },
      field({ name: 'label', label: 'Key label', maxlength: 120, placeholder: 'Landing pages' }),
      h('button', { type: 'submit', class: 'primary', text: 'Create API key' }));
    onSubmit(form, {
      build: (f) => ({ label: value(f, 'label') || null }),
      send: (body) => api.post(`/publishers/${encodeURIComponent(publisher.id)}/keys`, body),
      done: (result) => showKeys(publisher, result.key),
    });
    async function revoke(key) {
      if (!window.confirm(`Revoke key ${key.prefix}…? Requests with it will fail at once.`)) return;
      try {
        await api.del(`/publishers/${encodeURIComponent(publisher.id)}/keys/${encodeURIComponent(key.id)}`);
        toast(`Key ${key.prefix}… revoked`);
        await showKeys(publisher);
      } catch (err) {
        toast(`Could not revoke: ${err.message}`);
      }
    }
    keysPanel.replaceChildren(h('section', { class: 'panel', 'aria-labelledby': 'keys-title' },
      h('h2', { id: 'keys-title', text: `API keys of ${publisher.name}` }),
      issued ? h('div', { role: 'alert' },
        h('p', { text: 'Copy this key now: it is shown only once.' }),
        h('p', { class: 'secret', 'data-testid': 'new-key', text: issued.key })) : null,
      table([
        { label: 'Key', value: (k) => `${k.prefix}…` },
        { label: 'Label', value: (k) => k.label || '' },
        { label: 'Created', value: (k) => when(k.created_at) },
        { label: 'Status', value: (k) => badge(k.revoked_at ? 'revoked' : 'active') },
        { label: 'Actions', value: (k) => (k.revoked_at ? '' : h('button', { type: 'button', class: 'danger', 'aria-label': `Revoke key ${k.prefix}`, text: 'Revoke', onclick: () => revoke(k) })) },
      ], keys, { label: 'API keys', empty: 'No keys yet.' }),
      form));
  }

  const form = h('form', { class: 'panel', 'aria-labelledby': 'new-publisher' },
    h('h2', { id: 'new-publisher', text: 'New publisher' }),
    h('div', { class: 'row' },
      field({ name: 'name', label: 'Publisher name', required: true, maxlength: 120 }),
      field({ name: 'contact_email', label: 'Contact email', type: 'email' })),
    h('button', { type: 'submit', class: 'primary', text: 'Create publisher' }));
  onSubmit(form, {
    build: (f) => ({ name: value(f, 'name'), contact_email: value(f, 'contact_email') || null }),
    send: (body) => api.post('/publishers', body),
    done: (result) => { toast(`Publisher ${result.publisher.name} created`); reload(); },
  });

  view.append(
    h('h1', { text: 'Publishers' }),
    table([
      { label: 'Publisher', value: (p) => p.name },
      { label: 'Contact', value: (p) => p.contact_email || '' },
      { label: 'Payout overrides', value: (p) => Object.entries(p.payout_overrides || {}).map(([c, cents]) => `${nameOf(campaigns, c)}: ${money(cents)}`).join(', ') || 'campaign payouts' },
      { label: 'Actions', value: (p) => h('button', { type: 'button', 'aria-label': `API keys of ${p.name}`, text: 'API keys', onclick: () => showKeys(p) }) },
    ], publishers, { label: 'Publishers', empty: 'No publishers yet.' }),
    keysPanel,
    form);
}
