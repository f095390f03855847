/* kefu web widget. Paste into any page of an allowed site (KEFU_WIDGET_ORIGINS):
 *   <script src="https://<gateway>/widget.js" data-kefu-title="在线客服" async></script>
 * Optional: data-kefu-subtitle="…", data-kefu-color="#1677ff".
 * Plain JS, no framework; everything lives in a Shadow DOM, so the host page's styles and
 * the widget's never meet. The widget never sends a message the customer did not write.
 */
(() => {
  'use strict';
  if (window.kefuWidget) return;                       // the snippet pasted twice
  const script = document.currentScript ||
    Array.from(document.querySelectorAll('script[src]')).find(s => /\/widget\.js([?#]|$)/.test(s.src));
  if (!script || !document.body) return;
  const API = new URL('api/chat', new URL('.', script.src)).href;
  const TITLE = (script.dataset.kefuTitle || '在线客服').slice(0, 40);
  const SUBTITLE = (script.dataset.kefuSubtitle || '').slice(0, 60);
  const COLOR = /^#[0-9a-fA-F]{3,8}$/.test(script.dataset.kefuColor || '') ? script.dataset.kefuColor : '#1677ff';
  const SENDER_KEY = 'kefu-widget-sender', OPEN_KEY = 'kefu-widget-open', OUTBOX_KEY = 'kefu-widget-outbox';
  const ACTIVE_KEY = 'kefu-widget-active';             // when this conversation last moved (ms)
  const RECENT_MS = 15 * 60 * 1000;

  // Storage may be refused (privacy modes, sandboxed frames): then the conversation lasts a page.
  const memory = {};
  function store(kind) {
    return {
      get(key) { try { return window[kind].getItem(key); } catch (e) { return memory[kind + key] ?? null; } },
      set(key, value) { try { window[kind].setItem(key, value); } catch (e) { memory[kind + key] = value; } },
      remove(key) { try { window[kind].removeItem(key); } catch (e) { delete memory[kind + key]; } },
    };
  }
  const local = store('localStorage'), perTab = store('sessionStorage');

  const CSS = `
    :host { all: initial !important; }
    .kefu { --brand: ${COLOR}; position: fixed; right: 20px; bottom: 20px; z-index: 2147483000;
      font: 15px/1.55 -apple-system, BlinkMacSystemFont, "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif;
      color: #1f2329; text-align: left; }
    *, *::before, *::after { box-sizing: border-box; }
    [hidden] { display: none !important; }
    button { font: inherit; }
    .launcher { position: relative; width: 60px; height: 60px; border: 0; border-radius: 50%; background: var(--brand);
      color: #fff; cursor: pointer; box-shadow: 0 6px 20px rgba(0,0,0,.22); display: grid; place-items: center; margin-left: auto; }
    .launcher svg { width: 28px; height: 28px; fill: currentColor; }
    .launcher:focus-visible, .close:focus-visible, .send:focus-visible, .buttons button:focus-visible, .log:focus-visible {
      outline: 3px solid #ffb020; outline-offset: 2px; }
    .badge { position: absolute; top: -2px; right: -2px; min-width: 22px; height: 22px; padding: 0 6px; border-radius: 11px;
      background: #f5222d; color: #fff; font-size: 12px; line-height: 22px; text-align: center; }
    .panel { position: absolute; right: 0; bottom: 76px; width: 370px; height: min(600px, calc(100vh - 110px));
      display: flex; flex-direction: column; background: #fff; border-radius: 14px; overflow: hidden;
      box-shadow: 0 12px 40px rgba(0,0,0,.25); }
    header { display: flex; align-items: center; gap: 8px; padding: 12px 12px 12px 16px; background: var(--brand); color: #fff; }
    header .titles { flex: 1; min-width: 0; }
    h2 { margin: 0; font-size: 16px; font-weight: 600; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
    .sub { margin: 0; font-size: 12px; opacity: .85; }
    .close { width: 40px; height: 40px; border: 0; border-radius: 50%; background: transparent; color: #fff; font-size: 24px;
      line-height: 1; cursor: pointer; }
    .close:hover { background: rgba(255,255,255,.15); }
    .log { flex: 1; overflow-y: auto; padding: 14px; background: #f7f8fa; overscroll-behavior: contain; }
    .msg { display: flex; margin: 8px 0; }
    .bubble { max-width: 82%; padding: 9px 13px; border-radius: 14px; white-space: pre-wrap; word-break: break-word; }
    .msg.customer { justify-content: flex-end; }
    .msg.customer .bubble { background: var(--brand); color: #fff; border-bottom-right-radius: 4px; }
    .msg.bot .bubble, .msg.system .bubble { background: #fff; border: 1px solid #e8eaed; border-bottom-left-radius: 4px; }
    .msg.agent .bubble, .msg.notice .bubble { background: #e8f7ee; border-bottom-left-radius: 4px; }
    .msg.system .bubble { color: #8a5a00; }
    .buttons { display: flex; flex-wrap: wrap; gap: 6px; margin: 2px 0 10px; }
    .buttons button { border: 1px solid var(--brand); color: var(--brand); background: #fff; border-radius: 16px;
      padding: 5px 12px; cursor: pointer; font-size: 14px; }
    .typing { display: flex; align-items: center; gap: 4px; padding: 0 16px 8px; background: #f7f8fa; color: #8f959e; font-size: 13px; }
    .dot { width: 6px; height: 6px; border-radius: 50%; background: #a0a6ad; animation: kefu-blink 1.2s infinite ease-in-out; }
    .dot:nth-child(2) { animation-delay: .2s; } .dot:nth-child(3) { animation-delay: .4s; }
    @keyframes kefu-blink { 0%, 80%, 100% { opacity: .25; } 40% { opacity: 1; } }
    form { display: flex; gap: 8px; padding: 10px; border-top: 1px solid #eceef1; background: #fff;
      padding-bottom: max(10px, env(safe-area-inset-bottom)); }
    input { flex: 1; min-width: 0; padding: 10px 12px; border: 1px solid #d0d4d9; border-radius: 20px; font: inherit;
      font-size: 16px; color: inherit; background: #fff; }
    input:focus { outline: 2px solid var(--brand); outline-offset: 0; border-color: transparent; }
    .send { padding: 0 18px; border: 0; border-radius: 20px; background: var(--brand); color: #fff; cursor: pointer; }
    .sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
    @media (max-width: 480px) {
      .kefu { right: 12px; bottom: 12px; }
      .kefu.open { inset: 0; }
      .kefu.open .launcher { display: none; }
      .panel { position: fixed; inset: 0; width: 100%; height: 100%; border-radius: 0; }
    }
    @media (prefers-reduced-motion: reduce) { .dot { animation: none; opacity: .6; } }
  `;

  const ICON = '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M12 3C6.5 3 2 6.8 2 11.5c0 2.4 1.2 4.6 3.1 6.1L4.5 21l3.9-2c1.1.3 2.3.5 3.6.5 5.5 0 10-3.8 10-8.5S17.5 3 12 3zm-4 9.8a1.3 1.3 0 110-2.6 1.3 1.3 0 010 2.6zm4 0a1.3 1.3 0 110-2.6 1.3 1.3 0 010 2.6zm4 0a1.3 1.3 0 110-2.6 1.3 1.3 0 010 2.6z"/></svg>';
  const host = document.createElement('div');
  host.setAttribute('data-kefu-widget', '');
  const root = host.attachShadow({mode: 'open'});
  try {
    const sheet = new CSSStyleSheet();                // not an inline <style>: strict CSPs allow it
    sheet.replaceSync(CSS);
    root.adoptedStyleSheets = [sheet];
  } catch (e) {
    const style = document.createElement('style');
    style.textContent = CSS;
    root.appendChild(style);
  }
  const shell = document.createElement('div');
  shell.className = 'kefu';
  shell.innerHTML = `
    <section class="panel" id="panel" role="dialog" aria-modal="false" aria-labelledby="title" hidden>
      <header><div class="titles"><h2 id="title"></h2><p class="sub" hidden></p></div>
        <button class="close" type="button" aria-label="关闭客服窗口">×</button></header>
      <div class="log" role="log" aria-live="polite" aria-label="对话记录" tabindex="0"></div>
      <div class="typing" role="status" hidden><span class="dot"></span><span class="dot"></span><span class="dot"></span><span>对方正在输入…</span></div>
      <form autocomplete="off"><label class="sr" for="text">消息</label>
        <input id="text" maxlength="1000" enterkeyhint="send" placeholder="请输入您的问题">
        <button class="send" type="submit">发送</button></form>
    </section>
    <button class="launcher" type="button" aria-expanded="false" aria-controls="panel">${ICON}<span class="badge" hidden></span></button>`;
  root.appendChild(shell);
  const $ = sel => root.querySelector(sel);
  const panel = $('.panel'), log = $('.log'), typing = $('.typing'), input = $('input'), launcher = $('.launcher'), badge = $('.badge');
  $('h2').textContent = TITLE;
  if (SUBTITLE) { $('.sub').textContent = SUBTITLE; $('.sub').hidden = false; }
  document.body.appendChild(host);

  // The id is kept (localStorage) from the first message on: a visitor who only looked
  // leaves nothing behind and costs no request on the next page.
  let sender = local.get(SENDER_KEY), kept = !!sender;
  const onScreen = new Set();          // transcript ids already shown (history and polls overlap)
  let pollAfter = 0, unread = 0, busy = 0, started = false, pollTimer = null;
  let restoring = {};
  restoring.done = new Promise(resolve => { restoring.resolve = resolve; });
  let chain = restoring.done;        // nothing is posted before the history is on screen
  const welcomeRow = document.createElement('div');      // always first, whenever it arrives
  log.appendChild(welcomeRow);

  function newSender() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return 'w' + Array.from(bytes, b => b.toString(16).padStart(2, '0')).join('');
  }
  function label() {
    launcher.setAttribute('aria-label', unread ? `打开${TITLE}，${unread} 条新消息` : `打开${TITLE}`);
    badge.textContent = unread > 99 ? '99+' : String(unread);
    badge.hidden = !unread;
  }
  function setBusy(delta) {
    busy = Math.max(0, busy + delta);
    typing.hidden = busy === 0;
    if (busy) log.scrollTop = log.scrollHeight;
  }

  // Everything is rendered with textContent: nothing anyone writes becomes HTML.
  function bubble(author, text) {
    const row = document.createElement('div');
    row.className = 'msg ' + author;
    row.dataset.author = author;
    const b = document.createElement('div');
    b.className = 'bubble';
    b.textContent = text;
    row.appendChild(b);
    return row;
  }
  function choices(buttons) {
    const box = document.createElement('div');
    box.className = 'buttons';
    for (const item of buttons) {
      const btn = document.createElement('button');
      btn.type = 'button';
      btn.textContent = item.title;
      btn.addEventListener('click', () => { send(item.payload, item.title); input.focus(); });
      box.appendChild(btn);
    }
    return box;
  }
  function add(author, text, buttons, id, before = null) {
    if (id != null) {
      if (onScreen.has(id)) return null;
      onScreen.add(id);
    }
    const row = bubble(author, text);
    log.insertBefore(row, before);
    if (buttons && buttons.length) log.insertBefore(choices(buttons), before);
    log.scrollTop = log.scrollHeight;
    return row;
  }
  function showWelcome(welcome) {
    if (!welcome || !welcome.text || welcomeRow.childNodes.length) return;
    const row = bubble('bot', welcome.text);
    row.dataset.welcome = '';
    welcomeRow.appendChild(row);
    if (welcome.buttons && welcome.buttons.length) welcomeRow.appendChild(choices(welcome.buttons));
  }

  async function getJSON(path) {
    const resp = await fetch(API + path, {credentials: 'omit', cache: 'no-store'});
    const data = await resp.json();
    if (!resp.ok) throw new Error(data.error || resp.status);
    return data;
  }
  const history = after => getJSON(`/history?sender=${sender}&after=${after}`);

  // The conversation so far (after a reload or on another page of the site). A message the
  // previous page had on its way is posted again first, with its id: the gateway takes it
  // once and answers a repeat with the first answer, so afterwards the history holds it and
  // its answer, whichever request arrived first. Messages typed there but not posted yet are
  // shown again and posted, in order.
  async function restore() {
    const outbox = readOutbox().filter(item => item && typeof item.message === 'string' && item.id);
    saveOutbox(outbox);
    for (const item of outbox) if (!item.posting) send(item.message, item.shown, item.id);
    let data = null;
    setBusy(+1);
    try {
      for (const item of outbox.filter(item => item.posting)) {
        try { await postJSON({sender, message: item.message, id: item.id}); } catch (e) { /* lost: nothing to show */ }
        saveOutbox(readOutbox().filter(other => other.id !== item.id));
      }
      data = await history(0);
    } catch (e) {
      add('system', '客服暂时连接不上，请稍后再试。');
    } finally {
      setBusy(-1);
    }
    if (data) {
      showWelcome(data.welcome);
      const lines = data.messages;
      const first = log.querySelector('.msg.customer');     // not posted yet: after the history
      lines.forEach((m, i) => add(m.author, m.text, i === lines.length - 1 ? m.buttons : [], m.id, first));
      for (const m of lines) pollAfter = Math.max(pollAfter, m.id);
      if (lines.length) startPolling();
    }
    restoring.resolve();
  }

  // One message at a time, in the order typed: shown at once, posted when the previous one
  // has its answer (and the history is on screen). Each has a random id; it waits in this
  // tab's sessionStorage until its answer is here, so a click to another page of the site
  // loses nothing and sends nothing twice.
  function saveOutbox(list) {
    if (list.length) perTab.set(OUTBOX_KEY, JSON.stringify(list)); else perTab.remove(OUTBOX_KEY);
  }
  function readOutbox() {
    try { return JSON.parse(perTab.get(OUTBOX_KEY) || '[]'); } catch (e) { return []; }
  }
  function messageId() {
    return Array.from(crypto.getRandomValues(new Uint8Array(12)), b => b.toString(16).padStart(2, '0')).join('');
  }
  function send(message, shown, id = null) {
    ensureSender(true);
    touch();
    add('customer', shown || message);
    if (!id) {
      id = messageId();
      saveOutbox([...readOutbox(), {id, message, shown: shown || null}]);
    }
    setBusy(+1);
    chain = chain.then(() => post(message, id));
  }
  async function postJSON(body) {
    // text/plain keeps it a CORS "simple" request: no preflight, and keepalive lets it
    // finish when the customer follows a link right after sending.
    const resp = await fetch(API, {method: 'POST', credentials: 'omit', keepalive: true,
                                   headers: {'Content-Type': 'text/plain;charset=UTF-8'},
                                   body: JSON.stringify(body)});
    const data = await resp.json();
    if (!resp.ok) throw Object.assign(new Error(data.error || resp.status), {status: resp.status});
    return data;
  }
  async function post(message, id) {
    saveOutbox(readOutbox().map(item => (item.id === id ? {...item, posting: true} : item)));
    try {
      const data = await postJSON({sender, message, id});
      for (const m of data.messages) add(m.author, m.text, m.buttons);
    } catch (e) {
      add('system', e.status === 429 ? '您发送得有点快，请稍等片刻再发～' : '网络开小差了，请稍后再试。');
    } finally {
      saveOutbox(readOutbox().filter(item => item.id !== id));
      setBusy(-1);
      startPolling();
    }
  }

  // Agents' replies and queue notices arrive outside a turn: poll the transcript for them,
  // but only once there is a conversation (a visitor who never wrote costs nothing).
  async function poll() {
    try {
      const data = await getJSON(`/updates?sender=${sender}&after=${pollAfter}`);
      for (const m of data.messages) {
        pollAfter = Math.max(pollAfter, m.id);
        if (onScreen.has(m.id)) continue;
        add(m.author, m.text, m.buttons, m.id);
        touch();
        if (panel.hidden) unread += 1;
      }
      label();
    } catch (e) { /* offline: next time */ }
    schedule();
  }
  // Every 2 s while the panel is open; closed, every 6 s while the conversation is recent
  // (a person may be answering), else every minute; a background tab every 30 s at most.
  function touch() { local.set(ACTIVE_KEY, String(Date.now())); }
  function schedule() {
    clearTimeout(pollTimer);
    const recent = Date.now() - Number(local.get(ACTIVE_KEY) || 0) < RECENT_MS;
    let wait = !panel.hidden ? 2000 : recent ? 6000 : 60000;
    if (document.visibilityState !== 'visible') wait = Math.max(wait, 30000);
    pollTimer = setTimeout(poll, wait);
  }
  function startPolling() {
    if (started) return;
    started = true;
    schedule();
  }
  function ensureSender(keep) {
    if (!sender) sender = newSender();
    if (keep && !kept) {
      local.set(SENDER_KEY, sender);
      kept = true;
    }
  }

  let restored = null;
  function open(focus = true) {
    panel.hidden = false;
    shell.classList.add('open');
    launcher.setAttribute('aria-expanded', 'true');
    local.set(OPEN_KEY, '1');
    unread = 0;
    label();
    if (!restored) { ensureSender(false); restored = restore(); }
    if (started) schedule();
    log.scrollTop = log.scrollHeight;
    if (focus) input.focus();
  }
  function close() {
    panel.hidden = true;
    shell.classList.remove('open');
    launcher.setAttribute('aria-expanded', 'false');
    local.set(OPEN_KEY, '0');
    launcher.focus();
  }

  launcher.addEventListener('click', () => (panel.hidden ? open() : close()));
  $('.close').addEventListener('click', close);
  root.addEventListener('keydown', ev => {
    if (ev.key === 'Escape' && !panel.hidden) { ev.stopPropagation(); close(); }
  });
  $('form').addEventListener('submit', ev => {
    ev.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = '';
    send(text);
  });
  document.addEventListener('visibilitychange', () => { if (started) schedule(); });
  label();

  // A returning customer: the conversation comes back (and reopens if it was open).
  if (sender) restored = restore();
  if (local.get(OPEN_KEY) === '1') open(false);
  window.kefuWidget = {open: () => open(), close};
})();
