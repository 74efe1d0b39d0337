// Buyers and their targets: caps, concurrency, schedule per weekday with timezone, geo and
// tag filters; each cap shown with what its current period used of it (GET /caps/usage).

import * as api from '../api.js';
import {
  E164_PATTERN, choices, field, h, intOrNull, nameOf, onSubmit, splitList, table, toast, value,
} from '../ui.js';

const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];
const CAPS = [['concurrency', 'Concurrency'], ['hourly', 'Per hour'], ['daily', 'Per day'], ['monthly', 'Per month'], ['total', 'Total']];

export function timezones() {
  const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  return ['UTC', ...zones.filter((z) => z !== 'UTC')];
}

function capsFields() {
  return h('fieldset', {},
    h('legend', { text: 'Caps (empty: no cap)' }),
    h('div', { class: 'row' }, CAPS.map(([key, label]) =>
      field({ name: `caps.${key}`, label, type: 'number', min: key === 'concurrency' ? 1 : 0, step: 1, inputmode: 'numeric' }))),
    h('span', { class: 'error', dataset: { errorFor: 'caps' } }));
}

function capsOf(form) {
  const caps = {};
  for (const [key] of CAPS) {
    const n = intOrNull(value(form, `caps.${key}`));
    if (n !== null) caps[key] = n;
  }
  return caps;
}

const COUNTS = { routed: 'routed calls', connected: 'connected calls', converted: 'converted calls' };

/** Each cap as "used / cap" in the current period (the owner's timezone), a meter per cap. */
function capUsage(caps, used, owner) {
  const set = CAPS.filter(([key]) => caps && caps[key] != null);
  if (!set.length) return h('span', { class: 'hint', text: 'no caps' });
  return h('ul', { class: 'usage', 'aria-label': `Cap usage of ${owner}` },
    set.map(([key, label]) => {
      const n = Number((used || {})[key] || 0);
      const cap = Number(caps[key]);
      const full = n >= cap;
      return h('li', { class: full ? 'full' : null, dataset: { cap: key } },
        h('span', { class: 'cap-label', text: `${label}: ` }),
        h('span', { class: 'cap-used', text: `${n} / ${cap}` }),
        h('meter', { min: 0, max: cap || 1, value: Math.min(n, cap), high: Math.max(cap * 0.8, 0.5), 'aria-label': `${label} used of cap` }),
        full ? h('span', { class: 'badge paused', text: 'at cap' }) : null);
    }),
    caps.counts && caps.counts !== 'routed' ? h('li', { class: 'hint', text: `period caps count ${COUNTS[caps.counts]}` }) : null);
}

/** The weekly schedule editor: a timezone and, per weekday, open or closed with hours. */
function scheduleEditor() {
  const rows = WEEKDAYS.map((day) => {
    const label = day[0].toUpperCase() + day.slice(1);
    const open = h('input', { type: 'checkbox', name: `open.${day}`, id: `open-${day}`, checked: !['saturday', 'sunday'].includes(day) });
    const start = h('input', { type: 'time', name: `schedule.days.${day}.0.start`, value: '09:00', 'aria-label': `${label} opens at` });
    const end = h('input', { type: 'time', name: `schedule.days.${day}.0.end`, value: '17:00', 'aria-label': `${label} closes at` });
    return h('tr', {},
      h('th', { scope: 'row' }, h('label', { for: `open-${day}` }, open, ` ${label}`)),
      h('td', {}, start), h('td', {}, end),
      h('td', {}, h('span', { class: 'error', dataset: { errorFor: `schedule.days.${day}` } })));
  });
  const limited = field({ name: 'use_schedule', label: 'Only take calls in these hours', type: 'checkbox', value: true });
  return h('fieldset', { class: 'schedule' },
    h('legend', { text: 'Hours of operation' }),
    limited,
    field({ name: 'schedule.timezone', label: 'Timezone', type: 'select', options: timezones().map((z) => [z, z]), value: Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC' }),
    h('table', { 'aria-label': 'Weekly hours' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Open on' }), h('th', { scope: 'col', text: 'From' }), h('th', { scope: 'col', text: 'To' }), h('th', {}))),
      h('tbody', {}, rows)),
    h('span', { class: 'hint', text: 'A closing time of 00:00 means midnight at the end of the day.' }),
    h('span', { class: 'error', dataset: { errorFor: 'schedule' } }),
    h('span', { class: 'error', dataset: { errorFor: 'schedule.days' } }));
}

function scheduleOf(form) {
  if (!value(form, 'use_schedule')) return null;
  const days = {};
  for (const day of WEEKDAYS) {
    if (!value(form, `open.${day}`)) continue;
    const start = value(form, `schedule.days.${day}.0.start`);
    let end = value(form, `schedule.days.${day}.0.end`);
    if (end === '00:00') end = '24:00';
    days[day] = [{ start, end }];
  }
  return { timezone: value(form, 'schedule.timezone'), days };
}

function checkSchedule(form) {
  const problems = {};
  if (!value(form, 'use_schedule')) return problems;
  for (const day of WEEKDAYS) {
    if (!value(form, `open.${day}`)) continue;
    const start = value(form, `schedule.days.${day}.0.start`);
    const end = value(form, `schedule.days.${day}.0.end`);
    if (!start || !end) problems[`schedule.days.${day}`] = 'give opening and closing times';
    else if (end !== '00:00' && end <= start) problems[`schedule.days.${day}`] = 'closes before it opens';
  }
  return problems;
}

function describeSchedule(schedule) {
  if (!schedule) return 'always open';
  const days = Object.entries(schedule.days || {}).map(([day, windows]) =>
    `${day.slice(0, 3)} ${windows.map((w) => `${w.start}–${w.end}`).join(', ')}`);
  return `${schedule.timezone}: ${days.join('; ') || 'closed'}`;
}

function describeGeo(geo) {
  const parts = Object.entries(geo || {}).filter(([, list]) => list && list.length).map(([k, list]) => `${k.replace('_', ' ')} ${list.join(' ')}`);
  return parts.join('; ') || 'anywhere';
}

export async function buyersPage(view) {
  const [{ buyers }, { targets }, usage] = await Promise.all([
    api.get('/buyers'), api.get('/targets'), api.get('/caps/usage'),
  ]);
  const reload = () => {
    view.replaceChildren();
    return buyersPage(view);
  };

  const buyerForm = h('form', { class: 'panel', 'aria-labelledby': 'new-buyer' },
    h('h2', { id: 'new-buyer', text: 'New buyer' }),
    h('div', { class: 'row' },
      field({ name: 'name', label: 'Buyer name', required: true, maxlength: 120 }),
      field({ name: 'timezone', label: 'Timezone (caps reset by it)', type: 'select', options: timezones().map((z) => [z, z]), value: 'UTC' })),
    capsFields(),
    h('button', { type: 'submit', class: 'primary', text: 'Create buyer' }));
  onSubmit(buyerForm, {
    build: (f) => ({ name: value(f, 'name'), timezone: value(f, 'timezone'), caps: capsOf(f) }),
    send: (body) => api.post('/buyers', body),
    done: (result) => { toast(`Buyer ${result.buyer.name} created`); reload(); },
  });

  const targetForm = h('form', { class: 'panel', 'aria-labelledby': 'new-target' },
    h('h2', { id: 'new-target', text: 'New target' }),
    h('div', { class: 'row' },
      field({ name: 'buyer_id', label: 'Buyer', type: 'select', required: true, options: choices(buyers, 'Choose a buyer…') }),
      field({ name: 'name', label: 'Target name', required: true, maxlength: 120 }),
      field({ name: 'destination', label: 'Destination (phone or SIP URI)', required: true, placeholder: '+14155550100', pattern: `${E164_PATTERN}|sips?:.+` })),
    h('div', { class: 'row' },
      field({ name: 'priority', label: 'Priority (1 first)', type: 'number', min: 1, max: 100, value: 1 }),
      field({ name: 'weight', label: 'Weight', type: 'number', min: 1, max: 1000, value: 1 }),
      field({ name: 'enabled', label: 'Enabled', type: 'checkbox', value: true })),
    capsFields(),
    scheduleEditor(),
    h('fieldset', {},
      h('legend', { text: 'Geo filters (empty: anywhere)' }),
      h('div', { class: 'row' },
        field({ name: 'geo.states', label: 'States', placeholder: 'CA TX', hint: 'two-letter codes', pattern: '\\s*([A-Za-z]{2}[\\s,]*)*' }),
        field({ name: 'geo.area_codes', label: 'Area codes', placeholder: '415 212', pattern: '\\s*([2-9][0-9]{2}[\\s,]*)*' }),
        field({ name: 'geo.countries', label: 'Countries', placeholder: 'US', pattern: '\\s*([A-Za-z]{2}[\\s,]*)*' }),
        field({ name: 'geo.zip_prefixes', label: 'ZIP prefixes', placeholder: '941 100', pattern: '\\s*([0-9]{1,5}[\\s,]*)*' })),
      h('span', { class: 'error', dataset: { errorFor: 'geo' } })),
    h('fieldset', {},
      h('legend', { text: 'Tag filter (optional)' }),
      h('div', { class: 'row' },
        field({ name: 'tag_rules.0.tag', label: 'Tag', placeholder: 'age' }),
        field({ name: 'tag_rules.0.op', label: 'Test', type: 'select', options: [['eq', 'equals'], ['ne', 'differs from'], ['gte', 'at least'], ['lte', 'at most'], ['in', 'one of'], ['exists', 'is present']] }),
        field({ name: 'tag_rules.0.value', label: 'Value', placeholder: '65' })),
      h('span', { class: 'error', dataset: { errorFor: 'tag_rules' } })),
    h('button', { type: 'submit', class: 'primary', text: 'Create target' }));
  onSubmit(targetForm, {
    validate: checkSchedule,
    build: (f) => {
      const body = {
        buyer_id: value(f, 'buyer_id'),
        name: value(f, 'name'),
        destination: value(f, 'destination').replace(/[\s().-]/g, ''),
        priority: intOrNull(value(f, 'priority')) ?? 1,
        weight: intOrNull(value(f, 'weight')) ?? 1,
        enabled: value(f, 'enabled'),
        caps: capsOf(f),
        schedule: scheduleOf(f),
        geo: {
          states: splitList(value(f, 'geo.states')).map((s) => s.toUpperCase()),
          area_codes: splitList(value(f, 'geo.area_codes')),
          countries: splitList(value(f, 'geo.countries')).map((s) => s.toUpperCase()),
          zip_prefixes: splitList(value(f, 'geo.zip_prefixes')),
        },
        tag_rules: [],
      };
      if (body.destination.startsWith('sip')) body.destination = value(f, 'destination');
      else if (!body.destination.startsWith('+')) body.destination = `+1${body.destination}`;
      const tag = value(f, 'tag_rules.0.tag');
      if (tag) {
        const op = value(f, 'tag_rules.0.op');
        const raw = value(f, 'tag_rules.0.value');
        const rule = { tag, op };
        if (op === 'in') rule.value = splitList(raw);
        else if (op !== 'exists') rule.value = raw;
        body.tag_rules.push(rule);
      }
      return body;
    },
    send: (body) => api.post('/targets', body),
    done: (result) => { toast(`Target ${result.target.name} created`); reload(); },
  });

  view.append(
    h('h1', { text: 'Buyers & targets' }),
    h('h2', { text: 'Buyers' }),
    table([
      { label: 'Buyer', value: (b) => b.name },
      { label: 'Timezone', value: (b) => b.timezone },
      { label: 'Caps used (this hour, day, month)', value: (b) => capUsage(b.caps, usage.buyers[b.id], b.name) },
      { label: 'Targets', value: (b) => targets.filter((t) => t.buyer_id === b.id).length, num: true },
    ], buyers, { label: 'Buyers', empty: 'No buyers yet: create one below.' }),
    h('h2', { text: 'Targets' }),
    table([
      { label: 'Target', value: (t) => t.name },
      { label: 'Buyer', value: (t) => nameOf(buyers, t.buyer_id) },
      { label: 'Destination', value: (t) => t.destination || (t.rtb ? 'RTB bidder' : '') },
      { label: 'Priority / weight', value: (t) => `${t.priority} / ${t.weight}` },
      { label: 'Live / concurrency cap', value: (t) => `${(usage.targets[t.id] || {}).concurrency || 0} / ${(t.caps && t.caps.concurrency) || '∞'}` },
      { label: 'Caps used', value: (t) => capUsage(t.caps, usage.targets[t.id], t.name) },
      { label: 'Schedule', value: (t) => describeSchedule(t.schedule) },
      { label: 'Geo', value: (t) => describeGeo(t.geo) },
    ], targets, { label: 'Targets', empty: 'No targets yet.' }),
    buyerForm,
    buyers.length ? targetForm : h('p', { class: 'panel hint', text: 'Create a buyer first, then its targets.' }));
}
