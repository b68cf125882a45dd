(function () {
  'use strict';
  // Everything shown comes from the JSON blob above and reaches the DOM through textContent
  // and attributes only: inputs, server errors and file names are untrusted text.
  var root = document.documentElement;
  var D;
  try {
    D = JSON.parse(document.getElementById('data').textContent);
  } catch (e) {
    D = { name: '', model: '', done: true, rows: [] };
  }
  var ROWS = D.rows || [];
  var GROUPS = [
    ['all', 'all', null],
    ['succeeded', 'succeeded', ['succeeded']],
    ['failed', 'failed', ['failed', 'refused', 'expired']],
    ['uncertain', 'uncertain', ['uncertain']],
    ['invalid', 'invalid', ['invalid']],
    ['flight', 'in flight', ['claimed', 'submitting', 'submitted', 'saving']],
    ['queued', 'queued', ['queued']],
    ['cancelled', 'cancelled', ['cancelled']]
  ];
  var CARD_W = 290, CARD_H = 360, GAP = 14, REFRESH = 10000;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = String(text);
    return e;
  }
  function usd(x) { return '$' + Number(x).toFixed(3); }
  function dur(s) {
    if (s == null) return '';
    if (s < 60) return s.toFixed(1) + ' s';
    var m = Math.floor(s / 60), r = Math.round(s - m * 60);
    return m + ' min ' + (r < 10 ? '0' : '') + r + ' s';
  }
  function when(ms) { return ms == null ? '' : new Date(ms).toLocaleString(); }
  function size(b) {
    if (b >= 1048576) return (b / 1048576).toFixed(1) + ' MB';
    if (b >= 1024) return Math.round(b / 1024) + ' KB';
    return b + ' B';
  }
  function field(r, k) {
    for (var i = 0; i < r.in.length; i++) if (r.in[i].k === k) return r.in[i];
    return null;
  }
  // `text` cut to at most `n` characters between two words (the card's three lines), never
  // inside one; the detail view has it whole.
  function words(text, n) {
    if (!text || text.length <= n) return text;
    var cut = text.lastIndexOf(' ', n);
    return text.slice(0, cut > n / 2 ? cut : n).replace(/[\s,.;:]+$/, '') + '\u2026';
  }
  function prompt(r) { var f = r.p != null ? field(r, r.p) : null; return f ? f.v : ''; }
  function cost(r) { return r.c != null ? r.c : (r.e != null ? r.e : null); }
  function costText(r) { return r.c != null ? usd(r.c) : (r.e != null ? '~' + usd(r.e) : ''); }
  function haystack(r) {
    if (r._q == null) {
      var parts = [String(r.l), r.s, r.id || '', r.x || ''];
      r.in.forEach(function (f) { parts.push(f.k, f.v || '', f.n || '', f.m || ''); });
      r.o.forEach(function (o) { parts.push(o.n); });
      r._q = parts.join('\n').toLowerCase();
    }
    return r._q;
  }
  function group(r) {
    for (var i = 1; i < GROUPS.length; i++) if (GROUPS[i][2].indexOf(r.s) >= 0) return GROUPS[i][0];
    return 'other';
  }

  // Media counters, for a headless browser: every output image, video or sound on the page
  // (a child of an `.out` element; input thumbnails are not outputs) counted into data-media-{total,loaded,failed} and data-{img,video,audio}-{total,loaded}.
  // A video counts as loaded once it has a picture size, a sound once it has a duration.
  var putLater = 0;
  function put() {
    putLater = 0;
    var all = 0, ok = 0, bad = 0;
    ['img', 'video', 'audio'].forEach(function (k) {
      var els = document.querySelectorAll('.out > ' + k), l = 0;
      for (var i = 0; i < els.length; i++) {
        var s = els[i].getAttribute('data-ok');
        if (s === '1') { l++; ok++; } else if (s === '0') bad++;
      }
      all += els.length;
      root.setAttribute('data-' + k + '-total', els.length);
      root.setAttribute('data-' + k + '-loaded', l);
    });
    root.setAttribute('data-media-total', all);
    root.setAttribute('data-media-loaded', ok);
    root.setAttribute('data-media-failed', bad);
  }
  function putSoon() { if (!putLater) putLater = setTimeout(put, 0); }
  function mark(e, ok) {
    var t = e.target;
    if (!t || !t.tagName) return;
    if (t.tagName === 'SOURCE') t = t.parentElement;
    if (!t || !t.parentElement || !t.parentElement.classList.contains('out') || t.hasAttribute('data-ok')) return;
    var n = t.tagName;
    if (n !== 'IMG' && n !== 'VIDEO' && n !== 'AUDIO') return;
    if (ok && n === 'VIDEO' && !(t.readyState >= 1 && t.videoWidth > 0)) ok = false;
    if (ok && n === 'AUDIO' && !(t.readyState >= 1 && t.duration > 0)) ok = false;
    t.setAttribute('data-ok', ok ? '1' : '0');
    putSoon();
  }
  document.addEventListener('load', function (e) { mark(e, true); }, true);
  document.addEventListener('loadedmetadata', function (e) { mark(e, true); }, true);
  document.addEventListener('error', function (e) { mark(e, false); }, true);

  function href(o) { return o.h != null ? o.h : o.n; }
  // An output as a media element (`big`: with controls, for the detail view).
  function media(o, big) {
    var e;
    if (o.k === 'img') {
      e = el('img');
      e.alt = o.n;
      if (!big) e.loading = 'lazy';
      e.src = href(o);
    } else if (o.k === 'video') {
      e = el('video');
      e.preload = 'metadata';
      e.muted = true;
      e.loop = true;
      e.playsInline = true;
      e.title = o.n;
      if (big) e.controls = true;
      // The first frame as the poster.
      e.src = href(o) + '#t=0.1';
    } else if (o.k === 'audio') {
      e = el('audio');
      e.preload = 'metadata';
      e.controls = true;
      e.title = o.n;
      e.src = href(o);
    } else {
      e = el('a', null, o.n);
      e.href = href(o);
    }
    return e;
  }
  // An input field's value as what it is: a thumbnail, a file name, a described inline file,
  // or text.
  function inputValue(f, thumb) {
    if (f.t === 'img') {
      var a = el('a');
      a.href = f.v;
      a.title = f.v;
      var i = el('img', thumb ? 'thumb' : null);
      i.alt = f.n;
      i.loading = 'lazy';
      i.referrerPolicy = 'no-referrer';
      i.addEventListener('error', function () {
        if (thumb) { a.remove(); return; }
        i.replaceWith(el('span', 'v', f.n + ' (not reachable)'));
      });
      i.src = f.v;
      a.appendChild(i);
      if (!thumb) a.appendChild(el('div', 'v', f.n));
      return a;
    }
    if (f.t === 'url') {
      var l = el('a', thumb ? 'chip' : 'v', f.n);
      l.href = f.v;
      l.title = f.v;
      return l;
    }
    var inline = f.m + ', ' + size(f.b) + ', sent inline';
    if (f.t === 'data' && f.f) {
      // The local original the row named: a thumbnail of an image, else a link.
      if (f.m.indexOf('image/') === 0) return inputValue({ t: 'img', v: f.f, n: f.n + ' (' + inline + ')' }, thumb);
      var o = el('a', thumb ? 'chip' : 'v', f.n + ' (' + inline + ')');
      o.href = f.f;
      return o;
    }
    if (f.t === 'data') return el('span', thumb ? 'chip' : 'v', inline);
    return el('div', 'v', f.v);
  }
  function firstFile(r) {
    for (var i = 0; i < r.in.length; i++) if (r.in[i].t !== 'text' && r.in[i].t !== 'json') return r.in[i];
    return null;
  }

  function card(r) {
    var c = el('article', 'card');
    c.setAttribute('data-line', r.l);
    c.setAttribute('data-state', r.s);
    c.tabIndex = -1;
    var m = el('div', 'media');
    // The card's picture: a video first, else an image, else a sound; a sound beside a
    // picture gets its own small player.
    var RANK = { video: 0, img: 1, audio: 2 };
    var outs = r.o.filter(function (o) { return o.k !== 'file'; }).sort(function (a, b) { return RANK[a.k] - RANK[b.k]; });
    if (outs.length) {
      m.className = 'media out';
      var e = media(outs[0], false), extra = 0;
      if (outs[0].k === 'video') {
        c.addEventListener('mouseenter', function () { var p = e.play(); if (p && p.catch) p.catch(function () {}); });
        c.addEventListener('mouseleave', function () { e.pause(); });
      }
      if (outs[0].k === 'audio') m.appendChild(el('span', 'note big', '\u266A'));
      m.appendChild(e);
      var sound = outs[0].k !== 'audio' && outs.filter(function (o) { return o.k === 'audio'; })[0];
      if (sound) {
        var s = media(sound, false);
        s.className = 'sound';
        s.addEventListener('click', function (ev) { ev.stopPropagation(); });
        m.appendChild(s);
        extra = 1;
      }
      if (r.o.length > 1 + extra) m.appendChild(el('span', 'more', '+' + (r.o.length - 1 - extra)));
    } else {
      var note = el('div', 'note');
      var label = { succeeded: r.o.length ? r.o.length + ' file(s)' : 'no files saved', invalid: 'not sent', queued: 'queued', uncertain: 'outcome unknown' }[r.s] || r.s;
      note.appendChild(el('span', 'big', { succeeded: '\u2713', failed: '\u2715', refused: '\u2715', expired: '\u2715', invalid: '\u2715', uncertain: '?', queued: '\u2026', cancelled: '\u2013' }[r.s] || '\u25CB'));
      note.appendChild(document.createTextNode(label));
      m.appendChild(note);
    }
    var f = firstFile(r);
    if (f) m.appendChild(inputValue(f, true));
    c.appendChild(m);
    var meta = el('div', 'meta');
    meta.appendChild(el('span', 'line', '#' + r.l));
    meta.appendChild(el('span', 'badge st-' + r.s, r.s));
    if (costText(r)) meta.appendChild(el('span', 'cost', costText(r)));
    if (r.rt != null) meta.appendChild(el('span', 'rt', dur(r.rt)));
    c.appendChild(meta);
    var p = prompt(r), pe = el('p', 'prompt', words(p, 100) || (r.s === 'invalid' ? '' : '(no prompt)'));
    if (p) pe.title = p;
    c.appendChild(pe);
    if (r.x) {
      // The reason on the card; what to do on hover and in the detail view.
      var why = el('p', 'why', r.x);
      if (r.a) why.title = r.a;
      c.appendChild(why);
    }
    c.addEventListener('click', function () { focusAt(view.indexOf(r)); openDetail(); });
    return c;
  }

  // The view: the rows the filter and search keep, in the chosen order.
  // The hash keeps the filter, order and search across reloads; `live=0` turns the reload
  // off (scripts/check-report: a reload would end its fixed virtual time mid-load).
  var state = { f: 'all', s: 'row', q: '', live: '1' };
  (location.hash.slice(1).split('&')).forEach(function (kv) {
    var i = kv.indexOf('=');
    if (i > 0 && state.hasOwnProperty(kv.slice(0, i))) {
      try { state[kv.slice(0, i)] = decodeURIComponent(kv.slice(i + 1)); } catch (e) { /* kept */ }
    }
  });
  var view = [], cols = 1, cardW = CARD_W, rowH = CARD_H + GAP, shown = new Map(), focus = -1;
  var grid = document.getElementById('grid'), spacer = document.getElementById('spacer');
  var search = document.getElementById('search'), sort = document.getElementById('sort');
  var detail = document.getElementById('detail');

  function saveHash() {
    var h = 'f=' + encodeURIComponent(state.f) + '&s=' + encodeURIComponent(state.s) + '&q=' + encodeURIComponent(state.q);
    try { history.replaceState(null, '', '#' + h); } catch (e) { /* a file: page may refuse */ }
  }
  function compute() {
    var q = state.q.trim().toLowerCase();
    var g = state.f;
    view = ROWS.filter(function (r) {
      return (g === 'all' || group(r) === g) && (!q || haystack(r).indexOf(q) >= 0);
    });
    var key = state.s.replace('-', ''), sign = state.s.charAt(0) === '-' ? -1 : 1;
    var val = key === 'cost' ? cost : key === 'time' ? function (r) { return r.rt; } : function (r) { return r.l; };
    view.sort(function (a, b) {
      var x = val(a), y = val(b);
      if (x == null && y == null) return a.l - b.l;
      if (x == null) return 1;
      if (y == null) return -1;
      return (x - y) * sign || a.l - b.l;
    });
    document.getElementById('count').textContent = view.length + ' of ' + ROWS.length + ' rows';
    document.getElementById('empty').hidden = view.length > 0;
    root.setAttribute('data-shown', view.length);
    shown.forEach(function (c) { c.remove(); });
    shown.clear();
    focus = -1;
    layout();
  }
  function layout() {
    var w = spacer.clientWidth || CARD_W;
    cols = Math.max(1, Math.floor((w + GAP) / (CARD_W + GAP)));
    cardW = (w - (cols - 1) * GAP) / cols;
    spacer.style.height = Math.ceil(view.length / cols) * rowH + 'px';
    shown.forEach(function (c) { c.remove(); });
    shown.clear();
    render();
  }
  // Only the cards in view (and a screen above and below) are in the DOM.
  function render() {
    var top = spacer.getBoundingClientRect().top, vh = window.innerHeight || 800;
    var first = Math.max(0, Math.floor(-top / rowH) - 2);
    var last = Math.ceil((vh - top) / rowH) + 2;
    var from = first * cols, to = Math.min(view.length, last * cols);
    var keep = new Map();
    for (var i = from; i < to; i++) {
      var r = view[i], c = shown.get(r.l);
      if (!c) {
        c = card(r);
        grid.appendChild(c);
      }
      shown.delete(r.l);
      keep.set(r.l, c);
      c.style.left = (i % cols) * (cardW + GAP) + 'px';
      c.style.top = Math.floor(i / cols) * rowH + 'px';
      c.style.width = cardW + 'px';
      c.style.height = CARD_H + 'px';
      c.classList.toggle('focus', i === focus);
    }
    shown.forEach(function (c) { c.remove(); });
    shown = keep;
    root.setAttribute('data-cards', keep.size);
    putSoon();
    if (!root.hasAttribute('data-rendered')) {
      root.setAttribute('data-rendered', '1');
      root.setAttribute('data-render-ms', Math.round(performance.now()));
    }
  }
  var pending = false;
  function renderSoon() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () { pending = false; render(); });
  }

  function focusAt(i) {
    if (!view.length) return;
    focus = Math.max(0, Math.min(view.length - 1, i));
    var y = spacer.getBoundingClientRect().top + window.scrollY + Math.floor(focus / cols) * rowH;
    var head = document.querySelector('header').offsetHeight;
    if (y < window.scrollY + head + 8 || y + CARD_H > window.scrollY + window.innerHeight) {
      window.scrollTo(0, Math.max(0, y - head - 12));
    }
    render();
  }

  function openDetail() {
    var r = view[focus];
    if (!r) return;
    detail.textContent = '';
    var panel = el('div', 'panel');
    var top = el('div', 'top');
    top.appendChild(el('h2', null, 'Row ' + r.l));
    top.appendChild(el('span', 'badge st-' + r.s, r.s));
    [['\u2190 previous', -1], ['next \u2192', 1], ['close', 0]].forEach(function (b) {
      var btn = el('button', null, b[0]);
      btn.setAttribute('data-go', b[1]);
      btn.addEventListener('click', function (e) { e.stopPropagation(); if (b[1]) step(b[1]); else closeDetail(); });
      top.appendChild(btn);
    });
    panel.appendChild(top);
    var sides = el('div', 'sides');
    var ins = el('section', 'ins');
    ins.appendChild(el('h3', null, 'Input'));
    if (!r.in.length) ins.appendChild(el('p', 'v', r.s === 'invalid' ? 'the line could not be read as an input (see the error)' : '(empty)'));
    r.in.forEach(function (f) {
      var d = el('div', 'field');
      d.appendChild(el('div', 'k', f.k));
      d.appendChild(inputValue(f, false));
      ins.appendChild(d);
    });
    var outs = el('section', 'outs out');
    outs.appendChild(el('h3', null, 'Output'));
    if (!r.o.length) outs.appendChild(el('p', 'v', r.s === 'succeeded' ? 'no files' : 'no outputs (' + r.s + ')'));
    r.o.forEach(function (o) {
      if (o.k !== 'file') outs.appendChild(media(o, true));
      var a = el('a', null, o.n);
      a.href = href(o);
      outs.appendChild(a);
    });
    (r.u || []).forEach(function (u) { outs.appendChild(el('div', 'v', 'not saved yet: ' + u)); });
    sides.appendChild(ins);
    sides.appendChild(outs);
    panel.appendChild(sides);
    var facts = el('dl', 'facts');
    function fact(k, v, cls) {
      if (v == null || v === '') return;
      facts.appendChild(el('dt', null, k));
      var dd = el('dd', cls || null, v);
      if (k === 'request id') dd.id = 'request-id';
      facts.appendChild(dd);
    }
    fact('state', r.s);
    fact('request id', r.id || (r.s === 'invalid' ? 'none: not sent' : 'none recorded'));
    fact('cost', r.c != null ? usd(r.c) : null);
    fact('estimate', r.e != null ? usd(r.e) : null);
    fact('run time', dur(r.rt));
    fact('recorded', when(r.t0));
    fact('submitted', when(r.t1));
    fact('ended', when(r.t2));
    fact('input SHA-256', r.h);
    fact('error', r.x, 'err');
    panel.appendChild(facts);
    if (r.a) panel.appendChild(el('p', 'advice', r.a));
    var keys = el('p', 'keys');
    ['\u2190', '\u2192'].forEach(function (k) { keys.appendChild(el('kbd', null, k)); });
    keys.appendChild(document.createTextNode(' previous / next row  '));
    keys.appendChild(el('kbd', null, 'Esc'));
    keys.appendChild(document.createTextNode(' close'));
    panel.appendChild(keys);
    panel.addEventListener('click', function (e) { e.stopPropagation(); });
    detail.appendChild(panel);
    detail.hidden = false;
    root.setAttribute('data-detail', r.l);
    putSoon();
  }
  function closeDetail() {
    detail.hidden = true;
    detail.textContent = '';
    root.removeAttribute('data-detail');
    putSoon();
  }
  function step(d) {
    if (focus + d < 0 || focus + d >= view.length) return;
    focusAt(focus + d);
    openDetail();
  }
  detail.addEventListener('click', closeDetail);

  // Filters, search, sort.
  var filters = document.getElementById('filters');
  var counts = {};
  ROWS.forEach(function (r) { var g = group(r); counts[g] = (counts[g] || 0) + 1; });
  counts.all = ROWS.length;
  GROUPS.forEach(function (g) {
    if (g[0] !== 'all' && !counts[g[0]] && state.f !== g[0]) return;
    var b = el('button', null, g[1]);
    b.appendChild(el('span', 'n', counts[g[0]] || 0));
    b.setAttribute('data-filter', g[0]);
    b.setAttribute('aria-pressed', String(state.f === g[0]));
    b.addEventListener('click', function () {
      state.f = g[0];
      filters.querySelectorAll('button').forEach(function (x) { x.setAttribute('aria-pressed', String(x === b)); });
      saveHash();
      compute();
    });
    filters.appendChild(b);
  });
  search.value = state.q;
  sort.value = state.s;
  if (sort.value !== state.s) state.s = sort.value = 'row';
  search.addEventListener('input', function () { state.q = search.value; saveHash(); compute(); });
  sort.addEventListener('change', function () { state.s = sort.value; saveHash(); compute(); });
  window.addEventListener('scroll', renderSoon, { passive: true });
  window.addEventListener('resize', function () { requestAnimationFrame(layout); });
  document.addEventListener('keydown', function (e) {
    var t = e.target, typing = t && (t.tagName === 'INPUT' || t.tagName === 'SELECT');
    if (e.key === 'Escape') {
      if (!detail.hidden) closeDetail();
      else if (typing) t.blur();
      return;
    }
    if (typing || e.altKey || e.ctrlKey || e.metaKey) return;
    var open = !detail.hidden, i = focus < 0 ? -1 : focus;
    if (e.key === '/') { e.preventDefault(); search.focus(); return; }
    if (e.key === 'ArrowRight' || e.key === 'j') { e.preventDefault(); if (open) step(1); else focusAt(i + 1); }
    else if (e.key === 'ArrowLeft' || e.key === 'k') { e.preventDefault(); if (open) step(-1); else focusAt(i - 1); }
    else if (!open && e.key === 'ArrowDown') { e.preventDefault(); focusAt(i < 0 ? 0 : i + cols); }
    else if (!open && e.key === 'ArrowUp') { e.preventDefault(); focusAt(i - cols); }
    else if (!open && (e.key === 'Enter' || e.key === ' ') && focus >= 0) { e.preventDefault(); openDetail(); }
  });

  // While the batch runs, the page reloads itself (keeping its filter, search, order and
  // scroll position); a finished batch's page stays still.
  var live = document.getElementById('live');
  var written = D.written ? ' (written ' + when(D.written) + ')' : '';
  if (D.done || state.live === '0') {
    live.textContent = (D.done ? 'finished' : 'running (not refreshing)') + written;
  } else {
    live.textContent = 'running: this page refreshes every ' + REFRESH / 1000 + ' s' + written;
    live.className = 'running';
    root.setAttribute('data-refresh', REFRESH);
    setInterval(function () {
      if (!detail.hidden || document.activeElement === search) return;
      try { sessionStorage.setItem('runcomfy-scroll', String(window.scrollY)); } catch (e) { /* kept */ }
      location.reload();
    }, REFRESH);
  }
  compute();
  try {
    var y = Number(sessionStorage.getItem('runcomfy-scroll'));
    sessionStorage.removeItem('runcomfy-scroll');
    if (y > 0) { window.scrollTo(0, y); render(); }
  } catch (e) { /* no storage on this page */ }
})();
