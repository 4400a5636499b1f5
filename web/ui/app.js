// ragbox UI: a small single-page app. No framework, no CDN; every text from
// the server is inserted with textContent (never innerHTML).
import { t, setLanguage, language } from './i18n.js';

const state = { me: null, csrf: '', features: {}, collections: [] };

// ------------------------------------------------------------------ helpers

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function toast(msg) {
  const box = document.getElementById('toast');
  box.textContent = msg;
  box.classList.add('show');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => box.classList.remove('show'), 3000);
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && state.csrf) headers['X-CSRF-Token'] = state.csrf;
  const r = await fetch(path, {
    method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (r.status === 401 && state.me && path !== '/api/login') { state.me = null; route(); }
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

function fail(e) { toast(t('failed', { m: e.message })); }

function pages(start, end) {
  if (!start) return '';
  return start === end || !end ? `${t('page')} ${start}` : `${t('pages')} ${start}–${end}`;
}

// The cited passage, with its document and page, in a modal dialog.
async function openPassage(chunkId) {
  try {
    const p = await api('GET', `/api/passages/${chunkId}`);
    const d = p.document || {};
    document.getElementById('passage-title').textContent = d.title || d.source || `#${p.document_id}`;
    document.getElementById('passage-meta').textContent =
      [d.source, pages(p.page_start, p.page_end), p.section].filter(Boolean).join(' · ');
    document.getElementById('passage-text').textContent = p.text;
    document.getElementById('passage-dialog').showModal();
  } catch (e) { fail(e); }
}

async function loadCollections() {
  try { state.collections = (await api('GET', '/api/collections')).collections; }
  catch (e) { state.collections = []; }
}

function collectionPicker(id, multiple) {
  const sel = el('select', { id, multiple: multiple || undefined, 'aria-label': t('collections') });
  if (multiple) sel.size = Math.min(4, Math.max(2, state.collections.length));
  else sel.append(el('option', { value: '', text: '—' }));
  for (const c of state.collections) sel.append(el('option', { value: c.name, text: c.name }));
  return sel;
}

function selectedCollections(sel) {
  return [...sel.selectedOptions].map((o) => o.value).filter(Boolean);
}

// ------------------------------------------------------------------- login

function loginPage(main) {
  document.getElementById('topbar').hidden = true;
  const err = el('p', { class: 'error', role: 'alert', id: 'login-error' });
  const user = el('input', { id: 'login-user', autocomplete: 'username', required: true });
  const pass = el('input', { id: 'login-password', type: 'password', autocomplete: 'current-password', required: true });
  const form = el('form', { class: 'card login', id: 'login-form' },
    el('h1', { text: t('login_title') }),
    el('label', {}, t('username'), user), el('label', {}, t('password'), pass),
    el('button', { type: 'submit', text: t('login') }), err,
    el('p', {}, langSwitchInline()));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    try {
      const r = await api('POST', '/api/login', { username: user.value, password: pass.value });
      state.me = r.user;
      state.csrf = r.csrf_token;
      pass.value = '';
      if (!location.hash || location.hash === '#/login') location.hash = defaultPage();
      route();
    } catch (e) {
      err.textContent = e.status === 429
        ? t('throttled', { s: (e.body && e.body.error && e.body.error.retry_after_s) || '?' })
        : t('login_failed');
    }
  });
  main.append(form);
  user.focus();
}

function langSwitchInline() {
  const s = el('select', { 'aria-label': t('language'), id: 'login-lang' },
    el('option', { value: 'en', text: 'English' }), el('option', { value: 'zh', text: '中文' }));
  s.value = language();
  s.addEventListener('change', () => { chooseLanguage(s.value); route(); });
  return s;
}

// ------------------------------------------------------------------ search

function searchPage(main) {
  const q = el('input', { id: 'search-query', type: 'search', size: 40, 'aria-label': t('query') });
  const cols = collectionPicker('search-collections', true);
  const out = el('div', { id: 'search-results', 'aria-live': 'polite' });
  const form = el('form', { class: 'card' },
    el('h1', { text: t('nav_search') }),
    el('div', { class: 'row' },
      el('label', {}, t('query'), q),
      el('label', {}, `${t('collections')} (${t('all_collections')})`, cols),
      el('button', { type: 'submit', text: t('search') })));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    out.replaceChildren();
    if (!q.value.trim()) return;
    try {
      const body = { query: q.value, k: 10 };
      const chosen = selectedCollections(cols);
      if (chosen.length) body.collections = chosen;
      const r = await api('POST', '/api/search', body);
      if (!r.hits.length) out.append(el('p', { text: t('no_hits') }));
      for (const h of r.hits) {
        out.append(el('div', { class: 'hit' },
          el('div', { class: 'title', text: h.title || h.source }),
          el('div', { class: 'meta', text: [h.source, pages(h.page_start, h.page_end), h.section].filter(Boolean).join(' · ') }),
          el('p', { text: h.text.length > 500 ? `${h.text.slice(0, 500)}…` : h.text }),
          el('button', { class: 'linklike', type: 'button', text: t('open_passage'), onclick: () => openPassage(h.chunk_id) })));
      }
    } catch (e) { fail(e); }
  });
  main.append(form, el('div', { class: 'card' }, out));
  q.focus();
}

// --------------------------------------------------------------------- ask

// Streams Server-Sent Events from POST /api/ask: "token" events carry text,
// "citations" the cited passages, "done"/"error" end the stream.
function askPage(main) {
  if (!state.features.ask) {
    main.append(el('div', { class: 'card' }, el('h1', { text: t('nav_ask') }),
      el('p', { class: 'unavailable', text: t('ask_unavailable') })));
    return;
  }
  const q = el('textarea', { id: 'ask-question', 'aria-label': t('question') });
  const col = collectionPicker('ask-collection', false);
  const answer = el('div', { class: 'answer', id: 'ask-answer', 'aria-live': 'polite' });
  const cites = el('ol', { class: 'cites', id: 'ask-citations' });
  const stop = el('button', { type: 'button', class: 'secondary', text: t('stop'), disabled: true });
  let controller = null;
  stop.addEventListener('click', () => controller && controller.abort());
  const form = el('form', { class: 'card' }, el('h1', { text: t('nav_ask') }),
    el('label', {}, t('question'), q),
    el('div', { class: 'row' }, el('label', {}, t('collection'), col),
      el('button', { type: 'submit', text: t('ask') }), stop));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    answer.textContent = '';
    cites.replaceChildren();
    controller = new AbortController();
    stop.disabled = false;
    try {
      const r = await fetch('/api/ask', {
        method: 'POST', signal: controller.signal, credentials: 'same-origin',
        headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': state.csrf, Accept: 'text/event-stream' },
        body: JSON.stringify({ question: q.value, collection: col.value || undefined }),
      });
      if (!r.ok) throw new ApiError(r.status, await r.json().catch(() => null));
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let event = 'message', data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data += line.slice(5).trimStart();
          }
          const obj = data ? JSON.parse(data) : {};
          if (event === 'token') answer.textContent += obj.text;
          else if (event === 'citations') {
            for (const c of obj.citations || []) {
              cites.append(el('li', { value: c.label }, el('button', { type: 'button', text: `${c.document || ''} ${pages(c.page, c.page)}`.trim(), onclick: () => openPassage(c.chunk_id) })));
            }
          } else if (event === 'done') {
            // The final text supersedes what was streamed (citations checked).
            if (obj.answer) answer.textContent = obj.answer;
          } else if (event === 'error') toast(obj.message || 'error');
        }
      }
    } catch (e) { if (e.name !== 'AbortError') fail(e); }
    stop.disabled = true;
  });
  main.append(form, el('div', { class: 'card' }, el('h2', { text: t('answer') }), answer,
    el('h2', { text: t('sources') }), cites));
  q.focus();
}

// --------------------------------------------------------------- documents

function documentsPage(main) {
  const col = collectionPicker('doc-collection', false);
  const list = el('tbody', { id: 'doc-list' });
  const upload = state.features.upload
    ? uploadForm(col, () => show())
    : el('p', { class: 'unavailable', text: t('upload_unavailable') });
  async function show() {
    list.replaceChildren();
    if (!col.value) return;
    try {
      const r = await api('GET', `/api/collections/${encodeURIComponent(col.value)}/documents`);
      const c = state.collections.find((x) => x.name === col.value) || {};
      if (!r.documents.length) list.append(el('tr', {}, el('td', { colspan: 5, text: t('empty') })));
      for (const d of r.documents) {
        list.append(el('tr', {},
          el('td', { text: d.title || d.source }), el('td', { text: d.state + (d.error ? ` (${d.error})` : '') }),
          el('td', { text: String(d.chunks) }), el('td', { text: new Date(d.updated_us / 1000).toLocaleString() }),
          el('td', {}, c.can_write ? el('button', { type: 'button', class: 'danger', text: t('delete'), onclick: async () => {
            if (!confirm(t('confirm_delete'))) return;
            try { await api('DELETE', `/api/documents/${d.id}`); toast(t('deleted')); show(); } catch (e) { fail(e); }
          } }) : null)));
      }
    } catch (e) { fail(e); }
  }
  col.addEventListener('change', show);
  main.append(el('div', { class: 'card' }, el('h1', { text: t('documents') }),
    el('div', { class: 'row' }, el('label', {}, t('collection'), col)), upload),
  el('div', { class: 'card' }, el('table', {}, el('thead', {}, el('tr', {},
    el('th', { text: t('source') }), el('th', { text: t('state') }), el('th', { text: t('chunks') }),
    el('th', { text: t('updated') }), el('th', {}))), list)));
  if (state.collections.length) { col.value = state.collections[0].name; show(); }
}

// Multipart upload with progress (XMLHttpRequest reports upload progress).
function uploadForm(col, done) {
  const file = el('input', { type: 'file', id: 'upload-file', 'aria-label': t('choose_file') });
  const bar = el('progress', { max: 100, value: 0, hidden: true, id: 'upload-progress' });
  const form = el('form', { class: 'row' }, el('label', {}, t('choose_file'), file),
    el('button', { type: 'submit', text: t('upload') }), bar);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!file.files.length || !col.value) return;
    const fd = new FormData();
    fd.append('file', file.files[0]);
    const x = new XMLHttpRequest();
    x.open('POST', `/api/collections/${encodeURIComponent(col.value)}/documents`);
    x.setRequestHeader('X-CSRF-Token', state.csrf);
    bar.hidden = false;
    x.upload.onprogress = (e) => { if (e.lengthComputable) bar.value = (100 * e.loaded) / e.total; };
    x.onload = () => { bar.hidden = true; if (x.status < 300) { toast(t('saved')); done(); } else toast(t('failed', { m: x.status })); };
    x.onerror = () => { bar.hidden = true; toast(t('failed', { m: 'network' })); };
    x.send(fd);
  });
  return form;
}

// ----------------------------------------------------------------- history

function historyPage(main) {
  const body = el('tbody', { id: 'history-list' });
  async function show() {
    body.replaceChildren();
    try {
      const r = await api('GET', '/api/history');
      if (!r.history.length) body.append(el('tr', {}, el('td', { colspan: 4, text: t('empty') })));
      for (const h of r.history) {
        body.append(el('tr', {}, el('td', { text: new Date(h.created_us / 1000).toLocaleString() }),
          el('td', { text: h.question }), el('td', { text: h.answer || '' }),
          el('td', {}, el('button', { type: 'button', class: 'danger', text: t('delete'), onclick: async () => {
            if (!confirm(t('confirm_delete'))) return;
            try { await api('DELETE', `/api/history/${h.id}`); show(); } catch (e) { fail(e); }
          } }))));
      }
    } catch (e) { fail(e); }
  }
  main.append(el('div', { class: 'card' }, el('h1', { text: t('history') }),
    el('div', { class: 'row' },
      el('a', { href: '/api/history/export', download: 'history.json', text: t('export') }),
      el('button', { type: 'button', class: 'danger', text: t('delete_all'), onclick: async () => {
        if (!confirm(t('confirm_delete'))) return;
        try { await api('DELETE', '/api/history'); show(); } catch (e) { fail(e); }
      } })),
    el('table', {}, el('thead', {}, el('tr', {}, el('th', { text: t('when') }), el('th', { text: t('question') }),
      el('th', { text: t('answer') }), el('th', {}))), body)));
  show();
}

// Batch jobs: upload a question file (CSV, XLSX or JSON Lines with a
// "question" column) for collections, watch progress, download the results.
const JOB_TYPES = {
  csv: 'text/csv',
  xlsx: 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  jsonl: 'application/x-ndjson',
};

function batchPage(main) {
  if (!state.features.batch) {
    main.append(el('div', { class: 'card' }, el('h1', { text: t('nav_batch') }),
      el('p', { class: 'unavailable', text: t('batch_unavailable') })));
    return;
  }
  const cols = collectionPicker('job-collections', true);
  const file = el('input', { type: 'file', id: 'job-file', accept: '.csv,.xlsx,.jsonl', required: true });
  const mode = el('select', { id: 'job-mode', 'aria-label': t('job_mode') },
    el('option', { value: 'auto', text: t('job_mode_auto') }),
    el('option', { value: 'extractive', text: t('job_mode_extractive') }));
  const body = el('tbody', { id: 'job-rows' });
  let timer = null;
  async function show() {
    clearTimeout(timer);
    if (!document.body.contains(body)) return; // left the page
    try {
      const r = await api('GET', '/api/jobs');
      body.replaceChildren();
      if (!r.jobs.length) body.append(el('tr', {}, el('td', { colspan: 6, text: t('empty') })));
      let active = false;
      for (const j of r.jobs) {
        active = active || j.state === 'queued' || j.state === 'running';
        const pct = Math.round((j.progress || 0) * 100);
        const prog = el('progress', { max: 100, value: pct, 'aria-label': `${pct}%` });
        const links = el('div', { class: 'row' });
        if (j.state === 'done') {
          for (const f of ['xlsx', 'csv', 'jsonl']) {
            links.append(el('a', { href: `/api/jobs/${j.id}/result?format=${f}`, download: `ragbox-job-${j.id}.${f}`, text: f.toUpperCase() }));
          }
        }
        const active_job = j.state === 'queued' || j.state === 'running';
        links.append(el('button', { type: 'button', class: 'danger', text: active_job ? t('cancel') : t('delete'), onclick: async () => {
          if (!active_job && !confirm(t('confirm_delete'))) return;
          try { await api('DELETE', `/api/jobs/${j.id}`); show(); } catch (e) { fail(e); }
        } }));
        body.append(el('tr', {},
          el('td', { text: new Date(j.created).toLocaleString() }),
          el('td', { text: (j.collections || []).join(', ') }),
          el('td', { text: t(`job_${j.state}`) + (j.error ? ` — ${j.error}` : '') }),
          el('td', {}, prog, ` ${j.done}/${j.total}`),
          el('td', { text: `${j.answered} / ${j.refused} / ${j.failed}` }),
          el('td', {}, links)));
      }
      if (active) timer = setTimeout(show, 1500);
    } catch (e) { fail(e); }
  }
  const form = el('form', { class: 'row', onsubmit: async (ev) => {
    ev.preventDefault();
    const f = file.files[0];
    const chosen = [...cols.selectedOptions].map((o) => o.value);
    if (!f || !chosen.length) { toast(t('job_need')); return; }
    const ext = (f.name.split('.').pop() || '').toLowerCase();
    if (!JOB_TYPES[ext]) { toast(t('job_types')); return; }
    const q = new URLSearchParams({ collection: chosen.join(','), mode: mode.value });
    try {
      const r = await fetch(`/api/jobs?${q}`, {
        method: 'POST', credentials: 'same-origin', body: f,
        headers: { 'Content-Type': JOB_TYPES[ext], 'X-CSRF-Token': state.csrf },
      });
      const data = await r.json().catch(() => null);
      if (!r.ok) throw new ApiError(r.status, data);
      toast(t('saved'));
      form.reset();
      show();
    } catch (e) { fail(e); }
  } },
    el('label', {}, t('collections'), cols),
    el('label', {}, t('job_file'), file),
    el('label', {}, t('job_mode'), mode),
    el('button', { type: 'submit', text: t('job_submit') }));
  main.append(el('div', { class: 'card' }, el('h1', { text: t('nav_batch') }),
    el('p', { text: t('job_help') }), form),
  el('div', { class: 'card' }, el('h2', { text: t('jobs') }),
    el('table', {}, el('thead', {}, el('tr', {}, el('th', { text: t('when') }), el('th', { text: t('collections') }),
      el('th', { text: t('state') }), el('th', { text: t('job_progress') }),
      el('th', { text: t('job_counts') }), el('th', {}))), body)));
  show();
}

// ----------------------------------------------------------------- API keys

function keysSection(isAdmin) {
  const body = el('tbody', { id: 'key-list' });
  const secret = el('div', { id: 'key-secret' });
  const name = el('input', { id: 'key-name', 'aria-label': t('name') });
  const scopes = el('input', { id: 'key-scopes', value: 'read,openai', 'aria-label': t('scopes') });
  const owner = isAdmin ? el('input', { id: 'key-user', placeholder: state.me.name, 'aria-label': t('user') }) : null;
  async function show() {
    body.replaceChildren();
    try {
      const r = await api('GET', isAdmin ? '/api/apikeys?all=1' : '/api/apikeys');
      for (const k of r.keys) {
        body.append(el('tr', {}, el('td', { text: String(k.id) }), el('td', { text: k.user }), el('td', { text: k.name }),
          el('td', { text: `${k.prefix}…` }), el('td', { text: k.scopes }), el('td', { text: k.revoked ? t('revoked') : t('active') }),
          el('td', {}, k.revoked ? null : el('button', { type: 'button', class: 'danger', text: t('revoke'), onclick: async () => {
            try { await api('DELETE', `/api/apikeys/${k.id}`); show(); } catch (e) { fail(e); }
          } }))));
      }
    } catch (e) { fail(e); }
  }
  const form = el('form', { class: 'row' }, owner ? el('label', {}, t('user'), owner) : null,
    el('label', {}, t('name'), name), el('label', {}, t('scopes'), scopes), el('button', { type: 'submit', text: t('create') }));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const req = { name: name.value, scopes: scopes.value };
      if (owner && owner.value) req.user = owner.value;
      const r = await api('POST', '/api/apikeys', req);
      secret.replaceChildren(el('p', { text: t('key_once') }), el('div', { class: 'secret', text: r.key }));
      show();
    } catch (e) { fail(e); }
  });
  show();
  return el('div', { class: 'card' }, el('h2', { text: t('api_keys') }), form, secret,
    el('table', {}, el('thead', {}, el('tr', {}, ['#', t('user'), t('name'), 'prefix', t('scopes'), t('state'), ''].map((h) => el('th', { text: h })))), body));
}

function keysPage(main) { main.append(keysSection(false)); }

// -------------------------------------------------------------------- admin

function adminPage(main) {
  const users = el('tbody', { id: 'user-list' });
  const groups = el('tbody', { id: 'group-list' });
  const grants = el('tbody', { id: 'grant-list' });
  const cols = el('tbody', { id: 'collection-list' });
  async function show() {
    await loadCollections();
    try {
      const [u, g, gr] = await Promise.all([api('GET', '/api/users'), api('GET', '/api/groups'), api('GET', '/api/grants')]);
      users.replaceChildren(...u.users.map((x) => {
        const role = el('select', { 'aria-label': `${t('role')} ${x.name}` }, ...['user', 'auditor', 'admin'].map((r) => el('option', { value: r, text: r })));
        role.value = x.role;
        role.addEventListener('change', async () => { try { await api('PATCH', `/api/users/${encodeURIComponent(x.name)}`, { role: role.value }); toast(t('saved')); } catch (e) { fail(e); } });
        return el('tr', {}, el('td', { text: x.name }), el('td', {}, role), el('td', { text: x.disabled ? t('disabled') : t('active') }),
          el('td', {}, el('button', { type: 'button', class: 'secondary', text: x.disabled ? t('enable') : t('disable'), onclick: async () => {
            try { await api('PATCH', `/api/users/${encodeURIComponent(x.name)}`, { disabled: !x.disabled }); show(); } catch (e) { fail(e); }
          } }), ' ', el('button', { type: 'button', class: 'danger', text: t('delete'), onclick: async () => {
            if (!confirm(t('confirm_delete'))) return;
            try { await api('DELETE', `/api/users/${encodeURIComponent(x.name)}`); show(); } catch (e) { fail(e); }
          } })));
      }));
      groups.replaceChildren(...g.groups.map((x) => el('tr', {}, el('td', { text: x.name }), el('td', { text: x.members.join(', ') }),
        el('td', {}, el('button', { type: 'button', class: 'danger', text: t('delete'), onclick: async () => {
          try { await api('DELETE', `/api/groups/${encodeURIComponent(x.name)}`); show(); } catch (e) { fail(e); }
        } })))));
      const cname = (id) => (state.collections.find((c) => c.id === id) || {}).name || `#${id}`;
      grants.replaceChildren(...gr.grants.map((x) => el('tr', {}, el('td', { text: cname(x.collection_id) }), el('td', { text: x.kind }),
        el('td', { text: x.name }), el('td', { text: x.read ? '✓' : '' }), el('td', { text: x.write ? '✓' : '' }))));
      cols.replaceChildren(...state.collections.map((c) => el('tr', {}, el('td', { text: c.name }), el('td', { text: String(c.documents) }),
        el('td', { text: String(c.chunks) }), el('td', {}, el('button', { type: 'button', class: 'danger', text: t('delete'), onclick: async () => {
          if (!confirm(t('confirm_delete'))) return;
          try { await api('DELETE', `/api/collections/${encodeURIComponent(c.name)}`); show(); } catch (e) { fail(e); }
        } })))));
    } catch (e) { fail(e); }
  }
  const uName = el('input', { id: 'new-user-name', 'aria-label': t('name') });
  const uPass = el('input', { id: 'new-user-password', type: 'password', autocomplete: 'new-password', 'aria-label': t('password') });
  const uRole = el('select', { id: 'new-user-role', 'aria-label': t('role') }, ...['user', 'auditor', 'admin'].map((r) => el('option', { value: r, text: r })));
  const userForm = el('form', { class: 'row' }, el('label', {}, t('name'), uName), el('label', {}, t('password'), uPass),
    el('label', {}, t('role'), uRole), el('button', { type: 'submit', text: t('create') }));
  userForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try { await api('POST', '/api/users', { name: uName.value, password: uPass.value, role: uRole.value }); uPass.value = ''; show(); } catch (e) { fail(e); }
  });
  const gName = el('input', { id: 'new-group-name', 'aria-label': t('group') });
  const gMember = el('input', { id: 'group-member', 'aria-label': t('user') });
  const groupForm = el('form', { class: 'row' }, el('label', {}, t('group'), gName), el('label', {}, t('user'), gMember),
    el('button', { type: 'submit', text: t('add_member') }));
  groupForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const known = (await api('GET', '/api/groups')).groups.some((x) => x.name === gName.value);
      if (!known) await api('POST', '/api/groups', { name: gName.value });
      if (gMember.value) await api('POST', `/api/groups/${encodeURIComponent(gName.value)}/members`, { user: gMember.value });
      show();
    } catch (e) { fail(e); }
  });
  const grCol = collectionPicker('grant-collection', false);
  const grKind = el('select', { id: 'grant-kind', 'aria-label': t('kind') }, el('option', { value: 'user', text: t('user') }), el('option', { value: 'group', text: t('group') }));
  const grName = el('input', { id: 'grant-name', 'aria-label': t('name') });
  const grRead = el('input', { id: 'grant-read', type: 'checkbox', checked: true });
  const grWrite = el('input', { id: 'grant-write', type: 'checkbox' });
  const grantForm = el('form', { class: 'row' }, el('label', {}, t('collection'), grCol), el('label', {}, t('kind'), grKind),
    el('label', {}, t('name'), grName), el('label', {}, t('read'), grRead), el('label', {}, t('write'), grWrite),
    el('button', { type: 'submit', text: t('save') }));
  grantForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api('POST', '/api/grants', { collection: grCol.value, kind: grKind.value, name: grName.value, read: grRead.checked, write: grWrite.checked });
      toast(t('saved')); show();
    } catch (e) { fail(e); }
  });
  const cName = el('input', { id: 'new-collection-name', 'aria-label': t('name') });
  const colForm = el('form', { class: 'row' }, el('label', {}, t('new_collection'), cName), el('button', { type: 'submit', text: t('create') }));
  colForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try { await api('POST', '/api/collections', { name: cName.value }); cName.value = ''; show(); } catch (e) { fail(e); }
  });
  const table = (heads, body) => el('table', {}, el('thead', {}, el('tr', {}, heads.map((h) => el('th', { text: h })))), body);
  main.append(
    el('div', { class: 'card' }, el('h1', { text: t('nav_admin') }), el('h2', { text: t('users') }), userForm,
      table([t('name'), t('role'), t('state'), ''], users)),
    el('div', { class: 'card' }, el('h2', { text: t('groups') }), groupForm, table([t('group'), t('members'), ''], groups)),
    el('div', { class: 'card' }, el('h2', { text: t('collections') }), colForm, table([t('name'), t('documents'), t('chunks'), ''], cols)),
    el('div', { class: 'card' }, el('h2', { text: t('grants') }), grantForm, table([t('collection'), t('kind'), t('name'), t('read'), t('write')], grants)),
    keysSection(true));
  show();
}

// -------------------------------------------------------------------- audit

function auditPage(main) {
  if (!state.features.audit) {
    main.append(el('div', { class: 'card' }, el('h1', { text: t('audit') }), el('p', { class: 'unavailable', text: t('audit_unavailable') })));
    return;
  }
  const f = {
    from: el('input', { id: 'audit-from', type: 'date', 'aria-label': t('from') }),
    to: el('input', { id: 'audit-to', type: 'date', 'aria-label': t('to') }),
    user: el('input', { id: 'audit-user', size: 10, 'aria-label': t('user') }),
    action: el('select', { id: 'audit-action', 'aria-label': t('action') }, el('option', { value: '', text: '—' }),
      ...['query', 'answer', 'search', 'document_view', 'ingest', 'deletion', 'login', 'login_failure', 'logout', 'denial', 'admin_change', 'forget', 'export', 'batch', 'system']
        .map((a) => el('option', { value: a, text: a }))),
    text: el('input', { id: 'audit-text', size: 14, 'aria-label': t('text') }),
  };
  const out = el('tbody', { id: 'audit-list' });
  const verdict = el('p', { id: 'audit-verify', 'aria-live': 'polite' });
  const params = () => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(f)) if (v.value) p.set(k, v.value);
    return p;
  };
  const form = el('form', { class: 'row' }, ...Object.entries(f).map(([k, v]) => el('label', {}, t(k), v)),
    el('button', { type: 'submit', text: t('find') }));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    out.replaceChildren();
    try {
      const r = await api('GET', `/api/audit?${params()}`);
      for (const x of r.records.slice().reverse()) {
        out.append(el('tr', {}, el('td', { text: String(x.seq) }), el('td', { text: x.ts || x.time || '' }), el('td', { text: x.user || '' }),
          el('td', { text: x.action }), el('td', { text: x.outcome || '' }),
          el('td', {}, el('pre', { class: 'record', text: JSON.stringify(x) }))));
      }
      if (!r.records.length) out.append(el('tr', {}, el('td', { colspan: 6, text: t('empty') })));
    } catch (e) { fail(e); }
  });
  const verify = el('button', { type: 'button', id: 'audit-verify-button', text: t('verify'), onclick: async () => {
    verdict.textContent = '';
    try {
      const r = await api('POST', '/api/audit/verify');
      verdict.className = r.ok ? 'verify-ok' : 'verify-bad';
      verdict.textContent = r.ok ? t('verify_ok', { n: r.records }) : t('verify_bad', { p: r.problem });
    } catch (e) { fail(e); }
  } });
  const exp = (fmt) => el('a', { href: '#', text: fmt === 'csv' ? t('export_csv') : t('export_jsonl'), onclick: (ev) => {
    ev.preventDefault();
    const p = params(); p.set('format', fmt);
    location.href = `/api/audit/export?${p}`;
  } });
  main.append(el('div', { class: 'card' }, el('h1', { text: t('audit') }), form,
    el('div', { class: 'row' }, verify, exp('jsonl'), exp('csv')), verdict),
  el('div', { class: 'card' }, el('table', {}, el('thead', {}, el('tr', {}, ['seq', t('time'), t('user'), t('action'), t('outcome'), ''].map((h) => el('th', { text: h })))), out)));
}

// ------------------------------------------------------------------ routing

const routes = {
  '#/ask': { page: askPage, label: 'nav_ask', show: () => true },
  '#/search': { page: searchPage, label: 'nav_search', show: () => state.features.search },
  '#/documents': { page: documentsPage, label: 'nav_documents', show: () => state.features.search },
  '#/history': { page: historyPage, label: 'nav_history', show: () => true },
  '#/batch': { page: batchPage, label: 'nav_batch', show: () => true },
  '#/keys': { page: keysPage, label: 'nav_keys', show: () => state.me.role !== 'admin' },
  '#/admin': { page: adminPage, label: 'nav_admin', show: () => state.me.role === 'admin' },
  '#/audit': { page: auditPage, label: 'nav_audit', show: () => state.me.role !== 'user' },
};

function defaultPage() {
  if (state.me && state.me.role === 'auditor') return '#/audit';
  return state.features.ask ? '#/ask' : '#/search';
}

function chooseLanguage(lang) {
  try { localStorage.setItem('ragbox.lang', lang); } catch (e) { /* private mode */ }
  setLanguage(lang);
  document.getElementById('lang-select').value = lang;
}

async function route() {
  const main = document.getElementById('main');
  main.replaceChildren();
  if (!state.me) { loginPage(main); return; }
  document.getElementById('topbar').hidden = false;
  document.getElementById('whoami').textContent = `${state.me.name} (${state.me.role})`;
  let hash = location.hash;
  if (!routes[hash] || !routes[hash].show()) hash = defaultPage();
  const nav = document.getElementById('nav');
  nav.replaceChildren(...Object.entries(routes).filter(([, r]) => r.show()).map(([h, r]) =>
    el('a', { href: h, text: t(r.label), 'aria-current': h === hash ? 'page' : undefined })));
  await loadCollections();
  routes[hash].page(main);
}

async function start() {
  let lang = (navigator.language || '').startsWith('zh') ? 'zh' : 'en';
  try { lang = localStorage.getItem('ragbox.lang') || lang; } catch (e) { /* private mode */ }
  chooseLanguage(lang);
  document.getElementById('lang-select').addEventListener('change', (e) => { chooseLanguage(e.target.value); route(); });
  document.getElementById('logout').addEventListener('click', async () => {
    try { await api('POST', '/api/logout'); } catch (e) { /* already out */ }
    state.me = null; state.csrf = ''; location.hash = ''; route();
  });
  window.addEventListener('hashchange', route);
  try { state.features = (await api('GET', '/api/health')).features || {}; } catch (e) { state.features = {}; }
  try {
    const me = await api('GET', '/api/me');
    state.me = me.user; state.csrf = me.csrf_token || '';
  } catch (e) { state.me = null; }
  route();
}

start();
