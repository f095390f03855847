// The agents' console. Everything from customers (and everything from the server) is put
// on the page with textContent / DOM nodes, never innerHTML: a "<script>" stays text.
(() => {
  'use strict';
  const $ = id => document.getElementById(id);
  const state = { me: null, list: [], current: null, detail: null, canned: [], agents: [],
                  skew: 0 };

  const {el} = window.kefu;                   // /static/kefu.js
  const signedOut = () => { showLogin(); throw new Error('signed out'); };
  const api = (path, body) =>
    window.kefu.request('/api/agent' + path, body, path === '/login' ? undefined : signedOut);

  const STATUS = {queued: '排队中', claimed: '处理中', closed: '已结束'};
  const PRIORITY = {urgent: '紧急', high: '高优先级', normal: '普通'};
  const TZ = {timeZone: 'Asia/Shanghai'};
  const AUTHOR = {customer: '客户', bot: '机器人', agent: '客服', system: '系统', notice: '通知'};

  function serverNow() { return Date.now() + state.skew; }
  function syncClock(now) { if (now) state.skew = Date.parse(now) - Date.now(); }
  function countdown(due) {
    if (!due) return '';
    let ms = Date.parse(due) - serverNow();
    const late = ms < 0; ms = Math.abs(ms);
    const h = Math.floor(ms / 3600000), m = Math.floor(ms / 60000) % 60, s = Math.floor(ms / 1000) % 60;
    const text = `${h}:${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
    return late ? `已超时 ${text}` : `剩余 ${text}`;
  }

  // --- sign-in ------------------------------------------------------------------------
  function showLogin() { $('app').style.display = 'none'; $('login').style.display = 'flex'; }
  async function showApp() {
    $('login').style.display = 'none'; $('app').style.display = 'flex';
    $('whoami').textContent = `${state.me.display_name}（${{admin: '管理员', lead: '组长'}[state.me.role] || '客服'}）`;
    document.dispatchEvent(new CustomEvent('kefu:signed-in', {detail: state.me}));   // workspace.js
    state.canned = (await api('/canned')).replies;
    state.agents = (await api('/agents')).agents;
    await refreshList();
    connect();
  }
  $('login').addEventListener('submit', async ev => {
    ev.preventDefault();
    $('login-error').textContent = '';
    try {
      const data = await api('/login', {name: $('login-name').value, password: $('login-password').value});
      state.me = data.agent;
      await showApp();
    } catch (err) { $('login-error').textContent = '账号或密码错误'; }
  });
  $('logout').addEventListener('click', async () => {
    await api('/logout', {}).catch(() => {});
    location.reload();
  });

  // --- live updates (SSE) --------------------------------------------------------------
  let source = null;
  function connect() {
    if (source) source.close();
    source = new EventSource('/api/agent/events');
    source.addEventListener('hello', () => { $('live').textContent = '● 实时'; $('live').className = 'live'; refreshList(); });
    source.addEventListener('change', ev => {
      const change = JSON.parse(ev.data);
      refreshList();
      if (state.current && change.handoff === state.current) openHandoff(state.current, false);
    });
    source.onerror = () => { $('live').textContent = '● 重连中'; $('live').className = 'live off'; };
  }

  // --- the queue ------------------------------------------------------------------------
  async function refreshList() {
    const data = await api('/handoffs');
    syncClock(data.now);
    state.list = data.handoffs;
    const items = $('items');
    items.replaceChildren();
    let waiting = 0;
    for (const h of state.list) {
      if (h.status === 'queued') waiting++;
      const mine = h.agent_id === state.me.id;
      const row = el('div', {class: 'item' + (h.id === state.current ? ' active' : ''),
                             dataset: {handoff: h.id, status: h.status},
                             on: {click: () => openHandoff(h.id, true)}},
        el('div', {class: 'top'},
          el('span', {class: 'cid', textContent: `#${h.id} ${h.conversation_id}`}),
          h.unread && h.status !== 'closed' && (mine || h.status === 'queued')
            ? el('span', {class: 'unread', textContent: String(h.unread), title: '未读'}) : null),
        el('div', {class: 'meta'},
          el('span', {class: 'badge ' + h.status, textContent: STATUS[h.status] || h.status}), ' ',
          el('span', {class: 'badge ' + h.priority, textContent: PRIORITY[h.priority] || h.priority}), ' ',
          h.agent_name ? `· ${h.agent_name} ` : '',
          h.rating ? `· ${h.rating}分 ` : ''),
        h.status !== 'closed' && h.sla_due_at
          ? el('div', {class: 'meta sla' + (h.sla_breached ? ' breach' : ''),
                       dataset: {due: h.sla_due_at},
                       textContent: (h.sla_breached ? '⚠ ' : '') + countdown(h.sla_due_at)}) : null);
      items.appendChild(row);
    }
    $('qcount').textContent = `排队 ${waiting}`;
    refreshRecent();
  }

  async function refreshRecent() {
    try {
      const data = await api('/conversations');
      const active = new Set(state.list.filter(h => h.status !== 'closed').map(h => h.conversation_id));
      const box = $('recent');
      box.replaceChildren();
      for (const c of data.conversations.slice(0, 10)) {
        if (active.has(c.conversation_id)) continue;
        box.appendChild(el('div', {class: 'item'},
          el('div', {class: 'top'}, el('span', {class: 'cid', textContent: c.conversation_id}),
            el('button', {type: 'button', textContent: '接管', on: {click: async () => {
              const res = await api('/takeover', {conversation_id: c.conversation_id});
              await refreshList(); openHandoff(res.handoff.id, true);
            }}}))));
      }
    } catch (err) { /* not critical */ }
  }

  // --- one conversation -------------------------------------------------------------------
  async function openHandoff(id, scroll) {
    state.current = id;
    let data;
    try { data = await api('/handoffs/' + id); }
    catch (err) { $('convo').replaceChildren(el('div', {class: 'empty', textContent: '无权查看：' + err.message})); $('ticket').replaceChildren(); return; }
    syncClock(data.now);
    state.detail = data;
    renderConversation(data, scroll);
    renderTicket(data);
    for (const row of document.querySelectorAll('.item')) row.classList.toggle('active', Number(row.dataset.handoff) === id);
  }

  function renderConversation(data, scroll) {
    const h = data.handoff, own = data.own;
    const convo = $('convo');
    const head = el('div', {id: 'chathead'},
      el('span', {class: 'title', textContent: `#${h.id} ${h.conversation_id}`}),
      el('span', {class: 'badge ' + h.status, id: 'handoff-status', textContent: STATUS[h.status] || h.status}),
      h.status === 'queued' ? el('button', {class: 'primary', id: 'claim', type: 'button', textContent: '认领',
        on: {click: () => act(() => api(`/handoffs/${h.id}/claim`, {}))}}) : null,
      own ? transferControl(h) : null,
      (own || (state.me.role === 'admin' && h.status !== 'closed')) ? el('button', {class: 'danger', id: 'close', type: 'button', textContent: '结束会话',
        on: {click: () => act(() => api(`/handoffs/${h.id}/close`, {}))}}) : null);
    const log = el('div', {id: 'transcript'});
    for (const line of data.transcript) {
      log.appendChild(el('div', {class: 'line ' + line.author, dataset: {author: line.author, id: line.id}},
        el('div', {},
          el('div', {class: 'who', textContent: `${AUTHOR[line.author] || line.author} · ${new Date(line.at).toLocaleTimeString('zh-CN', TZ)}`}),
          el('div', {class: 'bubble', textContent: line.text}))));
    }
    const parts = [head, log];
    if (own) {
      const canned = el('div', {id: 'canned'});
      for (const c of state.canned) {
        canned.appendChild(el('button', {type: 'button', textContent: c.title, title: c.text,
          on: {click: () => { $('reply').value = c.text; $('reply').focus(); }}}));
      }
      const text = el('textarea', {id: 'reply', placeholder: '回复客户（Enter 发送，Shift+Enter 换行）', maxLength: 2000});
      const send = async () => {
        const value = text.value.trim();
        if (!value) return;
        text.value = '';
        await act(() => api(`/handoffs/${h.id}/reply`, {text: value}));
      };
      text.addEventListener('keydown', ev => { if (ev.key === 'Enter' && !ev.shiftKey) { ev.preventDefault(); send(); } });
      parts.push(canned, el('div', {id: 'composer'}, text,
        el('button', {class: 'primary', id: 'send', type: 'button', textContent: '发送', on: {click: send}})));
    }
    const draft = $('reply') ? $('reply').value : '';
    convo.replaceChildren(...parts);
    if (draft && $('reply')) $('reply').value = draft;
    log.scrollTop = log.scrollHeight;
  }

  function transferControl(h) {
    const select = el('select', {id: 'transfer-to'});
    for (const a of state.agents) if (a.id !== state.me.id) select.appendChild(el('option', {value: a.id, textContent: a.display_name}));
    if (!select.options.length) return null;
    return el('span', {}, select, ' ', el('button', {type: 'button', textContent: '转接',
      on: {click: () => act(() => api(`/handoffs/${h.id}/transfer`, {agent_id: Number(select.value)}))}}));
  }

  function renderTicket(data) {
    const box = $('ticket');
    const t = data.ticket;
    if (!t) { box.replaceChildren(el('h2', {textContent: '无关联工单'})); return; }
    const dl = el('dl', {});
    const add = (k, v) => { if (v !== null && v !== undefined && v !== '') dl.append(el('dt', {textContent: k}), el('dd', {textContent: String(v)})); };
    add('工单号', t.number); add('类型', t.kind_label); add('分类', t.category); add('优先级', PRIORITY[t.priority] || t.priority);
    add('状态', t.status_label); add('描述', t.description); add('订单', t.order_id); add('商品', t.product);
    add('手机', t.phone); add('地址', t.address); add('评分', t.rating ? `${t.rating} 分` : '');
    const sla = el('div', {id: 'sla', dataset: {due: t.sla_due_at}, textContent: 'SLA ' + countdown(t.sla_due_at)});
    if (Date.parse(t.sla_due_at) < serverNow()) sla.classList.add('breach');
    const events = el('div', {class: 'events'}, el('div', {textContent: '处理记录'}));
    for (const e of t.events) {
      const what = e.kind === 'status' ? `${e.from || ''} → ${e.to}` : e.kind;
      events.appendChild(el('div', {textContent: `${new Date(e.at).toLocaleString('zh-CN', TZ)} ${e.actor} ${what}${e.note ? '：' + e.note : ''}`}));
    }
    const parts = [el('h2', {textContent: '关联工单'}), dl, sla];
    const h = data.handoff;
    if (data.own || state.me.role === 'admin') {
      const note = el('input', {id: 'note', placeholder: '内部备注（客户不可见）', maxLength: 2000});
      const status = el('select', {id: 'status'});
      for (const [v, label] of [['acknowledged', '已确认'], ['in_progress', '处理中'], ['resolved', '已解决'], ['closed', '已关闭']]) status.appendChild(el('option', {value: v, textContent: label}));
      parts.push(el('div', {class: 'row'}, note, el('button', {type: 'button', textContent: '备注', on: {click: () => { if (note.value.trim()) act(() => api(`/handoffs/${h.id}/note`, {text: note.value.trim()})); }}})),
                 el('div', {class: 'row'}, status, el('button', {type: 'button', textContent: '改状态', on: {click: () => act(() => api(`/handoffs/${h.id}/status`, {status: status.value}))}})));
    }
    parts.push(events);
    if (state.me.role === 'admin') {
      const report = el('div', {id: 'report'});
      parts.push(report);
      api('/reports').then(r => { report.textContent = `满意度：${r.rated} 个评分，平均 ${r.average_rating ?? '-'} 分；SLA 超时 ${r.sla_breaches} 次`; }).catch(() => {});
    }
    box.replaceChildren(...parts);
  }

  async function act(fn) {
    try { await fn(); } catch (err) { alert('操作失败：' + err.message); }
    await refreshList();
    if (state.current) await openHandoff(state.current, true);
  }

  setInterval(() => {
    for (const node of document.querySelectorAll('[data-due]')) {
      const late = Date.parse(node.dataset.due) < serverNow();
      node.textContent = (node.id === 'sla' ? 'SLA ' : (late ? '⚠ ' : '')) + countdown(node.dataset.due);
      node.classList.toggle('breach', late);
    }
  }, 1000);

  // Already signed in (cookie still valid)? Go straight to the queue.
  api('/me').then(data => { state.me = data.agent; showApp(); }).catch(showLogin);
})();
