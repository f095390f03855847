// Helpers every console page shares (console.html, admin.html), loaded before the page's own
// script as /static/kefu.js. Server data goes on the page as text nodes, never innerHTML.
(() => {
  'use strict';

  // A DOM node: props set as properties ('class', 'on' {event: fn} and 'dataset' specially),
  // string children as text nodes.
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === 'class') node.className = v;
      else if (k === 'on') for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
      else if (k === 'dataset') Object.assign(node.dataset, v);
      else node[k] = v;
    }
    for (const c of children) if (c != null) node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    return node;
  }

  // GET url (no body) or POST body as JSON, with the session cookie; the JSON answer, or an
  // Error with the server's reason. A 401 first calls onUnauthorized (if given; it may throw).
  async function request(url, body, onUnauthorized) {
    const opts = body === undefined ? {} : {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)};
    const resp = await fetch(url, {credentials: 'same-origin', ...opts});
    const data = await resp.json().catch(() => ({}));
    if (resp.status === 401 && onUnauthorized) onUnauthorized();
    if (!resp.ok) throw new Error(data.error || String(resp.status));
    return data;
  }

  window.kefu = Object.freeze({el, request});
})();
