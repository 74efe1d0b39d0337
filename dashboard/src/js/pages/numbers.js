// Tracking numbers: list with campaign/publisher/source, add one, search and buy through the
// CPaaS, and assign a number to a campaign (and publisher, source).

import * as api from '../api.js';
import { E164_PATTERN, choices, field, h, nameOf, onSubmit, table, toast, value } from '../ui.js';

function attribution(form) {
  return {
    campaign_id: value(form, 'campaign_id') || null,
    publisher_id: value(form, 'publisher_id') || null,
    source: value(form, 'source') || null,
  };
}

function attributionFields(campaigns, publishers, current = {}) {
  return [
    field({ name: 'campaign_id', label: 'Campaign', type: 'select', options: choices(campaigns, '(none)'), value: current.campaign_id }),
    field({ name: 'publisher_id', label: 'Publisher', type: 'select', options: choices(publishers, '(none)'), value: current.publisher_id }),
    field({ name: 'source', label: 'Source', maxlength: 80, placeholder: 'Google Ads', value: current.source || '' }),
  ];
}

const normalise = (text) => {
  const digits = text.replace(/[\s().-]/g, '');
  return digits.startsWith('+') ? digits : `+1${digits}`;
};

export async function numbersPage(view) {
  const [{ numbers }, { campaigns }, { publishers }] = await Promise.all([
    api.get('/numbers'), api.get('/campaigns'), api.get('/publishers'),
  ]);
  const reload = () => {
    view.replaceChildren();
    return numbersPage(view);
  };
  const editor = h('div');

  function assign(number) {
    const form = h('form', { class: 'panel', 'aria-labelledby': 'assign-title' },
      h('h2', { id: 'assign-title', text: `Assign ${number.number}` }),
      h('div', { class: 'row' }, attributionFields(campaigns, publishers, number)),
      h('button', { type: 'submit', class: 'primary', text: 'Save assignment' }), ' ',
      h('button', { type: 'button', onclick: () => editor.replaceChildren(), text: 'Cancel' }));
    onSubmit(form, {
      build: attribution,
      send: (body) => api.put(`/numbers/${encodeURIComponent(number.number)}`, body),
      done: () => { toast(`${number.number} assigned`); reload(); },
    });
    editor.replaceChildren(form);
    form.querySelector('select').focus();
  }

  const addForm = h('form', { class: 'panel', 'aria-labelledby': 'add-number' },
    h('h2', { id: 'add-number', text: 'Add a number you already own' }),
    h('div', { class: 'row' },
      field({ name: 'number', label: 'Number', required: true, pattern: E164_PATTERN, placeholder: '+18005550123' }),
      field({ name: 'friendly_name', label: 'Name', maxlength: 120 })),
    h('div', { class: 'row' }, attributionFields(campaigns, publishers)),
    h('button', { type: 'submit', class: 'primary', text: 'Add number' }));
  onSubmit(addForm, {
    build: (f) => ({ number: normalise(value(f, 'number')), friendly_name: value(f, 'friendly_name') || null, ...attribution(f) }),
    send: (body) => api.post('/numbers', body),
    done: (result) => { toast(`${result.number.number} added`); reload(); },
  });

  const found = h('div');
  const searchForm = h('form', { class: 'panel', 'aria-labelledby': 'buy-number' },
    h('h2', { id: 'buy-number', text: 'Search and buy a number' }),
    h('div', { class: 'row' },
      field({ name: 'area_code', label: 'Area code', pattern: '[2-9][0-9]{2}', placeholder: '415', inputmode: 'numeric' }),
      field({ name: 'number_contains', label: 'Contains', pattern: '[0-9A-Za-z*]{1,10}' }),
      field({ name: 'toll_free', label: 'Toll-free', type: 'checkbox' })),
    h('button', { type: 'submit', text: 'Search' }),
    found);
  onSubmit(searchForm, {
    build: (f) => ({ area_code: value(f, 'area_code'), contains: value(f, 'number_contains'), toll_free: value(f, 'toll_free') ? 'true' : '' }),
    send: (q) => api.get(`/numbers/available${api.query(q)}`),
    done: (result) => {
      found.replaceChildren(table([
        { label: 'Number', value: (n) => n.friendly_name || n.number },
        { label: 'Where', value: (n) => [n.locality, n.region].filter(Boolean).join(', ') },
        { label: 'Buy', value: (n) => h('button', { type: 'button', 'aria-label': `Buy ${n.number}`, text: 'Buy', onclick: async () => {
          try {
            await api.post('/numbers/purchase', { number: n.number, ...attribution(searchForm) });
            toast(`Bought ${n.number}`);
            reload();
          } catch (err) {
            toast(`Could not buy ${n.number}: ${err.message}`);
          }
        } }) },
      ], result.numbers, { label: 'Available numbers', empty: 'No numbers match.' }));
    },
  });
  searchForm.querySelector('.row').after(h('div', { class: 'row' }, attributionFields(campaigns, publishers)));

  view.append(
    h('h1', { text: 'Numbers' }),
    table([
      { label: 'Number', value: (n) => n.number },
      { label: 'Name', value: (n) => n.friendly_name || '' },
      { label: 'Campaign', value: (n) => nameOf(campaigns, n.campaign_id) || '—' },
      { label: 'Publisher', value: (n) => nameOf(publishers, n.publisher_id) || '—' },
      { label: 'Source', value: (n) => n.source || '—' },
      { label: 'Pool', value: (n) => n.pool_id || '—' },
      { label: 'Actions', value: (n) => h('button', { type: 'button', 'aria-label': `Assign ${n.number}`, text: 'Assign', onclick: () => assign(n) }) },
    ], numbers, { label: 'Tracking numbers', empty: 'No numbers yet.' }),
    editor,
    addForm,
    searchForm);
}
