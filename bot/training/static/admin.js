// The admins' 训练 page. Customer text and server data go on the page as text only.
(() => {
  'use strict';
  const $ = id => document.getElementById(id);
  const state = { intents: [], filter: '', candidate: null, timer: null };

  const {el} = window.kefu;                   // /static/kefu.js
  const api = (base, path, body) =>
    window.kefu.request(base + path, body, () => { showLogin(); throw new Error('请先登录'); });
  const admin = (path, body) => api('/api/admin', path, body);

  function showLogin() { $('app').style.display = 'none'; $('login').style.display = 'flex'; }
  $('login').addEventListener('submit', async ev => {
    ev.preventDefault();
    try {
      const data = await api('/api/agent', '/login', {name: $('login-name').value, password: $('login-password').value});
      start(data.agent);
    } catch (err) { $('login-error').textContent = '登录失败'; }
  });

  async function start(me) {
    if (me.role !== 'admin') { $('login').style.display = 'flex'; $('login-error').textContent = '仅管理员可用'; return; }
    $('login').style.display = 'none'; $('app').style.display = 'block';
    $('whoami').textContent = `${me.display_name}（管理员）`;
    state.intents = (await admin('/intents')).intents;
    const filters = [['', '全部'], ['low', '低置信度'], ['fallback', '兜底'], ['handoff', '转人工'], ['rephrased', '客户马上换了说法']];
    $('filters').replaceChildren(...filters.map(([v, label]) => el('label', {},
      el('input', {type: 'radio', name: 'filter', value: v, checked: v === '', on: {change: () => { state.filter = v; loadInbox(); }}}), ' ' + label)));
    await Promise.all([loadInbox(), loadModels(), pollTraining(), loadComparison()]);
  }

  // --- inbox ---------------------------------------------------------------------------------
  const FLAGS = {low_confidence: '低置信度', fallback: '兜底', handoff: '转人工', rephrased: '换说法'};
  async function loadInbox() {
    const data = await admin('/inbox' + (state.filter ? `?filter=${state.filter}` : ''));
    const body = $('inbox');
    body.replaceChildren();
    for (const item of data.items) {
      const select = el('select', {class: 'intent'});
      for (const name of state.intents) select.appendChild(el('option', {value: name, textContent: name, selected: name === item.intent}));
      select.appendChild(el('option', {value: '__new__', textContent: '＋ 新建常见问题…'}));
      const text = el('input', {class: 'example', value: item.text, title: '写入训练数据的句子（已脱敏，可修改）'});
      const entity = el('input', {class: 'entity', placeholder: '实体：值=类型（可选）', size: 14});
      const result = el('div', {class: 'next'});
      const save = el('button', {class: 'primary save', type: 'button', textContent: '标注', on: {click: async () => {
        const body = {message_id: item.id, intent: select.value, text: text.value};
        if (select.value === '__new__') {
          const topic = prompt('新问题的英文名（如 gift_wrap）'); if (!topic) return;
          const answer = prompt('这个问题的回答'); if (!answer) return;
          body.intent = 'faq/' + topic; body.answer = answer;
        }
        if (entity.value.includes('=')) { const i = entity.value.lastIndexOf('='); body.entities = [{value: entity.value.slice(0, i), entity: entity.value.slice(i + 1)}]; }
        try { await admin('/annotate', body); row.remove(); }
        catch (err) { result.textContent = '失败：' + err.message; }
      }}});
      const row = el('tr', {dataset: {message: item.id}},
        el('td', {}, el('div', {class: 'msg', textContent: item.text}),
          el('div', {class: 'next', textContent: item.next.length ? '→ ' + item.next.join(' / ') : ''})),
        el('td', {}, el('div', {textContent: `${item.intent || '-'} ${item.confidence != null ? item.confidence.toFixed(2) : ''}`}),
          ...Object.entries(FLAGS).filter(([k]) => item[k]).map(([, label]) => el('span', {class: 'flag', textContent: label}))),
        el('td', {}, select, el('div', {}, text), el('div', {}, entity, ' ', save), result));
      body.appendChild(row);
    }
    $('inbox-empty').textContent = data.items.length ? '' : '没有待处理的消息';
  }

  // --- training --------------------------------------------------------------------------------
  $('train').addEventListener('click', async () => {
    $('train-error').textContent = '';
    try {
      const res = await admin('/train', {mode: $('finetune').checked ? 'finetune' : 'full'});
      $('train-status').textContent = res.message;
    } catch (err) { $('train-error').textContent = err.message; }
    pollTraining();
  });
  async function pollTraining() {
    clearTimeout(state.timer);
    const data = await admin('/train');
    const run = data.runs[0];
    let again = false;
    if (!run) { $('train-status').textContent = '还没有训练过'; return; }
    const queued = data.runs.filter(r => r.status === 'queued').length;
    if (run.status === 'running' || run.status === 'queued' || queued) {
      again = true;
      const running = data.runs.find(r => r.status === 'running');
      if (running && running.started) {
        const elapsed = Date.now() / 1000 - running.started, expected = running.expected_seconds || data.expected_seconds;
        $('train-bar').style.width = Math.min(99, 100 * elapsed / expected).toFixed(0) + '%';
        $('train-status').textContent = `训练中（${running.phase || ''} ${running.component || ''} ${running.epochs || ''}）：已用 ${elapsed.toFixed(0)} 秒，预计 ${expected.toFixed(0)} 秒` + (queued ? `；排队 ${queued} 个` : '');
      } else { $('train-status').textContent = `排队中（${queued} 个）`; }
    } else if (run.status === 'succeeded') {
      $('train-bar').style.width = '100%';
      $('train-status').textContent = `训练完成：${run.model.split('/').pop()}，用时 ${run.seconds} 秒`;
      $('train-status').className = 'ok';
      state.candidate = run.model;
      loadModels();
    } else if (run.status === 'failed') {
      $('train-bar').style.width = '0';
      $('train-status').textContent = '训练失败，线上模型未受影响';
      $('train-error').textContent = run.error || '';
    }
    if (again) state.timer = setTimeout(pollTraining, 1000);
  }

  // --- compare ----------------------------------------------------------------------------------
  $('compare').addEventListener('click', async () => {
    $('compare-result').replaceChildren(); $('confusion').style.display = 'none';
    $('compare-status').textContent = '评估中…';
    try { await admin('/compare', state.candidate ? {candidate: state.candidate} : {}); }
    catch (err) { $('compare-status').textContent = '无法对比：' + err.message; return; }
    loadComparison();
  });
  const PCT = v => v == null ? '-' : (100 * v).toFixed(1) + '%';
  async function loadComparison() {
    const data = await admin('/compare');
    if (data.running) { $('compare-status').textContent = '评估中（两个模型各跑一遍测试集）…'; setTimeout(loadComparison, 1500); return; }
    $('compare-status').textContent = data.error ? '对比失败：' + data.error : '';
    const r = data.result;
    if (!r) return;
    state.candidate = r.candidate;
    const s = r.scores;
    const rows = [['意图准确率', 'intent_accuracy'], ['宏平均 F1', 'intent_macro_f1'], ['常见问题准确率', 'faq_response_accuracy']];
    const table = el('table', {id: 'scores'}, el('tr', {}, el('th', {textContent: '指标'}), el('th', {textContent: '线上'}), el('th', {textContent: '候选'})),
      ...rows.map(([label, k]) => el('tr', {}, el('td', {textContent: label}), el('td', {textContent: PCT(s.live[k])}),
        el('td', {class: s.candidate[k] > s.live[k] ? 'up' : s.candidate[k] < s.live[k] ? 'down' : '', textContent: PCT(s.candidate[k])}))));
    // each set apart: the held-out split and the blind report set decide; the annotated items
    // (the candidate trained on them) are shown, never counted in the verdict
    const SET_NAMES = {own_split: '留出测试集', blind_report: '盲测报告集', annotated: '新标注（候选已学过，不计入结论）'};
    const bySet = el('table', {id: 'scores-by-set'}, el('tr', {}, el('th', {textContent: '测试集'}), el('th', {textContent: '句数'}),
      el('th', {textContent: '线上准确率'}), el('th', {textContent: '候选准确率'})),
      ...Object.entries(r.by_set || {}).map(([name, v]) => el('tr', {dataset: {set: name}}, el('td', {textContent: SET_NAMES[name] || name}),
        el('td', {textContent: String(v.candidate.examples)}), el('td', {textContent: PCT(v.live.intent_accuracy)}),
        el('td', {class: v.candidate.intent_accuracy > v.live.intent_accuracy ? 'up' : v.candidate.intent_accuracy < v.live.intent_accuracy ? 'down' : '',
                  textContent: PCT(v.candidate.intent_accuracy)}))));
    const changed = Object.entries(r.per_intent).filter(([, v]) => v.change);
    const perIntent = el('div', {class: 'next', textContent: '意图 F1 变化：' + (changed.map(([k, v]) => `${k} ${v.change > 0 ? '+' : ''}${v.change}`).join('，') || '无')});
    const broken = el('div', {}, el('div', {textContent: `新出错的例子：${r.newly_broken.length} 个；新修好的：${r.newly_fixed.length} 个`}),
      ...r.newly_broken.slice(0, 20).map(b => el('div', {class: 'next', textContent: `✗ ${b.text}（应为 ${b.expected}，候选判为 ${b.candidate}）`})));
    const verdict = el('div', {id: 'verdict', class: r.worse.length ? 'error' : 'ok',
      textContent: r.worse.length ? `候选更差（${(r.worse_on || []).map(n => SET_NAMES[n] || n).join('、')}：${r.worse.join('、')}），上线需填写理由` : `候选不比线上差（容差 ${r.tolerance}），可以上线`});
    $('compare-result').replaceChildren(el('div', {class: 'next', textContent: `候选 ${r.candidate.split('/').pop()}，${r.examples} 个测试句`}), table, bySet, perIntent, broken, verdict);
    $('confusion').src = '/api/admin/compare/confusion.png?candidate=' + encodeURIComponent(r.candidate) + '&t=' + Date.now();
    $('confusion').style.display = 'block';
  }

  // --- activate / roll back -----------------------------------------------------------------------
  async function loadModels() {
    const data = await admin('/models');
    $('live').textContent = '线上模型：' + (data.live ? data.live.split('/').pop() : '-') + `（保留最近 ${data.keep} 个）`;
    if (!state.candidate && data.candidates.length) state.candidate = data.candidates[0];
    $('log').replaceChildren(...data.activations.map(a => el('tr', {},
      el('td', {textContent: new Date(a.at).toLocaleString('zh-CN', {timeZone: 'Asia/Shanghai'})}),
      el('td', {textContent: a.actor}), el('td', {textContent: a.kind === 'rollback' ? '回滚' : '上线'}),
      el('td', {textContent: a.model.split('/').pop()}),
      el('td', {textContent: (a.scores ? `准确率 ${PCT(a.scores.candidate.intent_accuracy)} F1 ${PCT(a.scores.candidate.intent_macro_f1)}` : '') + (a.override_reason ? ` 理由：${a.override_reason}` : '')}))));
  }
  async function swap(path, body) {
    $('activate-error').textContent = '';
    for (const b of [$('activate'), $('rollback')]) b.disabled = true;
    try { await admin(path, body); $('activate-error').textContent = ''; }
    catch (err) { $('activate-error').textContent = err.message; }
    finally { for (const b of [$('activate'), $('rollback')]) b.disabled = false; }
    loadModels();
  }
  $('activate').addEventListener('click', () => {
    if (!state.candidate) { $('activate-error').textContent = '还没有候选模型'; return; }
    const reason = $('reason').value.trim();
    swap('/activate', reason ? {model: state.candidate, reason} : {model: state.candidate});
  });
  $('rollback').addEventListener('click', () => swap('/rollback', $('reason').value.trim() ? {reason: $('reason').value.trim()} : {}));

  api('/api/agent', '/me').then(data => start(data.agent)).catch(showLogin);
})();
