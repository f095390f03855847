// The workspace tabs of the console: 工单 (tickets), 回访 (return calls), 报表 (dashboard).
// Like console.js: everything from the server goes on the page as text nodes, never innerHTML.
(() => {
  'use strict';
  const $ = id => document.getElementById(id);
  const ws = { me: null, tab: 'handoffs', current: null, agents: [] };
  const TZ = {timeZone: 'Asia/Shanghai'};
  const PRIORITY = {urgent: '紧急', high: '高', normal: '普通'};
  const SLA = {on_time: '正常', due_soon: '即将超时', breached: '已超时'};
  const CLOCK = {first_response: '首次响应', resolution: '解决'};
  const CLOCK_STATE = {active: '进行中', hit: '达成', missed: '超时'};
  const STATUSES = [['new', '已受理'], ['acknowledged', '已确认'], ['in_progress', '处理中'],
                    ['waiting', '待客户回复'], ['resolved', '已解决'], ['closed', '已关闭']];
  const OUTCOMES = [['reached', '已联系'], ['not_reached', '未接通'], ['refused', '拒绝回访']];
  const RC_STATUS = {due: '待回访', done: '已完成', unreachable: '无法联系', cancelled: '已取消'};
  const lead = () => ws.me && (ws.me.role === 'admin' || ws.me.role === 'lead');
  // Every live update (a change anywhere) draws the open list, ticket and 回访 again, while
  // the agent's own request may be drawing them too: only the newest request of each draws
  // (an older answer arriving late never draws over a newer one), and what the agent was
  // choosing or typing there (new status, assignee, note, a call's outcome) is kept.
  const latest = {tickets: 0, ticket: 0, calls: 0};
  const kept = (id, value) => {              // a select keeps a value it still offers
    const node = $(id);
    if (!node || value == null || (node.options && ![...node.options].some(o => o.value === value))) return;
    node.value = value;
  };

  const {el} = window.kefu;                   // /static/kefu.js
  const api = (path, body) => window.kefu.request('/api/agent' + path, body);
  const when = iso => iso ? new Date(iso).toLocaleString('zh-CN', TZ) : '';
  const dur = s => s == null ? '-' : (s >= 3600 ? `${(s / 3600).toFixed(1)} 小时` : `${Math.round(s / 60)} 分钟`);
  const pct = r => r == null ? '-' : `${(r * 100).toFixed(1)}%`;
  const options = (select, pairs, blank) => { if (blank) select.appendChild(el('option', {value: '', textContent: blank})); for (const [v, t] of pairs) select.appendChild(el('option', {value: v, textContent: t})); return select; };

  // --- tabs ---------------------------------------------------------------------------
  function show(tab) {
    ws.tab = tab;
    for (const b of document.querySelectorAll('#tabs button')) b.classList.toggle('on', b.dataset.tab === tab);
    document.querySelector('main').style.display = tab === 'handoffs' ? '' : 'none';
    for (const v of document.querySelectorAll('.view')) v.style.display = v.id === 'view-' + tab ? 'block' : 'none';
    if (tab === 'tickets') loadTickets();
    if (tab === 'return-calls') loadCalls();
    if (tab === 'reports') loadReports();
  }
  document.addEventListener('kefu:signed-in', async ev => {
    ws.me = ev.detail;
    $('tab-reports').style.display = lead() ? '' : 'none';
    ws.agents = (await api('/agents').catch(() => ({agents: []}))).agents;
    const source = new EventSource('/api/agent/events');
    source.addEventListener('change', () => {
      if (ws.tab === 'tickets') { loadTickets(); if (ws.current) openTicket(ws.current); }
      if (ws.tab === 'return-calls') loadCalls();
    });
  });
  for (const b of document.querySelectorAll('#tabs button')) b.addEventListener('click', () => show(b.dataset.tab));

  // --- 工单 ------------------------------------------------------------------------------
  options($('t-status'), STATUSES, '全部状态');
  options($('t-kind'), [['repair', '报修'], ['complaint', '投诉'], ['return', '退换货'], ['callback', '人工回电']], '全部类型');
  options($('t-priority'), Object.entries(PRIORITY), '全部优先级');
  options($('t-sla'), Object.entries(SLA), '全部 SLA');
  options($('t-assignee'), [['me', '分配给我'], ['none', '未分配']], '全部处理人');
  $('t-search').addEventListener('click', () => loadTickets());
  $('t-q').addEventListener('keydown', ev => { if (ev.key === 'Enter') loadTickets(); });

  async function loadTickets() {
    const params = new URLSearchParams();
    for (const [key, id] of [['status', 't-status'], ['kind', 't-kind'], ['priority', 't-priority'], ['sla', 't-sla'],
                             ['assignee', 't-assignee'], ['from', 't-from'], ['to', 't-to'], ['q', 't-q']]) {
      if ($(id).value.trim()) params.set(key, $(id).value.trim());
    }
    const seq = ++latest.tickets;
    let data;
    try { data = await api('/tickets?' + params); } catch (err) { if (seq === latest.tickets) $('t-count').textContent = '查询失败：' + err.message; return; }
    if (seq !== latest.tickets) return;          // a newer search is drawing the list
    $('t-count').textContent = `共 ${data.total} 个工单`;
    const body = $('t-rows');
    body.replaceChildren();
    for (const t of data.tickets) {
      body.appendChild(el('tr', {class: 't-row' + (t.number === ws.current ? ' active' : ''), dataset: {number: t.number}, on: {click: () => openTicket(t.number)}},
        el('td', {textContent: t.number}), el('td', {textContent: t.kind_label}),
        el('td', {textContent: PRIORITY[t.priority] || t.priority, class: 'p-' + t.priority}),
        el('td', {textContent: t.status_label}), el('td', {textContent: t.channel}),
        el('td', {textContent: t.phone || '-'}), el('td', {textContent: t.assignee || '未分配'}),
        el('td', {textContent: SLA[t.sla_state], class: 'sla-' + t.sla_state}), el('td', {textContent: when(t.created_at)})));
    }
  }

  async function openTicket(number) {
    ws.current = number;
    for (const row of document.querySelectorAll('.t-row')) row.classList.toggle('active', row.dataset.number === number);
    const seq = ++latest.ticket;
    let t;
    try { t = (await api('/tickets/' + encodeURIComponent(number))).ticket; }
    catch (err) { if (seq === latest.ticket) $('t-detail').replaceChildren(el('p', {textContent: '无法打开：' + err.message})); return; }
    if (seq !== latest.ticket) return;           // a newer request is drawing this page
    const dl = el('dl', {});
    const add = (k, v) => { if (v !== null && v !== undefined && v !== '') dl.append(el('dt', {textContent: k}), el('dd', {textContent: String(v)})); };
    add('工单号', t.number); add('类型', `${t.kind_label}·${t.category}`); add('优先级', PRIORITY[t.priority]);
    add('状态', t.status_label); add('渠道', t.channel); add('客户', t.customer_id); add('手机', t.phone);
    add('地址', t.address); add('订单', t.order_id); add('描述', t.description); add('处理人', t.assignee || '未分配');
    add('评分', t.rating ? `${t.rating} 分` : '');
    const clocks = el('div', {id: 't-clocks', class: 'clocks'});
    for (const c of Object.values(t.clocks)) {
      clocks.appendChild(el('div', {class: 'clock ' + c.state, dataset: {clock: c.clock, state: c.state}},
        `${CLOCK[c.clock]}：${CLOCK_STATE[c.state]}${c.paused ? '（已暂停，等待客户）' : ''} · 已用 ${dur(c.used_s)} / ${dur(c.budget_s)}`,
        c.due_at ? ` · 截止 ${when(c.due_at)}` : ''));
    }
    const actions = el('div', {class: 'actions'});
    if (t.status !== 'closed') {
      if (!t.own && (t.assignee_id === null || lead())) actions.appendChild(el('button', {id: 't-assign-me', type: 'button', textContent: '分配给我', on: {click: () => act(() => api(`/tickets/${t.number}/assign`, {agent_id: ws.me.id}))}}));
      if (lead()) {
        const who = options(el('select', {id: 't-assign-to'}), ws.agents.map(a => [a.id, a.display_name]));
        actions.append(who, el('button', {type: 'button', textContent: '分配', on: {click: () => act(() => api(`/tickets/${t.number}/assign`, {agent_id: Number(who.value)}))}}));
      }
      if (t.own || lead()) {
        const status = options(el('select', {id: 't-new-status'}), STATUSES.filter(([v]) => v !== t.status && v !== 'new'));
        actions.append(el('br', {}), status, el('button', {id: 't-status-go', class: 'primary', type: 'button', textContent: '更新状态',
          on: {click: () => act(() => api(`/tickets/${t.number}/status`, {status: status.value}))}}));
      }
    }
    const note = el('input', {id: 't-note', placeholder: '内部备注（客户不可见）', maxLength: 2000});
    const noteRow = el('div', {class: 'row'}, note, el('button', {type: 'button', textContent: '备注', on: {click: () => { const text = $('t-note').value.trim(); if (text) act(async () => { await api(`/tickets/${t.number}/note`, {text}); $('t-note').value = ''; }); }}}));
    const events = el('div', {class: 'events'}, el('h3', {textContent: '处理记录'}));
    for (const e of t.events) events.appendChild(el('div', {textContent: `${when(e.at)} ${e.actor} ${e.kind === 'status' ? `${e.from || ''} → ${e.to}` : e.kind}${e.note ? '：' + e.note : ''}`}));
    const calls = el('div', {class: 'events'}, el('h3', {textContent: '回访'}));
    for (const c of t.return_calls) calls.appendChild(el('div', {class: 'rc-state', textContent: `${RC_STATUS[c.status]} · 尝试 ${c.attempts}/${c.max_attempts}${c.score ? ` · ${c.score} 分` : ''}${c.comment ? ' · ' + c.comment : ''}`}));
    const transcript = el('div', {class: 'events transcript'}, el('h3', {textContent: '对话记录'}));
    for (const line of t.transcript) transcript.appendChild(el('div', {class: 'tl ' + line.author, textContent: `${when(line.at)} ${line.author}：${line.text}`}));
    const same = $('t-detail').dataset.number === t.number;   // drawn again: keep the agent's input
    const before = same ? {status: $('t-new-status')?.value, to: $('t-assign-to')?.value, note: $('t-note')?.value,
                           focus: document.activeElement?.id} : {};
    $('t-detail').replaceChildren(el('h2', {textContent: `工单 ${t.number}`}), dl, clocks, actions, noteRow, calls, events, transcript);
    $('t-detail').dataset.number = t.number;
    kept('t-new-status', before.status); kept('t-assign-to', before.to); kept('t-note', before.note);
    if (before.focus && ['t-new-status', 't-assign-to', 't-note'].includes(before.focus) && $(before.focus)) $(before.focus).focus();
  }

  async function act(fn) {
    try { await fn(); } catch (err) { alert('操作失败：' + err.message); }
    if (ws.tab === 'tickets') { await loadTickets(); if (ws.current) await openTicket(ws.current); }
    if (ws.tab === 'return-calls') await loadCalls();
  }

  // --- 回访 ------------------------------------------------------------------------------
  options($('rc-filter'), Object.entries(RC_STATUS).filter(([k]) => k !== 'cancelled').concat([['all', '全部']]));
  $('rc-filter').addEventListener('change', () => loadCalls());
  async function loadCalls() {
    const seq = ++latest.calls;
    const data = await api('/return-calls?status=' + $('rc-filter').value).catch(() => ({return_calls: []}));
    if (seq !== latest.calls) return;            // a newer request is drawing the list
    const box = $('rc-rows');
    const before = {};                           // per call: what the agent chose or typed so far
    for (const row of box.querySelectorAll('.rc-row')) {
      const field = cls => row.querySelector(cls)?.value;
      before[row.dataset.id] = {outcome: field('.rc-outcome'), score: field('.rc-score'), comment: field('.rc-comment')};
    }
    box.replaceChildren();
    if (!data.return_calls.length) box.appendChild(el('p', {class: 'muted', textContent: '没有回访任务'}));
    for (const c of data.return_calls) {
      const outcome = options(el('select', {class: 'rc-outcome'}), OUTCOMES);
      const score = options(el('select', {class: 'rc-score'}), [['5', '5 分'], ['4', '4 分'], ['3', '3 分'], ['2', '2 分'], ['1', '1 分']]);
      const comment = el('input', {class: 'rc-comment', placeholder: '回访备注', maxLength: 1000});
      outcome.addEventListener('change', () => { score.disabled = outcome.value !== 'reached'; });
      const was = before[String(c.id)];
      if (was) {
        for (const [node, value] of [[outcome, was.outcome], [score, was.score]]) if ([...node.options].some(o => o.value === value)) node.value = value;
        comment.value = was.comment || '';
        score.disabled = outcome.value !== 'reached';
      }
      const save = el('button', {class: 'primary rc-save', type: 'button', textContent: '记录', on: {click: () => act(() => api(`/return-calls/${c.id}`,
        {outcome: outcome.value, score: outcome.value === 'reached' ? Number(score.value) : null, comment: comment.value.trim() || null}))}});
      box.appendChild(el('div', {class: 'rc-row', dataset: {ticket: c.ticket, id: c.id}},
        el('div', {class: 'rc-head'}, el('b', {textContent: c.ticket}), ` ${c.kind === 'repair' ? '报修' : c.kind === 'complaint' ? '投诉' : c.kind} · `,
          el('span', {class: 'rc-phone', textContent: c.phone || '无电话'}), ` · ${RC_STATUS[c.status]} · 尝试 ${c.attempts}/${c.max_attempts} · 截止 ${when(c.due_at)}`),
        el('div', {class: 'muted', textContent: c.description || ''}),
        c.status === 'due' ? el('div', {class: 'row'}, outcome, score, comment, save)
          : el('div', {textContent: `${c.outcome || ''} ${c.score ? c.score + ' 分' : ''} ${c.comment || ''}`})));
    }
  }

  // --- 报表 ------------------------------------------------------------------------------
  function isoDay(d) { return new Date(d.getTime() + 8 * 3600e3).toISOString().slice(0, 10); }
  $('r-go').addEventListener('click', () => loadReports());
  async function loadReports() {
    if (!$('r-to').value) {
      const now = Date.parse((await api('/me')).now);
      $('r-to').value = isoDay(new Date(now)); $('r-from').value = isoDay(new Date(now - 6 * 864e5));
    }
    const range = `from=${$('r-from').value}&to=${$('r-to').value}`;
    let s;
    try { s = await api('/reports/summary?' + range); } catch (err) { $('r-figures').replaceChildren(el('p', {textContent: '无权查看或查询失败：' + err.message})); return; }
    const d = s.definitions;
    const fig = (key, label, value, def) => el('div', {class: 'fig', dataset: {metric: key}, title: def},
      el('div', {class: 'v', textContent: value}), el('div', {class: 'k', textContent: label}), el('div', {class: 'def', textContent: def}));
    const sa = s.sla_attainment;
    $('r-figures').replaceChildren(
      fig('conversations', '会话', String(s.conversations), d.conversations),
      fig('bot_resolved_rate', '机器人解决率', pct(s.bot_resolved_rate), d.bot_resolved_rate),
      fig('handoff_rate', '转人工率', pct(s.handoff_rate), d.handoff_rate),
      fig('first_response', '人工首响 P50 / P90', `${dur(s.first_response_p50_s)} / ${dur(s.first_response_p90_s)}`, d.first_response),
      fig('resolution', '解决时长 P50 / P90', `${dur(s.resolution_p50_s)} / ${dur(s.resolution_p90_s)}`, d.resolution),
      fig('sla_attainment', 'SLA 达成 首响 / 解决', `${pct(sa.first_response.rate)} / ${pct(sa.resolution.rate)}`, d.sla_attainment),
      fig('csat', '满意度答复 / 回复率', `${s.csat_answered} / ${pct(s.csat_response_rate)}`, d.csat),
      fig('return_calls', '回访 待 / 完成 / 无法联系', `${s.return_calls.due} / ${s.return_calls.done} / ${s.return_calls.unreachable}`, d.return_calls));
    const stamp = Date.now();
    $('r-charts').replaceChildren(...['conversations', 'first_response', 'sla', 'csat', 'return_calls'].map(name =>
      el('img', {class: 'r-chart', alt: name, dataset: {chart: name}, src: `/api/agent/reports/chart.svg?chart=${name}&${range}&t=${stamp}`})));
    const misses = el('ol', {});
    for (const m of s.top_misses) misses.appendChild(el('li', {textContent: `${m.text}（${m.count} 次）`}));
    const agents = el('table', {class: 'grid'}, el('tr', {}, ...['客服', '处理会话', '首响 P50', '解决工单', '满意度'].map(h => el('th', {textContent: h}))));
    for (const a of s.agents) agents.appendChild(el('tr', {}, el('td', {textContent: a.agent}), el('td', {textContent: String(a.handled)}),
      el('td', {textContent: dur(a.first_response_p50_s)}), el('td', {textContent: String(a.tickets_resolved)}), el('td', {textContent: a.csat_average == null ? '-' : a.csat_average.toFixed(2)})));
    $('r-lists').replaceChildren(
      el('h3', {textContent: '机器人未理解的消息（已脱敏）'}), el('p', {class: 'muted', textContent: d.top_misses}), misses,
      el('a', {href: '/console/admin', textContent: '到训练页处理 →'}),
      el('h3', {textContent: '按客服'}), el('p', {class: 'muted', textContent: d.agents}), agents);
    $('r-csv-conversations').href = `/api/agent/reports/export.csv?rows=conversations&${range}`;
    $('r-csv-tickets').href = `/api/agent/reports/export.csv?rows=tickets&${range}`;
  }
})();
