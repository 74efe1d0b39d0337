// Buyers and their targets: create, edit (#/buyers/buyer/<id>, #/buyers/target/<id>) and
// enable/disable from their rows. Caps with what their current period used of them
// (GET /caps/usage), schedule per weekday with timezone, geo and tag filters, and a target's
// real-time bidding settings (an RTB bidder pinged for a price before each call).

import * as api from '../api.js';
import {
  E164_PATTERN, badge, centsOf, choices, controlOf, dollarsOf, field, fieldValue, h, intOrNull,
  nameOf, onSubmit, section, setPath, splitList, table, toast, value,
} from '../ui.js';
import { pixelsEditor } from './pixels.js';

const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];
const CAPS = [['concurrency', 'Concurrency'], ['hourly', 'Per hour'], ['daily', 'Per day'], ['monthly', 'Per month'], ['total', 'Total']];
const COUNTS = { routed: 'routed calls', connected: 'connected calls', converted: 'converted calls' };
const READ_ONLY = ['id', 'created_at', 'updated_at'];

export function timezones() {
  const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  return ['UTC', ...zones.filter((z) => z !== 'UTC')];
}

function without(item, keys) {
  return Object.fromEntries(Object.entries(item).filter(([key]) => !keys.includes(key)));
}

/** The buyer as PUT wants it: its stored settings without the read-only fields. */
export const buyerBody = (buyer, changes = {}) => ({ ...without(buyer, READ_ONLY), ...changes });

/** The target as PUT wants it (a target has no pixels; the API shows it an empty list). */
export const targetBody = (target, changes = {}) => ({ ...without(target, [...READ_ONLY, 'pixels']), ...changes });

// --- caps ------------------------------------------------------------------------------------

function capsFields(caps = {}) {
  return h('fieldset', {},
    h('legend', { text: 'Caps (empty: no cap)' }),
    h('div', { class: 'row' }, CAPS.map(([key, label]) =>
      field({ name: `caps.${key}`, label, type: 'number', min: key === 'concurrency' ? 1 : 0, step: 1, inputmode: 'numeric', value: caps[key] ?? '' })),
    field({ name: 'caps.counts', label: 'Period caps count', type: 'select', value: caps.counts || 'routed', options: Object.entries(COUNTS) })),
    h('span', { class: 'error', dataset: { errorFor: 'caps' } }));
}

function capsOf(form) {
  const caps = { counts: value(form, 'caps.counts') || 'routed' };
  for (const [key] of CAPS) {
    const n = intOrNull(value(form, `caps.${key}`));
    if (n !== null) caps[key] = n;
  }
  return caps;
}

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

// --- schedule --------------------------------------------------------------------------------

/**
 * The weekly schedule editor: a timezone and, per weekday, open or closed with hours.
 * `schedule`: the stored one (null: always open) or undefined for a new target (weekdays 9–5).
 * A day's further windows (the API takes several) are kept as they are.
 */
function scheduleEditor(schedule) {
  const fresh = schedule === undefined;
  const days = (schedule && schedule.days) || {};
  const extra = {};
  const rows = WEEKDAYS.map((day) => {
    const label = day[0].toUpperCase() + day.slice(1);
    const windows = days[day] || [];
    extra[day] = windows.slice(1);
    const isOpen = fresh || !schedule ? !['saturday', 'sunday'].includes(day) : windows.length > 0;
    const first = windows[0] || { start: '09:00', end: '17:00' };
    const open = h('input', { type: 'checkbox', name: `open.${day}`, id: `open-${day}`, checked: isOpen });
    const start = h('input', { type: 'time', name: `schedule.days.${day}.0.start`, value: first.start, 'aria-label': `${label} opens at` });
    const end = h('input', { type: 'time', name: `schedule.days.${day}.0.end`, value: first.end === '24:00' ? '00:00' : first.end, 'aria-label': `${label} closes at` });
    const more = extra[day].length
      ? h('span', { class: 'hint', text: ` and ${extra[day].map((w) => `${w.start}–${w.end}`).join(', ')} (kept)` })
      : null;
    return h('tr', {},
      h('th', { scope: 'row' }, h('label', { for: `open-${day}` }, open, ` ${label}`)),
      h('td', {}, start), h('td', {}, end, more),
      h('td', {}, h('span', { class: 'error', dataset: { errorFor: `schedule.days.${day}` } })));
  });
  const zone = (schedule && schedule.timezone) || Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  const el = h('fieldset', { class: 'schedule' },
    h('legend', { text: 'Hours of operation' }),
    field({ name: 'use_schedule', label: 'Only take calls in these hours', type: 'checkbox', value: fresh || Boolean(schedule) }),
    field({ name: 'schedule.timezone', label: 'Timezone', type: 'select', options: timezones().map((z) => [z, z]), value: zone }),
    h('table', { 'aria-label': 'Weekly hours' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Open on' }), h('th', { scope: 'col', text: 'From' }), h('th', { scope: 'col', text: 'To' }), h('th', {}))),
      h('tbody', {}, rows)),
    h('span', { class: 'hint', text: 'A closing time of 00:00 means midnight at the end of the day.' }),
    h('span', { class: 'error', dataset: { errorFor: 'schedule' } }),
    h('span', { class: 'error', dataset: { errorFor: 'schedule.days' } }));

  function build(form) {
    if (!value(form, 'use_schedule')) return null;
    const out = {};
    for (const day of WEEKDAYS) {
      if (!value(form, `open.${day}`)) continue;
      const start = value(form, `schedule.days.${day}.0.start`);
      let end = value(form, `schedule.days.${day}.0.end`);
      if (end === '00:00') end = '24:00';
      out[day] = [{ start, end }, ...extra[day]];
    }
    return { timezone: value(form, 'schedule.timezone'), days: out };
  }

  function validate(form) {
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
  return { el, build, validate };
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

// --- tag rules -------------------------------------------------------------------------------

const OPS = [['eq', 'equals'], ['ne', 'differs from'], ['gt', 'more than'], ['gte', 'at least'], ['lt', 'less than'], ['lte', 'at most'], ['in', 'one of'], ['not_in', 'none of'], ['exists', 'is present']];
const NUMERIC_OPS = ['gt', 'gte', 'lt', 'lte'];

/** Tag filters as a list; rows without a tag are left out (and not counted in the paths). */
function tagRulesEditor(rules) {
  const rows = [];
  const list = h('div');

  function add(rule = {}) {
    const shown = Array.isArray(rule.value) ? rule.value.join(', ') : (rule.value ?? '');
    const row = {
      tag: field({ name: 'tag_rule.tag', label: 'Tag', placeholder: 'age', value: rule.tag || '' }),
      op: field({ name: 'tag_rule.op', label: 'Test', type: 'select', value: rule.op || 'eq', options: OPS }),
      value: field({ name: 'tag_rule.value', label: 'Value', placeholder: '65', value: String(shown), hint: 'a list for "one of": comma-separated' }),
    };
    row.el = h('div', { class: 'row' }, row.tag, row.op, row.value,
      h('button', { type: 'button', class: 'danger', text: 'Remove rule', 'aria-label': 'Remove tag rule', onclick: () => {
        rows.splice(rows.indexOf(row), 1);
        row.el.remove();
      } }));
    rows.push(row);
    list.append(row.el);
    return row;
  }

  for (const rule of rules || []) add(rule);
  if (!rows.length) add();
  const el = h('fieldset', {},
    h('legend', { text: 'Tag filters (optional; all must match)' }),
    list,
    h('span', { class: 'error', dataset: { errorFor: 'tag_rules' } }),
    h('button', { type: 'button', text: 'Add tag rule', onclick: () => controlOf(add().tag).focus() }));

  function build() {
    const out = [];
    rows.forEach((row, i) => {
      const tag = fieldValue(row.tag);
      const index = tag ? out.length : `unused-${i}`;
      for (const key of ['tag', 'op', 'value']) setPath(row[key], `tag_rules.${index}.${key}`);
      if (!tag) return;
      const op = fieldValue(row.op);
      const raw = fieldValue(row.value);
      const rule = { tag, op };
      if (op === 'in' || op === 'not_in') rule.value = splitList(raw);
      else if (NUMERIC_OPS.includes(op)) rule.value = raw !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
      else if (op !== 'exists') rule.value = raw;
      out.push(rule);
    });
    return out;
  }
  return { el, build };
}

// --- real-time bidding -------------------------------------------------------------------------

const RTB_DEFAULTS = {
  url: null, method: 'POST', request_template: null, timeout_ms: 2000, floor_cents: 0,
  static_bid_cents: null, expose_caller_id: true, pings_per_minute: null,
  response_map: {
    bid_amount: 'bidAmount', destination: ['phoneNumber', 'sipAddress'], bid_id: 'bidId',
    expires_in: 'expireInSeconds', reject_reason: 'rejectReason', amount_in_cents: false,
  },
};

function templateText(template) {
  return Object.entries(template || {}).map(([name, text]) => `${name} = ${text}`).join('\n');
}

function parseTemplate(text) {
  const template = {};
  for (const line of (text || '').split('\n').map((l) => l.trim()).filter(Boolean)) {
    const at = line.indexOf('=');
    if (at < 1) return { problem: `"${line}": write name = template` };
    template[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return { template: Object.keys(template).length ? template : null };
}

/** A target's `rtb` block: off (a plain target), a static bidder, or a bidder with a URL. */
function rtbEditor(stored) {
  const r = { ...RTB_DEFAULTS, ...(stored || {}) };
  r.response_map = { ...RTB_DEFAULTS.response_map, ...(r.response_map || {}) };
  const settings = h('fieldset', { disabled: !stored },
    h('legend', { text: 'Bidder' }),
    h('div', { class: 'row' },
      field({ name: 'rtb.url', label: 'Bidder URL', type: 'url', maxlength: 2000, value: r.url || '', placeholder: 'https://bids.example.com/ping', hint: 'empty: a static bidder, which always bids the static bid' }),
      field({ name: 'rtb.method', label: 'Method', type: 'select', value: r.method, options: [['POST', 'POST (JSON body)'], ['GET', 'GET (query string)']] }),
      field({ name: 'rtb.timeout_ms', label: 'Answer within (ms)', type: 'number', min: 50, max: 10000, value: r.timeout_ms })),
    h('div', { class: 'row' },
      field({ name: 'rtb.floor_cents', label: 'Bids below are ignored ($)', type: 'number', min: 0, step: '0.01', value: dollarsOf(r.floor_cents) }),
      field({ name: 'rtb.static_bid_cents', label: 'Static bid ($)', type: 'number', min: 0, step: '0.01', value: dollarsOf(r.static_bid_cents), hint: 'only for a bidder without a URL' }),
      field({ name: 'rtb.pings_per_minute', label: 'Pings per minute at most', type: 'number', min: 1, max: 1000000, value: r.pings_per_minute ?? '', hint: 'empty: no limit' }),
      field({ name: 'rtb.expose_caller_id', label: 'Show this bidder the caller id (where the campaign allows)', type: 'checkbox', value: r.expose_caller_id })),
    field({ name: 'rtb.request_template', label: 'Request fields', type: 'textarea', value: templateText(r.request_template), placeholder: 'callerId = {caller_id}\nstate = {caller_state}', hint: 'one "name = template" a line, with tokens such as {caller_id}, {caller_state}, {tag.age}; empty: the standard request' }),
    h('fieldset', {},
      h('legend', { text: 'Reading the answer (JSON paths such as $.bid.amount)' }),
      h('div', { class: 'row' },
        field({ name: 'rtb.response_map.bid_amount', label: 'Bid amount', maxlength: 200, value: r.response_map.bid_amount }),
        field({ name: 'rtb.response_map.destination', label: 'Where to send the call', value: r.response_map.destination.join(', '), hint: 'one or more paths, comma-separated' }),
        field({ name: 'rtb.response_map.bid_id', label: 'Bid id', maxlength: 200, value: r.response_map.bid_id })),
      h('div', { class: 'row' },
        field({ name: 'rtb.response_map.expires_in', label: 'Expires in (seconds)', maxlength: 200, value: r.response_map.expires_in }),
        field({ name: 'rtb.response_map.reject_reason', label: 'Reject reason', maxlength: 200, value: r.response_map.reject_reason }),
        field({ name: 'rtb.response_map.amount_in_cents', label: 'Amounts are in cents', type: 'checkbox', value: r.response_map.amount_in_cents })),
      h('span', { class: 'error', dataset: { errorFor: 'rtb.response_map' } })));
  const use = field({ name: 'use_rtb', label: 'Make this target an RTB bidder (asked for a price before each call)', type: 'checkbox', value: Boolean(stored) });
  controlOf(use).addEventListener('change', (event) => { settings.disabled = !event.target.checked; });
  const el = section('Real-time bidding', Boolean(stored), use, settings,
    h('span', { class: 'error', dataset: { errorFor: 'rtb' } }));

  function validate(form) {
    if (!value(form, 'use_rtb')) return {};
    const problems = {};
    const hasUrl = Boolean(value(form, 'rtb.url'));
    const staticBid = value(form, 'rtb.static_bid_cents');
    if (hasUrl && staticBid !== '') problems['rtb.static_bid_cents'] = 'a bidder with a URL bids through it: leave this empty';
    if (!hasUrl && staticBid === '') problems['rtb.static_bid_cents'] = 'give a static bid, or the bidder URL';
    if (!hasUrl && !value(form, 'destination')) problems.destination = 'a static bidder needs a destination';
    const { problem } = parseTemplate(value(form, 'rtb.request_template'));
    if (problem) problems['rtb.request_template'] = problem;
    return problems;
  }

  function build(form) {
    if (!value(form, 'use_rtb')) return null;
    const staticBid = value(form, 'rtb.static_bid_cents');
    return {
      url: value(form, 'rtb.url') || null,
      method: value(form, 'rtb.method'),
      request_template: parseTemplate(value(form, 'rtb.request_template')).template,
      response_map: {
        bid_amount: value(form, 'rtb.response_map.bid_amount'),
        destination: splitList(value(form, 'rtb.response_map.destination')),
        bid_id: value(form, 'rtb.response_map.bid_id'),
        expires_in: value(form, 'rtb.response_map.expires_in'),
        reject_reason: value(form, 'rtb.response_map.reject_reason'),
        amount_in_cents: value(form, 'rtb.response_map.amount_in_cents'),
      },
      timeout_ms: intOrNull(value(form, 'rtb.timeout_ms')) ?? 2000,
      floor_cents: centsOf(value(form, 'rtb.floor_cents')),
      static_bid_cents: staticBid === '' ? null : centsOf(staticBid),
      expose_caller_id: value(form, 'rtb.expose_caller_id'),
      pings_per_minute: intOrNull(value(form, 'rtb.pings_per_minute')),
    };
  }
  return { el, build, validate };
}

// --- forms -----------------------------------------------------------------------------------

/** The buyer as a form: `buyer` is the stored one (edit) or null (create). */
export function buyerForm({ buyer, title, submit, save, done }) {
  const b = { name: '', enabled: true, timezone: 'UTC', caps: {}, pixels: [], ...(buyer || {}) };
  const titleId = buyer ? `edit-buyer-${buyer.id}` : 'new-buyer';
  const pixels = pixelsEditor(b.pixels);
  const form = h('form', { class: 'panel', 'aria-labelledby': titleId },
    h('h2', { id: titleId, text: title }),
    h('div', { class: 'row' },
      field({ name: 'name', label: 'Buyer name', required: true, maxlength: 120, value: b.name }),
      field({ name: 'timezone', label: 'Timezone (caps reset by it)', type: 'select', options: timezones().map((z) => [z, z]), value: b.timezone }),
      field({ name: 'enabled', label: 'Enabled (its targets take calls)', type: 'checkbox', value: b.enabled })),
    capsFields(b.caps || {}),
    section('Post-call pixels', b.pixels.length > 0, pixels.el),
    h('button', { type: 'submit', class: 'primary', text: submit }));
  onSubmit(form, {
    validate: () => pixels.validate(),
    build: (f) => ({
      name: value(f, 'name'),
      enabled: value(f, 'enabled'),
      timezone: value(f, 'timezone'),
      caps: capsOf(f),
      pixels: pixels.build(),
    }),
    send: save,
    done,
  });
  return form;
}

function destinationOf(text) {
  const compact = (text || '').replace(/[\s().-]/g, '');
  if (!compact) return null;
  if (compact.startsWith('sip')) return text.trim();
  return compact.startsWith('+') ? compact : `+1${compact}`;
}

/** The target as a form: `target` is the stored one (edit; its buyer stays) or null (create). */
export function targetForm({ target, buyers, title, submit, save, done }) {
  const t = {
    buyer_id: '', name: '', destination: '', priority: 1, weight: 1, enabled: true, caps: {},
    geo: {}, tag_rules: [], rtb: null, ...(target || {}),
  };
  const titleId = target ? `edit-target-${target.id}` : 'new-target';
  const schedule = scheduleEditor(target ? target.schedule : undefined);
  const tagRules = tagRulesEditor(t.tag_rules);
  const rtb = rtbEditor(t.rtb);
  const geo = t.geo || {};
  const form = h('form', { class: 'panel', 'aria-labelledby': titleId },
    h('h2', { id: titleId, text: title }),
    h('div', { class: 'row' },
      field({ name: 'buyer_id', label: 'Buyer', type: 'select', required: true, value: t.buyer_id, disabled: Boolean(target), options: choices(buyers, 'Choose a buyer…'), hint: target ? 'a target stays with its buyer' : null }),
      field({ name: 'name', label: 'Target name', required: true, maxlength: 120, value: t.name }),
      field({ name: 'destination', label: 'Destination (phone or SIP URI)', placeholder: '+14155550100', pattern: `${E164_PATTERN}|sips?:.+`, value: t.destination || '', hint: t.rtb ? 'for a bidder: used when its bid names no number' : null })),
    h('div', { class: 'row' },
      field({ name: 'priority', label: 'Priority (1 first)', type: 'number', min: 1, max: 100, value: t.priority }),
      field({ name: 'weight', label: 'Weight', type: 'number', min: 1, max: 1000, value: t.weight }),
      field({ name: 'enabled', label: 'Enabled', type: 'checkbox', value: t.enabled })),
    capsFields(t.caps || {}),
    schedule.el,
    h('fieldset', {},
      h('legend', { text: 'Geo filters (empty: anywhere)' }),
      h('div', { class: 'row' },
        field({ name: 'geo.states', label: 'States', placeholder: 'CA TX', hint: 'two-letter codes', pattern: '\\s*([A-Za-z]{2}[\\s,]*)*', value: (geo.states || []).join(' ') }),
        field({ name: 'geo.area_codes', label: 'Area codes', placeholder: '415 212', pattern: '\\s*([2-9][0-9]{2}[\\s,]*)*', value: (geo.area_codes || []).join(' ') }),
        field({ name: 'geo.countries', label: 'Countries', placeholder: 'US', pattern: '\\s*([A-Za-z]{2}[\\s,]*)*', value: (geo.countries || []).join(' ') }),
        field({ name: 'geo.zip_prefixes', label: 'ZIP prefixes', placeholder: '941 100', pattern: '\\s*([0-9]{1,5}[\\s,]*)*', value: (geo.zip_prefixes || []).join(' ') })),
      h('span', { class: 'error', dataset: { errorFor: 'geo' } })),
    tagRules.el,
    rtb.el,
    h('button', { type: 'submit', class: 'primary', text: submit }));
  onSubmit(form, {
    validate: (f) => {
      const problems = { ...schedule.validate(f), ...rtb.validate(f) };
      if (!value(f, 'use_rtb') && !value(f, 'destination')) {
        problems.destination = 'give a phone number or SIP URI (or make the target an RTB bidder)';
      }
      return problems;
    },
    build: (f) => ({
      buyer_id: target ? target.buyer_id : value(f, 'buyer_id'),
      name: value(f, 'name'),
      destination: destinationOf(value(f, 'destination')),
      priority: intOrNull(value(f, 'priority')) ?? 1,
      weight: intOrNull(value(f, 'weight')) ?? 1,
      enabled: value(f, 'enabled'),
      caps: capsOf(f),
      schedule: schedule.build(f),
      geo: {
        states: splitList(value(f, 'geo.states')).map((s) => s.toUpperCase()),
        area_codes: splitList(value(f, 'geo.area_codes')),
        countries: splitList(value(f, 'geo.countries')).map((s) => s.toUpperCase()),
        zip_prefixes: splitList(value(f, 'geo.zip_prefixes')),
      },
      tag_rules: tagRules.build(),
      rtb: rtb.build(f),
    }),
    send: save,
    done,
  });
  return form;
}

// --- pages -----------------------------------------------------------------------------------

const status = (item) => badge(item.enabled === false ? 'disabled' : 'enabled');

function rowActions(kind, item, toggle) {
  const enabled = item.enabled !== false;
  return h('div', { class: 'actions' },
    h('a', { class: 'button', href: `#/buyers/${kind}/${encodeURIComponent(item.id)}`, 'aria-label': `Edit ${item.name}`, text: 'Edit' }),
    h('button', { type: 'button', onclick: () => toggle(item), 'aria-label': `${enabled ? 'Disable' : 'Enable'} ${item.name}`, text: enabled ? 'Disable' : 'Enable' }));
}

export async function buyersPage(view, params) {
  if (params && params[0] === 'buyer' && params[1]) return buyerEditPage(view, params[1]);
  if (params && params[0] === 'target' && params[1]) return targetEditPage(view, params[1]);
  const [{ buyers }, { targets }, usage] = await Promise.all([
    api.get('/buyers'), api.get('/targets'), api.get('/caps/usage'),
  ]);
  const reload = () => {
    view.replaceChildren();
    return buyersPage(view);
  };

  async function toggle(path, item, body) {
    const enabled = item.enabled === false;
    try {
      await api.put(`/${path}/${encodeURIComponent(item.id)}`, body(item, { enabled }));
      toast(`${item.name} ${enabled ? 'enabled' : 'disabled'}`);
      await reload();
    } catch (err) {
      toast(`Could not change ${item.name}: ${err.message}`);
    }
  }
  const toggleBuyer = (b) => toggle('buyers', b, buyerBody);
  const toggleTarget = (t) => toggle('targets', t, targetBody);

  const newBuyer = buyerForm({
    buyer: null,
    title: 'New buyer',
    submit: 'Create buyer',
    save: (body) => api.post('/buyers', body),
    done: (result) => { toast(`Buyer ${result.buyer.name} created`); reload(); },
  });
  const newTarget = targetForm({
    target: null,
    buyers,
    title: 'New target',
    submit: 'Create target',
    save: (body) => api.post('/targets', body),
    done: (result) => { toast(`Target ${result.target.name} created`); reload(); },
  });

  view.append(
    h('h1', { text: 'Buyers & targets' }),
    h('h2', { text: 'Buyers' }),
    table([
      { label: 'Buyer', value: (b) => h('a', { href: `#/buyers/buyer/${encodeURIComponent(b.id)}`, text: b.name }) },
      { label: 'Status', value: status },
      { label: 'Timezone', value: (b) => b.timezone },
      { label: 'Caps used (this hour, day, month)', value: (b) => capUsage(b.caps, usage.buyers[b.id], b.name) },
      { label: 'Targets', value: (b) => targets.filter((t) => t.buyer_id === b.id).length, num: true },
      { label: 'Actions', value: (b) => rowActions('buyer', b, toggleBuyer) },
    ], buyers, { label: 'Buyers', empty: 'No buyers yet: create one below.' }),
    h('h2', { text: 'Targets' }),
    table([
      { label: 'Target', value: (t) => h('a', { href: `#/buyers/target/${encodeURIComponent(t.id)}`, text: t.name }) },
      { label: 'Status', value: status },
      { label: 'Buyer', value: (t) => nameOf(buyers, t.buyer_id) },
      { label: 'Destination', value: (t) => (t.rtb ? `RTB bidder${t.rtb.url ? '' : ' (static)'}${t.destination ? `, ${t.destination}` : ''}` : t.destination || '') },
      { label: 'Priority / weight', value: (t) => `${t.priority} / ${t.weight}` },
      { label: 'Live / concurrency cap', value: (t) => `${(usage.targets[t.id] || {}).concurrency || 0} / ${(t.caps && t.caps.concurrency) || '∞'}` },
      { label: 'Caps used', value: (t) => capUsage(t.caps, usage.targets[t.id], t.name) },
      { label: 'Schedule', value: (t) => describeSchedule(t.schedule) },
      { label: 'Geo', value: (t) => describeGeo(t.geo) },
      { label: 'Actions', value: (t) => rowActions('target', t, toggleTarget) },
    ], targets, { label: 'Targets', empty: 'No targets yet.' }),
    newBuyer,
    buyers.length ? newTarget : h('p', { class: 'panel hint', text: 'Create a buyer first, then its targets.' }));
  return null;
}

function changedLine(item) {
  return h('p', { class: 'hint', text: `Created ${new Date(item.created_at).toLocaleString()}, last changed ${new Date(item.updated_at).toLocaleString()}.` });
}

async function buyerEditPage(view, buyerId) {
  const { buyer } = await api.get(`/buyers/${encodeURIComponent(buyerId)}`);
  document.title = `${buyer.name} · Buyers & targets · Pay-per-call`;
  const form = buyerForm({
    buyer,
    title: `Edit ${buyer.name}`,
    submit: 'Save buyer',
    save: (body) => api.put(`/buyers/${encodeURIComponent(buyer.id)}`, body),
    done: (result) => {
      toast(`Buyer ${result.buyer.name} saved`);
      window.location.hash = '#/buyers';
    },
  });
  view.append(
    h('p', {}, h('a', { href: '#/buyers', text: '← Buyers & targets' })),
    h('h1', { text: buyer.name }),
    changedLine(buyer),
    form);
  return null;
}

async function targetEditPage(view, targetId) {
  const [{ target }, { buyers }] = await Promise.all([
    api.get(`/targets/${encodeURIComponent(targetId)}`), api.get('/buyers'),
  ]);
  document.title = `${target.name} · Buyers & targets · Pay-per-call`;
  const form = targetForm({
    target,
    buyers,
    title: `Edit ${target.name}`,
    submit: 'Save target',
    save: (body) => api.put(`/targets/${encodeURIComponent(target.id)}`, body),
    done: (result) => {
      toast(`Target ${result.target.name} saved`);
      window.location.hash = '#/buyers';
    },
  });
  view.append(
    h('p', {}, h('a', { href: '#/buyers', text: '← Buyers & targets' })),
    h('h1', { text: target.name }),
    h('p', { class: 'hint', text: `A target of ${nameOf(buyers, target.buyer_id)}.` }),
    changedLine(target),
    form);
  return null;
}
