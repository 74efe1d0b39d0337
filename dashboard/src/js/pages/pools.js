// DNI number pools: list with their public keys and snippet, and each pool's statistics.

import * as api from '../api.js';
import { h, nameOf, percent, table } from '../ui.js';

export async function poolsPage(view) {
  const [{ pools }, { campaigns }] = await Promise.all([api.get('/pools'), api.get('/campaigns')]);
  const stats = h('div', { 'aria-live': 'polite' });

  async function showStats(pool) {
    const { stats: s } = await api.get(`/pools/${encodeURIComponent(pool.id)}/stats`);
    stats.replaceChildren(h('section', { class: 'panel', 'aria-labelledby': 'pool-stats' },
      h('h2', { id: 'pool-stats', text: `${pool.name}: last 24 hours` }),
      h('dl', { class: 'detail' }, Object.entries(s).map(([k, v]) => [
        h('dt', { text: k.replaceAll('_', ' ') }),
        h('dd', { text: typeof v === 'number' && k.includes('rate') ? percent(v) : typeof v === 'object' ? JSON.stringify(v) : String(v) }),
      ]))));
  }

  const snippet = (pool) => `<script async src="${location.origin}/dni.js" data-pool-key="${pool.public_key}" data-number="(800) 555-0100"></script>`;
  view.append(
    h('h1', { text: 'Number pools (DNI)' }),
    h('p', { class: 'hint', text: 'Pools are created through the API (POST /api/v1/pools); each hands web visitors their own number.' }),
    table([
      { label: 'Pool', value: (p) => p.name },
      { label: 'Campaign', value: (p) => nameOf(campaigns, p.campaign_id) },
      { label: 'Numbers', value: (p) => (p.numbers || []).length, num: true },
      { label: 'Snippet', value: (p) => h('code', { text: snippet(p) }) },
      { label: 'Actions', value: (p) => h('button', { type: 'button', 'aria-label': `Statistics of ${p.name}`, text: 'Statistics', onclick: () => showStats(p) }) },
    ], pools, { label: 'Pools', empty: 'No pools yet.' }),
    stats);
}
