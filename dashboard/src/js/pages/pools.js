// DNI number pools: list, create and edit (numbers, campaign, publisher, holding times,
// overflow and per-source numbers, local presence), the snippet tag with the pool's public
// key, and each pool's statistics.

import * as api from '../api.js';
import {
  choices, e164Of, field, h, intOrNull, nameOf, onSubmit, percent, table, toast, value,
} from '../ui.js';

export const snippet = (pool) =>
  `<script async src="${location.origin}/dni.js" data-pool-key="${pool.public_key}" data-number="(800) 555-0100"></script>`;

function snippetBox(pool) {
  return h('section', { class: 'panel', 'aria-label': `Snippet of ${pool.name}` },
    h('h2', { text: `Snippet for ${pool.name}` }),
    h('p', { class: 'hint', text: 'Put this tag on the landing pages; data-number is the number printed in the page, which each visitor sees replaced by a pool number.' }),
    h('pre', { class: 'secret', 'data-testid': 'pool-snippet' }, h('code', { text: snippet(pool) })),
    h('button', { type: 'button', text: 'Copy snippet', onclick: async () => {
      try {
        await navigator.clipboard.writeText(snippet(pool));
        toast('Snippet copied');
      } catch {
        toast('Select the snippet and copy it');
      }
    } }));
}

/** Source numbers as lines "gclid = +18005550199" ⇄ {gclid: "+18005550199"}. */
const sourcesText = (sources) => Object.entries(sources || {}).map(([k, v]) => `${k} = ${v}`).join('\n');

function sourcesOf(text) {
  const out = {};
  for (const line of (text || '').split('\n').map((l) => l.trim()).filter(Boolean)) {
    const [key, number] = line.split(/\s*[=:]\s*/);
    out[(key || '').toLowerCase()] = e164Of(number || '') || '';
  }
  return out;
}

function poolForm({ pool, campaigns, publishers, numbers, title, submit, save, done }) {
  const p = {
    name: '', campaign_id: '', publisher_id: null, numbers: [], idle_seconds: 300, overflow_number: null,
    attribution_grace_seconds: 900, source_numbers: {}, local_presence: true, ...(pool || {}),
  };
  // A number can be in one pool: offer the numbers that are in none or in this one.
  const free = numbers.filter((n) => !n.pool_id || (pool && n.pool_id === pool.id));
  const slots = new Map(free.map((n) => [n.number, h('span', { class: 'error' })]));
  const titleId = `pool-form-${pool ? 'edit' : 'new'}`;
  const form = h('form', { class: 'panel', 'aria-labelledby': titleId },
    h('h2', { id: titleId, text: title }),
    h('div', { class: 'row' },
      field({ name: 'name', label: 'Pool name', required: true, maxlength: 120, value: p.name }),
      field({ name: 'campaign_id', label: 'Campaign', type: 'select', required: true, value: p.campaign_id, options: choices(campaigns, 'Choose a campaign…') }),
      field({ name: 'publisher_id', label: 'Publisher', type: 'select', value: p.publisher_id || '', options: choices(publishers, '(none)') })),
    h('fieldset', {},
      h('legend', { text: 'Numbers in the pool' }),
      free.length
        ? table([
          { label: 'Use', value: (n) => h('input', { type: 'checkbox', name: `use.${n.number}`, checked: p.numbers.includes(n.number), 'aria-label': `Pool number ${n.number}` }) },
          { label: 'Number', value: (n) => n.number },
          { label: 'Name', value: (n) => n.friendly_name || '' },
          { label: '', value: (n) => slots.get(n.number) },
        ], free, { label: 'Pool numbers' })
        : h('p', { class: 'hint', text: 'No free tracking numbers: buy or add some on the Numbers page.' }),
      h('span', { class: 'error', dataset: { errorFor: 'numbers' } })),
    h('div', { class: 'row' },
      field({ name: 'idle_seconds', label: 'Hold a number after the visitor leaves (seconds)', type: 'number', min: 60, max: 86400, value: p.idle_seconds }),
      field({ name: 'attribution_grace_seconds', label: 'Attribute calls after release (seconds)', type: 'number', min: 0, max: 86400, value: p.attribution_grace_seconds }),
      field({ name: 'overflow_number', label: 'Overflow number (all numbers held)', type: 'select', value: p.overflow_number || '', options: [['', '(none)'], ...numbers.filter((n) => !n.pool_id).map((n) => [n.number, n.number])] }),
      field({ name: 'local_presence', label: 'Prefer the visitor\'s area code', type: 'checkbox', value: p.local_presence })),
    field({ name: 'source_numbers', label: 'Fixed numbers per source', type: 'textarea', value: sourcesText(p.source_numbers), hint: 'one a line: utm_source or click id (gclid, fbclid, msclkid) = number', placeholder: 'gclid = +18005550199' }),
    h('button', { type: 'submit', class: 'primary', text: submit }));
  onSubmit(form, {
    validate: (f) => {
      const problems = {};
      for (const [key, number] of Object.entries(sourcesOf(value(f, 'source_numbers')))) {
        if (!/^[a-z0-9_.-]{1,40}$/.test(key)) problems.source_numbers = `${key || '(empty)'}: a source is lower-case letters, digits, _ . -`;
        else if (!number) problems.source_numbers = `${key}: give a number`;
      }
      return problems;
    },
    build: (f) => {
      const used = free.filter((n) => value(f, `use.${n.number}`));
      for (const n of free) delete slots.get(n.number).dataset.errorFor;
      used.forEach((n, i) => { slots.get(n.number).dataset.errorFor = `numbers.${i}`; });
      return {
        name: value(f, 'name'),
        campaign_id: value(f, 'campaign_id'),
        publisher_id: value(f, 'publisher_id') || null,
        numbers: used.map((n) => n.number),
        idle_seconds: intOrNull(value(f, 'idle_seconds')) ?? 300,
        overflow_number: value(f, 'overflow_number') || null,
        attribution_grace_seconds: intOrNull(value(f, 'attribution_grace_seconds')) ?? 900,
        source_numbers: sourcesOf(value(f, 'source_numbers')),
        local_presence: value(f, 'local_presence'),
      };
    },
    send: save,
    done,
  });
  return form;
}

async function statsPanel(pool) {
  const { stats: s } = await api.get(`/pools/${encodeURIComponent(pool.id)}/stats`);
  const show = (k, v) => {
    if (v === null || v === undefined) return '—';
    if (typeof v === 'number' && (k.includes('rate') || k === 'utilization' || k.includes('overflow_at'))) return percent(v);
    return typeof v === 'object' ? JSON.stringify(v) : String(v);
  };
  return h('section', { class: 'panel', 'aria-labelledby': 'pool-stats' },
    h('h2', { id: 'pool-stats', text: `${pool.name}: last ${s.window_hours ?? 24} hours` }),
    h('dl', { class: 'detail', 'aria-label': 'Pool statistics' }, Object.entries(s).map(([k, v]) => [
      h('dt', { text: k.replaceAll('_', ' ') }),
      h('dd', { 'data-stat': k, text: show(k, v) }),
    ])),
    s.recommended_size != null && s.recommended_size > s.size
      ? h('p', { role: 'note', text: `Add ${s.recommended_size - s.size} number(s) to keep overflow under ${percent(s.target_overflow)}.` })
      : null);
}

export async function poolsPage(view, params) {
  const [{ pools }, { campaigns }, { publishers }, { numbers }] = await Promise.all([
    api.get('/pools'), api.get('/campaigns'), api.get('/publishers'), api.get('/numbers'),
  ]);
  const reload = () => {
    view.replaceChildren();
    return poolsPage(view, []);
  };
  if (params && params[0]) {
    const pool = pools.find((p) => p.id === params[0]);
    if (!pool) {
      view.append(h('h1', { text: 'No such pool' }), h('p', {}, h('a', { href: '#/pools', text: '← Pools' })));
      return null;
    }
    const form = poolForm({
      pool, campaigns, publishers, numbers,
      title: `Edit ${pool.name}`,
      submit: 'Save pool',
      save: (body) => api.put(`/pools/${encodeURIComponent(pool.id)}`, body),
      done: (result) => { toast(`Pool ${result.pool.name} saved`); window.location.hash = '#/pools'; },
    });
    view.append(h('p', {}, h('a', { href: '#/pools', text: '← Pools' })), h('h1', { text: pool.name }),
      snippetBox(pool), await statsPanel(pool), form);
    return null;
  }
  const detail = h('div', { 'aria-live': 'polite' });

  async function showStats(pool) {
    try {
      detail.replaceChildren(snippetBox(pool), await statsPanel(pool));
    } catch (err) {
      toast(`Could not load the statistics: ${err.message}`);
    }
  }

  const form = poolForm({
    pool: null, campaigns, publishers, numbers,
    title: 'New pool',
    submit: 'Create pool',
    save: (body) => api.post('/pools', body),
    done: async (result) => {
      toast(`Pool ${result.pool.name} created`);
      await reload();
      view.querySelector('[data-new-pool]')?.replaceChildren(snippetBox(result.pool));
    },
  });
  view.append(
    h('h1', { text: 'Number pools (DNI)' }),
    h('p', { class: 'hint', text: 'A pool hands each web visitor a number of its own, so each call is tied to the visit (source, keywords, click id).' }),
    h('div', { dataset: { newPool: '' }, 'aria-live': 'polite' }),
    table([
      { label: 'Pool', value: (p) => h('a', { href: `#/pools/${encodeURIComponent(p.id)}`, text: p.name }) },
      { label: 'Campaign', value: (p) => nameOf(campaigns, p.campaign_id) },
      { label: 'Publisher', value: (p) => nameOf(publishers, p.publisher_id) || '—' },
      { label: 'Numbers', value: (p) => (p.numbers || []).length, num: true },
      { label: 'Public key', value: (p) => h('code', { text: p.public_key }) },
      { label: 'Actions', value: (p) => h('div', { class: 'actions' },
        h('a', { class: 'button', href: `#/pools/${encodeURIComponent(p.id)}`, 'aria-label': `Edit ${p.name}`, text: 'Edit' }),
        h('button', { type: 'button', 'aria-label': `Statistics of ${p.name}`, text: 'Snippet & statistics', onclick: () => showStats(p) })) },
    ], pools, { label: 'Pools', empty: 'No pools yet: create one below.' }),
    detail,
    campaigns.length ? form : h('p', { class: 'panel hint', text: 'Create a campaign first: a pool sends its calls to one.' }));
  return null;
}
