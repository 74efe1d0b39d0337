// Today's performance: totals, per source and per publisher, best target, calls per hour,
// revenue per source, and calls in progress; refreshed every few seconds.

import * as api from '../api.js';
import { barChart } from '../charts.js';
import { h, money, nameOf, percent, table, today } from '../ui.js';

const DEFAULT_REFRESH_SECONDS = 15;

function refreshSeconds() {
  // Tests shorten the interval through sessionStorage; people get the default.
  const asked = Number(sessionStorage.getItem('ppc.refreshSeconds'));
  return asked > 0 ? asked : DEFAULT_REFRESH_SECONDS;
}

function card(label, text, key) {
  return h('div', { class: 'card' },
    h('div', { class: 'label', id: `card-${key}-label`, text: label }),
    h('div', { class: 'value', 'aria-labelledby': `card-${key}-label`, dataset: { metric: key }, text }));
}

export async function overviewPage(view) {
  const status = h('p', { class: 'hint', 'aria-live': 'polite' });
  const body = h('div');
  const refreshButton = h('button', { type: 'button', text: 'Refresh now' });
  view.append(
    h('h1', { text: "Today's performance" }),
    h('div', { class: 'toolbar' }, refreshButton, status),
    body);
  let names = null;

  async function load() {
    const day = today();
    const [hours, sources, publishers, live] = await Promise.all([
      api.get(`/reports/summary${api.query({ day, group_by: 'hour' })}`),
      api.get(`/reports/summary${api.query({ day, group_by: 'source' })}`),
      api.get(`/reports/summary${api.query({ day, group_by: 'publisher' })}`),
      api.get('/live'),
    ]);
    if (!names) {
      const [targets, pubs] = await Promise.all([api.get('/targets'), api.get('/publishers')]);
      names = { targets: targets.targets, publishers: pubs.publishers };
    }
    const t = hours.totals;
    const perHour = Array.from({ length: 24 }, (_, hour) => {
      const key = `${day}T${String(hour).padStart(2, '0')}:00Z`;
      const row = hours.groups.find((g) => g.key === key);
      return { label: String(hour).padStart(2, '0'), value: row ? row.calls : 0 };
    });
    const revenueBySource = sources.groups.map((g) => ({ label: g.key || '(none)', value: g.revenue_cents }));
    const groupColumns = (label, nameFor) => [
      { label, value: (r) => nameFor(r.key) },
      { label: 'Calls', value: (r) => r.calls, num: true },
      { label: 'Connected', value: (r) => r.connected, num: true },
      { label: 'Converted', value: (r) => r.converted, num: true },
      { label: 'Revenue', value: (r) => money(r.revenue_cents), num: true },
      { label: 'Payout', value: (r) => money(r.payout_cents), num: true },
      { label: 'Profit', value: (r) => money(r.profit_cents), num: true },
    ];
    body.replaceChildren(
      h('section', { class: 'cards', 'aria-label': 'Totals today' },
        card('Calls in progress', live.in_progress, 'in_progress'),
        card('Total calls', t.calls, 'calls'),
        card('Connected', t.connected, 'connected'),
        card('Converted', `${t.converted} (${percent(t.conversion_rate)})`, 'converted'),
        card('Revenue', money(t.revenue_cents), 'revenue'),
        card('Payout', money(t.payout_cents), 'payout'),
        card('Profit', money(t.profit_cents), 'profit'),
        card('Average call value', money(t.average_call_value_cents), 'average_call_value'),
        card('Best target', hours.best_target ? nameOf(names.targets, hours.best_target) : '—', 'best_target')),
      h('div', { class: 'grid2' },
        h('section', { class: 'panel', 'aria-label': 'Calls per hour' }, barChart('Calls per hour (UTC)', perHour)),
        h('section', { class: 'panel', 'aria-label': 'Revenue per source' },
          revenueBySource.length ? barChart('Revenue per source', revenueBySource, money) : h('p', { class: 'hint', text: 'No revenue yet today.' }))),
      h('h2', { text: 'Per source' }),
      table(groupColumns('Source', (k) => k || '(none)'), sources.groups, { label: 'Per source', empty: 'No calls today yet.' }),
      h('h2', { text: 'Per publisher' }),
      table(groupColumns('Publisher', (k) => (k ? nameOf(names.publishers, k) : '(direct)')), publishers.groups, { label: 'Per publisher', empty: 'No calls today yet.' }));
    status.textContent = `Updated ${new Date().toLocaleTimeString('en-US')}; refreshes every ${refreshSeconds()} s.`;
  }

  async function tick() {
    try {
      await load();
    } catch (err) {
      if (!(err instanceof api.ApiError && err.status === 401)) status.textContent = `Could not refresh: ${err.message}`;
    }
  }

  await load();
  refreshButton.addEventListener('click', tick);
  const timer = setInterval(tick, refreshSeconds() * 1000);
  return () => clearInterval(timer);
}
