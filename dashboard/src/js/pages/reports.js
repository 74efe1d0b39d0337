// Reports: totals grouped by campaign, publisher, buyer, target, source or day over a date
// range, compared with the period before it; CSV of the shown rows.

import * as api from '../api.js';
import { daysAgo, field, h, money, nameOf, onSubmit, percent, table, today, value } from '../ui.js';

const GROUPS = [['campaign', 'Campaign'], ['publisher', 'Publisher'], ['buyer', 'Buyer'], ['target', 'Target'], ['source', 'Source'], ['day', 'Day']];
const METRICS = [
  ['calls', 'Calls', String], ['connected', 'Connected', String], ['converted', 'Converted', String],
  ['conversion_rate', 'Conversion', percent], ['revenue_cents', 'Revenue', money],
  ['payout_cents', 'Payout', money], ['profit_cents', 'Profit', money],
  ['average_call_value_cents', 'Avg call value', money],
];

function previousPeriod(from, to) {
  const start = new Date(`${from}T00:00:00Z`);
  const end = new Date(`${to}T00:00:00Z`);
  const days = Math.round((end - start) / 86_400_000) + 1;
  const iso = (d) => d.toISOString().slice(0, 10);
  return { from: iso(new Date(start - days * 86_400_000)), to: iso(new Date(start - 86_400_000)) };
}

function csvOf(rows, columns) {
  const cell = (v) => {
    const text = String(v ?? '');
    const safe = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
    return /[",\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
  };
  return [columns.map(([, label]) => label), ...rows.map((r) => columns.map(([key]) => r[key]))].map((line) => line.map(cell).join(',')).join('\r\n');
}

export async function reportsPage(view) {
  const [{ campaigns }, { publishers }, { buyers }, { targets }] = await Promise.all([
    api.get('/campaigns'), api.get('/publishers'), api.get('/buyers'), api.get('/targets'),
  ]);
  const lists = { campaign: campaigns, publisher: publishers, buyer: buyers, target: targets };
  const output = h('div', { 'aria-live': 'polite' });
  let shown = null;
  const form = h('form', { class: 'panel toolbar', 'aria-label': 'Report options' },
    field({ name: 'group_by', label: 'Group by', type: 'select', options: GROUPS }),
    field({ name: 'from', label: 'From', type: 'date', value: daysAgo(6), required: true }),
    field({ name: 'to', label: 'To', type: 'date', value: today(), required: true }),
    field({ name: 'compare', label: 'Compare with the previous period', type: 'checkbox', value: true }),
    h('button', { type: 'submit', class: 'primary', text: 'Run report' }),
    h('button', { type: 'button', text: 'Download CSV', onclick: () => shown && download(shown) }));

  function download({ rows, name }) {
    const columns = [['key', 'Group'], ['name', 'Name'], ...METRICS.map(([k, l]) => [k, l])];
    const blob = new Blob([csvOf(rows, columns)], { type: 'text/csv' });
    const link = h('a', { href: URL.createObjectURL(blob), download: name });
    document.body.append(link);
    link.click();
    link.remove();
  }

  onSubmit(form, {
    validate: (f) => (value(f, 'to') < value(f, 'from') ? { to: 'must not be before From' } : {}),
    build: (f) => ({ group_by: value(f, 'group_by'), from: value(f, 'from'), to: value(f, 'to'), compare: value(f, 'compare') }),
    send: async (q) => {
      const now = await api.get(`/reports/summary${api.query({ group_by: q.group_by, from: q.from, to: q.to })}`);
      const before = q.compare ? await api.get(`/reports/summary${api.query({ group_by: q.group_by, ...previousPeriod(q.from, q.to) })}`) : null;
      return { q, now, before };
    },
    done: ({ q, now, before }) => {
      const label = (key) => (lists[q.group_by] ? nameOf(lists[q.group_by], key) : key) || '(none)';
      const rows = now.groups.map((g) => ({ ...g, name: label(g.key) }));
      shown = { rows, name: `report-${q.group_by}-${q.from}-to-${q.to}.csv` };
      const delta = (key, format) => {
        if (!before) return '';
        const diff = (now.totals[key] || 0) - (before.totals[key] || 0);
        return ` (${diff >= 0 ? '+' : '−'}${format(Math.abs(diff))} vs previous)`;
      };
      output.replaceChildren(
        h('section', { class: 'cards', 'aria-label': 'Totals' }, METRICS.map(([key, text, format]) =>
          h('div', { class: 'card' }, h('div', { class: 'label', text }), h('div', { class: 'value', text: format(now.totals[key]) }),
            before ? h('div', { class: 'hint', text: delta(key, format) }) : null))),
        table([
          { label: GROUPS.find(([k]) => k === q.group_by)[1], value: (r) => r.name },
          ...METRICS.map(([key, text, format]) => ({ label: text, value: (r) => format(r[key]), num: true })),
        ], rows, { label: 'Report', empty: 'No calls in this period.' }));
    },
  });
  view.append(h('h1', { text: 'Reports' }), form, output);
  form.requestSubmit();
}
