// The bid log of real-time bidding: filters, cursor pages, CSV export.

import * as api from '../api.js';
import { badge, field, h, money, onSubmit, table, toast, today, value, when } from '../ui.js';

const OUTCOMES = ['', 'won', 'lost', 'below_floor', 'timeout', 'error', 'rejected', 'capped'];

export async function bidsPage(view, _params, _me, search) {
  const results = h('div', { 'aria-live': 'polite' });
  const pager = h('div', { class: 'toolbar' });
  const form = h('form', { class: 'panel toolbar', role: 'search', 'aria-label': 'Bid filters' },
    field({ name: 'from', label: 'From', type: 'date', value: today(), required: true }),
    field({ name: 'to', label: 'To', type: 'date', value: today(), required: true }),
    field({ name: 'outcome', label: 'Outcome', type: 'select', options: OUTCOMES.map((o) => [o, o || 'All']) }),
    field({ name: 'auction_id', label: 'Auction', value: search.get('auction_id') || '' }),
    h('button', { type: 'submit', class: 'primary', text: 'Show bids' }),
    h('button', { type: 'button', text: 'Export CSV', onclick: async () => {
      try {
        await api.download(`/bids/export${api.query(filters(form))}`, 'bids.csv');
      } catch (err) {
        toast(`Export failed: ${err.message}`);
      }
    } }));
  const filters = (f) => ({ from: value(f, 'from'), to: value(f, 'to'), outcome: value(f, 'outcome'), auction_id: value(f, 'auction_id') });

  async function load(q, cursor) {
    const page = await api.get(`/bids${api.query({ ...q, cursor })}`);
    results.replaceChildren(table([
      { label: 'At', value: (b) => when(b.started_at) },
      { label: 'Kind', value: (b) => b.kind },
      { label: 'Bidder', value: (b) => b.bidder_id },
      { label: 'Outcome', value: (b) => badge(b.outcome) },
      { label: 'Amount', value: (b) => (b.amount_cents == null ? '' : money(b.amount_cents)), num: true },
      { label: 'Latency', value: (b) => (b.latency_ms == null ? '' : `${Math.round(b.latency_ms)} ms`), num: true },
      { label: 'Call', value: (b) => (b.call_sid ? h('a', { href: `#/calls/${b.call_sid}`, text: b.call_sid.slice(0, 10) }) : '') },
      { label: 'Reason', value: (b) => b.reason || '' },
    ], page.bids, { label: 'Bids', empty: 'No bids match.' }));
    pager.replaceChildren(page.cursor ? h('button', { type: 'button', text: 'Next page', onclick: () => load(q, page.cursor) }) : '');
  }

  onSubmit(form, {
    validate: (f) => (value(f, 'to') < value(f, 'from') ? { to: 'must not be before From' } : {}),
    build: filters,
    send: (q) => load(q, null),
    done: () => {},
  });
  view.append(h('h1', { text: 'Bids' }), form, results, pager);
  await load(filters(form), null);
}
