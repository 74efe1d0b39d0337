// Bar charts in plain SVG (no library): labelled for screen readers, sized by the viewBox.

const NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** points: [{label, value}], format(value) → text. */
export function barChart(title, points, format = String) {
  const width = 560;
  const height = 200;
  const left = 8;
  const bottom = 28;
  const top = 18;
  const max = Math.max(1, ...points.map((p) => p.value));
  const slot = (width - left * 2) / Math.max(1, points.length);
  const chart = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': title });
  chart.append(svg('title', {}, title));
  chart.append(svg('line', { class: 'axis', x1: left, x2: width - left, y1: height - bottom, y2: height - bottom }));
  points.forEach((point, index) => {
    const barHeight = ((height - bottom - top) * point.value) / max;
    const x = left + index * slot + slot * 0.15;
    const y = height - bottom - barHeight;
    const bar = svg('rect', { class: 'bar', x: x + Math.max(0, slot * 0.7 - 48) / 2, y, width: Math.min(slot * 0.7, 48), height: Math.max(0, barHeight) });
    bar.append(svg('title', {}, `${point.label}: ${format(point.value)}`));
    chart.append(bar);
    if (point.value) {
      chart.append(svg('text', { x: x + slot * 0.35, y: y - 4, 'text-anchor': 'middle' }, format(point.value)));
    }
    const every = Math.ceil(points.length / 12);
    if (index % every === 0) {
      chart.append(svg('text', { x: x + slot * 0.35, y: height - bottom + 16, 'text-anchor': 'middle' }, point.label));
    }
  });
  const figure = document.createElement('figure');
  figure.className = 'chart';
  figure.style.margin = '0';
  const caption = document.createElement('figcaption');
  caption.className = 'hint';
  caption.textContent = title;
  figure.append(chart, caption);
  return figure;
}
