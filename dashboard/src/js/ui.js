// Small DOM helpers: elements, tables, labelled form fields with error slots, formatting.

import { ApiError } from './api.js';

let uid = 0;
export const nextId = (prefix = 'f') => `${prefix}-${++uid}`;

/** h('button', {class: 'primary', onclick: fn}, 'Save') */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      node.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      node.className = value;
    } else if (key === 'text') {
      node.textContent = value;
    } else if (key === 'dataset') {
      Object.assign(node.dataset, value);
    } else if (key === 'value' && 'value' in node) {
      node.value = value;
    } else if (value === true) {
      node.setAttribute(key, '');
    } else {
      node.setAttribute(key, String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function money(cents) {
  const value = Number(cents || 0) / 100;
  return value.toLocaleString('en-US', { style: 'currency', currency: 'USD' });
}

export const percent = (ratio) => `${(Number(ratio || 0) * 100).toFixed(1)}%`;

export function when(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  return date.toLocaleString('en-US', { dateStyle: 'medium', timeStyle: 'medium' });
}

export const today = () => new Date().toISOString().slice(0, 10);

export function daysAgo(n) {
  return new Date(Date.now() - n * 86_400_000).toISOString().slice(0, 10);
}

export function toast(message) {
  const box = document.getElementById('toast');
  const line = h('div', { text: message });
  box.append(line);
  setTimeout(() => line.remove(), 4000);
}

/** A table: columns are {label, value(row) → node|text, num?}. */
export function table(columns, rows, { caption, empty = 'Nothing yet.', label } = {}) {
  if (!rows.length) return h('p', { class: 'hint', text: empty });
  return h('div', { class: 'table-wrap' },
    h('table', { 'aria-label': label || caption },
      caption ? h('caption', { class: 'hint', text: caption }) : null,
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : null, text: c.label })))),
      h('tbody', {}, rows.map((row) => h('tr', {},
        columns.map((c) => h('td', { class: c.num ? 'num' : null, 'data-label': c.label }, c.value(row))))))));
}

export const badge = (text) => h('span', { class: `badge ${text}`, text });

// --- forms -----------------------------------------------------------------------------

/**
 * A labelled control whose `name` is the API's field path (e.g. "caps.daily"), with an
 * error slot the API's `fields` errors are written into.
 * spec: {name, label, type?, options?: [[value, text]], hint?, ...input attributes}
 */
export function field(spec) {
  const { name, label, type = 'text', options, hint, value, ...rest } = spec;
  const id = nextId(name.replace(/[^a-z0-9]/gi, '-'));
  const errorId = `${id}-error`;
  const hintId = hint ? `${id}-hint` : null;
  const describedBy = [hintId, errorId].filter(Boolean).join(' ');
  let control;
  if (type === 'select') {
    control = h('select', { id, name, 'aria-describedby': describedBy, ...rest },
      (options || []).map(([v, text]) => h('option', { value: v, text, selected: String(v) === String(value ?? '') })));
  } else if (type === 'textarea') {
    control = h('textarea', { id, name, 'aria-describedby': describedBy, rows: 3, ...rest });
    if (value !== undefined) control.value = value;
  } else if (type === 'checkbox') {
    control = h('input', { id, name, type, checked: Boolean(value), 'aria-describedby': describedBy, ...rest });
    return h('div', { class: 'field check' }, control, h('label', { for: id, text: label }),
      h('span', { class: 'error', id: errorId, dataset: { errorFor: name } }));
  } else {
    control = h('input', { id, name, type, value, 'aria-describedby': describedBy, ...rest });
  }
  return h('div', { class: 'field' },
    h('label', { for: id, text: label }),
    control,
    hint ? h('span', { class: 'hint', id: hintId, text: hint }) : null,
    h('span', { class: 'error', id: errorId, dataset: { errorFor: name } }));
}

export function clearErrors(form) {
  for (const slot of form.querySelectorAll('[data-error-for]')) slot.textContent = '';
  for (const control of form.querySelectorAll('[aria-invalid]')) control.removeAttribute('aria-invalid');
  const top = form.querySelector('.form-error');
  if (top) top.textContent = '';
}

/** Put each `fields` message next to its control (or its nearest named parent). */
export function showErrors(form, fields, message) {
  clearErrors(form);
  const unplaced = [];
  let first = null;
  for (const [name, text] of Object.entries(fields || {})) {
    let path = name;
    let slot = null;
    while (path && !(slot = form.querySelector(`[data-error-for="${CSS.escape(path)}"]`))) {
      path = path.includes('.') ? path.slice(0, path.lastIndexOf('.')) : '';
    }
    if (!slot) {
      unplaced.push(`${name}: ${text}`);
      continue;
    }
    slot.textContent = slot.textContent ? `${slot.textContent}; ${text}` : text;
    // A message inside a closed section opens it, so it is seen.
    for (let box = slot.closest('details'); box; box = box.parentElement.closest('details')) box.open = true;
    // The control named by the full path (e.g. schedule.days.monday.0.start), else the slot's.
    const control = form.querySelector(`[name="${CSS.escape(name)}"]`) || form.querySelector(`[name="${CSS.escape(path)}"]`);
    if (control) {
      control.setAttribute('aria-invalid', 'true');
      first ??= control;
    }
  }
  const top = form.querySelector('.form-error');
  if (top) top.textContent = [message, ...unplaced].filter(Boolean).join(' — ');
  (first || top)?.focus?.();
}

/** The browser's own constraint checks, as `fields` (name → message). */
export function checkForm(form, extra = () => ({})) {
  const fields = {};
  for (const control of form.elements) {
    if (control.name && control.willValidate && !control.checkValidity()) {
      fields[control.name] ??= control.validationMessage;
    }
  }
  return { ...fields, ...extra(form) };
}

/**
 * Wire a form: validate before sending, send `build(form)` via `send`, show the API's
 * field errors next to the fields, call `done(result)` on success.
 */
export function onSubmit(form, { validate, build, send, done }) {
  form.noValidate = true;
  if (!form.querySelector('.form-error')) {
    form.prepend(h('div', { class: 'form-error', role: 'alert', tabindex: '-1' }));
  }
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const problems = checkForm(form, validate);
    if (Object.keys(problems).length) {
      showErrors(form, problems, 'Please correct the highlighted fields.');
      return;
    }
    clearErrors(form);
    const button = form.querySelector('button[type=submit]');
    if (button) button.disabled = true;
    try {
      const result = await send(build(form));
      await done(result);
    } catch (err) {
      if (err instanceof ApiError) {
        showErrors(form, err.fields, err.message);
      } else {
        showErrors(form, {}, String(err));
      }
    } finally {
      if (button) button.disabled = false;
    }
  });
}

export function value(form, name) {
  const control = form.elements.namedItem(name);
  if (!control) return undefined;
  if (control.type === 'checkbox') return control.checked;
  return control.value.trim();
}

export function intOrNull(text) {
  return text === '' || text === undefined ? null : Number.parseInt(text, 10);
}

export function centsOf(dollars) {
  return dollars === '' || dollars === undefined ? 0 : Math.round(Number(dollars) * 100);
}

export const splitList = (text) => (text || '').split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);

/** Options for a select from items with id and name. */
export function choices(items, blank) {
  const list = items.map((item) => [item.id, item.name]);
  return blank === undefined ? list : [['', blank], ...list];
}

export function nameOf(items, id) {
  if (!id) return '';
  const found = items.find((item) => item.id === id);
  return found ? found.name : id;
}

export const E164_PATTERN = '\\+?[0-9 \\(\\)\\-.]{7,22}';

/** Cents as the dollars an input shows ("12.50"); empty for null. */
export function dollarsOf(cents) {
  return cents === null || cents === undefined ? '' : (Number(cents) / 100).toFixed(2);
}

/** Point a field() made earlier at another API path (its control and its error slot). */
export function setPath(fieldBox, path) {
  const control = fieldBox.querySelector('input, select, textarea');
  if (control) control.name = path;
  const slot = fieldBox.querySelector('[data-error-for]');
  if (slot) slot.dataset.errorFor = path;
}

/** The control inside a field() box. */
export const controlOf = (fieldBox) => fieldBox.querySelector('input, select, textarea');

/** A field() box's current value: checked for a checkbox, trimmed text otherwise. */
export function fieldValue(fieldBox) {
  const control = controlOf(fieldBox);
  return control.type === 'checkbox' ? control.checked : control.value.trim();
}

/** A section that can be folded away; `open` unless told otherwise. */
export function section(title, open, ...children) {
  return h('details', { class: 'section', open }, h('summary', { text: title }), ...children);
}

/** "+1 (415) 555-0100" → "+14155550100" (a US number without +1 gets it). */
export function e164Of(text) {
  const compact = (text || '').replace(/[\s().-]/g, '');
  if (!compact) return null;
  return compact.startsWith('+') ? compact : `+1${compact}`;
}
