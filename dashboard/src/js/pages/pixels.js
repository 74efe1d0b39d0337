// Post-call pixels (signed webhooks) as an editable list: URL template, method, events,
// shared secret. The API shows stored secrets as "****"; sending that back keeps them.

import { controlOf, field, fieldValue, h, setPath } from '../ui.js';

export function pixelsEditor(pixels) {
  const rows = [];
  const list = h('div');
  const empty = h('p', { class: 'hint', text: 'No pixels.' });

  function sync() {
    rows.forEach((row, i) => {
      for (const key of ['url', 'method', 'secret']) setPath(row[key], `pixels.${i}.${key}`);
      setPath(row.completed, `pixels.${i}.events`);
      row.legend.textContent = `Pixel ${i + 1}`;
    });
    empty.hidden = rows.length > 0;
  }

  function add(pixel = {}) {
    const events = pixel.events || ['completed'];
    const row = {
      url: field({ name: 'pixel.url', label: 'URL template', type: 'url', value: pixel.url || '', required: true, maxlength: 2000, placeholder: 'https://tracker.example.com/p?call={call_sid}&payout={payout_cents}' }),
      method: field({ name: 'pixel.method', label: 'Method', type: 'select', value: pixel.method || 'POST', options: [['POST', 'POST (JSON body)'], ['GET', 'GET']] }),
      secret: field({ name: 'pixel.secret', label: 'Signing secret', value: pixel.secret || '', required: true, pattern: '\\*\\*\\*\\*|.{16,}', maxlength: 128, hint: pixel.secret ? '**** keeps the stored secret' : 'at least 16 characters' }),
      completed: field({ name: 'pixel.completed', label: 'On every completed call', type: 'checkbox', value: events.includes('completed') }),
      converted: field({ name: 'pixel.converted', label: 'On conversion', type: 'checkbox', value: events.includes('converted') }),
      legend: h('legend'),
    };
    row.el = h('fieldset', {}, row.legend,
      h('div', { class: 'row' }, row.url, row.method, row.secret),
      h('div', { class: 'row' }, row.completed, row.converted,
        h('button', { type: 'button', class: 'danger', text: 'Remove pixel', onclick: () => {
          rows.splice(rows.indexOf(row), 1);
          row.el.remove();
          sync();
        } })));
    rows.push(row);
    list.append(row.el);
    sync();
    return row;
  }

  for (const pixel of pixels || []) add(pixel);
  sync();
  const el = h('div', {}, empty, list, h('span', { class: 'error', dataset: { errorFor: 'pixels' } }),
    h('button', { type: 'button', text: 'Add pixel', onclick: () => controlOf(add().url).focus() }));

  function validate() {
    const problems = {};
    rows.forEach((row, i) => {
      if (!fieldValue(row.completed) && !fieldValue(row.converted)) problems[`pixels.${i}.events`] = 'choose when it fires';
    });
    return problems;
  }

  function build() {
    return rows.map((row) => ({
      url: fieldValue(row.url),
      method: fieldValue(row.method),
      events: [fieldValue(row.completed) && 'completed', fieldValue(row.converted) && 'converted'].filter(Boolean),
      secret: fieldValue(row.secret),
    }));
  }

  return { el, build, validate };
}
