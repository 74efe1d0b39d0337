// Publishers: list with payouts, create, edit (payout per campaign, contact, pixels), and
// API keys (a new key is shown once; revoke).

import * as api from '../api.js';
import {
  badge, centsOf, dollarsOf, field, h, money, nameOf, onSubmit, section, table, toast, value, when,
} from '../ui.js';
import { pixelsEditor } from './pixels.js';

export async function publishersPage(view) {
  const [{ publishers }, { campaigns }] = await Promise.all([api.get('/publishers'), api.get('/campaigns')]);
  const reload = () => {
    view.replaceChildren();
    return publishersPage(view);
  };
  const keysPanel = h('div');
  const editPanel = h('div');

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

  function edit(publisher) {
    const overrides = publisher.payout_overrides || {};
    const pixels = pixelsEditor(publisher.pixels);
    const titleId = 'edit-publisher';
    const editForm = h('form', { class: 'panel', 'aria-labelledby': titleId },
      h('h2', { id: titleId, text: `Edit ${publisher.name}` }),
      h('div', { class: 'row' },
        field({ name: 'name', label: 'Publisher name', required: true, maxlength: 120, value: publisher.name }),
        field({ name: 'contact_email', label: 'Contact email', type: 'email', value: publisher.contact_email || '' })),
      h('fieldset', {},
        h('legend', { text: 'Payout per converted call, by campaign (empty: the campaign\'s payout)' }),
        campaigns.length
          ? table([
            { label: 'Campaign', value: (c) => c.name },
            { label: 'Campaign payout', value: (c) => money(c.payout_cents), num: true },
            { label: 'This publisher ($)', value: (c) => field({ name: `payout_overrides.${c.id}`, label: `Payout for ${c.name} ($)`, type: 'number', min: 0, step: '0.01', value: dollarsOf(overrides[c.id]), placeholder: dollarsOf(c.payout_cents) }) },
          ], campaigns, { label: 'Payout overrides' })
          : h('p', { class: 'hint', text: 'No campaigns yet.' }),
        h('span', { class: 'error', dataset: { errorFor: 'payout_overrides' } })),
      section('Post-call pixels', publisher.pixels.length > 0, pixels.el),
      h('div', { class: 'toolbar' },
        h('button', { type: 'submit', class: 'primary', text: 'Save publisher' }),
        h('button', { type: 'button', text: 'Cancel', onclick: () => editPanel.replaceChildren() })));
    onSubmit(editForm, {
      validate: pixels.validate,
      build: (f) => {
        // Overrides of campaigns no longer listed are kept as they are.
        const payouts = Object.fromEntries(Object.entries(overrides).filter(([id]) => !campaigns.some((c) => c.id === id)));
        for (const c of campaigns) {
          const raw = value(f, `payout_overrides.${c.id}`);
          if (raw !== '') payouts[c.id] = centsOf(raw);
        }
        return {
          name: value(f, 'name'),
          contact_email: value(f, 'contact_email') || null,
          payout_overrides: payouts,
          pixels: pixels.build(),
        };
      },
      send: (body) => api.put(`/publishers/${encodeURIComponent(publisher.id)}`, body),
      done: (result) => { toast(`Publisher ${result.publisher.name} saved`); reload(); },
    });
    keysPanel.replaceChildren();
    editPanel.replaceChildren(editForm);
    editForm.querySelector('input').focus();
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
      { label: 'Actions', value: (p) => h('div', { class: 'actions' },
        h('button', { type: 'button', 'aria-label': `Edit ${p.name}`, text: 'Edit payouts', onclick: () => edit(p) }),
        h('button', { type: 'button', 'aria-label': `API keys of ${p.name}`, text: 'API keys', onclick: () => { editPanel.replaceChildren(); showKeys(p); } })) },
    ], publishers, { label: 'Publishers', empty: 'No publishers yet.' }),
    editPanel,
    keysPanel,
    form);
}
