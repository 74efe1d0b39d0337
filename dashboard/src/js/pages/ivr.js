// The IVR qualification tree of a campaign as an editable list of questions (nodes), each
// with its accepted answers (choices). Controls are named by the API's paths
// (ivr.nodes.<node>.prompt, ivr.nodes.<node>.choices.0.digits), renamed as node names change,
// so the API's field errors land next to them.

import { controlOf, field, fieldValue, h, intOrNull, setPath, splitList } from '../ui.js';

// Patterns as the browser reads them (the `v` flag: a literal - in a class is escaped).
const NODE_NAME = '[A-Za-z0-9_\\-]{1,32}';
const TAG = '[A-Za-z0-9_.:\\-]+';

export function ivrEditor(ivr) {
  const nodes = []; // {el, name, prompt, tag, input, numDigits, next, retries, timeout, defaultValue, defaultNext, choices: [], choicesBox}
  const list = h('div', { class: 'ivr-nodes' });
  const start = field({ name: 'ivr.start', label: 'First question (node name)', value: ivr?.start || '', maxlength: 32, hint: 'empty: the first node below' });
  const voice = field({ name: 'ivr.voice', label: 'Voice', value: ivr?.voice || 'Polly.Joanna', maxlength: 64 });
  const language = field({ name: 'ivr.language', label: 'Language', value: ivr?.language || 'en-US', pattern: '[a-z]{2}-[A-Z]{2}' });
  const empty = h('p', { class: 'hint', text: 'No IVR: calls are routed at once. Add a question to qualify callers first.' });

  function nodeName(node) {
    return fieldValue(node.name) || `node${nodes.indexOf(node) + 1}`;
  }

  /** Name every control after its API path, from the node names as they are now. */
  function sync() {
    nodes.forEach((node, index) => {
      const base = `ivr.nodes.${nodeName(node)}`;
      node.legend.textContent = `IVR node ${index + 1}`;
      setPath(node.name, base);
      for (const key of ['prompt', 'tag', 'input', 'num_digits', 'next', 'retries', 'timeout_seconds']) setPath(node[key], `${base}.${key}`);
      setPath(node.defaultValue, `${base}.default.value`);
      setPath(node.defaultNext, `${base}.default.next`);
      node.choices.forEach((choice, i) => {
        for (const key of ['digits', 'speech', 'value', 'next']) setPath(choice[key], `${base}.choices.${i}.${key}`);
        choice.legend.textContent = `Answer ${i + 1}`;
      });
    });
    empty.hidden = nodes.length > 0;
  }

  function addChoice(node, choice = {}) {
    const entry = {
      digits: field({ name: 'choice.digits', label: 'Keys', value: choice.digits || '', pattern: '[0-9*#]{1,10}', placeholder: '1', size: 6 }),
      speech: field({ name: 'choice.speech', label: 'Or words', value: (choice.speech || []).join(', '), placeholder: 'yes, yeah' }),
      value: field({ name: 'choice.value', label: 'Tag value', value: choice.value || '', required: true, maxlength: 64 }),
      next: field({ name: 'choice.next', label: 'Then node', value: choice.next || '', placeholder: '(the question\'s next)' }),
      legend: h('legend'),
    };
    entry.el = h('fieldset', { class: 'choice' }, entry.legend,
      h('div', { class: 'row' }, entry.digits, entry.speech, entry.value, entry.next,
        h('button', { type: 'button', class: 'danger', text: 'Remove answer', onclick: () => {
          node.choices.splice(node.choices.indexOf(entry), 1);
          entry.el.remove();
          sync();
        } })));
    node.choices.push(entry);
    node.choicesBox.append(entry.el);
    sync();
    return entry;
  }

  function addNode(name = '', spec = {}) {
    const node = {
      name: field({ name: 'node.name', label: 'Node name', value: name, required: true, pattern: NODE_NAME, maxlength: 32, placeholder: 'age' }),
      prompt: field({ name: 'node.prompt', label: 'Prompt (said to the caller)', type: 'textarea', value: spec.prompt || '', required: true, maxlength: 1000 }),
      tag: field({ name: 'node.tag', label: 'Tag (stores the answer)', value: spec.tag || '', required: true, pattern: TAG, maxlength: 64, placeholder: 'age_over_65' }),
      input: field({ name: 'node.input', label: 'Answer by', type: 'select', value: spec.input || 'dtmf', options: [['dtmf', 'keypad'], ['speech', 'voice'], ['dtmf speech', 'keypad or voice']] }),
      num_digits: field({ name: 'node.num_digits', label: 'Digits expected', type: 'number', min: 1, max: 10, value: spec.num_digits ?? '' }),
      next: field({ name: 'node.next', label: 'Next node', value: spec.next || '', placeholder: '(route the call)' }),
      retries: field({ name: 'node.retries', label: 'Retries', type: 'number', min: 0, max: 5, value: spec.retries ?? 2 }),
      timeout_seconds: field({ name: 'node.timeout_seconds', label: 'Wait (seconds)', type: 'number', min: 1, max: 30, value: spec.timeout_seconds ?? 5 }),
      defaultValue: field({ name: 'node.default.value', label: 'No valid answer: tag value', value: spec.default?.value || '', maxlength: 64, placeholder: '(ask again, then route)' }),
      defaultNext: field({ name: 'node.default.next', label: 'No valid answer: then node', value: spec.default?.next || '' }),
      choices: [],
      choicesBox: h('div', { class: 'choices' }),
      legend: h('legend'),
    };
    node.el = h('fieldset', { class: 'ivr-node' }, node.legend,
      h('div', { class: 'row' }, node.name, node.tag, node.input, node.num_digits),
      node.prompt,
      h('div', { class: 'row' }, node.next, node.retries, node.timeout_seconds, node.defaultValue, node.defaultNext),
      node.choicesBox,
      h('p', { class: 'hint', text: 'No answers listed: what the caller types (e.g. a ZIP code) is stored as is.' }),
      h('div', { class: 'toolbar' },
        h('button', { type: 'button', text: 'Add answer', onclick: () => controlOf(addChoice(node).digits).focus() }),
        h('button', { type: 'button', class: 'danger', text: 'Remove node', onclick: () => {
          nodes.splice(nodes.indexOf(node), 1);
          node.el.remove();
          sync();
        } })));
    nodes.push(node);
    list.append(node.el);
    for (const choice of spec.choices || []) addChoice(node, choice);
    sync();
    return node;
  }

  for (const [name, spec] of Object.entries(ivr?.nodes || {})) addNode(name, spec);
  list.addEventListener('input', (event) => {
    if (event.target.closest('.field') && nodes.some((n) => n.name.contains(event.target))) sync();
  });

  const el = h('div', { class: 'ivr' },
    h('div', { class: 'row' }, start, voice, language),
    empty,
    list,
    h('span', { class: 'error', dataset: { errorFor: 'ivr' } }),
    h('span', { class: 'error', dataset: { errorFor: 'ivr.nodes' } }),
    h('button', { type: 'button', text: 'Add IVR node', onclick: () => controlOf(addNode().name).focus() }));
  sync();

  /** Problems the browser cannot see: repeated names, links to nodes that do not exist. */
  function validate() {
    sync();
    const problems = {};
    const names = nodes.map(nodeName);
    const known = new Set(names);
    nodes.forEach((node, index) => {
      const base = `ivr.nodes.${names[index]}`;
      if (names.indexOf(names[index]) !== index) problems[base] = 'another node has this name';
      const links = [['next', fieldValue(node.next)], ['default.next', fieldValue(node.defaultNext)],
        ...node.choices.map((c, i) => [`choices.${i}.next`, fieldValue(c.next)])];
      for (const [path, link] of links) {
        if (link && !known.has(link)) problems[`${base}.${path}`] = `no node is named ${link}`;
      }
      node.choices.forEach((c, i) => {
        if (!fieldValue(c.digits) && !fieldValue(c.speech)) problems[`${base}.choices.${i}.digits`] = 'give keys or words';
      });
    });
    const first = fieldValue(start);
    if (first && !known.has(first)) problems['ivr.start'] = `no node is named ${first}`;
    return problems;
  }

  function build() {
    sync();
    if (!nodes.length) return null;
    const tree = {};
    for (const node of nodes) {
      const choice = (c) => {
        const out = { value: fieldValue(c.value), speech: splitList(fieldValue(c.speech)) };
        if (fieldValue(c.digits)) out.digits = fieldValue(c.digits);
        if (fieldValue(c.next)) out.next = fieldValue(c.next);
        return out;
      };
      const defaultValue = fieldValue(node.defaultValue);
      tree[nodeName(node)] = {
        prompt: fieldValue(node.prompt),
        tag: fieldValue(node.tag),
        input: fieldValue(node.input),
        num_digits: intOrNull(fieldValue(node.num_digits)),
        choices: node.choices.map(choice),
        next: fieldValue(node.next) || null,
        retries: intOrNull(fieldValue(node.retries)) ?? 2,
        default: defaultValue ? { value: defaultValue, speech: [], next: fieldValue(node.defaultNext) || null } : null,
        timeout_seconds: intOrNull(fieldValue(node.timeout_seconds)) ?? 5,
      };
    }
    return {
      start: fieldValue(start) || nodeName(nodes[0]),
      voice: fieldValue(voice) || 'Polly.Joanna',
      language: fieldValue(language) || 'en-US',
      nodes: tree,
    };
  }

  return { el, build, validate };
}
