// Campaigns: list, create with a routing plan of existing targets, enable/disable.

import * as api from '../api.js';
import {
  E164_PATTERN, badge, centsOf, field, h, intOrNull, money, nameOf, onSubmit, table, toast, value,
} from '../ui.js';

/** The campaign as PUT wants it: its settings without the read-only fields. */
export function campaignBody(campaign, changes = {}) {
  const { id, created_at: created, updated_at: updated, ...body } = campaign;
  return { ...body, ...changes };
}

function planEditor(targets, buyers) {
  if (!targets.length) {
    return h('p', { class: 'hint', text: 'No targets yet: create buyers and targets first.' });
  }
  return h('fieldset', {},
    h('legend', { text: 'Routing plan: targets to try' }),
    table([
      { label: 'Use', value: (t) => h('input', { type: 'checkbox', name: `use.${t.id}`, 'aria-label': `Use ${t.name}` }) },
      { label: 'Target', value: (t) => `${t.name} (${nameOf(buyers, t.buyer_id)})` },
      { label: 'Priority', value: (t) => h('input', { type: 'number', name: `priority.${t.id}`, min: 1, max: 100, placeholder: String(t.priority), 'aria-label': `Priority of ${t.name}`, style: 'width:6em' }) },
      { label: 'Weight', value: (t) => h('input', { type: 'number', name: `weight.${t.id}`, min: 1, max: 1000, placeholder: String(t.weight), 'aria-label': `Weight of ${t.name}`, style: 'width:6em' }) },
    ], targets, { label: 'Routing plan' }),
    h('span', { class: 'error', dataset: { errorFor: 'plan' } }));
}

export async function campaignsPage(view) {
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

  const form = h('form', { class: 'panel', 'aria-labelledby': 'new-campaign' },
    h('h2', { id: 'new-campaign', text: 'New campaign' }),
    h('div', { class: 'row' },
      field({ name: 'name', label: 'Campaign name', required: true, maxlength: 120 }),
      field({ name: 'vertical', label: 'Vertical', maxlength: 60, placeholder: 'Medicare' }),
      field({ name: 'strategy', label: 'Routing strategy', type: 'select', options: [['priority', 'Priority + weight'], ['round_robin', 'Round robin'], ['simultaneous', 'Simultaneous offer']] }),
      field({ name: 'status', label: 'Status', type: 'select', options: [['active', 'Active'], ['paused', 'Paused']] })),
    h('div', { class: 'row' },
      field({ name: 'revenue_cents', label: 'Revenue per converted call ($)', type: 'number', min: 0, step: '0.01', value: '0' }),
      field({ name: 'payout_cents', label: 'Payout per converted call ($)', type: 'number', min: 0, step: '0.01', value: '0' }),
      field({ name: 'conversion.buffer_seconds', label: 'Conversion after (seconds connected)', type: 'number', min: 0, max: 7200, value: 90 }),
      field({ name: 'duplicate_window_days', label: 'Duplicate window (days)', type: 'number', min: 0, max: 365, value: 30 })),
    h('div', { class: 'row' },
      field({ name: 'fallback_number', label: 'Fallback number (optional)', pattern: E164_PATTERN, placeholder: '+18005550199' }),
      field({ name: 'max_attempts', label: 'Targets tried at most', type: 'number', min: 1, max: 10, value: 3 }),
      field({ name: 'recording', label: 'Record calls', type: 'checkbox' })),
    planEditor(targets, buyers),
    h('button', { type: 'submit', class: 'primary', text: 'Create campaign' }));
  onSubmit(form, {
    validate: (f) => {
      if (Number(value(f, 'payout_cents')) > Number(value(f, 'revenue_cents')) && Number(value(f, 'revenue_cents')) > 0) {
        return { payout_cents: 'the payout is above the revenue' };
      }
      return {};
    },
    build: (f) => {
      const plan = targets.filter((t) => value(f, `use.${t.id}`)).map((t) => {
        const entry = { target_id: t.id };
        const priority = intOrNull(value(f, `priority.${t.id}`));
        const weight = intOrNull(value(f, `weight.${t.id}`));
        if (priority !== null) entry.priority = priority;
        if (weight !== null) entry.weight = weight;
        return entry;
      });
      const fallback = value(f, 'fallback_number').replace(/[\s().-]/g, '');
      return {
        name: value(f, 'name'),
        vertical: value(f, 'vertical') || null,
        strategy: value(f, 'strategy'),
        status: value(f, 'status'),
        revenue_cents: centsOf(value(f, 'revenue_cents')),
        payout_cents: centsOf(value(f, 'payout_cents')),
        conversion: { kind: 'duration', buffer_seconds: intOrNull(value(f, 'conversion.buffer_seconds')) ?? 90 },
        duplicate_window_days: intOrNull(value(f, 'duplicate_window_days')) ?? 30,
        fallback_number: fallback ? (fallback.startsWith('+') ? fallback : `+1${fallback}`) : null,
        max_attempts: intOrNull(value(f, 'max_attempts')) ?? 3,
        recording: value(f, 'recording'),
        plan,
      };
    },
    send: (body) => api.post('/campaigns', body),
    done: (result) => { toast(`Campaign ${result.campaign.name} created`); reload(); },
  });

  view.append(
    h('h1', { text: 'Campaigns' }),
    table([
      { label: 'Campaign', value: (c) => c.name },
      { label: 'Status', value: (c) => badge(c.status) },
      { label: 'Strategy', value: (c) => c.strategy.replace('_', ' ') },
      { label: 'Plan', value: (c) => c.plan.map((e) => nameOf(targets, e.target_id)).join(', ') || '—' },
      { label: 'Revenue / payout', value: (c) => `${money(c.revenue_cents)} / ${money(c.payout_cents)}` },
      { label: 'Numbers', value: (c) => numbers.filter((n) => n.campaign_id === c.id).map((n) => n.number).join(', ') || '—' },
      { label: 'Actions', value: (c) => h('button', { type: 'button', onclick: () => toggle(c), 'aria-label': `${c.status === 'active' ? 'Pause' : 'Enable'} ${c.name}`, text: c.status === 'active' ? 'Pause' : 'Enable' }) },
    ], campaigns, { label: 'Campaigns', empty: 'No campaigns yet: create one below.' }),
    form);
}
