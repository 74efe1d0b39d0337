// Campaigns: list, create and edit (routing plan, strategy, conversion, payouts, duplicates,
// recording, IVR qualification tree, fallback, ring tree), enable/disable.

import * as api from '../api.js';
import {
  E164_PATTERN, badge, centsOf, dollarsOf, e164Of, field, h, intOrNull, money, nameOf, onSubmit,
  section, splitList, table, toast, value,
} from '../ui.js';
import { ivrEditor } from './ivr.js';
import { pixelsEditor } from './pixels.js';

/** The campaign as PUT wants it: its settings without the read-only fields. */
export function campaignBody(campaign, changes = {}) {
  const { id, created_at: created, updated_at: updated, ...body } = campaign;
  return { ...body, ...changes };
}

const DEFAULTS = {
  name: '', vertical: null, status: 'active', strategy: 'priority', plan: [],
  conversion: { kind: 'duration', buffer_seconds: 90, tag: null, value: null },
  payout_cents: 0, revenue_cents: 0, duplicate_window_days: 30, duplicates_pay: false,
  recording: false, consent_message: 'This call may be recorded for quality and training purposes.',
  fallback_number: null,
  fallback_message: 'We are sorry, nobody is available to take your call right now. Please try again later.',
  blocklist: [], caller_id: 'caller', ring_timeout_seconds: 20, max_attempts: 3, max_ring_seconds: 90,
  ivr: null,
  rtb: { deadline_ms: 2000, margin: null, hold_seconds: 60, expose_caller_id: false, publisher_pings_per_minute: 600 },
  pixels: [],
};

/** Targets to try: every target, the plan's first (in its order), checked with its settings. */
function planEditor(plan, targets, buyers) {
  if (!targets.length) {
    return { el: h('p', { class: 'hint', text: 'No targets yet: create buyers and targets first.' }), build: () => plan };
  }
  const inPlan = new Map(plan.map((entry) => [entry.target_id, entry]));
  const known = new Set(targets.map((t) => t.id));
  const rows = [
    ...plan.map((entry) => targets.find((t) => t.id === entry.target_id) || { id: entry.target_id, name: entry.target_id, priority: 1, weight: 1, missing: true }),
    ...targets.filter((t) => !inPlan.has(t.id)),
  ];
  const slots = new Map(rows.map((t) => [t.id, h('span', { class: 'error', dataset: { errorFor: `plan-row.${t.id}` } })]));
  const el = h('fieldset', {},
    h('legend', { text: 'Routing plan: targets to try' }),
    table([
      { label: 'Use', value: (t) => h('input', { type: 'checkbox', name: `use.${t.id}`, checked: inPlan.has(t.id), 'aria-label': `Use ${t.name}` }) },
      { label: 'Target', value: (t) => (t.missing ? `${t.id} (deleted)` : [t.name, t.buyer_id ? ` (${nameOf(buyers, t.buyer_id)})` : ''].join('')) },
      { label: 'Priority', value: (t) => h('input', { type: 'number', name: `priority.${t.id}`, min: 1, max: 100, value: inPlan.get(t.id)?.priority ?? '', placeholder: String(t.priority), 'aria-label': `Priority of ${t.name}`, style: 'width:6em' }) },
      { label: 'Weight', value: (t) => h('input', { type: 'number', name: `weight.${t.id}`, min: 1, max: 1000, value: inPlan.get(t.id)?.weight ?? '', placeholder: String(t.weight), 'aria-label': `Weight of ${t.name}`, style: 'width:6em' }) },
      { label: '', value: (t) => slots.get(t.id) },
    ], rows, { label: 'Routing plan' }),
    h('span', { class: 'hint', text: 'Empty priority or weight: the target\'s own.' }),
    h('span', { class: 'error', dataset: { errorFor: 'plan' } }));

  function build(form) {
    const used = rows.filter((t) => value(form, `use.${t.id}`));
    // The API names a plan entry by its index (plan.0.target_id): point each row's slot at it.
    for (const t of rows) slots.get(t.id).dataset.errorFor = `plan-row.${t.id}`;
    used.forEach((t, index) => { slots.get(t.id).dataset.errorFor = `plan.${index}`; });
    return used.map((t) => {
      const entry = { target_id: t.id };
      const priority = intOrNull(value(form, `priority.${t.id}`));
      const weight = intOrNull(value(form, `weight.${t.id}`));
      if (priority !== null) entry.priority = priority;
      if (weight !== null) entry.weight = weight;
      return entry;
    });
  }
  return { el, build, known };
}

/**
 * The whole campaign as a form. `campaign`: the stored campaign (edit) or null (create).
 * Returns the form; `save(body)` sends it.
 */
export function campaignForm({ campaign, targets, buyers, title, submit, save, done }) {
  const c = { ...DEFAULTS, ...(campaign || {}) };
  c.conversion = { ...DEFAULTS.conversion, ...(c.conversion || {}) };
  c.rtb = { ...DEFAULTS.rtb, ...(c.rtb || {}) };
  const editing = Boolean(campaign);
  const titleId = `campaign-form-${editing ? 'edit' : 'new'}`;
  const plan = planEditor(c.plan, targets, buyers);
  const ivr = ivrEditor(c.ivr);
  const pixels = pixelsEditor(c.pixels);
  const margin = c.rtb.margin || { kind: '', value: '' };
  const marginValue = margin.kind === 'percent' || margin.kind === '' ? margin.value : dollarsOf(margin.value);

  const form = h('form', { class: 'panel', 'aria-labelledby': titleId },
    h('h2', { id: titleId, text: title }),
    h('div', { class: 'row' },
      field({ name: 'name', label: 'Campaign name', required: true, maxlength: 120, value: c.name }),
      field({ name: 'vertical', label: 'Vertical', maxlength: 60, placeholder: 'Medicare', value: c.vertical || '' }),
      field({ name: 'strategy', label: 'Routing strategy', type: 'select', value: c.strategy, options: [['priority', 'Priority + weight'], ['round_robin', 'Round robin'], ['simultaneous', 'Simultaneous offer']] }),
      field({ name: 'status', label: 'Status', type: 'select', value: c.status, options: [['active', 'Active'], ['paused', 'Paused']] })),
    h('div', { class: 'row' },
      field({ name: 'revenue_cents', label: 'Revenue per converted call ($)', type: 'number', min: 0, step: '0.01', value: dollarsOf(c.revenue_cents) }),
      field({ name: 'payout_cents', label: 'Payout per converted call ($)', type: 'number', min: 0, step: '0.01', value: dollarsOf(c.payout_cents) }),
      field({ name: 'conversion.buffer_seconds', label: 'Conversion after (seconds connected)', type: 'number', min: 0, max: 7200, value: c.conversion.buffer_seconds }),
      field({ name: 'duplicate_window_days', label: 'Duplicate window (days)', type: 'number', min: 0, max: 365, value: c.duplicate_window_days })),
    h('div', { class: 'row' },
      field({ name: 'fallback_number', label: 'Fallback number (optional)', pattern: E164_PATTERN, placeholder: '+18005550199', value: c.fallback_number || '' }),
      field({ name: 'max_attempts', label: 'Targets tried at most', type: 'number', min: 1, max: 10, value: c.max_attempts }),
      field({ name: 'recording', label: 'Record calls', type: 'checkbox', value: c.recording }),
      field({ name: 'duplicates_pay', label: 'Duplicates are paid', type: 'checkbox', value: c.duplicates_pay })),
    plan.el,
    section('Conversion', editing,
      h('div', { class: 'row' },
        field({ name: 'conversion.kind', label: 'Converted when', type: 'select', value: c.conversion.kind, options: [['duration', 'connected long enough'], ['tag', 'a tag has a value']] }),
        field({ name: 'conversion.tag', label: 'Conversion tag', maxlength: 64, value: c.conversion.tag || '', placeholder: 'sale' }),
        field({ name: 'conversion.value', label: 'Conversion tag value', maxlength: 64, value: c.conversion.value ?? '', placeholder: 'yes' })),
      h('span', { class: 'error', dataset: { errorFor: 'conversion' } })),
    section('Calls: ringing, caller id, messages, blocklist', editing,
      h('div', { class: 'row' },
        field({ name: 'ring_timeout_seconds', label: 'Ring each target (seconds)', type: 'number', min: 5, max: 60, value: c.ring_timeout_seconds }),
        field({ name: 'max_ring_seconds', label: 'Ring in all at most (seconds)', type: 'number', min: 10, max: 600, value: c.max_ring_seconds }),
        field({ name: 'caller_id', label: 'Caller id shown to buyers', type: 'select', value: c.caller_id, options: [['caller', 'the caller\'s number'], ['tracking_number', 'the tracking number']] })),
      h('div', { class: 'row' },
        field({ name: 'consent_message', label: 'Recording notice', type: 'textarea', maxlength: 500, value: c.consent_message }),
        field({ name: 'fallback_message', label: 'Fallback message (when nobody takes the call)', type: 'textarea', maxlength: 500, value: c.fallback_message })),
      field({ name: 'blocklist', label: 'Blocked callers', type: 'textarea', value: (c.blocklist || []).join('\n'), hint: 'E.164 numbers or +prefixes, one a line (e.g. +1900)' })),
    section('IVR qualification', editing || Boolean(c.ivr), ivr.el),
    section('Ring tree (real-time bidding)', editing && Boolean(c.rtb.margin),
      h('div', { class: 'row' },
        field({ name: 'rtb.deadline_ms', label: 'Auction deadline (ms)', type: 'number', min: 100, max: 5000, value: c.rtb.deadline_ms }),
        field({ name: 'rtb.hold_seconds', label: 'Hold a publisher\'s bid (seconds)', type: 'number', min: 5, max: 900, value: c.rtb.hold_seconds }),
        field({ name: 'rtb.publisher_pings_per_minute', label: 'Publisher pings per minute', type: 'number', min: 1, max: 100000, value: c.rtb.publisher_pings_per_minute })),
      h('div', { class: 'row' },
        field({ name: 'rtb.margin.kind', label: 'Publisher offer', type: 'select', value: margin.kind, options: [['', 'the campaign payout'], ['percent', 'bid minus a percentage'], ['fixed', 'bid minus a fixed amount'], ['fixed_payout', 'a fixed payout']] }),
        field({ name: 'rtb.margin.value', label: 'Margin (% or $)', type: 'number', min: 0, step: '0.01', value: marginValue ?? '' }),
        field({ name: 'rtb.expose_caller_id', label: 'Show bidders the caller id', type: 'checkbox', value: c.rtb.expose_caller_id })),
      h('span', { class: 'error', dataset: { errorFor: 'rtb' } }),
      h('span', { class: 'error', dataset: { errorFor: 'rtb.margin' } })),
    section('Post-call pixels', editing && c.pixels.length > 0, pixels.el),
    h('button', { type: 'submit', class: 'primary', text: submit }));

  onSubmit(form, {
    validate: (f) => {
      const problems = { ...ivr.validate(), ...pixels.validate() };
      const revenue = Number(value(f, 'revenue_cents'));
      if (Number(value(f, 'payout_cents')) > revenue && revenue > 0) {
        problems.payout_cents = 'the payout is above the revenue';
      }
      if (value(f, 'conversion.kind') === 'tag' && !value(f, 'conversion.tag')) {
        problems['conversion.tag'] = 'name the tag that marks a conversion';
      }
      if (value(f, 'rtb.margin.kind') && value(f, 'rtb.margin.value') === '') {
        problems['rtb.margin.value'] = 'give the margin';
      }
      const badBlock = splitList(value(f, 'blocklist')).find((n) => !/^\+\d{1,15}$/.test(n));
      if (badBlock) problems.blocklist = `${badBlock}: use +digits, e.g. +1900`;
      return problems;
    },
    build: (f) => {
      const marginKind = value(f, 'rtb.margin.kind');
      const marginRaw = value(f, 'rtb.margin.value');
      const conversionKind = value(f, 'conversion.kind');
      return {
        name: value(f, 'name'),
        vertical: value(f, 'vertical') || null,
        status: value(f, 'status'),
        strategy: value(f, 'strategy'),
        plan: plan.build(f),
        conversion: {
          kind: conversionKind,
          buffer_seconds: intOrNull(value(f, 'conversion.buffer_seconds')) ?? 90,
          tag: value(f, 'conversion.tag') || null,
          value: conversionKind === 'tag' || value(f, 'conversion.value') ? value(f, 'conversion.value') : null,
        },
        payout_cents: centsOf(value(f, 'payout_cents')),
        revenue_cents: centsOf(value(f, 'revenue_cents')),
        duplicate_window_days: intOrNull(value(f, 'duplicate_window_days')) ?? 30,
        duplicates_pay: value(f, 'duplicates_pay'),
        recording: value(f, 'recording'),
        consent_message: value(f, 'consent_message'),
        fallback_number: e164Of(value(f, 'fallback_number')),
        fallback_message: value(f, 'fallback_message'),
        blocklist: splitList(value(f, 'blocklist')),
        caller_id: value(f, 'caller_id'),
        ring_timeout_seconds: intOrNull(value(f, 'ring_timeout_seconds')) ?? 20,
        max_attempts: intOrNull(value(f, 'max_attempts')) ?? 3,
        max_ring_seconds: intOrNull(value(f, 'max_ring_seconds')) ?? 90,
        ivr: ivr.build(),
        rtb: {
          deadline_ms: intOrNull(value(f, 'rtb.deadline_ms')) ?? 2000,
          margin: marginKind
            ? { kind: marginKind, value: marginKind === 'percent' ? Number(marginRaw) : centsOf(marginRaw) }
            : null,
          hold_seconds: intOrNull(value(f, 'rtb.hold_seconds')) ?? 60,
          expose_caller_id: value(f, 'rtb.expose_caller_id'),
          publisher_pings_per_minute: intOrNull(value(f, 'rtb.publisher_pings_per_minute')) ?? 600,
        },
        pixels: pixels.build(),
      };
    },
    send: save,
    done,
  });
  return form;
}

export async function campaignsPage(view, params) {
  if (params && params[0]) return campaignEditPage(view, params[0]);
  const [{ campaigns }, { targets }, { buyers }, { numbers }] = await Promise.all([
    api.get('/campaigns'), api.get('/targets'), api.get('/buyers'), api.get('/numbers'),
  ]);
  const reload = () => {
    view.replaceChildren();
    return campaignsPage(view);
  };

  async function toggle(campaign) {
    const status = campaign.status === 'active' ? 'paused' : 'active';
    try {
      await api.put(`/campaigns/${encodeURIComponent(campaign.id)}`, campaignBody(campaign, { status }));
      toast(`${campaign.name} ${status === 'active' ? 'enabled' : 'paused'}`);
      await reload();
    } catch (err) {
      toast(`Could not change ${campaign.name}: ${err.message}`);
    }
  }

  const form = campaignForm({
    campaign: null,
    targets,
    buyers,
    title: 'New campaign',
    submit: 'Create campaign',
    save: (body) => api.post('/campaigns', body),
    done: (result) => { toast(`Campaign ${result.campaign.name} created`); reload(); },
  });

  view.append(
    h('h1', { text: 'Campaigns' }),
    table([
      { label: 'Campaign', value: (c) => h('a', { href: `#/campaigns/${encodeURIComponent(c.id)}`, text: c.name }) },
      { label: 'Status', value: (c) => badge(c.status) },
      { label: 'Strategy', value: (c) => c.strategy.replace('_', ' ') },
      { label: 'Plan', value: (c) => c.plan.map((e) => nameOf(targets, e.target_id)).join(', ') || '—' },
      { label: 'Revenue / payout', value: (c) => `${money(c.revenue_cents)} / ${money(c.payout_cents)}` },
      { label: 'IVR', value: (c) => (c.ivr ? `${Object.keys(c.ivr.nodes || {}).length} questions` : '—') },
      { label: 'Numbers', value: (c) => numbers.filter((n) => n.campaign_id === c.id).map((n) => n.number).join(', ') || '—' },
      { label: 'Actions', value: (c) => h('div', { class: 'actions' },
        h('a', { class: 'button', href: `#/campaigns/${encodeURIComponent(c.id)}`, 'aria-label': `Edit ${c.name}`, text: 'Edit' }),
        h('button', { type: 'button', onclick: () => toggle(c), 'aria-label': `${c.status === 'active' ? 'Pause' : 'Enable'} ${c.name}`, text: c.status === 'active' ? 'Pause' : 'Enable' })) },
    ], campaigns, { label: 'Campaigns', empty: 'No campaigns yet: create one below.' }),
    form);
  return null;
}

async function campaignEditPage(view, campaignId) {
  const [{ campaign }, { targets }, { buyers }] = await Promise.all([
    api.get(`/campaigns/${encodeURIComponent(campaignId)}`), api.get('/targets'), api.get('/buyers'),
  ]);
  document.title = `${campaign.name} · Campaigns · Pay-per-call`;
  const form = campaignForm({
    campaign,
    targets,
    buyers,
    title: `Edit ${campaign.name}`,
    submit: 'Save campaign',
    save: (body) => api.put(`/campaigns/${encodeURIComponent(campaign.id)}`, body),
    done: (result) => {
      toast(`Campaign ${result.campaign.name} saved`);
      window.location.hash = '#/campaigns';
    },
  });
  view.append(
    h('p', {}, h('a', { href: '#/campaigns', text: '← Campaigns' })),
    h('h1', { text: campaign.name }),
    h('p', { class: 'hint', text: `Created ${new Date(campaign.created_at).toLocaleString()}, last changed ${new Date(campaign.updated_at).toLocaleString()}.` }),
    form);
  return null;
}
