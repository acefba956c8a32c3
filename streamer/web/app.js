// Vitals live view: server list and history from the REST API, live tiles
// over the streamer's WebSocket (TurboCore protocol + subscribe extension),
// charts drawn with uPlot. No build step; served embedded by the streamer.
(() => {
  'use strict';

  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = 'vitals.token';
  const PERIODS = ['1h', '6h', '24h', '7d'];

  const state = {
    token: '',
    apiBase: '',
    refused: '',           // why the server refused the token, if it did
    serversError: '',      // why the servers list could not be loaded
    servers: null,         // ServerInfo[] once the first list arrived
    server: '',            // selected server id
    period: '1h',
    hist: [],              // ServerMetric[] of the selected period
    latest: null,          // newest ServerMetric seen
    instances: new Map(),  // id -> {name, latest, hist, row, spark}
    sysinfo: null,
    charts: {},
    alerts: new Map(),     // series key -> pending or firing alert (live)
  };

  // ---------- formatting ----------
  const pct = (v) => (v == null || isNaN(v) ? '–' : v.toFixed(1) + ' %');
  const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  function bytes(v) {
    if (v == null || isNaN(v)) return '–';
    let i = 0;
    while (Math.abs(v) >= 1024 && i < UNITS.length - 1) { v /= 1024; i++; }
    return (i === 0 ? v.toFixed(0) : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)) + ' ' + UNITS[i];
  }
  const rate = (v) => (v == null || isNaN(v) ? '–' : bytes(v) + '/s');
  function duration(s) {
    if (s == null) return '–';
    const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    if (d > 0) return `${d}d ${h}h`;
    if (h > 0) return `${h}h ${m}m`;
    return `${m}m ${Math.floor(s % 60)}s`;
  }
  // ago is how long before now t was; every relative time on the page is
  // drawn by tick() with one now, so two labels for the same instant agree.
  function ago(t, now) {
    const s = Math.max(0, ((now ?? Date.now()) - t) / 1000);
    if (s < 60) return `${Math.floor(s)}s ago`;
    if (s < 3600) return `${Math.floor(s / 60)}m ago`;
    if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
    return `${Math.floor(s / 86400)}d ago`;
  }
  const cssVar = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  function withAlpha(color, a) {
    const c = document.createElement('canvas').getContext('2d');
    c.fillStyle = color;
    const hex = c.fillStyle; // normalised to #rrggbb
    if (!hex.startsWith('#')) return color;
    const n = parseInt(hex.slice(1), 16);
    return `rgba(${n >> 16 & 255},${n >> 8 & 255},${n & 255},${a})`;
  }

  // ---------- UI helpers ----------
  let toastTimer;
  function toast(msg) {
    const el = $('toast');
    el.textContent = msg;
    el.hidden = false;
    // A popover, shown again each time, so it stays above an open modal
    // dialog (the alerts panel) rather than under its backdrop.
    if (el.showPopover) {
      if (el.matches(':popover-open')) el.hidePopover();
      el.showPopover();
    }
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => {
      el.hidden = true;
      if (el.hidePopover && el.matches(':popover-open')) el.hidePopover();
    }, 4000);
  }
  function setConn(st, text) {
    $('conn').dataset.state = st;
    $('connText').textContent = text;
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  // ---------- token ----------
  function readToken() {
    // A link such as /#token=… (what `make dev` prints) or ?token=… sets the
    // token once; it is then kept in localStorage and removed from the URL
    // so it does not linger in history or get shared by copy-paste.
    const hash = new URLSearchParams(location.hash.slice(1));
    const query = new URLSearchParams(location.search);
    const fromURL = hash.get('token') || query.get('token');
    if (fromURL) {
      localStorage.setItem(TOKEN_KEY, fromURL.trim());
      hash.delete('token');
      query.delete('token');
      const q = query.toString(), h = hash.toString();
      history.replaceState(null, '', location.pathname + (q ? '?' + q : '') + (h ? '#' + h : ''));
    }
    return localStorage.getItem(TOKEN_KEY) || '';
  }
  function showTokenDialog(err) {
    $('tokenInput').value = state.token;
    $('tokenError').hidden = !err;
    $('tokenError').textContent = err || '';
    const d = $('tokenDialog');
    if (!d.open) d.showModal();
  }
  $('tokenForm').addEventListener('submit', (ev) => {
    if (ev.submitter && ev.submitter.value === 'save') {
      const t = $('tokenInput').value.trim();
      if (!t) { ev.preventDefault(); $('tokenError').hidden = false; $('tokenError').textContent = 'Paste a token first.'; return; }
      localStorage.setItem(TOKEN_KEY, t);
      state.token = t;
      restart();
    }
  });
  $('tokenClear').addEventListener('click', () => {
    localStorage.removeItem(TOKEN_KEY);
    state.token = '';
    $('tokenDialog').close();
    restart();
  });
  $('tokenBtn').addEventListener('click', () => showTokenDialog());
  $('emptyTokenBtn').addEventListener('click', () => showTokenDialog());

  // ---------- REST ----------
  class HTTPError extends Error {
    constructor(status, msg) { super(msg); this.status = status; }
  }
  async function api(path, method) {
    const res = await fetch(state.apiBase + path, { method: method || 'GET', headers: { Authorization: 'Bearer ' + state.token } });
    let body = null;
    try { body = await res.json(); } catch (_) { /* not JSON */ }
    if (!res.ok) throw new HTTPError(res.status, (body && body.error) || res.statusText);
    return body;
  }
  function apiFailed(err, what) {
    if (err instanceof HTTPError && err.status === 401) {
      refuse(err.message);
      return;
    }
    toast(`${what}: ${err.message}`);
  }

  // ---------- servers ----------
  let serversTimer = null, serversGen = 0;
  async function loadServers() {
    clearTimeout(serversTimer);
    if (!state.token || state.refused) return;
    const gen = serversGen;
    let r;
    try {
      r = await api('/api/servers');
    } catch (err) {
      if (gen !== serversGen) return;
      if (err instanceof HTTPError && err.status === 401) {
        refuse(err.message);
        return;
      }
      if (state.servers) toast(`Servers: ${err.message}`);
      state.serversError = err.message;
      renderServers();
      // Until the first list arrives, try again soon rather than in 30 s.
      serversTimer = setTimeout(loadServers, state.servers ? 30e3 : 5e3);
      return;
    }
    if (gen !== serversGen) return; // the token changed meanwhile
    serversTimer = setTimeout(loadServers, 30e3);
    state.serversError = '';
    // A live push may have seen a newer sample than this list knows of.
    const seen = new Map((state.servers || []).map((s) => [s.id, s.lastSeenAt]));
    state.servers = (r.servers || []).map((s) => {
      const prev = seen.get(s.id);
      return prev && Date.parse(prev) > Date.parse(s.lastSeenAt) ? { ...s, lastSeenAt: prev } : s;
    });
    // The API lists the most recently seen first: that one is shown unless
    // the URL names another, but the list keeps a stable order rather than
    // reshuffling as servers report.
    const newest = state.servers[0];
    state.servers.sort((a, b) => a.id.localeCompare(b.id, undefined, { numeric: true }));
    if (!state.server) {
      const want = new URLSearchParams(location.hash.slice(1)).get('server');
      const pick = state.servers.find((s) => s.id === want) || newest;
      // The URL's entry is corrected, not added to: Back leaves the page.
      if (pick) { select(pick.id, 'replace'); return; } // which renders the list
    }
    renderServers();
    // New instances appear without a reload.
    const cur = state.servers.find((s) => s.id === state.server);
    if (cur && (cur.instances || []).some((i) => !state.instances.has(i.id))) renderInstances(cur);
  }
  function refuse(msg) {
    state.refused = msg || 'refused';
    setConn('error', 'token refused');
    wsGen++; // stop reconnecting with a token the server refuses
    if (ws) ws.close();
    clearTimeout(serversTimer);
    clearTimeout(retryTimer);
    renderServers();
    showTokenDialog(state.refused);
  }

  // view is what the page shows: the token prompt only without a token or
  // when it was refused, a loading state until the first servers list
  // arrives, "No servers yet" only when that list is really empty.
  function view() {
    if (!state.token) return 'no-token';
    if (state.refused) return 'refused';
    if (state.servers == null) return state.serversError ? 'error' : 'loading';
    if (state.servers.length === 0) return 'no-servers';
    return state.server ? 'detail' : 'pick';
  }
  const VIEWS = {
    'no-token': ['Live server health', 'Paste a token to see your servers.', 'No token.'],
    refused: ['Token refused', '', 'Token refused.'],
    loading: ['Loading servers…', 'Connecting with your token.', ''],
    error: ['Can’t reach the API', '', 'Can’t load servers.'],
    'no-servers': ['No servers yet', 'No server has reported yet, or this token may not read any. Servers appear here as soon as they report.', 'No servers yet.'],
    pick: ['Pick a server', 'Choose a server on the left to see it live.', ''],
  };
  function renderView() {
    const v = view();
    document.body.dataset.view = v;
    $('detail').hidden = v !== 'detail';
    $('empty').hidden = v === 'detail';
    if (v === 'detail') return;
    const [title, text] = VIEWS[v];
    $('empty').dataset.view = v;
    $('emptyTitle').textContent = title;
    $('emptyText').textContent = v === 'refused' ? `The server refused this token (${state.refused}). Paste a new one.`
      : v === 'error' ? `${state.serversError}. Retrying…` : text;
    $('emptyTokenBtn').hidden = !(v === 'no-token' || v === 'refused');
    $('emptySpinner').hidden = !(v === 'loading' || v === 'error');
  }

  function renderServers() {
    renderView();
    const ul = $('servers');
    const total = state.servers ? state.servers.length : 0;
    if (total < 2) $('filter').value = ''; // hidden, so it must not filter
    const f = $('filter').value.trim().toLowerCase();
    ul.replaceChildren();
    const v = view();
    if (v === 'loading') {
      // Placeholder rows where the list will be.
      for (let i = 0; i < 3; i++) ul.append(el('li', 'skeleton'));
    }
    let n = 0;
    for (const s of state.servers || []) {
      if (f && !s.id.toLowerCase().includes(f)) continue;
      n++;
      const b = el('button');
      b.type = 'button';
      b.dataset.server = s.id;
      if (s.id === state.server) b.classList.add('on');
      b.append(el('span', 'sdot'), el('span', 'sname', s.id), el('span', 'salert'), el('span', 'sago'));
      b.addEventListener('click', () => select(s.id, 'push'));
      const li = el('li');
      li.append(b);
      ul.append(li);
    }
    $('serverCount').textContent = total || '';
    $('filter').hidden = total < 2;
    const note = v === 'detail' || v === 'pick' ? (n === 0 ? 'No server matches.' : '') : VIEWS[v][2];
    $('serversNote').hidden = !note;
    $('serversNote').textContent = note;
    renderMarks();
    tick();
  }
  $('filter').addEventListener('input', renderServers);

  // seenAt is when a server's newest sample was taken, from the servers
  // list or, for the selected server, the newest live push.
  function seenAt(s) {
    let t = Date.parse(s.lastSeenAt);
    if (s.id === state.server && state.latest) t = Math.max(t, Date.parse(state.latest.collectedAt));
    return t;
  }
  const freshness = (age) => (age < 60e3 ? 'fresh' : age < 600e3 ? 'stale' : 'old');
  // A host is down once it has been silent for 3 of its reporting
  // intervals (GET /api/servers gives each one's, in seconds), at least
  // 30 s: its last numbers are then not its state.
  const downAfter = (s) => Math.max(3 * (s.interval || 10), 30) * 1000;
  const isDown = (s, now) => now - seenAt(s) > downAfter(s);

  // tick redraws every relative time from the stored timestamps with one
  // now, once a second, on the second, so the labels move together.
  let tickTimer = null;
  function tick() {
    clearTimeout(tickTimer);
    const now = Date.now();
    const byId = new Map((state.servers || []).map((s) => [s.id, s]));
    for (const b of $('servers').querySelectorAll('button[data-server]')) {
      const s = byId.get(b.dataset.server);
      if (!s) continue;
      const t = seenAt(s);
      const down = isDown(s, now);
      b.classList.toggle('down', down);
      b.dataset.down = String(down);
      b.querySelector('.sago').textContent = down ? 'down' : ago(t, now);
      b.querySelector('.sdot').className = 'sdot ' + (down ? 'down' : freshness(now - t));
      b.title = `${s.id} · ${(s.instances || []).length} instances · ${down ? 'down, ' : ''}last sample ${new Date(t).toLocaleString()}`;
    }
    if ($('alertsPanel').open) tickAlertsPanel(now);
    const u = $('updated');
    const cur = byId.get(state.server);
    const down = !!cur && isDown(cur, now);
    document.body.dataset.down = String(down);
    $('downBadge').hidden = !down;
    $('tiles').classList.toggle('stale', down);
    if (down) {
      u.textContent = 'down · last seen ' + ago(seenAt(cur), now);
      u.className = 'updated down';
    } else if (!state.latest) {
      u.textContent = 'waiting for data…';
      u.className = 'updated';
    } else {
      const t = cur ? seenAt(cur) : Date.parse(state.latest.collectedAt);
      u.textContent = 'last sample ' + ago(t, now);
      u.className = 'updated ' + freshness(now - t);
    }
    tickTimer = setTimeout(tick, 1000 - (Date.now() % 1000) + 5);
  }

  // select shows server id. how says what happens to the URL: 'push' adds a
  // history entry (a click, so Back returns to the previous server),
  // 'replace' rewrites the current one, and 'none' leaves it (the URL
  // already names id: the user edited it, or went Back or Forward).
  function select(id, how) {
    if (state.server === id) return;
    state.server = id;
    state.latest = null;
    state.sysinfo = null;
    state.hist = [];
    if (how !== 'none') {
      const h = new URLSearchParams(location.hash.slice(1));
      h.set('server', id);
      const url = '#' + h.toString();
      if (how === 'push') history.pushState(null, '', url);
      else history.replaceState(null, '', url);
    }
    $('serverName').textContent = id;
    for (const t of document.querySelectorAll('.tile')) resetTile(t);
    renderServers();
    const srv = state.servers.find((s) => s.id === id);
    renderInstances(srv);
    subscribeSelected();
    loadHistory();
  }

  // followURL shows the server the URL names when it changes under the
  // page: an edited #server=, or Back/Forward between servers. Both events
  // come for a Back between hash entries; select ignores the second.
  function followURL() {
    const h = new URLSearchParams(location.hash.slice(1));
    if (h.get('token')) { // a pasted /#token=… link, as at start
      state.token = readToken();
      restart();
      return;
    }
    const want = h.get('server');
    if (!want || want === state.server || !state.servers) return; // the first list picks it
    if (state.servers.some((s) => s.id === want)) {
      select(want, 'none');
      return;
    }
    toast(`No server “${want}” for this token.`);
    h.set('server', state.server);
    if (state.server) history.replaceState(null, '', '#' + h.toString());
  }
  window.addEventListener('hashchange', followURL);
  window.addEventListener('popstate', followURL);

  // ---------- tiles ----------
  function resetTile(t) {
    t.querySelector('.value').textContent = '–';
    t.querySelector('.sub').textContent = '';
    const m = t.querySelector('.meter i');
    if (m) m.style.width = '0';
  }
  function setTile(id, value, sub, meter) {
    const t = $('tile-' + id);
    const v = t.querySelector('.value');
    if (v.textContent !== value) {
      // The unit is set smaller so "1.58 KiB/s" fits a phone-width tile.
      const m = /^(.*\d)( (?:%|[KMGTP]?i?B(?:\/s)?))$/.exec(value);
      if (m) v.replaceChildren(m[1], el('span', 'unit', m[2]));
      else v.textContent = value;
      t.classList.add('flash');
      requestAnimationFrame(() => requestAnimationFrame(() => t.classList.remove('flash')));
    }
    t.querySelector('.sub').textContent = sub || '';
    const m = t.querySelector('.meter');
    if (m && meter != null) {
      const p = Math.max(0, Math.min(100, meter));
      m.querySelector('i').style.width = p + '%';
      m.classList.toggle('warn', p >= 75 && p < 90);
      m.classList.toggle('crit', p >= 90);
    }
  }
  function renderTiles(m) {
    const si = state.sysinfo;
    const cores = si && si.cpus && si.cpus.length ? `${si.cpus.length} cores${si.cpus[0].model ? ' · ' + si.cpus[0].model : ''}` : '';
    setTile('cpu', pct(m.cpuUsagePercent), cores, m.cpuUsagePercent);
    setTile('load', m.cpuLoad1m.toFixed(2), `5m ${m.cpuLoad5m.toFixed(2)} · 15m ${m.cpuLoad15m.toFixed(2)}`);
    setTile('ram', pct(m.ramUsagePercent), `${bytes(m.ramUsedBytes)} of ${bytes(m.ramTotalBytes)}`, m.ramUsagePercent);
    if (m.swapTotalBytes > 0) {
      const sp = m.swapUsedBytes / m.swapTotalBytes * 100;
      setTile('swap', pct(sp), `${bytes(m.swapUsedBytes)} of ${bytes(m.swapTotalBytes)}`, sp);
    } else {
      setTile('swap', 'none', 'no swap configured', 0);
    }
    setTile('disk', pct(m.diskUsagePercent), `${bytes(m.diskUsedBytes)} of ${bytes(m.diskTotalBytes)}`, m.diskUsagePercent);
    setTile('rx', rate(m.networkRxBytesPerSec), `${bytes(m.networkRxBytes)} total`);
    setTile('tx', rate(m.networkTxBytesPerSec), `${bytes(m.networkTxBytes)} total`);
    const boot = Date.parse(m.collectedAt) - m.uptimeSeconds * 1000;
    setTile('uptime', duration(m.uptimeSeconds), 'since ' + new Date(boot).toLocaleDateString(undefined, { month: 'short', day: 'numeric' }));
    document.body.dataset.lastSample = m.collectedAt;
    tick();
  }

  function onServerMetric(id, m) {
    // The servers list learns of the sample too, so its label agrees.
    const srv = (state.servers || []).find((s) => s.id === id);
    if (srv && Date.parse(m.collectedAt) > Date.parse(srv.lastSeenAt)) srv.lastSeenAt = m.collectedAt;
    if (id !== state.server) return;
    // The streamer already orders a subscription's pushes by the project's
    // rule (newer, or the latest was dated ahead of its clock: a host whose
    // clock stepped back), so each one is the newest state; comparing dates
    // here would freeze the tiles behind one sample from the future.
    state.latest = m;
    renderTiles(m);
    // Live points extend the finest chart; coarser periods are rollups the
    // query function computes, so they refresh from REST instead.
    if (state.period === '1h') {
      const last = state.hist[state.hist.length - 1];
      if (!last || Date.parse(m.collectedAt) > Date.parse(last.collectedAt)) {
        state.hist.push(m);
        const cutoff = Date.now() - 3600e3;
        while (state.hist.length && Date.parse(state.hist[0].collectedAt) < cutoff) state.hist.shift();
        updateCharts();
      }
    }
  }

  // ---------- charts ----------
  const CHARTS = [
    { key: 'cpu', fmt: pct, range: [0, 100], series: [
      { label: 'CPU', color: '--c1', fill: true, get: (m) => m.cpuUsagePercent },
      // Raw points have no separate peak; rollups keep it.
      { label: 'Peak', color: '--c3', get: (m) => m.cpuUsagePercentMax, dash: [4, 4], rollupOnly: true },
    ] },
    { key: 'mem', fmt: pct, range: [0, 100], series: [
      { label: 'RAM', color: '--c2', fill: true, get: (m) => m.ramUsagePercent },
      { label: 'Swap', color: '--c4', get: (m) => (m.swapTotalBytes > 0 ? m.swapUsedBytes / m.swapTotalBytes * 100 : null) },
    ] },
    { key: 'load', fmt: (v) => (v == null ? '–' : v.toFixed(2)), series: [
      { label: '1m', color: '--c1', get: (m) => m.cpuLoad1m },
      { label: '5m', color: '--c2', get: (m) => m.cpuLoad5m },
      { label: '15m', color: '--c3', get: (m) => m.cpuLoad15m },
    ] },
    { key: 'net', fmt: rate, bytes: '/s', series: [
      { label: 'In', color: '--c2', fill: true, get: (m) => m.networkRxBytesPerSec },
      { label: 'Out', color: '--c4', get: (m) => m.networkTxBytesPerSec },
    ] },
    { key: 'disk', fmt: pct, range: [0, 100], series: [
      { label: 'Used', color: '--c3', fill: true, get: (m) => m.diskUsagePercent },
    ] },
  ];
  // The series a period draws: raw 1h points have no separate peak.
  const shown = (def) => def.series.filter((s) => !(s.rollupOnly && state.period === '1h'));

  // Byte axes step in round binary amounts (…, 100 B, 256 B, 512 B, 1 KiB,
  // 2 KiB, 5 KiB, …), so every tick is a short number in the unit it is
  // shown in and no two ticks read the same; and the scale spans at least
  // 1 KiB, so an idle link draws 0 … 1 KiB rather than 0, 0, 1, 1 B.
  const BYTE_INCRS = [];
  for (let u = 1; u <= 1024 ** 5; u *= 1024) for (const k of [1, 2, 5, 10, 20, 50, 100, 256, 512]) BYTE_INCRS.push(k * u);
  function byteTicks(vals, suffix) {
    for (let digits = 2; ; digits++) {
      const out = vals.map((v) => {
        if (v == null) return '';
        let i = 0;
        while (Math.abs(v) >= 1024 && i < UNITS.length - 1) { v /= 1024; i++; }
        return +v.toFixed(digits) + ' ' + UNITS[i] + suffix;
      });
      if (new Set(out).size === out.length || digits >= 6) return out;
    }
  }
  // axisWidth fits the y axis to its widest label.
  const measure = document.createElement('canvas').getContext('2d');
  function axisWidth(u, values) {
    if (!values) return 40;
    measure.font = '12px ' + getComputedStyle(document.body).fontFamily;
    return Math.ceil(Math.max(24, ...values.map((v) => measure.measureText(v).width))) + 14;
  }
  function yAxis(def, muted, grid) {
    const a = { stroke: muted, grid: { stroke: grid, width: 1 }, ticks: { show: false }, size: axisWidth };
    let fmt = (vals) => vals.map((v) => (v == null ? '' : uPlot.fmtNum(v)));
    if (def.bytes != null) {
      a.incrs = BYTE_INCRS;
      fmt = (vals) => byteTicks(vals, def.bytes);
    } else if (def.range) {
      fmt = (vals) => vals.map((v) => v + '%');
    }
    // The labels drawn (on the canvas) are also left on the chart's
    // element, where a test can read them.
    a.values = (u, vals) => {
      const out = fmt(vals);
      $('chart-' + def.key).dataset.yTicks = out.join(' | ');
      return out;
    };
    return a;
  }
  function yScale(def) {
    if (def.range) return { range: def.range };
    const least = def.bytes != null ? 1024 : 1;
    return { range: (u, min, max) => [0, Math.max(least, max > 0 ? max * 1.15 : 0)] };
  }
  const WINDOW = { '1h': 3600, '6h': 6 * 3600, '24h': 86400, '7d': 7 * 86400 };

  function periodRange(xs) {
    const now = Date.now() / 1000;
    let lo = now - WINDOW[state.period], hi = now;
    if (xs.length) { lo = Math.min(lo, xs[0]); hi = Math.max(hi, xs[xs.length - 1]); }
    return [lo, hi];
  }

  // showLatest puts the newest values in the legend while the cursor is
  // elsewhere, so the legend reads as a caption rather than dashes.
  function showLatest(u) {
    const n = u.data[0].length;
    if (n > 0 && u.cursor.left < 0) u.setLegend({ idx: n - 1 });
  }

  // columns turns points into uPlot columns, with a null where reports
  // stopped for a while so the line breaks instead of bridging the gap.
  function columns(points, getters) {
    const xs = [], ys = getters.map(() => []);
    let step = 0;
    if (points.length > 2) {
      const d = [];
      for (let i = 1; i < points.length; i++) d.push(Date.parse(points[i].collectedAt) - Date.parse(points[i - 1].collectedAt));
      d.sort((a, b) => a - b);
      step = d[Math.floor(d.length / 2)] / 1000;
    }
    let prev = null;
    for (const m of points) {
      const x = Date.parse(m.collectedAt) / 1000;
      if (prev != null && step > 0 && x - prev > step * 3) {
        xs.push(prev + step);
        ys.forEach((col) => col.push(null));
      }
      xs.push(x);
      getters.forEach((g, i) => ys[i].push(g(m)));
      prev = x;
    }
    return [xs, ...ys];
  }

  function buildCharts() {
    for (const c of Object.values(state.charts)) c.destroy();
    state.charts = {};
    const muted = cssVar('--muted'), grid = cssVar('--grid');
    for (const def of CHARTS) {
      const host = $('chart-' + def.key);
      host.replaceChildren();
      const opts = {
        width: Math.max(200, host.clientWidth),
        height: 200,
        cursor: { sync: { key: 'vitals' }, drag: { x: false, y: false } },
        legend: { live: true },
        scales: {
          // The whole period, so a server that started reporting recently
          // or went quiet shows as such. From the data itself: with one
          // point uPlot offers a range 1000 days wide, with none 1970.
          x: { time: true, range: (u) => periodRange(u.data[0]) },
          y: yScale(def),
        },
        axes: [
          { stroke: muted, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } },
          yAxis(def, muted, grid),
        ],
        series: [{ value: (u, v) => (v == null ? '–' : new Date(v * 1000).toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: state.period === '1h' ? '2-digit' : undefined })) }].concat(shown(def).map((s) => {
          const color = cssVar(s.color);
          return {
            label: s.label, stroke: color, width: 1.75,
            fill: s.fill ? withAlpha(color, 0.13) : undefined,
            // uPlot shows the points only where they are sparse, so a
            // lone sample is a dot rather than nothing.
            dash: s.dash, points: { size: 5, fill: color },
            value: (u, v) => def.fmt(v),
          };
        })),
      };
      opts.hooks = { ready: [showLatest], setData: [showLatest], setCursor: [(u) => { if (u.cursor.left < 0) showLatest(u); }] };
      const data = columns(state.hist, shown(def).map((s) => s.get));
      state.charts[def.key] = new uPlot(opts, data, host);
    }
    buildSparks();
  }
  function updateCharts() {
    for (const def of CHARTS) {
      const c = state.charts[def.key];
      if (c) c.setData(columns(state.hist, shown(def).map((s) => s.get)));
    }
  }
  const ro = new ResizeObserver(() => {
    for (const def of CHARTS) {
      const c = state.charts[def.key];
      const host = $('chart-' + def.key);
      if (c && host.clientWidth > 0 && Math.abs(c.width - host.clientWidth) > 2) c.setSize({ width: host.clientWidth, height: 200 });
    }
  });
  for (const def of CHARTS) ro.observe($('chart-' + def.key));
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => buildCharts());

  async function loadHistory() {
    const id = state.server, p = state.period;
    if (!id) return;
    $('charts').classList.add('loading');
    let r;
    try {
      r = await api(`/api/servers/${encodeURIComponent(id)}/metrics?period=${p}`);
    } catch (err) {
      $('charts').classList.remove('loading');
      apiFailed(err, 'History');
      return;
    }
    if (id !== state.server || p !== state.period) return; // a newer choice won
    state.hist = r.metrics || [];
    // A live sample that arrived before the history keeps its place.
    if (p === '1h' && state.latest) {
      const last = state.hist[state.hist.length - 1];
      if (!last || Date.parse(state.latest.collectedAt) > Date.parse(last.collectedAt)) state.hist.push(state.latest);
    }
    if (!state.latest && state.hist.length) {
      state.latest = state.hist[state.hist.length - 1];
      renderTiles(state.latest);
    }
    buildCharts();
    $('charts').classList.remove('loading');
    document.body.dataset.period = p;
    document.body.dataset.server = id;
    document.body.dataset.points = String(state.hist.length);
    loadInstanceHistory(id, p);
  }
  for (const b of $('periods').querySelectorAll('button')) {
    b.addEventListener('click', () => {
      const p = b.dataset.period;
      if (!PERIODS.includes(p) || p === state.period) return;
      state.period = p;
      for (const o of $('periods').querySelectorAll('button')) o.classList.toggle('on', o === b);
      loadHistory();
    });
  }

  // ---------- instances ----------
  function renderInstances(srv) {
    const list = (srv && srv.instances) || [];
    const tbody = $('instances');
    const keep = new Map();
    for (const inst of list) {
      const prev = state.instances.get(inst.id);
      keep.set(inst.id, prev || { name: inst.name, latest: null, hist: [], row: null, spark: null });
    }
    for (const [id, it] of state.instances) if (!keep.has(id) && it.spark) it.spark.destroy();
    state.instances = keep;
    tbody.replaceChildren();
    for (const [id, it] of keep) {
      const tr = el('tr');
      tr.dataset.instance = id;
      const name = el('td');
      name.append(el('div', 'iname', it.name), el('div', 'iid', id));
      tr.append(name, el('td', 'num icpu', '–'), el('td', 'num imem', '–'), el('td', 'num io-col iio', '–'));
      const sp = el('td', 'spark-col');
      sp.append(el('div', 'spark'));
      tr.append(sp);
      tbody.append(tr);
      it.row = tr;
      it.spark = null;
      if (it.latest) renderInstance(it);
    }
    $('instCount').textContent = list.length || '';
    $('noInstances').hidden = list.length > 0;
    subscribeInstances();
  }
  function renderInstance(it) {
    const m = it.latest;
    if (!m || !it.row) return;
    it.row.querySelector('.icpu').textContent = pct(m.cpuUsagePercent);
    it.row.querySelector('.imem').textContent = m.memoryLimitBytes > 0
      ? `${bytes(m.memoryUsedBytes)} · ${m.memoryUsagePercent.toFixed(1)} %` : bytes(m.memoryUsedBytes);
    it.row.querySelector('.iio').textContent = `R ${bytes(m.diskReadBytes)} · W ${bytes(m.diskWriteBytes)}`;
  }
  function onInstanceMetric(id, m) {
    const it = state.instances.get(id);
    if (!it) return;
    it.latest = m; // in the streamer's order, as for the server (onServerMetric)
    renderInstance(it);
    if (state.period === '1h' && it.spark) {
      it.hist.push(m);
      it.spark.setData(columns(it.hist, [(x) => x.cpuUsagePercent]));
    }
  }
  async function loadInstanceHistory(serverID, p) {
    for (const [id, it] of state.instances) {
      let r;
      try {
        r = await api(`/api/instances/${encodeURIComponent(id)}/monitoring/metrics?period=${p}`);
      } catch (err) {
        if (!(err instanceof HTTPError && err.status === 404)) apiFailed(err, 'Instance history');
        continue;
      }
      if (serverID !== state.server || p !== state.period) return;
      it.hist = r.metrics || [];
      if (!it.latest && it.hist.length) { it.latest = it.hist[it.hist.length - 1]; renderInstance(it); }
      buildSpark(it);
    }
  }
  function buildSpark(it) {
    if (!it.row) return;
    const host = it.row.querySelector('.spark');
    if (it.spark) it.spark.destroy();
    host.replaceChildren();
    const color = cssVar('--c1');
    it.spark = new uPlot({
      width: 200, height: 36,
      cursor: { show: false }, legend: { show: false },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
      axes: [{ show: false }, { show: false }],
      series: [{}, { stroke: color, width: 1.5, fill: withAlpha(color, 0.15), points: { show: false } }],
    }, columns(it.hist, [(x) => x.cpuUsagePercent]), host);
  }
  function buildSparks() { for (const it of state.instances.values()) if (it.hist.length) buildSpark(it); }

  // ---------- WebSocket ----------
  let ws = null, authed = false, backoff = 1000, retryTimer = null, wsGen = 0;
  function connectWS() {
    clearTimeout(retryTimer);
    if (!state.token) { setConn('offline', 'no token'); return; }
    const gen = ++wsGen;
    setConn('connecting', 'connecting…');
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const sock = new WebSocket(`${proto}//${location.host}/api/health/ws`);
    ws = sock;
    authed = false;
    sock.onopen = () => sock.send('auth ' + state.token);
    sock.onmessage = (ev) => { if (gen === wsGen) onWSMessage(ev.data); };
    sock.onclose = (ev) => {
      if (gen !== wsGen) return;
      authed = false;
      const why = ev.reason ? ` (${ev.reason})` : '';
      setConn(ev.code === 1008 ? 'error' : 'offline', 'reconnecting' + why);
      retryTimer = setTimeout(connectWS, backoff);
      backoff = Math.min(backoff * 2, 30000);
    };
  }
  function send(cmd) { if (ws && ws.readyState === WebSocket.OPEN && authed) ws.send(cmd); }
  function onWSMessage(d) {
    if (d === 'ok') {
      if (!authed) {
        authed = true;
        backoff = 1000;
        setConn('live', 'live');
        // Alerts follow the socket, not the selected server: the snapshot
        // that answers replaces what an earlier socket showed.
        state.alerts.clear();
        renderAlerts();
        send('subscribe alerts');
        subscribeSelected();
      }
      return;
    }
    if (d === 'pong') return;
    if (d.startsWith('error:')) {
      const msg = d.slice(6).trim();
      if (!authed) {
        refuse(msg);
      } else if (!/not found|may not read instance|alerting is not configured/.test(msg)) {
        // An instance that stopped reporting has no latest metric (a
        // scoped token is told "may not read instance", so it cannot
        // probe which ids exist): not worth a toast.
        toast(msg);
      }
      return;
    }
    let m;
    try { m = JSON.parse(d); } catch (_) { return; }
    if (m.type === 'alert') onAlert(m);
    else if (m.type === 'server') onServerMetric(m.id, m.metric);
    else if (m.type === 'instance') onInstanceMetric(m.id, m.metric);
    else if (m.cpus && m.mem) { state.sysinfo = m; if (state.latest) renderTiles(state.latest); }
  }
  function subscribeSelected() {
    if (!authed || !state.server) return;
    send('unsubscribe');
    send('subscribe server ' + state.server);
    send('sysinfo ' + state.server);
    subscribeInstances();
  }
  function subscribeInstances() {
    if (!authed) return;
    for (const id of state.instances.keys()) send('subscribe instance ' + id);
  }

  // ---------- alerts ----------
  // Every transition comes as {"type":"alert", key, rule, serverId, state,
  // …}: pending and firing are kept, resolved and ok drop the series.
  let alertsTimer = null;
  function onAlert(a) {
    if (a.state === 'pending' || a.state === 'firing') state.alerts.set(a.key, a);
    else state.alerts.delete(a.key);
    // A storm of transitions redraws once.
    if (!alertsTimer) alertsTimer = setTimeout(() => { alertsTimer = null; renderAlerts(); }, 50);
  }
  const seriesName = (a) => (a.instanceId ? `${a.serverId}/${a.instanceName || a.instanceId}` : a.serverId);
  function renderAlerts() {
    const firing = [...state.alerts.values()].filter((a) => a.state === 'firing')
      .sort((a, b) => a.serverId.localeCompare(b.serverId, undefined, { numeric: true }) || (a.rule || '').localeCompare(b.rule || ''));
    document.body.dataset.firing = String(firing.length);
    $('alertBanner').hidden = firing.length === 0;
    $('alertCount').textContent = firing.length === 1 ? '1 alert firing' : `${firing.length} alerts firing`;
    const list = $('alertList');
    list.replaceChildren();
    for (const a of firing.slice(0, 8)) {
      const b = el('button', 'alert-item', `${a.rule || a.metric} · ${seriesName(a)}`);
      b.type = 'button';
      b.dataset.server = a.serverId;
      b.title = `${a.metric} = ${a.value} · firing since ${new Date(a.since).toLocaleString()}`;
      b.addEventListener('click', () => {
        if (state.servers && state.servers.some((s) => s.id === a.serverId)) select(a.serverId, 'push');
        else toast(`${a.serverId} is not in the server list.`);
      });
      list.append(b);
    }
    if (firing.length > 8) list.append(el('span', 'alert-more', `+${firing.length - 8} more`));
    renderMarks();
    $('alertsBtnCount').hidden = firing.length === 0;
    $('alertsBtnCount').textContent = String(firing.length);
    $('alertsBtn').setAttribute('aria-label', firing.length ? `Alerts, ${firing.length} firing` : 'Alerts');
    // The open panel's recent alerts follow the live transitions.
    if ($('alertsPanel').open) schedulePanelAlerts();
  }
  // renderMarks puts each host's firing (or else pending) count beside it.
  function renderMarks() {
    const by = new Map();
    for (const a of state.alerts.values()) {
      const m = by.get(a.serverId) || { firing: [], pending: [] };
      m[a.state].push(a.rule || a.metric);
      by.set(a.serverId, m);
    }
    for (const b of $('servers').querySelectorAll('button[data-server]')) {
      const m = by.get(b.dataset.server);
      const mark = b.querySelector('.salert');
      const list = m ? (m.firing.length ? m.firing : m.pending) : [];
      mark.className = 'salert ' + (m ? (m.firing.length ? 'firing' : 'pending') : '');
      mark.textContent = list.length ? String(list.length) : '';
      mark.title = list.length ? `${m.firing.length ? 'firing' : 'pending'}: ${list.join(', ')}` : '';
    }
  }

  // ---------- alerts panel ----------
  // The rules the token may read and the recent alerts, from REST. Delete
  // buttons appear only for a token whose scope claim has alerts:write;
  // the claim is decoded here for that alone (the server checks the
  // signature and the scope on every request).
  function tokenScopes() {
    try {
      const part = state.token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      const json = decodeURIComponent([...atob(part)].map((c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0')).join(''));
      const scope = JSON.parse(json).scope;
      return typeof scope === 'string' ? scope.split(/\s+/).filter(Boolean) : [];
    } catch (_) {
      return [];
    }
  }
  const canWriteAlerts = () => tokenScopes().includes('alerts:write');

  let panelGen = 0, panelAlertsTimer = null;
  function openAlertsPanel() {
    const d = $('alertsPanel');
    if (!d.open) d.showModal();
    loadAlertsPanel();
  }
  $('alertsBtn').addEventListener('click', openAlertsPanel);
  $('alertsClose').addEventListener('click', () => $('alertsPanel').close());
  // A click on the backdrop (outside the panel's box) closes it too.
  $('alertsPanel').addEventListener('click', (ev) => {
    const d = $('alertsPanel');
    if (ev.target !== d) return;
    const r = d.getBoundingClientRect();
    if (ev.clientX < r.left || ev.clientX > r.right || ev.clientY < r.top || ev.clientY > r.bottom) d.close();
  });
  $('alertsPanel').addEventListener('close', () => { clearTimeout(panelAlertsTimer); $('alertsBtn').focus(); });

  async function loadAlertsPanel() {
    const gen = ++panelGen;
    const write = canWriteAlerts();
    document.body.dataset.alertsWrite = String(write);
    $('alertsAccess').textContent = write
      ? 'This token may change alert rules (scope alerts:write).'
      : 'Read-only: changing rules needs a token with the scope alerts:write.';
    $('alertsPanel').dataset.loaded = 'false';
    if (!state.token) {
      $('rulesList').replaceChildren();
      $('recentList').replaceChildren();
      panelNote('rulesNote', 'No token.');
      panelNote('recentNote', '');
      return;
    }
    panelNote('rulesNote', 'Loading rules…');
    panelNote('recentNote', 'Loading alerts…');
    const [rules, alerts] = await Promise.allSettled([api('/api/alerts/rules'), api('/api/alerts')]);
    if (gen !== panelGen) return; // reopened or the token changed meanwhile
    if (rules.status === 'fulfilled') renderRules(rules.value.rules || [], write);
    else panelFailed(rules.reason, 'rulesNote', 'rulesList');
    if (alerts.status === 'fulfilled') renderRecent(alerts.value.alerts || []);
    else panelFailed(alerts.reason, 'recentNote', 'recentList');
    $('alertsPanel').dataset.loaded = 'true';
  }
  function panelNote(id, text) {
    $(id).textContent = text;
    $(id).hidden = !text;
  }
  function panelFailed(err, note, list) {
    $(list).replaceChildren();
    panelNote(note, `Can’t load: ${err.message}`);
    if (err instanceof HTTPError && err.status === 401) refuse(err.message);
  }
  // schedulePanelAlerts re-reads the recent alerts once a burst of live
  // transitions has passed.
  function schedulePanelAlerts() {
    clearTimeout(panelAlertsTimer);
    panelAlertsTimer = setTimeout(async () => {
      const gen = panelGen;
      let r;
      try { r = await api('/api/alerts'); } catch (_) { return; } // the next transition retries
      if (gen === panelGen && $('alertsPanel').open) renderRecent(r.alerts || []);
    }, 500);
  }

  // ruleCondition is a rule's condition in words: "cpuUsagePercent > 90
  // for 2m", "no data for 30s".
  function ruleCondition(r) {
    const dur = r.for && r.for !== '0s' ? ` for ${r.for}` : '';
    if (r.metric === 'nodata') return `no data${dur || ' (any silence)'} beyond the reporting interval`;
    let s = `${r.metric} ${r.op} ${r.value}${dur}`;
    if (r.clear != null) s += ` · clears at ${r.clear}`;
    return s;
  }
  function ruleMeta(dl, label, values) {
    dl.append(el('dt', '', label));
    const dd = el('dd');
    if (!values || values.length === 0) dd.append(el('span', 'none', 'none'));
    for (const v of values || []) dd.append(el('code', 'chip', v));
    dl.append(dd);
  }
  function renderRules(rules, write) {
    rules.sort((a, b) => (a.name || '').localeCompare(b.name || '', undefined, { numeric: true }) || a.id.localeCompare(b.id));
    const ul = $('rulesList');
    ul.replaceChildren();
    $('rulesCount').textContent = rules.length ? String(rules.length) : '';
    panelNote('rulesNote', rules.length ? '' : 'No rules this token may read.');
    for (const r of rules) {
      const li = el('li', 'rule');
      li.dataset.rule = r.id;
      const main = el('div', 'rule-main');
      main.append(el('div', 'rule-name', r.name), el('div', 'rule-cond', ruleCondition(r)));
      const dl = el('dl', 'rule-meta');
      ruleMeta(dl, 'Servers', r.servers);
      if (r.instances && r.instances.length) ruleMeta(dl, 'Instances', r.instances);
      ruleMeta(dl, 'Channels', r.channels);
      if (r.repeat && r.repeat !== '0s') ruleMeta(dl, 'Repeat', [r.repeat]);
      main.append(dl);
      li.append(main);
      if (write) {
        const act = el('div', 'rule-actions');
        li.append(act);
        ruleDeleteButton(r, act);
      }
      ul.append(li);
    }
  }
  // ruleDeleteButton asks first: Delete turns into "Delete “name”?" with
  // Cancel (focused) and a second Delete that calls the API.
  function ruleDeleteButton(r, act) {
    const del = el('button', 'btn danger small', 'Delete');
    del.type = 'button';
    del.dataset.action = 'delete';
    del.setAttribute('aria-label', `Delete rule ${r.name}`);
    del.addEventListener('click', () => {
      const q = el('span', 'confirm-q', `Delete “${r.name}”?`);
      const cancel = el('button', 'btn ghost small', 'Cancel');
      cancel.type = 'button';
      cancel.dataset.action = 'cancel';
      const yes = el('button', 'btn danger small', 'Delete');
      yes.type = 'button';
      yes.dataset.action = 'confirm';
      yes.setAttribute('aria-label', `Confirm: delete rule ${r.name}`);
      cancel.addEventListener('click', () => { act.replaceChildren(); ruleDeleteButton(r, act); act.querySelector('button').focus(); });
      yes.addEventListener('click', () => deleteRule(r, act, yes));
      act.replaceChildren(q, cancel, yes);
      cancel.focus();
    });
    act.replaceChildren(del);
  }
  async function deleteRule(r, act, btn) {
    for (const b of act.querySelectorAll('button')) b.disabled = true;
    btn.textContent = 'Deleting…';
    try {
      await api(`/api/alerts/rules/${encodeURIComponent(r.id)}`, 'DELETE');
    } catch (err) {
      if (err instanceof HTTPError && err.status === 401) { refuse(err.message); return; }
      toast(err instanceof HTTPError && err.status === 403
        ? `Not allowed to delete “${r.name}”: ${err.message}`
        : `Delete “${r.name}”: ${err.message}`);
      act.replaceChildren();
      ruleDeleteButton(r, act);
      // A rule already gone elsewhere leaves the list on the reload.
      if (err instanceof HTTPError && err.status === 404) loadAlertsPanel();
      return;
    }
    toast(`Rule “${r.name}” deleted.`);
    loadAlertsPanel();
  }

  const STATE_ORDER = { firing: 0, pending: 1, resolved: 2 };
  function renderRecent(alerts) {
    alerts.sort((a, b) => (STATE_ORDER[a.state] ?? 3) - (STATE_ORDER[b.state] ?? 3) || Date.parse(b.since) - Date.parse(a.since));
    const ul = $('recentList');
    ul.replaceChildren();
    $('recentCount').textContent = alerts.length ? String(alerts.length) : '';
    panelNote('recentNote', alerts.length ? '' : 'Nothing firing, pending or resolved in the last 7 days.');
    const now = Date.now();
    const MAX = 100;
    for (const a of alerts.slice(0, MAX)) {
      const li = el('li', 'recent');
      li.dataset.state = a.state;
      li.dataset.key = a.key;
      const since = el('time', 'recent-since', ago(Date.parse(a.since), now));
      since.dateTime = a.since;
      since.title = new Date(a.since).toLocaleString();
      li.append(
        el('span', 'pill ' + a.state, a.state + (a.silenced ? ' · silenced' : '')),
        el('span', 'recent-rule', a.rule || a.metric),
        el('span', 'recent-series', seriesName(a)),
        since,
      );
      ul.append(li);
    }
    if (alerts.length > MAX) ul.append(el('li', 'note', `+${alerts.length - MAX} more (GET /api/alerts lists them all)`));
  }
  function tickAlertsPanel(now) {
    for (const t of $('recentList').querySelectorAll('time.recent-since')) t.textContent = ago(Date.parse(t.dateTime), now);
  }

  // ---------- start ----------
  function restart() {
    state.server = '';
    state.servers = null;
    state.refused = '';
    state.serversError = '';
    state.latest = null;
    state.alerts.clear();
    renderAlerts();
    serversGen++;
    clearTimeout(serversTimer);
    for (const c of Object.values(state.charts)) c.destroy();
    state.charts = {};
    renderServers();
    if ($('alertsPanel').open) loadAlertsPanel(); // with the new token
    if (ws) { wsGen++; ws.close(); }
    if (!state.token) { setConn('offline', 'no token'); showTokenDialog(); return; }
    connectWS();
    loadServers();
  }
  async function start() {
    try {
      const r = await fetch('config.json');
      if (r.ok) state.apiBase = ((await r.json()).apiBase || '').replace(/\/$/, '');
    } catch (_) { /* same origin */ }
    state.token = readToken();
    restart();
  }
  start();
})();
