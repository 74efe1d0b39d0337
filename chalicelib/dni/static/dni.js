/* dni.js: gives each web visitor a tracking number of its own (dynamic number insertion).
 * <script async src="https://API/dni.js" data-pool-key="pk_..." data-number="(800) 555-0100"
 *   data-class="ppc-number"></script>   optional: data-api, data-timeout (ms), data-tag-NAME.
 * On any error or timeout the page keeps its own number; nothing is thrown to the page. */
(() => {
  'use strict';
  if (window.ppcDni) return;
  // For debugging and tests: status 'pending' | 'swapped' | 'failed', the session, heartbeat().
  const dni = { status: 'pending', session: null, error: null, beating: false };
  dni.ready = Promise.resolve();
  window.ppcDni = dni;
  const fail = (e) => { dni.error = String((e && e.message) || e); };
  try {
    const me = document.currentScript || document.querySelector('script[data-pool-key]');
    const cfg = me.dataset;
    const key = cfg.poolKey;
    if (!key) throw new Error('no data-pool-key');
    const api = (cfg.api || new URL(me.src, location.href).origin).replace(/\/+$/, '');
    const cls = '.' + CSS.escape(cfg.class || 'ppc-number');
    const digits = (s) => String(s || '').replace(/\D/g, '');
    // "1-800-..." and "800-..." are one NANP number.
    const core = (d) => (d.length === 11 && d[0] === '1' ? d.slice(1) : d);
    const own = digits(cfg.number);
    const ownFull = own.length === 10 ? '1' + own : own;
    const name = 'ppc_dni_' + key.replace(/[^\w-]/g, '');
    const SKIP = /^(SCRIPT|STYLE|NOSCRIPT|TEXTAREA|TEMPLATE)$/;
    const SEP = '[\\s().\\-\\u00a0]{0,3}';
    const ANY = /\+?\(?\d[\d\s().\-\u00a0]{6,}\d/g;

    // Persistence: localStorage, or a first-party cookie where storage is blocked.
    let rec = null;
    try { rec = JSON.parse(localStorage.getItem(name)); } catch (e) { /* storage blocked */ }
    if (!rec) {
      const m = document.cookie.match(new RegExp('(?:^|; )' + name + '=([^;]*)'));
      try { rec = JSON.parse(decodeURIComponent(m ? m[1] : '')); } catch (e) { /* none */ }
    }
    rec = rec || {};
    const save = () => {
      const raw = JSON.stringify(rec);
      try { localStorage.setItem(name, raw); } catch (e) {
        document.cookie = name + '=' + encodeURIComponent(raw) + ';path=/;max-age=31536000' +
          ';SameSite=Lax' + (location.protocol === 'https:' ? ';Secure' : '');
      }
    };

    const post = async (path, body) => {
      const ctl = new AbortController();
      const timer = setTimeout(() => ctl.abort(), Number(cfg.timeout) || 3000);
      try {
        const r = await fetch(api + path, {
          method: 'POST', mode: 'cors', credentials: 'omit', cache: 'no-store', signal: ctl.signal,
          headers: { 'Content-Type': 'application/json', 'X-Pool-Key': key },
          body: JSON.stringify(body),
        });
        return { status: r.status, data: (await r.json().catch(() => null)) || {} };
      } finally { clearTimeout(timer); }
    };
    const external = (url) => {
      try { return new URL(url).origin !== location.origin; } catch (e) { return false; }
    };
    const PARAMS = ['utm_source', 'utm_medium', 'utm_campaign', 'utm_term', 'utm_content',
      'gclid', 'fbclid', 'msclkid'];
    const sessionBody = () => {
      const q = new URLSearchParams(location.search);
      const touch = {};
      for (const p of PARAMS) if (q.get(p)) touch[p] = q.get(p);
      const ref = document.referrer;
      if (ref && external(ref)) touch.referrer = ref;
      // The landing page's attribution holds for the visit's later pages.
      if (Object.keys(touch).length || !rec.first) rec.first = touch;
      const body = Object.assign({ page_url: location.href }, rec.first);
      const tags = {};
      for (const a of Array.from(me.attributes)) {
        const tag = a.name.startsWith('data-tag-') && a.name.slice(9);
        if (tag && Object.keys(tags).length < 20) tags[tag] = a.value;
      }
      if (Object.keys(tags).length) body.tags = tags;
      if (rec.visitor_id) body.visitor_id = rec.visitor_id;
      if (rec.session_id && rec.until > Date.now()) body.session_id = rec.session_id;
      return body;
    };

    // Swapping. `shown` is the session on display (null: the page's own number).
    let shown = null;
    const seen = new Set(own ? [core(own)] : []); // every number this page may show
    let idleMs = 300000;
    let beatMs = 60000;
    const adopt = (d) => {
      if (!/^\+\d{8,15}$/.test(d.number) || !d.session_id) throw new Error('bad session answer');
      idleMs = (Number(d.idle_seconds) || 300) * 1000;
      beatMs = Math.max(5, Number(d.heartbeat_seconds) || 60) * 1000;
      rec.visitor_id = d.visitor_id || rec.visitor_id;
      rec.session_id = d.session_id;
      rec.until = Date.now() + idleMs;
      save();
      dni.session = shown = d;
      seen.add(core(digits(d.number)));
    };
    // The new digits in the old layout: "(800) 555-0100" -> "(415) 555-0123".
    const recast = (text, d) => {
      const n = digits(text).length;
      let i = d.length - n;
      return i < 0 ? null : text.replace(/\d/g, () => d[i++]);
    };
    const apply = (root) => {
      const d = shown ? digits(shown.number) : ownFull;
      const alts = Array.from(seen).map((c) => '(?:\\+?1' + SEP + ')?\\(?' + c.split('').join(SEP));
      const known = alts.length && new RegExp('(^|\\D)(' + alts.join('|') + ')(?!\\d)', 'g');
      const texts = (el, re, each) => {
        const list = el.nodeType === 3 ? [el] : [];
        if (el.nodeType === 1 && !SKIP.test(el.nodeName)) {
          const w = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
          while (w.nextNode()) list.push(w.currentNode);
        }
        for (const n of list) {
          if (SKIP.test(n.parentNode.nodeName)) continue;
          const v = n.data.replace(re, each);
          if (v !== n.data) n.data = v;
        }
      };
      if (known) texts(root, known, (m, pre, num) => pre + (recast(num, d) || num));
      if (root.nodeType !== 1) return;
      const all = (sel) =>
        (root.matches(sel) ? [root] : []).concat(Array.from(root.querySelectorAll(sel)));
      for (const el of all(cls)) {
        let hit = false;
        texts(el, ANY, (m) => {
          const r = digits(m).length >= 7 && recast(m, d);
          hit = hit || Boolean(r);
          return r || m;
        });
        if (!hit) { // an empty placeholder: fill it
          if (!('ppcText' in el.dataset)) el.dataset.ppcText = el.textContent;
          const t = shown ? shown.national || shown.number : el.dataset.ppcText || cfg.number || '';
          if (t !== el.textContent) el.textContent = t;
        }
      }
      for (const a of all('a[href^="tel:" i]')) {
        const href = a.getAttribute('href');
        const dialled = core(digits(href.split(/[;?]/)[0])); // without ;ext= or ?params
        const ours = a.dataset.ppcTel || a.closest(cls) || seen.has(dialled);
        if (!ours) continue;
        if (!a.dataset.ppcTel) a.dataset.ppcTel = href;
        const next = shown ? 'tel:' + shown.number : a.dataset.ppcTel;
        if (next !== href) a.setAttribute('href', next);
      }
    };

    // Heartbeats while the page is visible; after a 404/410 the next tick asks anew.
    let timer = 0;
    let lastBeat = 0;
    let renew = false;
    let busy = false;
    const start = async () => {
      const r = await post('/dni/v1/sessions', sessionBody());
      if (r.status !== 200) throw new Error('session refused: HTTP ' + r.status);
      adopt(r.data);
    };
    const beat = async () => {
      if (renew) {
        try { await start(); renew = false; } catch (e) { fail(e); dni.session = shown = null; }
        apply(document.body);
        return 0;
      }
      if (!rec.session_id) return 0;
      lastBeat = Date.now();
      const r = await post('/dni/v1/sessions/' + encodeURIComponent(rec.session_id) + '/heartbeat', {});
      if (r.status === 200) rec.until = Date.now() + idleMs;
      else if (r.status === 404 || r.status === 410) { renew = true; rec.session_id = null; }
      save();
      return r.status;
    };
    const schedule = () => {
      clearTimeout(timer);
      timer = 0;
      if (document.visibilityState !== 'hidden' && (rec.session_id || renew)) {
        timer = setTimeout(tick, beatMs);
      }
      dni.beating = Boolean(timer);
    };
    const tick = async () => {
      if (busy) return;
      busy = true;
      try { await beat(); } catch (e) { fail(e); } finally { busy = false; }
      schedule();
    };
    dni.heartbeat = () => beat().catch((e) => { fail(e); return 0; });
    document.addEventListener('visibilitychange', () => {
      if (dni.status !== 'swapped') return;
      if (document.visibilityState === 'hidden') return schedule();
      if (rec.session_id && rec.until < Date.now()) renew = true; // expired while hidden
      if (renew || Date.now() - lastBeat >= beatMs) tick(); else schedule();
    });

    // Ask at once; touch the page only once it is parsed, then watch what it adds later.
    const parsed = new Promise((resolve) => {
      if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', resolve);
      else resolve();
    });
    dni.ready = Promise.all([start(), parsed]).then(() => {
      apply(document.body);
      new MutationObserver((list) => {
        try {
          for (const m of list) for (const n of m.addedNodes) if (n.isConnected) apply(n);
        } catch (e) { fail(e); }
      }).observe(document.body, { childList: true, subtree: true });
      lastBeat = Date.now();
      dni.status = 'swapped';
      schedule();
    }).catch((e) => { fail(e); dni.status = 'failed'; });
  } catch (e) {
    fail(e);
    dni.status = 'failed';
  }
})();
