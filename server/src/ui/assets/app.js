// Slate's dashboard script: every change goes through the JSON API (the same validation and
// messages as for any client), live regions follow the runs, and the edit window counts down.
// No framework and nothing fetched from elsewhere.
(function () {
  'use strict';

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function csrf() {
    const m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.content : null;
  }

  function toast(message, kind) {
    const t = document.getElementById('toast');
    if (!t) {
      window.alert(message);
      return;
    }
    t.textContent = message;
    t.className = 'show ' + (kind || 'error');
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { t.className = ''; }, kind === 'ok' ? 3000 : 12000);
  }

  // One request to the API. A refusal becomes an ApiError carrying the API's own message.
  async function api(method, url, body) {
    const headers = { Accept: 'application/json' };
    const token = csrf();
    if (token) headers['X-CSRF-Token'] = token;
    const init = { method: method, headers: headers, credentials: 'same-origin' };
    if (body instanceof Blob) {
      // A file, sent as it is (an import).
      headers['Content-Type'] = body.type || 'application/octet-stream';
      init.body = body;
    } else if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(url, init);
    } catch (e) {
      throw new ApiError(0, 'network', 'The server did not answer (' + e.message + '). Is slate serve still running?');
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (_) { data = null; }
    }
    if (!res.ok) {
      const err = data && data.error;
      let message = err && err.message ? err.message : 'The server answered ' + res.status + ' ' + res.statusText + '.';
      if (res.status === 401) message = 'Your session has ended: sign in again (reload the page).';
      throw new ApiError(res.status, (err && err.code) || 'http_' + res.status, message);
    }
    return data;
  }

  function fieldLabel(el) {
    return (el.name || 'a field').replace(/_/g, ' ');
  }

  // A form control's value as JSON: numbers, JSON text, booleans, or text.
  function valueOf(el) {
    const kind = el.dataset.kind ||
      (el.type === 'number' ? 'number' : el.type === 'checkbox' ? 'bool' : el.hasAttribute('data-json') ? 'json' : 'text');
    const raw = el.value;
    switch (kind) {
      case 'number': {
        if (raw.trim() === '') return null;
        const n = Number(raw);
        if (!Number.isFinite(n)) throw new Error(fieldLabel(el) + ' is not a number.');
        return n;
      }
      case 'json':
        if (raw.trim() === '') return null;
        try { return JSON.parse(raw); } catch (e) { throw new Error(fieldLabel(el) + ' is not valid JSON: ' + e.message); }
      case 'bool':
        return el.checked;
      case 'nullable':
        return raw === '' ? null : raw;
      default:
        return raw;
    }
  }

  // `data-api` is "METHOD /path" (the path is already encoded by the server).
  function route(spec) {
    const i = spec.indexOf(' ');
    return [spec.slice(0, i), spec.slice(i + 1)];
  }

  // A form's request to `spec` ("METHOD /path"; the form's own `data-api` when not given: a
  // second submit button may send the same fields elsewhere with `data-submit-api`).
  function formRequest(form, spec) {
    let [method, url] = route(spec || form.dataset.api);
    let body = {};
    for (const el of form.elements) {
      if (!el.name || el.disabled || el.type === 'submit' || el.type === 'button') continue;
      if (el.hasAttribute('data-path')) {
        url = url.replace('{' + el.name + '}', encodeURIComponent(el.value));
        continue;
      }
      // `data-in="loudness"`: the field belongs to an object of the body.
      if (el.dataset.in) {
        body[el.dataset.in] = body[el.dataset.in] || {};
        body[el.dataset.in][el.name] = valueOf(el);
        continue;
      }
      body[el.name] = valueOf(el);
    }
    if (form.dataset.whole) body = body[form.dataset.whole];
    if (form.dataset.group) body = { [form.dataset.group]: body };
    return { method: method, url: url, body: body };
  }

  // The scene editor sends only what changed, with the version it was read at.
  function editRequest(form) {
    const [method, url] = route(form.dataset.api);
    const changes = {};
    for (const el of form.querySelectorAll('[data-original]')) {
      const v = valueOf(el);
      const before = JSON.parse(el.dataset.original);
      if (JSON.stringify(v) !== JSON.stringify(before)) changes[el.name] = v;
    }
    return { method: method, url: url, body: { version: Number(form.dataset.version), changes: changes } };
  }

  function fill(template, data, body) {
    return template.replace(/\{(\w+)\}/g, function (_, k) {
      const v = (data && data[k] !== undefined) ? data[k] : (body && body[k] !== undefined ? body[k] : '');
      return encodeURIComponent(String(v));
    });
  }

  function after(spec, data, body) {
    if (!spec || spec === 'reload') {
      window.location.reload();
    } else if (spec.startsWith('go:')) {
      window.location.href = fill(spec.slice(3), data, body);
    } else if (spec.startsWith('show:')) {
      const el = document.getElementById(spec.slice(5));
      if (el) el.textContent = data && typeof data.prompt === 'string' ? data.prompt :
        data && typeof data.summary === 'string' ? data.summary : JSON.stringify(data, null, 2);
    }
  }

  // A stale scene edit: show what is saved now beside what was typed, and take the new version
  // so that saving again is a deliberate choice.
  async function showConflict(form, req) {
    const box = form.querySelector('.conflict');
    let now;
    try { now = await api('GET', form.dataset.reload); } catch (e) { toast(e.message); return; }
    form.dataset.version = now.version;
    box.innerHTML = '';
    const h = document.createElement('p');
    h.textContent = 'Someone saved this scene while you edited it (now version ' + now.version +
      '). Their values are below; save again to replace them with yours, or reload to take theirs.';
    box.appendChild(h);
    const dl = document.createElement('dl');
    for (const k of Object.keys(req.body.changes)) {
      const dt = document.createElement('dt');
      dt.textContent = k.replace(/_/g, ' ');
      const dd = document.createElement('dd');
      dd.textContent = 'now: ' + JSON.stringify(now[k]) + ' · yours: ' + JSON.stringify(req.body.changes[k]);
      dl.append(dt, dd);
    }
    box.appendChild(dl);
    box.hidden = false;
  }

  async function run(el, req, then) {
    const buttons = el.tagName === 'FORM' ? el.querySelectorAll('button') : [el];
    buttons.forEach(function (b) { b.disabled = true; });
    el.setAttribute('aria-busy', 'true');
    try {
      const data = await api(req.method, req.url, req.body);
      toast('Done.', 'ok');
      after(then || el.dataset.then, data, req.body);
    } catch (e) {
      if (e instanceof ApiError && e.status === 409 && el.hasAttribute('data-edit')) {
        toast(e.message);
        await showConflict(el, req);
      } else {
        toast(e.message);
      }
    } finally {
      buttons.forEach(function (b) { b.disabled = false; });
      el.removeAttribute('aria-busy');
    }
  }

  document.addEventListener('submit', function (ev) {
    const form = ev.target;
    if (form.dataset && form.dataset.upload) {
      // A file import: its bytes as the body, its name in the query.
      ev.preventDefault();
      const input = form.querySelector('input[type=file]');
      const file = input && input.files && input.files[0];
      if (!file) { toast('Choose a file to import.'); return; }
      run(form, { method: 'POST', url: form.dataset.upload + '?filename=' + encodeURIComponent(file.name), body: file });
      return;
    }
    if (!form.dataset || !form.dataset.api) return;
    ev.preventDefault();
    const sub = ev.submitter && ev.submitter.dataset.submitApi ? ev.submitter : null;
    if (sub && sub.dataset.confirm && !window.confirm(sub.dataset.confirm)) return;
    let req;
    try {
      req = form.hasAttribute('data-edit') ? editRequest(form) : formRequest(form, sub && sub.dataset.submitApi);
    } catch (e) {
      toast(e.message);
      return;
    }
    if (form.hasAttribute('data-edit') && Object.keys(req.body.changes).length === 0) {
      toast('Nothing changed.', 'ok');
      return;
    }
    run(form, req, sub && sub.dataset.then);
  });

  document.addEventListener('click', function (ev) {
    const play = ev.target.closest('[data-play]');
    if (play) {
      const player = document.getElementById('player');
      if (player) {
        player.src = play.dataset.play;
        player.play().catch(function () {});
      }
      return;
    }
    const btn = ev.target.closest('button[data-api]');
    if (!btn) return;
    ev.preventDefault();
    if (btn.dataset.confirm && !window.confirm(btn.dataset.confirm)) return;
    const [method, url] = route(btn.dataset.api);
    let body;
    try {
      body = btn.dataset.body ? JSON.parse(btn.dataset.body) : undefined;
    } catch (e) {
      toast('This button is broken: ' + e.message);
      return;
    }
    run(btn, { method: method, url: url, body: body });
  });

  // The edit window's countdown, from the deadline the server rendered.
  function countdowns() {
    document.querySelectorAll('[data-deadline]').forEach(function (el) {
      const t = Date.parse(el.dataset.deadline);
      if (Number.isNaN(t)) return;
      const tick = function () {
        if (!el.isConnected) { clearInterval(el.timer); return; }
        const s = Math.max(0, Math.ceil((t - Date.now()) / 1000));
        el.textContent = s > 0 ? s + ' s' : 'now';
        if (s === 0) { clearInterval(el.timer); schedule(); }
      };
      clearInterval(el.timer);
      tick();
      el.timer = setInterval(tick, 250);
    });
  }

  // Live regions: when the stream says something this page watches moved, fetch the page again
  // and swap the regions that changed, at most once a second, never one being typed in or
  // playing.
  const watch = document.body.dataset.watch || '';
  let timer = null;
  let last = 0;
  let busy = false;

  function schedule() {
    if (timer) return;
    timer = setTimeout(refresh, Math.max(0, 1000 - (Date.now() - last)));
  }

  function untouchable(region) {
    const a = document.activeElement;
    if (a && a !== document.body && region.contains(a) && /INPUT|TEXTAREA|SELECT/.test(a.tagName)) return true;
    return Array.from(region.querySelectorAll('video')).some(function (v) { return !v.paused; });
  }

  // A region's markup without what ticks in the browser (a countdown's text), so that a region
  // whose content did not move is left alone rather than swapped under the reader.
  function settled(region) {
    const copy = region.cloneNode(true);
    copy.querySelectorAll('[data-deadline]').forEach(function (el) { el.textContent = ''; });
    return copy.innerHTML;
  }

  async function refresh() {
    timer = null;
    if (busy) { schedule(); return; }
    busy = true;
    last = Date.now();
    try {
      const res = await fetch(window.location.href, { headers: { Accept: 'text/html' }, credentials: 'same-origin' });
      if (!res.ok || res.url.indexOf('/login') !== -1) {
        if (res.status === 401 || res.url.indexOf('/login') !== -1) toast('Your session has ended: sign in again (reload the page).');
        return;
      }
      const doc = new DOMParser().parseFromString(await res.text(), 'text/html');
      if (doc.body && doc.body.dataset.gen) document.body.dataset.gen = doc.body.dataset.gen;
      document.querySelectorAll('[data-live]').forEach(function (region) {
        if (!region.id || untouchable(region)) return;
        const fresh = doc.getElementById(region.id);
        if (fresh && settled(fresh) !== settled(region)) region.replaceWith(document.importNode(fresh, true));
      });
      countdowns();
      document.dispatchEvent(new CustomEvent('slate:refreshed'));
    } catch (e) {
      // The next message tries again.
    } finally {
      busy = false;
    }
  }

  function matches(m) {
    if (watch === '*') return true;
    const i = watch.indexOf(':');
    const kind = watch.slice(0, i);
    const value = watch.slice(i + 1);
    if (kind === 'project') return m.project === value;
    if (kind === 'run') return m.run === value || m.parent === value;
    return false;
  }

  if (watch && window.EventSource) {
    const es = new EventSource('/ui/live');
    es.addEventListener('moved', function (e) {
      try { if (matches(JSON.parse(e.data))) schedule(); } catch (_) { /* ignore a bad message */ }
    });
    es.addEventListener('resync', schedule);
    // Something moved between this page's rendering and the stream's (re)connection.
    es.addEventListener('hello', function (e) {
      if (e.data !== document.body.dataset.gen) schedule();
    });
    es.addEventListener('open', function () { document.body.dataset.live = 'on'; });
    es.addEventListener('error', function () { document.body.dataset.live = 'reconnecting'; });
    // A browser keeps a handful of connections per server; a page left behind must not hold one.
    window.addEventListener('pagehide', function () { es.close(); });
  }

  countdowns();
  window.slate = { api: api, refresh: refresh };
})();
