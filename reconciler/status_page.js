(function () {
  'use strict';
  var TOKEN_KEY = 'ballast-token';
  var DOCS = ['status', 'plan?diff=true', 'deployments', 'services', 'pods', 'nodes', 'history'];

  // Elements from data: text only goes through text nodes, never through HTML parsing.
  function h(tag, attrs) {
    var e = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    for (var i = 2; i < arguments.length; i++) add(e, arguments[i]);
    return e;
  }
  function add(e, c) {
    if (c === null || c === undefined) return;
    if (Array.isArray(c)) { c.forEach(function (x) { add(e, x); }); return; }
    if (typeof c === 'object' && c.nodeType) { e.appendChild(c); return; }
    e.appendChild(document.createTextNode(String(c)));
  }
  function text(v) {
    if (v === null || v === undefined) return '';
    return typeof v === 'string' ? v : JSON.stringify(v);
  }
  function field(o, k) { return o && typeof o === 'object' ? text(o[k]) : ''; }
  function arr(o, k) { return o && Array.isArray(o[k]) ? o[k] : []; }
  function items(doc) { return arr(doc, 'items'); }
  var OK = ['Synced', 'Healthy', 'Running', 'true', 'Ready', 'Succeeded', 'succeeded', 'success',
            'ok', 'applied'];
  var BAD = ['Error', 'Degraded', 'Failed', 'false', 'failed', 'error', 'NotReady',
             'CrashLoopBackOff'];
  function tone(v) { return OK.indexOf(v) >= 0 ? 'ok' : BAD.indexOf(v) >= 0 ? 'bad' : 'warn'; }
  function badge(v) { v = v || 'Unknown'; return h('span', {'class': 'badge ' + tone(v)}, v); }
  function short(s) { return s.substring(0, 12); }
  function table(headers, rows, empty) {
    if (!rows.length) return h('p', {'class': 'muted'}, empty);
    return h('table', null, h('thead', null, h('tr', null, headers.map(function (x) {
      return h('th', null, x);
    }))), h('tbody', null, rows));
  }
  function td(c, cls) { return h('td', cls ? {'class': cls} : null, c); }
  function lineClass(line, unified) {
    if (unified) {
      if (line.indexOf('+++') === 0 || line.indexOf('---') === 0) return 'dh';
      if (line.indexOf('@@') === 0) return 'dk';
      return line[0] === '+' ? 'da' : line[0] === '-' ? 'dd' : 'dc';
    }
    var t = line.replace(/^ +/, ''), c = t[0];
    if (t.indexOf('+/-') === 0) return 'dm';
    return c === '+' ? 'da' : c === '-' ? 'dd' : c === '~' ? 'dm' : c === '!' ? 'db' : 'dc';
  }
  function coloured(t, unified, cls) {
    var lines = t.split('\n'), notes = false;
    if (lines.length && lines[lines.length - 1] === '') lines.pop();
    return h('pre', {'class': cls}, lines.map(function (l) {
      if (!unified && l.indexOf('Scheduler dry-run:') === 0) notes = true;
      if (!unified && l.indexOf('Plan:') === 0) notes = false;
      var k = notes && l.indexOf('!') !== 0 ? 'dc' : lineClass(l, unified);
      return h('span', {'class': k}, l + '\n');
    }));
  }

  function renderSummary(s) {
    var commit = (s && s.commit) || {};
    var policy = field(s, 'syncPolicy');
    var rev = field(s, 'revision'), applied = field(s, 'appliedRevision');
    return [
      h('div', {'class': 'row'}, h('span', null, 'sync ', badge(field(s, 'sync'))),
        h('span', null, 'health ', badge(field(s, 'health'))),
        policy ? h('span', null, 'auto-sync ', h('b', null, policy === 'auto' ? 'on' : 'off')) : null),
      h('div', {'class': 'row'},
        h('span', null, 'revision ', h('code', {'class': 'rev'}, rev ? short(rev) : 'unknown')),
        field(commit, 'summary') ? h('span', {'class': 'msg'}, field(commit, 'summary')) : null,
        field(commit, 'author') ? h('span', {'class': 'muted'}, 'by ' + field(commit, 'author')) : null),
      h('div', {'class': 'row'}, h('span', null, 'applied ',
        h('code', {'class': 'applied'}, applied ? short(applied) : 'nothing yet')))];
  }
  function renderBanner(s) {
    var out = [];
    if (s && s.pinned !== null && s.pinned !== undefined) {
      out.push(h('div', {'class': 'banner warnbg'}, 'Pinned to history entry #' + text(s.pinned) +
        ': auto-sync is paused until you unpin. ', h('button', {'data-action': 'unpin'}, 'Unpin')));
    }
    if (s && s.historyError && typeof s.historyError === 'object') {
      out.push(h('div', {'class': 'banner badbg'}, 'Cannot record the applied state in history (for ' +
        field(s.historyError, 'ageSeconds') + ' s): ' + field(s.historyError, 'message') +
        '. No other revision is applied until it can be.'));
    }
    if (s && s.sourceError && typeof s.sourceError === 'object') {
      out.push(h('div', {'class': 'banner badbg'}, 'Cannot read the source (for ' +
        field(s.sourceError, 'ageSeconds') + ' s): ' + field(s.sourceError, 'message')));
    }
    return out;
  }
  function diagnosticItems(list) {
    return list.map(function (e) {
      return h('li', null, h('code', null, field(e, 'file') + ':' + field(e, 'line') + ':' +
        field(e, 'column')), ': ' + (field(e, 'field') ? field(e, 'field') + ': ' : '') +
        field(e, 'message'));
    });
  }
  function renderErrors(s) {
    var errors = arr(s, 'errors');
    var warnings = arr(s, 'warnings');
    var out = [];
    if (errors.length) {
      out.push(h('h2', null, 'Errors in git'),
        h('p', null, 'The last good state keeps running; fix these and commit.'),
        h('ul', {'class': 'errors'}, diagnosticItems(errors)));
    }
    if (warnings.length) {
      out.push(h('h2', null, 'Warnings in git'),
        h('ul', {'class': 'warnings'}, diagnosticItems(warnings)));
    }
    return out;
  }
  function renderPlan(p) {
    var out = [h('h2', null, 'Planned changes')];
    if (!p || typeof p !== 'object') { out.push(h('p', {'class': 'muted'}, 'plan unknown')); return out; }
    out.push(coloured(field(p, 'text'), false, 'plan'));
    arr(p, 'objects').forEach(function (o) {
      var d = field(o, 'diff');
      if (!d) return;
      out.push(h('details', {'open': '', 'class': 'objdiff'}, h('summary', null,
        field(o, 'kind') + ' ' + qualified(o)),
        coloured(d, true, 'diff')));
    });
    return out;
  }
  // "ns/name", or "name" for a cluster-scoped object (a Namespace).
  function qualified(o) {
    var ns = field(o, 'namespace');
    return ns ? ns + '/' + field(o, 'name') : field(o, 'name');
  }
  function renderObjects(s) {
    return [h('h2', null, 'Objects'), table(['kind', 'name', 'plan', 'sync', 'health'],
      arr(s, 'objects').map(function (o) {
        return h('tr', null, td(field(o, 'kind')),
          td(qualified(o), 'name'), td(field(o, 'action')),
          td(badge(field(o, 'sync'))), td(badge(field(o, 'health'))));
      }), 'no objects')];
  }
  function renderDeployments(doc) {
    return [h('h2', null, 'Deployments'), table(['name', 'desired', 'updated', 'ready',
      'available', 'revision', 'sync', 'health', 'rollout'], items(doc).map(function (d) {
      var progress = [];
      arr(d, 'conditions').forEach(function (c) {
        var m = field(c, 'message') || field(c, 'reason');
        if (m) progress.push(field(c, 'type') + ': ' + m);
      });
      if (field(d, 'unschedulable')) progress.push(field(d, 'unschedulable'));
      return h('tr', null, td(field(d, 'namespace') + '/' + field(d, 'name'), 'name'),
        td(field(d, 'replicas')), td(field(d, 'updatedReplicas')), td(field(d, 'readyReplicas')),
        td(field(d, 'availableReplicas')), td(h('code', null, field(d, 'revision'))),
        td(badge(field(d, 'sync'))), td(badge(field(d, 'health'))), td(progress.join('; '), 'small'));
    }), 'no deployments applied')];
  }
  function renderServices(doc) {
    return [h('h2', null, 'Services'), table(['name', 'type', 'cluster IP', 'ports', 'endpoints'],
      items(doc).map(function (s) {
        var ports = arr(s, 'ports').map(function (p) {
          return field(p, 'port') + '\u2192' + field(p, 'targetPort') + '/' + field(p, 'protocol');
        }).join(', ');
        var eps = arr(s, 'endpoints').map(text).join(', ');
        return h('tr', null, td(field(s, 'namespace') + '/' + field(s, 'name'), 'name'),
          td(field(s, 'type')), td(h('code', null, field(s, 'clusterIP'))), td(ports),
          td(eps || h('span', {'class': 'muted'}, 'none ready'), 'small'));
      }), 'no services applied')];
  }
  function renderNodes(doc) {
    return [h('h2', null, 'Nodes'), table(['name', 'address', 'ready', 'pods', 'allocatable',
      'last heartbeat'], items(doc).map(function (n) {
      var a = n && n.allocatable && typeof n.allocatable === 'object' ? n.allocatable : {};
      var alloc = Object.keys(a).sort().map(function (k) { return k + ' ' + text(a[k]); }).join(', ');
      return h('tr', null, td(field(n, 'name'), 'name'), td(field(n, 'address')),
        td(badge(n && n.ready === true ? 'Ready' : 'NotReady')), td(field(n, 'pods')),
        td(alloc, 'small'), td(field(n, 'lastHeartbeat'), 'small'));
    }), 'no agent has registered')];
  }
  function age(created) {
    if (typeof created !== 'number') return '';
    var s = Math.max(0, Math.floor((Date.now() - created) / 1000));
    return s < 120 ? s + 's' : s < 7200 ? Math.floor(s / 60) + 'm' : Math.floor(s / 3600) + 'h';
  }
  function renderPods(doc) {
    return [h('h2', null, 'Pods'), table(['name', 'deployment', 'node', 'phase', 'ready',
      'restarts', 'revision', 'address', 'age', ''], items(doc).map(function (p) {
      var phase = field(p, 'phase');
      if (p.terminating === true) phase = 'Terminating';
      if (p.lost === true) phase = 'Lost';
      return h('tr', null, td(field(p, 'name'), 'name'), td(field(p, 'deployment')),
        td(field(p, 'node')), td(badge(phase)), td(badge(p.ready === true ? 'true' : 'false')),
        td(field(p, 'restarts')), td(h('code', null, field(p, 'revision'))),
        td(field(p, 'address')), td(age(p.createdMs)),
        td(h('a', {href: '/api/v1/logs/' + encodeURIComponent(field(p, 'name'))}, 'logs')));
    }), 'no pods')];
  }
  function renderHistory(doc) {
    return [h('h2', null, 'History'), table(['entry', 'source', 'message', 'time', 'trigger',
      'result', ''], items(doc).map(function (e) {
      var id = field(e, 'id');
      return h('tr', null, td('#' + id), td(h('code', null, short(field(e, 'revision')))),
        td(field(e, 'message'), 'msg'), td(field(e, 'time'), 'small'), td(field(e, 'trigger')),
        td(badge(field(e, 'result'))),
        td([h('a', {'href': '/api/v1/history/' + encodeURIComponent(id) + '/diff?format=text'},
          'diff against now'), ' ', h('button', {'data-action': 'rollback', 'data-id': id},
          'Roll back')]));
    }), 'nothing applied yet')];
  }

  function put(id, nodes) {
    var el = document.getElementById(id);
    if (!el) return;
    el.replaceChildren();
    add(el, nodes);
  }
  function render(d) {
    if (d.status) {
      put('summary', renderSummary(d.status));
      put('banner', renderBanner(d.status));
      put('errors', renderErrors(d.status));
      put('objects', renderObjects(d.status));
    }
    if (d.plan) put('plan', renderPlan(d.plan));
    if (d.deployments) put('deployments', renderDeployments(d.deployments));
    if (d.services) put('services', renderServices(d.services));
    if (d.pods) put('pods', renderPods(d.pods));
    if (d.nodes) put('nodes', renderNodes(d.nodes));
    if (d.history) put('history', renderHistory(d.history));
  }

  var timer = null;
  function poll() {
    clearTimeout(timer);
    Promise.all(DOCS.map(function (p) {
      return fetch('/api/v1/' + p, {cache: 'no-store'}).then(function (r) {
        return r.ok ? r.json() : null;
      }).catch(function () { return null; });
    })).then(function (docs) {
      var d = {status: docs[0], plan: docs[1], deployments: docs[2], services: docs[3],
               pods: docs[4], nodes: docs[5], history: docs[6]};
      render(d);
      var u = document.getElementById('updated');
      u.textContent = docs[0] ? 'live, updated ' + new Date().toLocaleTimeString()
                              : 'cannot reach the server';
      document.body.setAttribute('data-live', docs[0] ? 'yes' : 'no');
    }).catch(function (e) {
      document.getElementById('updated').textContent = 'render failed: ' + e;
    }).then(function () { timer = setTimeout(poll, 2000); });
  }

  function flash(msg, bad) {
    var f = document.getElementById('flash');
    f.textContent = msg;
    f.className = bad ? 'badge bad' : 'badge ok';
  }
  function post(path, body, retried) {
    var headers = {'Content-Type': 'application/json'};
    var token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = 'Bearer ' + token;
    return fetch(path, {method: 'POST', headers: headers, body: JSON.stringify(body)})
      .then(function (r) {
        if ((r.status === 401 || r.status === 403) && !retried) {
          var t = window.prompt('This needs an admin token (kept for this tab only):');
          if (t) { sessionStorage.setItem(TOKEN_KEY, t.trim()); return post(path, body, true); }
        }
        return r.text().then(function (t) {
          var j = null;
          try { j = JSON.parse(t); } catch (e) { j = null; }
          return {ok: r.ok, status: r.status, json: j, text: t};
        });
      });
  }
  function describe(res) {
    if (res.json && typeof res.json === 'object') {
      return text(res.json.error || res.json.message) || JSON.stringify(res.json);
    }
    return res.text || ('HTTP ' + res.status);
  }
  document.addEventListener('click', function (ev) {
    var b = ev.target.closest ? ev.target.closest('button[data-action]') : null;
    if (!b) return;
    var action = b.getAttribute('data-action');
    var req = action === 'sync' ? post('/api/v1/sync', {dryRun: false})
      : action === 'rollback' ? post('/api/v1/rollback', {id: Number(b.getAttribute('data-id'))})
      : action === 'unpin' ? post('/api/v1/unpin', {}) : null;
    if (!req) return;
    b.disabled = true;
    flash(action + '\u2026', false);
    req.then(function (res) {
      if (res.ok) {
        flash(action === 'rollback' ? 'rolled back to #' + b.getAttribute('data-id')
          : action === 'sync' ? 'synced' : 'unpinned', false);
      } else {
        flash(action + ' failed: ' + describe(res), true);
      }
    }).catch(function (e) { flash(action + ' failed: ' + e, true); })
      .then(function () { b.disabled = false; poll(); });
  });
  poll();
})();
