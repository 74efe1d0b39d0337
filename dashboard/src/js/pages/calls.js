// The call log (filters, cursor pages, CSV export) and one call's detail.

import * as api from '../api.js';
import {
  badge, choices, field, h, money, nameOf, onSubmit, table, toast, today, value, when,
} from '../ui.js';

const STATUSES = ['', 'ringing', 'in-progress', 'completed', 'busy', 'no-answer', 'failed', 'canceled'];

async function catalogue() {
  const [{ campaigns }, { targets }, { publishers }, { buyers }] = await Promise.all([
    api.get('/campaigns'), api.get('/targets'), api.get('/publishers'), api.get('/buyers'),
  ]);
  return { campaigns, targets, publishers, buyers };
}

export async function callsPage(view) {
  const names = await catalogue();
  const results = h('div', { 'aria-live': 'polite' });
  const pager = h('div', { class: 'toolbar' });
  const filters = h('form', { class: 'panel toolbar', role: 'search', 'aria-label': 'Call filters' },
    field({ name: 'from', label: 'From', type: 'date', value: today(), required: true }),
    field({ name: 'to', label: 'To', type: 'date', value: today(), required: true }),
    field({ name: 'campaign_id', label: 'Campaign', type: 'select', options: choices(names.campaigns, 'All') }),
    field({ name: 'publisher_id', label: 'Publisher', type: 'select', options: choices(names.publishers, 'All') }),
    field({ name: 'status', label: 'Status', type: 'select', options: STATUSES.map((s) => [s, s || 'All']) }),
    field({ name: 'converted', label: 'Converted', type: 'select', options: [['', 'All'], ['true', 'Yes'], ['false', 'No']] }),
    field({ name: 'limit', label: 'Per page', type: 'select', options: [['25', '25'], ['50', '50'], ['100', '100']], value: '50' }),
    h('button', { type: 'submit', class: 'primary', text: 'Show calls' }),
    h('button', { type: 'button', text: 'Export CSV', onclick: exportCsv }));
  let current = {};
  const cursors = [];

  function filtersOf(form) {
    const q = {};
    for (const name of ['from', 'to', 'campaign_id', 'publisher_id', 'status', 'converted', 'limit']) q[name] = value(form, name);
    return q;
  }

  async function exportCsv() {
    const { limit, ...q } = filtersOf(filters);
    try {
      await api.download(`/calls/export${api.query(q)}`, `calls-${q.from}-to-${q.to}.csv`);
    } catch (err) {
      toast(`Export failed: ${err.message}`);
    }
  }

  function show(page) {
    results.replaceChildren(table([
      { label: 'Started', value: (c) => h('a', { href: `#/calls/${encodeURIComponent(c.call_sid)}`, text: when(c.started_at) }) },
      { label: 'From', value: (c) => c.from },
      { label: 'To', value: (c) => c.to },
      { label: 'Campaign', value: (c) => nameOf(names.campaigns, c.campaign_id) },
      { label: 'Target', value: (c) => nameOf(names.targets, c.target_id) },
      { label: 'Status', value: (c) => badge(c.status) },
      { label: 'Duration', value: (c) => (c.duration_seconds == null ? '' : `${c.duration_seconds} s`), num: true },
      { label: 'Converted', value: (c) => (c.converted ? 'yes' : 'no') },
      { label: 'Revenue', value: (c) => money(c.revenue_cents), num: true },
      { label: 'Payout', value: (c) => money(c.payout_cents), num: true },
    ], page.calls, { label: 'Calls', empty: 'No calls match these filters.' }));
    pager.replaceChildren(
      h('span', { class: 'hint', text: `Page ${cursors.length + 1}` }),
      cursors.length ? h('button', { type: 'button', text: 'First page', onclick: () => load(null, true) }) : null,
      page.cursor ? h('button', { type: 'button', text: 'Next page', onclick: () => { cursors.push(page.cursor); load(page.cursor); } }) : null);
  }

  async function load(cursor, restart = false) {
    if (restart) cursors.length = 0;
    show(await api.get(`/calls${api.query({ ...current, cursor })}`));
  }

  onSubmit(filters, {
    validate: (f) => (value(f, 'to') < value(f, 'from') ? { to: 'must not be before From' } : {}),
    build: filtersOf,
    send: async (q) => {
      current = q;
      await load(null, true);
    },
    done: () => {},
  });
  view.append(h('h1', { text: 'Call log' }), filters, results, pager);
  current = filtersOf(filters);
  await load(null, true);
}

function timeline(call, names) {
  const routing = call.routing || { tried: [], excluded: {}, bids: [] };
  return [
    h('h2', { text: 'Targets tried' }),
    table([
      { label: 'Target', value: (t) => nameOf(names.targets, t.target_id) },
      { label: 'Destination', value: (t) => (names.targets.find((x) => x.id === t.target_id) || {}).destination || '' },
      { label: 'Outcome', value: (t) => badge(t.outcome || '') },
      { label: 'At', value: (t) => clock(t.at) },
    ], routing.tried || [], { label: 'Targets tried', empty: 'No target was dialled.' }),
    Object.keys(routing.excluded || {}).length
      ? h('p', {}, 'Left out: ', Object.entries(routing.excluded).map(([id, why]) => `${nameOf(names.targets, id)} (${why})`).join(', '))
      : null,
    h('h2', { text: 'Bids' }),
    table([
      { label: 'Bidder', value: (b) => nameOf(names.targets, b.target_id) },
      { label: 'Bid', value: (b) => money(b.amount_cents), num: true },
      { label: 'Publisher payout', value: (b) => money(b.payout_cents), num: true },
      { label: 'Bid id', value: (b) => b.bid_id || '' },
    ], routing.bids || [], { label: 'Bids', empty: routing.auction_id ? 'No valid bids.' : 'No auction for this call.' }),
    routing.auction_id ? h('p', {}, h('a', { href: `#/bids?auction_id=${encodeURIComponent(routing.auction_id)}`, text: 'Every bid of this auction' })) : null,
  ];
}

const clock = (iso) => (iso ? new Date(iso).toLocaleTimeString('en-US', { hour12: false }) : '');

/** The campaign's IVR tags: tag name → the question (prompt) that sets it. */
function ivrTags(campaign) {
  const out = new Map();
  for (const node of Object.values((campaign && campaign.ivr && campaign.ivr.nodes) || {})) out.set(node.tag, node.prompt);
  return out;
}

/** What happened to the call, in order: arrival, IVR answers, bids, targets tried, end. */
function callTimeline(call, names) {
  const routing = call.routing || { tried: [], bids: [] };
  const campaign = names.campaigns.find((c) => c.id === call.campaign_id);
  const asked = ivrTags(campaign);
  const events = [];
  const add = (at, kind, ...text) => events.push(h('li', { class: `event ${kind}`, dataset: { kind } },
    h('time', { datetime: at || '', text: at ? clock(at) : '' }),
    h('span', { class: 'what' }, ...text)));
  add(call.started_at, 'arrival', `Call from ${call.from} to ${call.to}`,
    call.source ? ` (source ${call.source})` : '',
    call.publisher_id ? ` via ${nameOf(names.publishers, call.publisher_id)}` : '',
    campaign ? `, campaign ${campaign.name}` : '', call.duplicate ? ' — duplicate' : '');
  for (const [tag, answer] of Object.entries(call.tags || {})) {
    if (!asked.has(tag)) continue;
    add(null, 'ivr', h('span', { class: 'hint', text: `IVR: ${asked.get(tag)} ` }), h('strong', { text: `${tag} = ${answer}` }));
  }
  if (routing.auction_id || (routing.bids || []).length) {
    const best = (routing.bids || [])[0];
    add(null, 'auction', `Auction: ${(routing.bids || []).length} valid bid(s)`,
      best ? `, best ${money(best.amount_cents)} from ${nameOf(names.targets, best.target_id)}` : '',
      routing.auction_id ? [' — ', h('a', { href: `#/bids?auction_id=${encodeURIComponent(routing.auction_id)}`, text: 'all bids of this auction' })] : '');
  }
  for (const [id, why] of Object.entries(routing.excluded || {})) add(null, 'excluded', `${nameOf(names.targets, id)} left out (${why})`);
  for (const t of routing.tried || []) {
    add(t.at, 'tried', `${nameOf(names.targets, t.target_id)}: `, badge(t.outcome || ''));
  }
  if (routing.fallback) add(null, 'fallback', 'Sent to the fallback');
  if (call.ended_at || call.status === 'completed') {
    const money_ = call.converted ? ` — converted: revenue ${money(call.revenue_cents)}, payout ${money(call.payout_cents)}` : ' — not converted';
    add(call.ended_at, 'end', `Ended (${call.status}`, call.duration_seconds == null ? '' : `, ${call.duration_seconds} s`,
      call.connected_seconds == null ? '' : `, ${call.connected_seconds} s connected`, `)${money_}`);
  }
  return h('section', { class: 'panel', 'aria-labelledby': 'timeline-title' },
    h('h2', { id: 'timeline-title', text: 'Timeline' }),
    h('ol', { class: 'timeline', 'aria-label': 'Timeline' }, events));
}

export async function callPage(view, [callSid]) {
  const [{ call }, names] = await Promise.all([api.get(`/calls/${encodeURIComponent(callSid)}`), catalogue()]);
  const tags = Object.entries(call.tags || {});
  view.append(
    h('p', {}, h('a', { href: '#/calls', text: '← Call log' })),
    h('h1', { text: `Call ${call.from} → ${call.to}` }),
    h('div', { class: 'grid2' },
      h('section', { class: 'panel', 'aria-label': 'Call' }, h('dl', { class: 'detail' },
        [
          ['Call id', call.call_sid], ['Started', when(call.started_at)], ['Ended', when(call.ended_at)],
          ['Status', call.status], ['Duration', call.duration_seconds == null ? '' : `${call.duration_seconds} s`],
          ['Connected', call.connected_seconds == null ? '' : `${call.connected_seconds} s`],
          ['Campaign', nameOf(names.campaigns, call.campaign_id)], ['Publisher', nameOf(names.publishers, call.publisher_id) || '(direct)'],
          ['Source', call.source || ''], ['Buyer', nameOf(names.buyers, call.buyer_id)], ['Target', nameOf(names.targets, call.target_id)],
          ['Duplicate', call.duplicate ? 'yes' : 'no'], ['Converted', call.converted ? 'yes' : 'no'],
          ['Revenue', money(call.revenue_cents)], ['Payout', money(call.payout_cents)],
        ].map(([k, v]) => [h('dt', { text: k }), h('dd', { text: v })]))),
      h('section', { class: 'panel', 'aria-label': 'Caller answers and tags' },
        h('h2', { text: 'Tags' }),
        tags.length ? h('dl', { class: 'detail' }, tags.map(([k, v]) => [h('dt', { text: k }), h('dd', { text: v })])) : h('p', { class: 'hint', text: 'No tags.' }),
        h('h2', { text: 'Recording' }),
        call.recording_url
          ? [h('audio', { controls: true, preload: 'none', src: call.recording_url, 'aria-label': 'Call recording' }),
            h('p', {}, h('a', { href: call.recording_url, target: '_blank', rel: 'noopener', text: `Recording (${call.recording_seconds || '?'} s)` }))]
          : h('p', { class: 'hint', text: 'No recording.' }))),
    callTimeline(call, names),
    ...timeline(call, names).filter(Boolean));
}
