// The Networking page: what runs where, live (docs/api.md is the API it reads).
//
// Design notes
// - One source of change: the watch long-poll (include=containers) on the replica that served
//   the page. Each answer updates the agents and their containers (deltas, or everything when
//   `full`); when the revision moved, the network documents (capacity, agents per network) are
//   read again from the same replica, whose local copy is at least that revision, and the view
//   is drawn again. The loop is sequential, so a burst of changes costs one round, not one per
//   change.
// - The cluster view polls /overlay-master/cluster while it is shown (replica health is not in
//   the log); /readyz and /leader are polled for the banner and the header line.
// - Nothing from the API is ever parsed as HTML: every node is built with createElement and
//   text nodes (`h`), and links are built from encodeURIComponent'd names. The server's
//   Content-Security-Policy forbids inline script as a second line.
// - The token is kept in sessionStorage only (this tab), and sent on every request when set,
//   so the page follows --protect-reads.
'use strict';

const API = '/overlay-master';
const WATCH_TIMEOUT = 25; // seconds; the server allows up to 300
const CLUSTER_EVERY = 2000; // ms, while the cluster view is shown
const HEALTH_EVERY = 2000; // ms
const NEARLY_FULL = 0.9; // share of a bridge half's addresses in use that earns a warning
const TOKEN_KEY = 'overlay-token';

const state = {
  revision: null, // of the last watch answer
  network: null, // the state document's network section (config of every network)
  agents: new Map(), // ip -> agent record (DC/OS shape), registration order
  containers: new Map(), // ip -> [container]
  networks: null, // [network document] from /networks
  loadError: null, // the last failure to follow the cluster, or null
  cluster: null,
  clusterError: null,
  health: null, // {ready, reason, role, self}
  formErrors: {}, // form id -> message
  busy: new Set(), // data-keys of actions in flight
};

// -- the DOM ------------------------------------------------------------------------------------

// An element with attributes and children; strings become text nodes (never HTML).
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const $ = (id) => document.getElementById(id);

function table(caption, headings, rows, empty) {
  if (rows.length === 0) return h('p', { class: 'empty' }, empty);
  // each cell names its column: a phone shows a row as a card (style.css)
  for (const row of rows) {
    [...row.children].forEach((cell, i) => cell.setAttribute('data-label', headings[i]));
  }
  return h(
    'div',
    { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption, 'data-key': 'table:' + caption },
    h(
      'table',
      null,
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', null, h('tr', null, headings.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', null, rows),
    ),
  );
}

function button(label, key, onclick, attrs) {
  return h(
    'button',
    { type: 'button', 'data-key': key, disabled: state.busy.has(key), onclick, ...attrs },
    label,
  );
}

function networkLink(name) {
  return h('a', { href: '#/networks/' + encodeURIComponent(name), 'data-key': 'link:' + name }, name);
}

function nearlyFull(use) {
  return use.total > 0 && use.used / use.total >= NEARLY_FULL;
}

// A bridge half's (or a network's) container addresses: a meter and the numbers.
function usage(use, what) {
  if (!use) return h('span', { class: 'muted' }, 'no bridge');
  const label = `${what}: ${use.used} of ${use.total} addresses used, ${use.free} free`;
  return h(
    'span',
    { class: 'use' + (nearlyFull(use) ? ' full' : '') },
    h('meter', {
      min: 0,
      max: Math.max(use.total, 1),
      value: use.used,
      low: use.total * 0.7,
      high: use.total * NEARLY_FULL,
      optimum: 0,
      'aria-label': label,
      title: label,
    }),
    h('span', { class: 'numbers' }, `${use.used} / ${use.total}`),
  );
}

function sumUse(a, b) {
  if (!a) return b;
  if (!b) return a;
  return { total: a.total + b.total, used: a.used + b.used, free: a.free + b.free };
}

// "10.0.0.2 docker half: 1 of 29 free" for every agent's half that is nearly full.
function warnings(network) {
  const found = [];
  for (const agent of network.agents) {
    for (const half of ['mesos', 'docker']) {
      const use = agent[half];
      if (use && nearlyFull(use)) {
        found.push(`${agent.ip} ${half} half: ${use.free} of ${use.total} free`);
      }
    }
  }
  return found;
}

function warningList(found) {
  if (found.length === 0) return null;
  return h(
    'ul',
    { class: 'warning' },
    found.map((text) => h('li', null, h('span', { 'aria-hidden': 'true' }, '⚠ '), 'nearly full: ', text)),
  );
}

function spaces(network) {
  const lines = [];
  if (network.subnet) lines.push(`${network.subnet} in /${network.prefix} blocks`);
  if (network.subnet6) lines.push(`${network.subnet6} in /${network.prefix6} blocks`);
  return lines.map((line) => h('div', { class: 'mono' }, line));
}

function isolation(network) {
  if (network.allow_from.length === 0) return 'own network only';
  return ['own network and ', network.allow_from.map((n, i) => [i ? ', ' : '', networkLink(n)])];
}

function statusText(status, error) {
  if (!status) return h('span', { class: 'muted' }, 'not reported');
  const short = status.replace(/^STATUS_/, '').toLowerCase();
  return h(
    'span',
    { class: 'status status-' + short },
    short,
    error ? h('span', { class: 'error-text' }, ': ', error) : null,
  );
}

function vtepOf(record) {
  const overlay = record && record.overlays.find((o) => o.backend && o.backend.vxlan);
  return overlay ? overlay.backend.vxlan : null;
}

// -- views --------------------------------------------------------------------------------------

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/');
  if (parts[0] === 'networks' && parts.length > 1 && parts[1] !== '') {
    return { view: 'network', name: decodeURIComponent(parts.slice(1).join('/')) };
  }
  if (parts[0] === 'agents' || parts[0] === 'cluster') return { view: parts[0] };
  return { view: 'networks' };
}

function loading(what) {
  const error = state.loadError;
  if (error) return failure(error);
  return h('p', { class: 'empty', role: 'status' }, `Loading ${what}…`);
}

function failure(error) {
  if (error.status === 401) {
    return h(
      'p',
      { class: 'empty' },
      'This cluster protects its reads: enter the API token above to see it.',
    );
  }
  return h('p', { class: 'empty' }, `Cannot read the cluster: ${error.message}. Retrying…`);
}

function networksView() {
  const rows = (state.networks || []).map((n) => {
    const use = sumUse(n.capacity.mesos, n.capacity.docker);
    return h(
      'tr',
      { 'data-network': n.name },
      h('th', { scope: 'row' }, networkLink(n.name)),
      h('td', null, spaces(n)),
      h('td', null, n.enabled ? 'enabled' : h('span', { class: 'off' }, 'disabled')),
      h('td', null, isolation(n)),
      h('td', { class: 'num' }, String(n.agents.length)),
      h('td', { class: 'num' }, String(n.containers)),
      h('td', null, usage(use, `${n.name} containers`), warningList(warnings(n))),
      h('td', { class: 'actions' }, toggleButton(n), deleteNetworkButton(n)),
    );
  });
  const list = state.networks
    ? table(
        'Networks',
        ['Network', 'Address space', 'State', 'Reachable from', 'Agents', 'Containers', 'Container addresses', 'Actions'],
        rows,
        'There are no networks yet. Add one below.',
      )
    : loading('the networks');
  return [h('h2', { tabindex: '-1', id: 'view-title' }, 'Networks'), list, addNetworkForm()];
}

function toggleButton(network) {
  const verb = network.enabled ? 'Disable' : 'Enable';
  return button(verb, `toggle:${network.name}`, () => setEnabled(network.name, !network.enabled), {
    'aria-label': `${verb} network ${network.name}`,
  });
}

function deleteNetworkButton(network) {
  return button('Delete', `delete:${network.name}`, () => deleteNetwork(network.name), {
    class: 'danger',
    'aria-label': `Delete network ${network.name}`,
  });
}

function field(id, label, attrs, hint) {
  return h(
    'div',
    { class: 'field' },
    h('label', { for: id }, label),
    h('input', { id, name: id, ...attrs }),
    hint ? h('span', { class: 'hint' }, hint) : null,
  );
}

function addNetworkForm() {
  const error = state.formErrors['add-network'];
  return h(
    'section',
    { 'aria-labelledby': 'add-title' },
    h('h2', { id: 'add-title' }, 'Add a network'),
    h(
      'form',
      { id: 'add-network', class: 'add', novalidate: true, onsubmit: addNetwork },
      field('add-name', 'Name', { required: true, maxlength: 13, autocomplete: 'off', spellcheck: 'false' }, 'at most 13 characters'),
      field('add-subnet', 'IPv4 subnet', { placeholder: '10.10.0.0/16', autocomplete: 'off' }),
      field('add-prefix', 'IPv4 block prefix', { type: 'number', min: 0, max: 30, placeholder: '24' }, "each agent's block"),
      field('add-subnet6', 'IPv6 subnet', { placeholder: 'fd01:c::/64', autocomplete: 'off' }),
      field('add-prefix6', 'IPv6 block prefix', { type: 'number', min: 0, max: 126, placeholder: '80' }),
      field('add-allow', 'Reachable from', { placeholder: 'dcos, blue', autocomplete: 'off' }, 'networks whose containers may connect; comma-separated'),
      h(
        'div',
        { class: 'field check' },
        h('input', { id: 'add-enabled', type: 'checkbox', checked: true }),
        h('label', { for: 'add-enabled' }, 'Enabled'),
      ),
      h('div', { class: 'field' }, button('Add network', 'add-network', null, { type: 'submit' })),
      error ? h('p', { class: 'form-error', role: 'alert', id: 'add-network-error' }, error) : null,
    ),
  );
}

function networkView(name) {
  if (!state.networks) return [h('h2', { tabindex: '-1', id: 'view-title' }, `Network ${name}`), loading('the network')];
  const network = state.networks.find((n) => n.name === name);
  if (!network) {
    return [
      h('h2', { tabindex: '-1', id: 'view-title' }, `Network ${name}`),
      h('p', { class: 'empty' }, `There is no network ${name} (any more). `, h('a', { href: '#/networks' }, 'All networks')),
    ];
  }
  const containers = [...state.containers.values()].flat().filter((c) => c.network === name);
  return [
    h('p', { class: 'crumbs' }, h('a', { href: '#/networks' }, 'Networks'), ' / '),
    h('h2', { tabindex: '-1', id: 'view-title' }, `Network ${name}`),
    h(
      'dl',
      { class: 'facts' },
      fact('Address space', spaces(network)),
      fact('State', network.enabled ? 'enabled' : h('span', { class: 'off' }, 'disabled (no new allocations)')),
      fact('Reachable from', isolation(network)),
      fact('Agent blocks', network.capacity.blocks ? `${network.capacity.blocks.used} of ${network.capacity.blocks.total} used` : '—'),
      fact('Mesos halves', usage(network.capacity.mesos, `${name} Mesos halves`)),
      fact('Docker halves', usage(network.capacity.docker, `${name} Docker halves`)),
      fact('Containers', String(network.containers)),
    ),
    warningList(warnings(network)),
    h('div', { class: 'toolbar' }, toggleButton(network), deleteNetworkButton(network)),
    allowForm(network),
    h('h3', null, 'Agents'),
    table('Agents on ' + name, ['Agent', 'Block', 'VTEP IP', 'VTEP MAC', 'Mesos half', 'Docker half', 'Status', 'Containers'], network.agents.map((a) => memberRow(network, a)), 'No agent holds a block of this network yet.'),
    h('h3', null, 'Containers'),
    table('Containers on ' + name, ['Container ID', 'Name', 'Agent', 'Half', 'Address', 'MAC', 'Interface'], sortContainers(containers).map(containerRow), 'No containers are reported on this network.'),
  ];
}

function fact(term, ...value) {
  return h('div', null, h('dt', null, term), h('dd', null, value));
}

function allowForm(network) {
  const error = state.formErrors['allow-form'];
  return h(
    'form',
    { id: 'allow-form', class: 'inline', onsubmit: (e) => setAllowFrom(e, network.name) },
    h('label', { for: 'allow-input' }, 'Reachable from'),
    h('input', { id: 'allow-input', value: network.allow_from.join(', '), autocomplete: 'off', 'aria-describedby': 'allow-hint' }),
    button('Save', 'allow', null, { type: 'submit' }),
    h('span', { class: 'hint', id: 'allow-hint' }, 'networks whose containers may connect to this one; comma-separated, empty for none'),
    error ? h('p', { class: 'form-error', role: 'alert' }, error) : null,
  );
}

function halfCell(overlay, half, use, what) {
  const bridge = overlay && overlay[half + '_bridge'];
  return [bridge ? h('div', { class: 'mono' }, `${bridge.name} ${bridge.ip || ''}`) : null, usage(use, what)];
}

function memberRow(network, member) {
  const record = state.agents.get(member.ip);
  const overlay = record && record.overlays.find((o) => o.info.name === network.name);
  const vtep = vtepOf(record);
  return h(
    'tr',
    { 'data-agent': member.ip },
    h('th', { scope: 'row', class: 'mono' }, member.ip),
    h('td', { class: 'mono' }, [member.subnet, member.subnet6].filter(Boolean).map((s) => h('div', null, s))),
    h('td', { class: 'mono' }, vtep ? vtep.vtep_ip : '—'),
    h('td', { class: 'mono' }, vtep ? vtep.vtep_mac : '—'),
    h('td', null, halfCell(overlay, 'mesos', member.mesos, `${member.ip} Mesos half`)),
    h('td', null, halfCell(overlay, 'docker', member.docker, `${member.ip} Docker half`)),
    h('td', null, statusText(member.status, member.error)),
    h('td', { class: 'num' }, String(member.containers)),
  );
}

function sortContainers(list) {
  return [...list].sort((a, b) => (a.agent + a.half + a.id).localeCompare(b.agent + b.half + b.id));
}

function containerRow(c) {
  return h(
    'tr',
    { 'data-container': c.id },
    h('th', { scope: 'row', class: 'mono id' }, c.id),
    h('td', null, c.name || h('span', { class: 'muted' }, '—')),
    h('td', { class: 'mono' }, c.agent),
    h('td', null, c.half),
    h('td', { class: 'mono' }, [c.address, c.address6].filter(Boolean).map((s) => h('div', null, s))),
    h('td', { class: 'mono' }, c.mac || '—'),
    h('td', { class: 'mono' }, c.interface || '—'),
  );
}

function agentsView() {
  if (state.revision === null) return [h('h2', { tabindex: '-1', id: 'view-title' }, 'Agents'), loading('the agents')];
  const rows = [...state.agents.values()].map((record) => {
    const vtep = vtepOf(record);
    const count = (state.containers.get(record.ip) || []).length;
    return h(
      'tr',
      { 'data-agent': record.ip },
      h('th', { scope: 'row', class: 'mono' }, record.ip),
      h('td', { class: 'mono' }, vtep ? vtep.vtep_ip : '—'),
      h('td', { class: 'mono' }, vtep ? vtep.vtep_mac : '—'),
      h('td', null, h('ul', { class: 'plain' }, record.overlays.map(agentOverlay), (record.skipped_overlays || []).map(skipped))),
      h('td', { class: 'num' }, String(count)),
      h('td', { class: 'actions' }, button('Delete', `delete-agent:${record.ip}`, () => deleteAgent(record.ip), { class: 'danger', 'aria-label': `Delete agent ${record.ip}` })),
    );
  });
  return [
    h('h2', { tabindex: '-1', id: 'view-title' }, 'Agents'),
    table('Agents', ['Agent', 'VTEP IP', 'VTEP MAC', 'Networks', 'Containers', 'Actions'], rows, 'No agent has registered yet. Agents show here as soon as they register.'),
  ];
}

function agentOverlay(o) {
  const state_ = o.state || {};
  return h('li', null, networkLink(o.info.name), ' ', h('span', { class: 'mono' }, [o.subnet, o.subnet6].filter(Boolean).join(' ')), ' ', statusText(state_.status, state_.error));
}

function skipped(s) {
  return h('li', { class: 'off' }, `${s.name}: no block (${s.reason}) `, h('span', { class: 'error-text' }, s.error));
}

function clusterView() {
  const heading = h('h2', { tabindex: '-1', id: 'view-title' }, 'Cluster');
  const doc = state.cluster;
  if (!doc) {
    const error = state.clusterError;
    return [heading, error ? failure(error) : h('p', { class: 'empty', role: 'status' }, 'Loading the replicas…')];
  }
  const rows = doc.replicas.map((r) => {
    const http = r.http && /^https?:\/\//.test(r.http) ? h('a', { href: r.http + '/' }, r.http) : r.http || '—';
    const health = !r.reachable
      ? h('span', { class: 'status status-failed' }, 'unreachable')
      : r.ready
        ? h('span', { class: 'status status-ok' }, 'ready')
        : h('span', { class: 'status status-failed' }, 'not ready: ', r.reason || '');
    return h(
      'tr',
      { 'data-replica': r.raft },
      h('th', { scope: 'row', class: 'mono' }, r.raft, r.self ? h('span', { class: 'tag' }, 'this page') : null),
      h('td', { class: 'mono' }, http),
      h('td', null, r.role || '—'),
      h('td', null, health),
    );
  });
  return [
    heading,
    h(
      'dl',
      { class: 'facts' },
      fact('Leader', doc.leader ? h('span', { class: 'mono' }, doc.leader) : h('span', { class: 'status status-failed' }, 'none: no quorum')),
      fact('Revision', String(doc.revision)),
      fact('Seen from', h('span', { class: 'mono' }, doc.self)),
    ),
    state.clusterError ? h('p', { class: 'form-error' }, `Last refresh failed: ${state.clusterError.message}`) : null,
    table('Replicas', ['Replica (Raft)', 'API', 'Role', 'Health'], rows, 'No replica is known.'),
  ];
}

// -- drawing ------------------------------------------------------------------------------------

let drawnView = null;

function draw() {
  const where = route();
  const key = where.view + ':' + (where.name || '');
  const main = $('main');
  const sameView = key === drawnView;
  // keep what the user is typing and where the focus is across a live update
  const active = document.activeElement;
  const focusKey = sameView && active && main.contains(active) ? active.dataset.key || active.id : null;
  const selection = focusKey && typeof active.selectionStart === 'number' ? [active.selectionStart, active.selectionEnd] : null;
  const inputs = {}; // only what the user changed: the rest shows the new data
  if (sameView) {
    for (const el of main.querySelectorAll('input[id]')) {
      if (el.value !== el.defaultValue || el.checked !== el.defaultChecked) {
        inputs[el.id] = [el.value, el.checked];
      }
    }
  }
  const views = { networks: networksView, network: () => networkView(where.name), agents: agentsView, cluster: clusterView };
  main.replaceChildren(...views[where.view]().filter(Boolean));
  for (const [id, [value, checked]] of Object.entries(inputs)) {
    const el = document.getElementById(id);
    if (el) {
      el.value = value;
      el.checked = checked;
    }
  }
  if (focusKey) {
    const again = main.querySelector(`[data-key="${CSS.escape(focusKey)}"]`) || document.getElementById(focusKey);
    if (again) {
      again.focus();
      if (selection && typeof again.setSelectionRange === 'function') again.setSelectionRange(...selection);
    }
  }
  for (const link of document.querySelectorAll('nav a')) {
    const current = link.dataset.view === where.view || (where.view === 'network' && link.dataset.view === 'networks');
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (!sameView) {
    drawnView = key;
    document.title = `${where.name || where.view[0].toUpperCase() + where.view.slice(1)} · Networking · overlay`;
  }
  drawHeader();
}

function drawHeader() {
  const live = $('live');
  const health = state.health;
  const where = health ? `${health.self} (${health.role})` : 'this replica';
  if (state.loadError) live.textContent = `${where}: not following (${state.loadError.message})`;
  else if (state.revision === null) live.textContent = `${where}: connecting…`;
  else if (health && !health.ready) live.textContent = `${where} · revision ${state.revision} · not ready`;
  else live.textContent = `${where} · revision ${state.revision} · live`;
  const banner = $('banner');
  let text = null;
  if (health && !health.ready) {
    text = `This replica is not ready: ${health.reason}. What you see may be out of date and changes will fail until it has a quorum again; the other replicas may still answer.`;
  } else if (state.loadError && state.loadError.status === 401) {
    text = 'This cluster protects its reads: enter the API token to see it.';
  } else if (state.loadError && state.loadError.status === 503) {
    text = `The cluster cannot answer: ${state.loadError.message}`;
  } else if (state.loadError && state.loadError.status === 0) {
    text = `Cannot reach this replica: ${state.loadError.message}. Retrying…`;
  }
  banner.hidden = text === null;
  banner.textContent = text || '';
  $('token-state').textContent = sessionStorage.getItem(TOKEN_KEY)
    ? 'A token is set for this tab.'
    : 'Needed for changes (and for reads where they are protected); kept in this tab only.';
}

function notify(text) {
  $('notice').textContent = text;
}

// -- the API ------------------------------------------------------------------------------------

class ApiFailure extends Error {
  constructor(status, reason, message) {
    super(message);
    this.status = status;
    this.reason = reason;
  }
}

async function api(method, path, body, signal) {
  const headers = { Accept: 'application/json' };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = 'Bearer ' + token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let answer;
  try {
    answer = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
      signal,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw new ApiFailure(0, 'aborted', 'stopped while hidden');
    throw new ApiFailure(0, 'unreachable', `no answer (${e.message})`);
  }
  let doc = null;
  try {
    doc = await answer.json();
  } catch (e) {
    doc = null;
  }
  if (!answer.ok) {
    const message = doc && doc.message ? doc.message : `HTTP ${answer.status}`;
    throw new ApiFailure(answer.status, doc && doc.error ? doc.error : 'http_error', message);
  }
  return doc;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A hidden tab follows nothing: a browser opens at most six connections to one host, and every
// open tab of this page would otherwise hold one of them in a long poll.
let watchInFlight = null; // AbortController of the watch request
let shown = []; // resolvers waiting for the tab to be shown again

function whenShown() {
  if (!document.hidden) return Promise.resolve();
  return new Promise((resolve) => shown.push(resolve));
}

document.addEventListener('visibilitychange', () => {
  if (document.hidden) {
    if (watchInFlight) watchInFlight.abort();
    return;
  }
  for (const resolve of shown) resolve();
  shown = [];
});
let tokenGiven = null; // resolves when a token is entered (a 401 waits for it)

function waitForToken() {
  return new Promise((resolve) => {
    tokenGiven = resolve;
  });
}

function applyWatch(doc) {
  state.network = doc.network;
  if (doc.full) {
    state.agents = new Map(doc.agents.map((a) => [a.ip, a]));
    state.containers = new Map();
  } else {
    for (const record of doc.agents) state.agents.set(record.ip, record);
    for (const ip of doc.deleted) {
      state.agents.delete(ip);
      state.containers.delete(ip);
    }
  }
  for (const entry of doc.containers || []) {
    if (entry.containers.length) state.containers.set(entry.agent, entry.containers);
    else state.containers.delete(entry.agent);
  }
  state.revision = doc.revision;
}

async function refreshNetworks() {
  const doc = await api('GET', `${API}/networks?consistent=false`);
  state.networks = doc.networks;
}

async function follow() {
  let since = 0;
  let backoff = 0;
  for (;;) {
    await whenShown();
    try {
      const query = `since=${since}&timeout=${since === 0 ? 0 : WATCH_TIMEOUT}&include=containers`;
      watchInFlight = new AbortController();
      const doc = await api('GET', `${API}/watch?${query}`, undefined, watchInFlight.signal);
      watchInFlight = null;
      const moved = doc.full || doc.revision !== state.revision || state.networks === null;
      applyWatch(doc);
      if (moved) await refreshNetworks();
      since = doc.revision;
      state.loadError = null;
      backoff = 0;
      if (moved) draw();
      else drawHeader();
    } catch (error) {
      watchInFlight = null;
      if (error.reason === 'aborted') continue;
      state.loadError = error;
      draw();
      if (error.status === 401) {
        await waitForToken();
        continue;
      }
      backoff = Math.min(5000, Math.max(500, backoff * 2));
      await sleep(backoff);
    }
  }
}

async function pollHealth() {
  for (;;) {
    await whenShown();
    try {
      const [ready, leader] = await Promise.all([
        fetch('/readyz', { cache: 'no-store' }).then((r) => r.json()),
        fetch(`${API}/leader`, { cache: 'no-store' }).then((r) => r.json()),
      ]);
      state.health = { ready: ready.ready, reason: ready.reason, role: leader.role, self: leader.self };
    } catch (e) {
      state.health = null; // unreachable: the watch loop says so
    }
    drawHeader();
    await sleep(HEALTH_EVERY);
  }
}

let clusterWake = null; // cuts the cluster poll's pause short when its view is opened

async function pollCluster() {
  for (;;) {
    await whenShown();
    if (route().view === 'cluster') {
      try {
        state.cluster = await api('GET', `${API}/cluster`);
        state.clusterError = null;
      } catch (error) {
        state.clusterError = error;
      }
      if (route().view === 'cluster') draw();
    }
    await new Promise((resolve) => {
      clusterWake = resolve;
      setTimeout(resolve, CLUSTER_EVERY);
    });
  }
}

// -- operator actions ---------------------------------------------------------------------------

function confirmDialog(title, text, action) {
  const dialog = $('confirm');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-ok').textContent = action;
  dialog.returnValue = '';
  const opener = document.activeElement && document.activeElement.dataset.key;
  return new Promise((resolve) => {
    dialog.addEventListener(
      'close',
      () => {
        // the button that opened the dialog may have been drawn again meanwhile
        const again = opener && $('main').querySelector(`[data-key="${CSS.escape(opener)}"]`);
        if (again) again.focus();
        resolve(dialog.returnValue === 'ok');
      },
      { once: true },
    );
    dialog.showModal();
    $('confirm-cancel').focus();
  });
}

function explain(error) {
  if (error.status === 401) return 'The master refused: enter the API token above (it was missing or wrong).';
  if (error.status === 503) return `No quorum, nothing was changed for sure: ${error.message} Try again.`;
  return error.message;
}

// Run an action: its button is disabled meanwhile; the outcome is announced.
async function act(key, work, done) {
  state.busy.add(key);
  draw();
  try {
    await work();
    notify(done);
    await refreshNetworks().catch(() => null);
  } catch (error) {
    notify(error.reason === 'cancelled' ? error.message : `Failed: ${explain(error)}`);
    if (error.status === 401) $('token').focus();
  } finally {
    state.busy.delete(key);
    draw();
  }
}

function setEnabled(name, enabled) {
  const path = `${API}/networks/${encodeURIComponent(name)}`;
  return act(`toggle:${name}`, () => api('PATCH', path, { enabled }), `Network ${name} ${enabled ? 'enabled' : 'disabled'}.`);
}

function names(text) {
  return text.split(/[\s,]+/).filter(Boolean);
}

async function setAllowFrom(event, name) {
  event.preventDefault();
  const allow = names($('allow-input').value);
  const path = `${API}/networks/${encodeURIComponent(name)}`;
  state.formErrors['allow-form'] = null;
  await act('allow', async () => {
    try {
      await api('PATCH', path, { allow_from: allow });
    } catch (error) {
      state.formErrors['allow-form'] = explain(error);
      throw error;
    }
  }, `Network ${name} is now reachable from ${allow.length ? allow.join(', ') : 'its own network only'}.`);
}

async function deleteNetwork(name) {
  const sure = await confirmDialog(`Delete network ${name}?`, 'Every agent loses its block of it; agents remove its bridges. A network of the same name added later starts fresh.', 'Delete');
  if (!sure) return;
  const path = `${API}/networks/${encodeURIComponent(name)}`;
  await act(`delete:${name}`, async () => {
    try {
      await api('DELETE', path);
    } catch (error) {
      if (error.reason !== 'network_in_use') throw error;
      const force = await confirmDialog(`Network ${name} is in use`, `${error.message}. Delete it anyway? Containers on it lose their network.`, 'Delete anyway');
      if (!force) throw new ApiFailure(0, 'cancelled', `Network ${name} was kept (it is in use).`);
      await api('DELETE', `${path}?force=true`);
    }
    if (route().view === 'network') location.hash = '#/networks';
  }, `Network ${name} deleted.`);
}

async function deleteAgent(ip) {
  const sure = await confirmDialog(`Delete agent ${ip}?`, 'Its VTEP address and blocks are freed (reused last). An agent that is still running registers again.', 'Delete');
  if (!sure) return;
  await act(`delete-agent:${ip}`, () => api('POST', `${API}/agents/delete`, { agents: [ip] }), `Agent ${ip} deleted.`);
}

async function addNetwork(event) {
  event.preventDefault();
  const value = (id) => $(id).value.trim();
  const body = { name: value('add-name'), enabled: $('add-enabled').checked, allow_from: names(value('add-allow')) };
  const problems = [];
  if (!body.name) problems.push('the name is missing');
  for (const [subnet, prefix, label] of [['add-subnet', 'add-prefix', 'IPv4'], ['add-subnet6', 'add-prefix6', 'IPv6']]) {
    if (value(subnet) || value(prefix)) {
      const bits = Number(value(prefix));
      if (!value(subnet) || !value(prefix) || !Number.isInteger(bits)) {
        problems.push(`an ${label} space needs a subnet and a whole-number block prefix`);
        continue;
      }
      body[subnet === 'add-subnet' ? 'subnet' : 'subnet6'] = value(subnet);
      body[prefix === 'add-prefix' ? 'prefix' : 'prefix6'] = bits;
    }
  }
  if (!body.subnet && !body.subnet6 && problems.length === 0) problems.push('give an IPv4 or an IPv6 subnet with its block prefix');
  state.formErrors['add-network'] = problems.length ? `Not added: ${problems.join('; ')}.` : null;
  if (problems.length) {
    draw();
    $('add-name').focus();
    return;
  }
  await act('add-network', async () => {
    try {
      await api('POST', `${API}/networks`, body);
    } catch (error) {
      state.formErrors['add-network'] = `Not added: ${explain(error)}`;
      throw error;
    }
    $('add-network').reset();
  }, `Network ${body.name} added.`);
}

// -- start --------------------------------------------------------------------------------------

function start() {
  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const token = $('token').value.trim();
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    $('token').value = '';
    notify(token ? 'Token set for this tab.' : 'The token field is empty: nothing changed.');
    drawHeader();
    if (token && tokenGiven) {
      tokenGiven();
      tokenGiven = null;
    }
  });
  $('token-forget').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    notify('Token forgotten.');
    drawHeader();
  });
  window.addEventListener('hashchange', () => {
    draw();
    const heading = $('main').querySelector('h2');
    if (heading) heading.focus();
    if (route().view === 'cluster' && clusterWake) clusterWake();
  });
  draw();
  follow();
  pollHealth();
  pollCluster();
}

start();
