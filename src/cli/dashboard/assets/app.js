// The dashboard's page: no framework, nothing fetched from anywhere but
// this server. Each view fetches its JSON once, then changes only what an
// event from /api/events names (see live.rs for the events). Nothing polls.
'use strict';

const CSRF = document.querySelector('meta[name=csrf]').content;
const LOG_LIMIT = 200; // records any list keeps on the page

// ---------------------------------------------------------------- helpers

// h('tag.class', {attr: v, onclick: f, dataset: {..}}, children...)
function h(spec, attrs, ...children) {
  const [tagId, ...classes] = spec.split('.');
  const [tag, id] = tagId.split('#');
  const el = document.createElement(tag);
  if (id) el.id = id;
  if (classes.length) el.className = classes.join(' ');
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// Replaces el's children, skipping null, undefined and false.
function fill(el, ...kids) {
  el.replaceChildren(...kids.flat(Infinity).filter((k) => k !== null && k !== undefined && k !== false));
}

function link(href, text) { return h('a', {href}, text); }

function requestId() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

async function api(path) {
  const r = await fetch(path, {headers: {accept: 'application/json'}});
  const body = await r.json().catch(() => ({error: r.statusText}));
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

// A POST with the CSRF token and the element's request id: the same id is
// sent again if it is clicked again before the answer came, so the server
// answers once (a double click). A new id is made after each answer.
async function act(path, body, el) {
  el.dataset.requestId = el.dataset.requestId || requestId();
  const payload = Object.assign({request_id: el.dataset.requestId}, body);
  let answer;
  try {
    const r = await fetch(path, {
      method: 'POST',
      headers: {'content-type': 'application/json', 'x-society-csrf': CSRF},
      body: JSON.stringify(payload),
    });
    answer = await r.json().catch(() => ({ok: false, error: r.statusText}));
  } catch (e) {
    answer = {ok: false, error: 'the dashboard did not answer: ' + e.message};
  }
  delete el.dataset.requestId;
  flash(answer.ok ? answer.message : answer.error, answer.ok ? 'ok' : 'error');
  return answer;
}

let flashTimer = null;
function flash(text, kind) {
  const f = document.getElementById('flash');
  f.textContent = text || '';
  f.dataset.kind = kind;
  f.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => { f.hidden = true; }, 10000);
}

function age(ms) {
  if (ms === null || ms === undefined) return '–';
  const s = ms / 1000;
  if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm' + String(Math.floor(s % 60)).padStart(2, '0') + 's';
  if (s < 86400) return Math.floor(s / 3600) + 'h' + String(Math.floor((s % 3600) / 60)).padStart(2, '0') + 'm';
  return Math.floor(s / 86400) + 'd';
}

function localTime(ts) {
  if (!ts) return '–';
  const d = new Date(ts);
  return isNaN(d) ? ts : d.toLocaleString();
}

function usd(x) { return '$' + (x || 0).toFixed((x || 0) < 1 ? 4 : 2); }

function badge(state) { return h('span.badge', {dataset: {state}}, state); }

// One JSON record as a compact line: time, event or type, the rest.
function recordLine(r) {
  const rest = Object.assign({}, r);
  const ts = rest.ts; delete rest.ts;
  // Plumbing a reader does not need on every line.
  delete rest.src; delete rest.v;
  if (current && current.name === 'case') delete rest.case;
  const what = rest.event || rest.type || ''; delete rest.event;
  return h('li', {}, h('time', {}, ts ? ts.slice(11, 23) : ''), ' ',
    h('b', {}, what), ' ', h('code', {}, JSON.stringify(rest)));
}

function recordList(id, title, records) {
  if (records && records.error) {
    return h('section', {id}, h('h3', {}, title), h('p.error', {}, records.error));
  }
  const list = (records || []).slice(-LOG_LIMIT);
  return h('section', {id}, h('h3', {}, title, ' ', h('span.muted', {}, `(${list.length})`)),
    list.length ? h('ol.log', {}, list.map(recordLine)) : h('p.muted', {}, 'nothing yet'));
}

// A small form field.
function field(label, input) { return h('label', {}, h('span', {}, label), input); }

// ---------------------------------------------------------------- views

// Each view: {name, url(), render(data), onEvent(ev) -> 'refresh' | handled}.
const views = {};

views.agents = (params, query) => {
  let rows = new Map(); // id -> row
  let table = null;
  const sortKey = query.get('sort') || 'id';
  const desc = query.get('desc') === '1';
  const cols = [
    ['id', 'agent'], ['role', 'role'], ['state', 'state'], ['pid', 'pid'], ['heartbeat', 'heartbeat'],
    ['generation', 'gen'], ['restarts', 'restarts'], ['queue', 'queue'], ['case', 'case'],
    ['handled', 'handled'], ['spend', 'spend'], ['note', 'note'],
  ];
  const sortValue = {
    id: (r) => r.id, role: (r) => r.role, state: (r) => r.state, pid: (r) => r.pid || 0,
    heartbeat: (r) => (r.heartbeat_age_ms === null ? Infinity : r.heartbeat_age_ms),
    generation: (r) => r.generation, restarts: (r) => r.restarts, queue: (r) => r.inbox_pending,
    case: (r) => r.case || '', handled: (r) => r.handled, spend: (r) => r.spend_usd,
    note: (r) => r.reason || '',
  };
  function matches(r) {
    const q = (query.get('q') || '').toLowerCase();
    if (!q) return true;
    return [r.id, r.role, r.state, r.case || ''].some((x) => x.toLowerCase().includes(q));
  }
  function cells(r, tr) {
    const hbAt = r.heartbeat_age_ms === null ? null : Date.now() - r.heartbeat_age_ms;
    tr.dataset.state = r.state;
    tr.dataset.hbAt = hbAt === null ? '' : String(hbAt);
    const note = r.sanction && r.sanction.blocked_until ? `blocked until ${r.sanction.blocked_until}`
      : (r.reason || (r.held ? 'held' : ''));
    const values = {
      id: link('/agents/' + encodeURIComponent(r.id), r.id),
      role: r.role, state: badge(r.state), pid: r.pid === null ? '–' : r.pid,
      heartbeat: hbAt === null ? '–' : age(Date.now() - hbAt),
      generation: r.generation, restarts: r.restarts, queue: r.inbox_pending,
      case: r.case ? link('/cases/' + encodeURIComponent(r.case), r.case) : '–',
      handled: r.handled, spend: usd(r.spend_usd), note,
    };
    fill(tr, ...cols.map(([k]) => h('td', {dataset: {col: k}}, values[k])));
  }
  function rowEl(r) {
    const tr = h('tr', {dataset: {agent: r.id}});
    cells(r, tr);
    return tr;
  }
  function sorted() {
    const list = [...rows.values()].filter(matches);
    const f = sortValue[sortKey] || sortValue.id;
    list.sort((a, b) => {
      const x = f(a), y = f(b);
      const c = x < y ? -1 : x > y ? 1 : a.id < b.id ? -1 : 1;
      return desc ? -c : c;
    });
    return list;
  }
  function setQuery(k, v) {
    if (v === null || v === '') query.delete(k); else query.set(k, v);
    const qs = query.toString();
    history.replaceState(null, '', location.pathname + (qs ? '?' + qs : ''));
  }
  function draw(root, problems) {
    const head = h('tr', {}, cols.map(([k, label]) => h('th', {
      dataset: {sort: k},
      class: k === sortKey ? (desc ? 'sorted desc' : 'sorted') : null,
      onclick: () => { setQuery('sort', k); setQuery('desc', k === sortKey && !desc ? '1' : null); route(); },
    }, label)));
    table = h('table#agents', {}, h('thead', {}, head), h('tbody', {}, sorted().map(rowEl)));
    const filter = h('input', {type: 'search', placeholder: 'filter: id, role, state, case', value: query.get('q') || '',
      oninput: (e) => {
        setQuery('q', e.target.value);
        for (const tr of table.tBodies[0].rows) tr.hidden = !matches(rows.get(tr.dataset.agent));
      }});
    const counts = {};
    for (const r of rows.values()) counts[r.state] = (counts[r.state] || 0) + 1;
    fill(root,
      h('div.toolbar', {}, h('h2', {}, `Agents (${rows.size})`), filter,
        h('span.counts', {}, Object.entries(counts).map(([s, n]) => h('span', {}, badge(s), ' ', n))),
        link('/agents?tree=1', 'organisation tree')),
      problems.length ? h('ul.problems', {}, problems.map((p) => h('li', {}, p))) : null,
      query.get('tree') === '1' ? h('section#tree') : null,
      rows.size ? table : h('p.muted', {}, 'no agents yet: `society spawn` or [[agent]] in society.toml'));
    if (query.get('tree') === '1') loadTree();
  }
  async function loadTree() {
    const t = await api('/api/tree');
    const member = (m) => h('li', {}, link('/agents/' + encodeURIComponent(m.id), m.id), ' ', h('span.muted', {}, m.role), ' ',
      badge(m.state), m.inbox_pending ? ` queue ${m.inbox_pending}` : '', m.pending.length ? ` · ${m.pending.length} waiting` : '',
      m.members.length ? h('ul', {}, m.members.map(member)) : null);
    const el = document.getElementById('tree');
    if (el) fill(el, h('h3', {}, 'Organisation'), h('ul.tree', {}, h('li', {}, 'orchestrator',
      t.pending.length ? ` · ${t.pending.length} waiting` : '', h('ul', {}, t.members.map(member)))));
  }
  return {
    name: 'agents',
    url: () => '/api/status',
    render(data, root) {
      rows = new Map(data.agents.map((r) => [r.id, r]));
      draw(root, data.problems || []);
      setSupervisor(data.supervisor ? data.supervisor.pid : null);
    },
    onEvent(ev) {
      if (ev.topic === 'agents') return 'refresh';
      if (ev.topic !== 'agent' || !table) return;
      const tr = table.querySelector(`tr[data-agent="${CSS.escape(ev.id)}"]`);
      if (!ev.row) { rows.delete(ev.id); if (tr) tr.remove(); return; }
      rows.set(ev.id, ev.row);
      if (tr) { cells(ev.row, tr); tr.hidden = !matches(ev.row); } else return 'refresh';
    },
    tick() {
      if (!table) return;
      const now = Date.now();
      for (const tr of table.tBodies[0].rows) {
        if (!tr.dataset.hbAt) continue;
        const td = tr.querySelector('td[data-col="heartbeat"]');
        if (td) td.textContent = age(now - Number(tr.dataset.hbAt));
      }
    },
  };
};

views.agent = ([id]) => {
  let sections = null;
  function controls() {
    const button = (action, label) => h('button', {dataset: {action},
      onclick: async (e) => { e.target.disabled = true; await act('/api/' + action, {id}, e.target); e.target.disabled = false; }}, label);
    return h('div.controls', {}, button('stop', 'Stop'), button('restart', 'Restart'), button('unblock', 'Unblock sender'));
  }
  return {
    name: 'agent',
    url: () => '/api/agents/' + encodeURIComponent(id),
    render(d, root) {
      const a = d.agent;
      const facts = [
        ['state', badge(a.state)], ['since', localTime(a.state_since)], ['role', a.role],
        ['pid', a.pid === null ? '–' : a.pid], ['generation', a.generation], ['restarts', a.restarts],
        ['heartbeat', age(a.heartbeat_age_ms)], ['queue', a.inbox_pending], ['case', a.case || '–'],
        ['handled', a.handled], ['dead letters', a.dead_lettered], ['spend', usd(a.spend_usd)],
        ['brain', a.brain ? a.brain.kind : '–'], ['reason', a.reason || '–'],
      ];
      if (!sections) {
        fill(root,
          h('div#agent', {dataset: {agent: id}},
            h('div.toolbar', {}, h('h2', {}, id), controls()),
            h('dl#facts.facts'),
            h('div#agent-logs'),
            h('details', {}, h('summary', {}, 'Send a message to ' + id), sendForm(id))));
        sections = document.getElementById('agent-logs');
      }
      fill(document.getElementById('facts'), ...facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
      const conv = d.conversation;
      fill(sections,
        recordList('activity', 'Activity', d.activity),
        recordList('inbox', 'Inbox', d.inbox),
        recordList('outbox', 'Outbox', d.outbox),
        recordList('deadletters', 'Dead letters', d.deadletters),
        recordList('decisions', 'Decisions', d.decisions),
        recordList('conversation', conv ? `Conversation ${conv.file}` : 'Conversation', conv ? conv.records : []));
    },
    onEvent(ev) {
      if ((ev.topic === 'agent' || ev.topic === 'costs') && ev.id === id) return 'refresh';
    },
  };
};

function overdue(c) {
  return c.due && new Date(c.due) < new Date() && !['resolved', 'closed', 'cancelled'].includes(c.status);
}

views.cases = (params, query) => {
  // The form is made once: a live update redraws the list, never what is
  // being typed.
  let form = null, list = null;
  function makeForm() {
    const purpose = h('input', {name: 'purpose', placeholder: 'what the case is for', required: true});
    const assign = h('input', {name: 'assign', placeholder: 'owner: agent id or role:R (optional)'});
    const f = h('form#case-open', {onsubmit: async (e) => {
      e.preventDefault();
      const r = await act('/api/cases/open', {purpose: purpose.value, assign: assign.value}, f);
      if (r.ok) { purpose.value = ''; assign.value = ''; }
    }}, field('Purpose', purpose), field('Owner', assign), h('button', {type: 'submit'}, 'Open case'));
    return f;
  }
  return {
    name: 'cases',
    url: () => '/api/cases',
    render(d, root) {
      const only = query.get('status');
      const cases = d.cases.filter((c) => !only || c.status === only || (only === 'open' && !['resolved', 'closed', 'cancelled'].includes(c.status)));
      if (!form) {
        form = makeForm();
        list = h('div#case-list');
        fill(root, h('div.toolbar', {}, h('h2', {}, 'Cases'),
          ['', 'open', 'resolved', 'closed'].map((s) => link('/cases' + (s ? '?status=' + s : ''), s || 'all'))),
        form, list);
      }
      fill(list,
        cases.length ? h('table#cases', {}, h('thead', {}, h('tr', {}, ['case', 'status', 'owner', 'priority', 'due', 'events', 'last', 'purpose'].map((c) => h('th', {}, c)))),
          h('tbody', {}, cases.map((c) => h('tr', {dataset: {case: c.id}, class: overdue(c) ? 'overdue' : null},
            h('td', {}, link('/cases/' + encodeURIComponent(c.id), c.id)),
            h('td', {dataset: {col: 'status'}}, badge(c.status)),
            h('td', {}, c.owner || '–'), h('td', {}, c.priority || '–'),
            h('td', {dataset: {col: 'due'}}, c.due ? localTime(c.due) + (overdue(c) ? ' (overdue)' : '') : '–'),
            h('td', {}, c.events), h('td', {}, localTime(c.last_ts)), h('td', {}, c.purpose || ''))))) : h('p.muted', {}, 'no cases'),
        d.skipped.length ? h('ul.problems', {}, d.skipped.map((s) => h('li', {}, s))) : null);
    },
    onEvent(ev) { if (ev.topic === 'case') return 'refresh'; },
  };
};

views.case = ([id]) => {
  let shell = null;
  return {
    name: 'case',
    url: () => '/api/cases/' + encodeURIComponent(id),
    render(d, root) {
      const c = d.case;
      if (!shell) {
        // Made once: the reason being typed survives live updates.
        const reason = h('input', {name: 'reason', placeholder: 'why (optional)'});
        const close = h('button', {dataset: {action: 'close-case'}, onclick: async (e) => {
          e.target.disabled = true;
          await act('/api/cases/close', {id, reason: reason.value}, e.target);
          e.target.disabled = false;
        }}, 'Close case');
        shell = {controls: h('span.controls', {}, reason, close), purpose: h('span'), facts: h('dl.facts'), timeline: h('ol#timeline.log')};
        fill(root, h('div#case', {dataset: {case: id}},
          h('div.toolbar', {}, h('h2', {}, `Case ${id}`), shell.purpose, shell.controls),
          shell.facts, h('h3', {}, 'Timeline'), shell.timeline));
      }
      const facts = [['status', badge(c.status)], ['owner', c.owner || '–'], ['priority', c.priority || '–'],
        ['created', localTime(c.created)], ['due', c.due ? localTime(c.due) + (overdue(c) ? ' (overdue)' : '') : '–'],
        ['agents', c.agents.join(', ') || '–'], ['archived', c.archived ? 'yes' : 'no'], ['log', d.log]];
      shell.purpose.textContent = c.purpose || '';
      shell.controls.hidden = c.archived;
      fill(shell.facts, facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
      fill(shell.timeline, d.events.slice(-1000).map(recordLine));
    },
    onEvent(ev) { if (ev.topic === 'case' && ev.id === id) return 'refresh'; },
  };
};

views.approvals = () => {
  let list = null;
  function card(a) {
    const note = h('textarea', {name: 'note', rows: 2, placeholder: 'note, or feedback for a rejection'});
    const plan = h('input', {name: 'plan', placeholder: 'a plan to carry out instead'});
    async function answer(path, body, button) {
      const r = await act(path, Object.assign({id: a.id, note: note.value}, body), button);
      if (r.ok) {
        // Answered: nothing more to click (it leaves the queue when the
        // decision is in the files).
        el.classList.add('answered');
        el.querySelectorAll('button').forEach((b) => { b.disabled = true; });
      }
      return r;
    }
    // A button stays clickable while its answer is on the way: a second
    // click resends the same request id and the server answers it once.
    const button = (action, label, path, body) => h('button', {dataset: {action},
      onclick: async (e) => { await answer(path, body, e.currentTarget); }}, label);
    const el = h('div.approval', {dataset: {approval: a.id, kind: a.kind}},
      h('div.head', {}, h('b', {}, a.plan || '(no plan)'), ' ',
        h('span.muted', {}, `from ${a.from}`, a.case ? ' · case ' : '', a.case ? link('/cases/' + encodeURIComponent(a.case), a.case) : '',
          ` · ${a.kind} · asked ${localTime(a.ts)}`, a.revision ? ` · revision ${a.revision}` : '', a.at ? ` · waits at ${a.at}` : '')),
      a.rationale ? h('p.rationale', {}, a.rationale) : null,
      a.alternatives.length ? h('ol.alternatives', {}, a.alternatives.map((alt, i) => h('li', {},
        typeof alt === 'string' ? alt : JSON.stringify(alt), ' ',
        button('choose', 'Choose', '/api/choose', {option: i + 1})))) : null,
      note,
      h('div.controls', {},
        button('approve', 'Approve', '/api/approve', {}),
        button('reject', 'Reject with feedback', '/api/reject', {}),
        a.kind !== 'route' ? h('span', {}, plan, h('button', {dataset: {action: 'override'},
          onclick: async (e) => { await answer('/api/override', {plan: plan.value}, e.currentTarget); }}, 'Override')) : null));
    return el;
  }
  return {
    name: 'approvals',
    url: () => '/api/approvals',
    render(d, root) {
      if (!list) {
        list = h('div#approvals');
        fill(root, h('div.toolbar', {}, h('h2', {}, 'Approval queue')), list);
      }
      // Keep the cards still pending (a note being typed stays), drop the
      // answered ones, add the new ones.
      const pending = new Map(d.pending.map((a) => [a.id, a]));
      for (const el of [...list.querySelectorAll('div.approval')]) {
        if (!pending.has(el.dataset.approval)) el.remove();
        else pending.delete(el.dataset.approval);
      }
      for (const a of pending.values()) list.append(card(a));
      const empty = list.querySelector('p.muted');
      if (d.pending.length === 0 && !empty) list.append(h('p.muted', {}, 'nothing waits for an answer'));
      if (d.pending.length && empty) empty.remove();
      setApprovals(d.pending.length);
    },
    onEvent(ev) { if (ev.topic === 'approvals') return 'refresh'; },
  };
};

views.flow = (params, query) => {
  const minutes = Number(query.get('minutes') || 15);
  return {
    name: 'flow',
    minGap: 1000,
    url: () => '/api/flow?minutes=' + minutes,
    render(d, root) {
      const W = 760, H = 520, R = Math.min(W, H) / 2 - 70, cx = W / 2, cy = H / 2;
      const pos = new Map(d.nodes.map((n, i) => {
        const t = (2 * Math.PI * i) / Math.max(d.nodes.length, 1) - Math.PI / 2;
        return [n, [cx + R * Math.cos(t), cy + R * Math.sin(t)]];
      }));
      const NS = 'http://www.w3.org/2000/svg';
      const s = (tag, attrs, ...kids) => {
        const el = document.createElementNS(NS, tag);
        for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
        el.append(...kids);
        return el;
      };
      const max = Math.max(1, ...d.edges.map((e) => e.count));
      const svg = s('svg', {id: 'flow', viewBox: `0 0 ${W} ${H}`, role: 'img'},
        s('defs', {}, s('marker', {id: 'arrow', viewBox: '0 0 10 10', refX: 22, refY: 5, markerWidth: 6, markerHeight: 6, orient: 'auto-start-reverse'},
          s('path', {d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrowhead'}))),
        ...d.edges.map((e) => {
          const [x1, y1] = pos.get(e.from), [x2, y2] = pos.get(e.to);
          const g = s('g', {class: 'edge', 'data-from': e.from, 'data-to': e.to},
            s('line', {x1, y1, x2, y2, 'stroke-width': 1 + 5 * Math.sqrt(e.count / max), 'marker-end': 'url(#arrow)'}),
            s('text', {x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 4}, String(e.count)));
          g.append(s('title', {}, `${e.from} → ${e.to}: ${e.count} message(s), last ${e.last_type}`));
          return g;
        }),
        ...d.nodes.map((n) => {
          const [x, y] = pos.get(n);
          const a = s('a', {href: n.startsWith('role:') || n === 'orchestrator' || n === 'supervisor' ? '#' : '/agents/' + encodeURIComponent(n)},
            s('circle', {cx: x, cy: y, r: 16}), s('text', {x, y: y + 32, 'text-anchor': 'middle'}, n));
          return s('g', {class: 'node', 'data-node': n}, a);
        }));
      fill(root,
        h('div.toolbar', {}, h('h2', {}, 'Messages between agents'),
          [5, 15, 60, 240].map((m) => m === minutes ? h('b', {}, `${m} min`) : link('/flow?minutes=' + m, `${m} min`))),
        d.edges.length ? svg : h('p.muted', {}, `no messages routed in the last ${minutes} minutes`),
        d.edges.length ? h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'from'), h('th', {}, 'to'), h('th', {}, 'messages'), h('th', {}, 'last type'))),
          h('tbody', {}, d.edges.map((e) => h('tr', {}, h('td', {}, e.from), h('td', {}, e.to), h('td', {}, e.count), h('td', {}, e.last_type))))) : null);
    },
    onEvent(ev) { if (ev.topic === 'flow') return 'refresh'; },
  };
};

views.costs = (params, query) => {
  const by = query.get('by') || 'agent';
  return {
    name: 'costs',
    minGap: 1000,
    url: () => '/api/costs?by=' + encodeURIComponent(by),
    render(d, root) {
      const max = Math.max(1e-9, ...d.rows.map((r) => r.usd));
      fill(root,
        h('div.toolbar', {}, h('h2', {}, 'Costs'), ['agent', 'model', 'case'].map((b) => b === by ? h('b', {}, `by ${b}`) : link('/costs?by=' + b, `by ${b}`)),
          h('span.muted', {}, `today is ${d.today} (UTC)`)),
        d.rows.length ? h('table#costs', {}, h('thead', {}, h('tr', {}, [by, 'spend', '', 'today', 'calls', 'tokens in', 'tokens out', 'unpriced', 'unknown'].map((c) => h('th', {}, c)))),
          h('tbody', {}, d.rows.map((r) => h('tr', {dataset: {key: r.key}},
            h('td', {}, by === 'agent' ? link('/agents/' + encodeURIComponent(r.key), r.key) : r.key),
            h('td', {}, usd(r.usd)), h('td.barcell', {}, h('div.bar', {style: null, dataset: {w: String(Math.round((100 * r.usd) / max))}})),
            h('td', {}, usd(r.usd_today)), h('td', {}, r.calls), h('td', {}, r.input_tokens), h('td', {}, r.output_tokens),
            h('td', {}, r.unpriced_calls), h('td', {}, r.unknown_cost_calls)))),
          h('tfoot', {}, h('tr', {}, h('td', {}, 'total'), h('td', {}, usd(d.total.usd)), h('td'), h('td', {}, usd(d.total.usd_today)), h('td', {}, d.total.calls),
            h('td', {}, d.total.input_tokens), h('td', {}, d.total.output_tokens), h('td', {}, d.total.unpriced_calls), h('td', {}, d.total.unknown_cost_calls))))
          : h('p.muted', {}, 'nothing spent: no agent on an llm brain has called a model'));
      // Bar widths through the CSSOM (the content security policy allows
      // no inline style attributes).
      for (const bar of root.querySelectorAll('div.bar')) bar.style.width = bar.dataset.w + '%';
    },
    onEvent(ev) { if (ev.topic === 'costs') return 'refresh'; },
  };
};

// Any JSON as nested definition lists.
function jsonView(v) {
  if (v === null || typeof v !== 'object') return h('span', {}, v === null ? '–' : String(v));
  if (Array.isArray(v)) {
    if (!v.length) return h('span.muted', {}, 'none');
    return h('ol', {}, v.map((x) => h('li', {}, jsonView(x))));
  }
  return h('dl.facts', {}, Object.entries(v).flatMap(([k, x]) => [h('dt', {}, k.replaceAll('_', ' ')), h('dd', {}, jsonView(x))]));
}

views.metrics = () => ({
  name: 'metrics',
  minGap: 2000,
  url: () => '/api/metrics',
  render(d, root) { fill(root, h('div.toolbar', {}, h('h2', {}, 'Metrics')), h('div#metrics', {}, jsonView(d))); },
  onEvent(ev) { if (ev.topic === 'case' || ev.topic === 'approvals') return 'refresh'; },
});

function sendForm(to) {
  const toEl = h('input', {name: 'to', placeholder: 'agent id or role:R', value: to || '', required: true});
  const type = h('input', {name: 'type', value: 'task'});
  const kase = h('input', {name: 'case', placeholder: 'case id (optional)'});
  const body = h('textarea', {name: 'body', rows: 4, placeholder: 'text, or a JSON object'});
  const form = h('form#send', {onsubmit: async (e) => {
    e.preventDefault();
    let b = body.value;
    try { const v = JSON.parse(b); if (v && typeof v === 'object' && !Array.isArray(v)) b = v; } catch (_) { /* text */ }
    const r = await act('/api/send', {to: toEl.value, type: type.value, case: kase.value, body: b}, form);
    if (r.ok) body.value = '';
  }}, field('To', toEl), field('Type', type), field('Case', kase), field('Body', body), h('button', {type: 'submit'}, 'Send'));
  return form;
}

views.send = () => ({
  name: 'send',
  url: null,
  render(d, root) { fill(root, h('div.toolbar', {}, h('h2', {}, 'Send a message')), sendForm('')); },
});

// ---------------------------------------------------------------- router

const routes = [
  [/^\/(agents\/?)?$/, views.agents],
  [/^\/agents\/([^/]+)$/, views.agent],
  [/^\/cases\/?$/, views.cases],
  [/^\/cases\/([^/]+)$/, views.case],
  [/^\/approvals\/?$/, views.approvals],
  [/^\/flow\/?$/, views.flow],
  [/^\/costs\/?$/, views.costs],
  [/^\/metrics\/?$/, views.metrics],
  [/^\/send\/?$/, views.send],
];

let current = null;
let loading = false, dirty = false, lastLoad = 0, gapTimer = null;

function route() {
  const path = location.pathname;
  const query = new URLSearchParams(location.search);
  for (const [re, make] of routes) {
    const m = path.match(re);
    if (!m) continue;
    current = make(m.slice(1).filter((x) => x !== undefined).map(decodeURIComponent), query);
    delete document.body.dataset.ready;
    for (const a of document.querySelectorAll('nav a')) {
      a.classList.toggle('active', a.dataset.view === current.name || (a.dataset.view === 'agents' && current.name === 'agent') || (a.dataset.view === 'cases' && current.name === 'case'));
    }
    document.title = `society · ${current.name}`;
    fill(document.getElementById('view'), h('p.muted', {}, 'loading…'));
    clearTimeout(gapTimer); gapTimer = null;
    loading = false; dirty = false; lastLoad = 0;
    load();
    return;
  }
  current = null;
  fill(document.getElementById('view'), h('p', {}, 'No such page. ', link('/agents', 'Agents')));
}

// Fetches the current view's data; a change that arrives meanwhile makes
// one more fetch after it (never more than one in flight).
async function load() {
  const v = current;
  if (!v) return;
  if (!v.url) { v.render(null, document.getElementById('view')); document.body.dataset.ready = v.name; return; }
  if (loading) { dirty = true; return; }
  const wait = (v.minGap || 0) - (Date.now() - lastLoad);
  if (wait > 0) {
    if (!gapTimer) gapTimer = setTimeout(() => { gapTimer = null; if (current === v) load(); }, wait);
    return;
  }
  loading = true;
  try {
    do {
      dirty = false;
      lastLoad = Date.now();
      const data = await api(v.url());
      if (current !== v) return;
      v.render(data, document.getElementById('view'));
      document.body.dataset.ready = v.name;
      performance.mark('view-ready');
    } while (dirty && current === v && !v.minGap);
  } catch (e) {
    if (current === v) fill(document.getElementById('view'), h('p.error', {}, e.message));
  } finally {
    if (current === v) {
      loading = false;
      if (dirty && v.minGap) { dirty = false; load(); }
    }
  }
}

document.addEventListener('click', (e) => {
  const a = e.target.closest('a');
  if (!a || a.origin !== location.origin || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey) return;
  if (a.getAttribute('href') === '#') { e.preventDefault(); return; }
  e.preventDefault();
  if (a.href !== location.href) history.pushState(null, '', a.href);
  route();
});
window.addEventListener('popstate', route);

// ---------------------------------------------------------------- header

function setSupervisor(pid) {
  const el = document.getElementById('supervisor');
  el.textContent = pid ? `supervisor ${pid}` : 'supervisor down';
  el.dataset.state = pid ? 'up' : 'down';
}

function setApprovals(n) {
  document.getElementById('approvals-count').textContent = n ? String(n) : '';
}

async function loadSummary() {
  try {
    const s = await api('/api/summary');
    setSupervisor(s.supervisor);
    setApprovals(s.pending_approvals);
    document.getElementById('root').textContent = s.root;
  } catch (_) { /* the view says what is wrong */ }
}

// ---------------------------------------------------------------- live

let everOpen = false;
function connect() {
  const live = document.getElementById('live');
  const es = new EventSource('/api/events');
  es.onopen = () => {
    live.dataset.state = 'open';
    live.textContent = 'live';
    // Back after a break: what changed meanwhile was not heard.
    if (everOpen) { loadSummary(); load(); }
    everOpen = true;
  };
  es.onerror = () => {
    live.dataset.state = 'closed';
    live.textContent = 'reconnecting…';
  };
  es.onmessage = (m) => {
    let ev;
    try { ev = JSON.parse(m.data); } catch (_) { return; }
    if (ev.topic === 'hello') return;
    if (ev.topic === 'supervisor') { setSupervisor(ev.pid); return; }
    if (ev.topic === 'approvals') loadSummary();
    if (!current) return;
    if (ev.topic === 'resync' || (current.onEvent && current.onEvent(ev) === 'refresh')) load();
  };
}

setInterval(() => { if (current && current.tick) current.tick(); }, 1000);
route();
loadSummary();
connect();
