/* The webmail: views (login, folders, list, reader, compose) over the
 * API of api.js, strings from strings.js, HTML mail through sanitize.js.
 * No framework and no build step; text goes in with textContent only. */
"use strict";
(function () {
  const S = window.STRINGS;
  const PAGE = 50;
  const $ = id => document.getElementById(id);
  const st = {
    user: localStorage.getItem("webmail-user") || "",
    mailbox: "INBOX", mailboxes: [], list: [], page: 0, query: "",
    uid: 0, msg: null, showImages: false, attachments: []
  };

  function fmt(s, vars) { return s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? vars[k] : m)); }
  function el(tag, props, ...kids) {
    const e = document.createElement(tag);
    Object.assign(e, props || {});
    for (const k of kids) if (k != null) e.append(k);
    return e;
  }
  function hasFlag(m, f) { return (m.flags || []).indexOf(f) >= 0; }
  function folderName(n) { return S.folderNames[n] || n; }
  function status(text) { $("list-status").textContent = text || ""; }
  function showError(e) { status(fmt(S.error, { msg: e.message || String(e) })); }

  function applyStrings() {
    document.querySelectorAll("[data-s]").forEach(e => { e.textContent = S[e.dataset.s]; });
    document.querySelectorAll("[data-sp]").forEach(e => { e.placeholder = S[e.dataset.sp]; });
    document.title = S.appName;
  }

  /* ---- login ---- */

  function showLogin() {
    $("app").hidden = true;
    $("compose").hidden = true;
    $("login").hidden = false;
    $("user").value = st.user;
    (st.user ? $("password") : $("user")).focus();
  }

  async function login(ev) {
    ev.preventDefault();
    $("login-error").textContent = "";
    try {
      await Api.login($("user").value.trim(), $("password").value);
      st.user = $("user").value.trim().toLowerCase();
      localStorage.setItem("webmail-user", st.user);
      $("password").value = "";
      await start();
    } catch (e) {
      $("login-error").textContent = e.status === 401 ? S.badLogin : e.status === 429 ? S.tooMany : S.unavailable;
    }
  }

  async function logout() {
    try { await Api.logout(); } catch (e) { /* gone already */ }
    showLogin();
  }

  /* ---- folders and list ---- */

  async function loadFolders() {
    st.mailboxes = await Api.mailboxes();
    const ul = $("folder-list");
    ul.textContent = "";
    for (const mb of st.mailboxes) {
      const a = el("a", { href: "#", className: mb.name === st.mailbox ? "current" : "" },
        folderName(mb.name), mb.unseen ? el("span", { className: "count" }, String(mb.unseen)) : null);
      a.dataset.mailbox = mb.name;
      a.addEventListener("click", e => { e.preventDefault(); openFolder(mb.name); });
      ul.append(el("li", null, a));
    }
    const sel = $("move-select"), keep = sel.value;
    sel.textContent = "";
    for (const mb of st.mailboxes) sel.append(el("option", { value: mb.name }, folderName(mb.name)));
    if (keep && st.mailboxes.some(mb => mb.name === keep)) sel.value = keep;
  }

  /* "Dave <dave@x>" shows as Dave; a bare address as itself. */
  function displayName(from) {
    const name = (from || "").replace(/\s*<[^>]*>\s*$/, "").replace(/^"(.*)"$/, "$1").trim();
    return name || from || "";
  }

  function dateOf(m) { const t = Date.parse(m.date); return isNaN(t) ? 0 : t; }
  function shortDate(m) {
    const t = dateOf(m);
    if (!t) return "";
    const d = new Date(t), now = new Date();
    return d.toDateString() === now.toDateString()
      ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : d.toLocaleDateString();
  }

  async function openFolder(name) {
    st.mailbox = name;
    st.page = 0;
    st.query = "";
    $("search-input").value = "";
    $("search-clear").hidden = true;
    document.body.classList.remove("menu-open");
    closeReader();
    await refresh();
  }

  async function refresh() {
    status(S.loading);
    try {
      const list = st.query ? await Api.search(st.mailbox, st.query) : await Api.messages(st.mailbox);
      list.sort((a, b) => dateOf(b) - dateOf(a) || b.uid - a.uid);
      st.list = list;
      await loadFolders();
      renderList();
      status(st.query ? fmt(S.results, { n: list.length, q: st.query }) : (list.length ? "" : S.empty));
    } catch (e) { showError(e); }
  }

  function renderList() {
    const body = $("message-list").tBodies[0];
    body.textContent = "";
    const pages = Math.max(1, Math.ceil(st.list.length / PAGE));
    st.page = Math.min(st.page, pages - 1);
    const slice = st.list.slice(st.page * PAGE, st.page * PAGE + PAGE);
    for (const m of slice) {
      const tr = el("tr", { tabIndex: 0 },
        el("td", { className: "flag", title: (m.flags || []).join(" ") },
          (hasFlag(m, "\\Flagged") ? "\u2605" : "") + (hasFlag(m, "\\Answered") ? "\u21a9" : "")),
        el("td", { className: "from", title: m.from }, displayName(m.from)),
        el("td", { className: "subject" }, m.subject || S.noSubject),
        el("td", { className: "date" }, shortDate(m)));
      tr.dataset.uid = m.uid;
      if (!hasFlag(m, "\\Seen")) tr.classList.add("unread");
      if (m.uid === st.uid) tr.classList.add("current");
      tr.addEventListener("click", () => openMessage(m.uid));
      tr.addEventListener("keydown", e => { if (e.key === "Enter") openMessage(m.uid); });
      body.append(tr);
    }
    $("page-info").textContent = st.list.length ? fmt(S.page, {
      from: st.page * PAGE + 1, to: st.page * PAGE + slice.length, total: st.list.length }) : "";
    $("prev-page").disabled = st.page === 0;
    $("next-page").disabled = st.page >= pages - 1;
  }

  /* ---- reading ---- */

  function closeReader() {
    st.uid = 0;
    st.msg = null;
    $("reader").hidden = true;
    document.body.classList.remove("reading");
    showFrame(null);
  }

  /* A new frame for each document: Chromium leaves a hidden frame whose
   * srcdoc changed unpainted when it is shown again. */
  function showFrame(html) {
    const old = $("msg-html"), f = old.cloneNode(false);
    f.removeAttribute("srcdoc");
    f.hidden = html === null;
    if (html !== null) f.srcdoc = html;
    old.replaceWith(f);
  }

  function isBody(p) { return p.disposition !== "attachment" && !p.name && /^text\/(plain|html)$/.test(p.type); }

  async function partText(uid, p) { return (await Api.part(st.mailbox, uid, p.part)).text(); }

  async function dataUrl(uid, p) {
    const blob = await (await Api.part(st.mailbox, uid, p.part)).blob();
    return new Promise((ok, fail) => {
      const r = new FileReader();
      r.onload = () => ok(r.result);
      r.onerror = () => fail(r.error);
      r.readAsDataURL(blob);
    });
  }

  async function openMessage(uid) {
    try {
      const msg = await Api.parts(st.mailbox, uid);
      st.uid = uid;
      st.msg = msg;
      st.showImages = false;
      await renderMessage();
      const item = st.list.find(m => m.uid === uid);
      if (!hasFlag(msg, "\\Seen")) {
        const r = await Api.flags(st.mailbox, uid, ["\\Seen"], []);
        msg.flags = r.flags;
        if (item) item.flags = r.flags;
        loadFolders().catch(showError);
      }
      renderList();
      renderToolbar();
    } catch (e) { showError(e); }
  }

  function renderToolbar() {
    $("flag-btn").textContent = hasFlag(st.msg, "\\Flagged") ? S.unflag : S.flag;
    $("unread-btn").textContent = hasFlag(st.msg, "\\Seen") ? S.markUnread : S.markRead;
  }

  async function renderMessage() {
    const msg = st.msg, h = msg.headers, uid = st.uid;
    $("msg-subject").textContent = h.subject || S.noSubject;
    const dl = $("msg-headers");
    dl.textContent = "";
    for (const [k, label] of [["from", S.from], ["to", S.to], ["cc", S.cc], ["date", S.date]])
      if (h[k]) dl.append(el("dt", null, label), el("dd", null, h[k]));
    const html = msg.parts.find(p => isBody(p) && p.type === "text/html");
    const text = msg.parts.find(p => isBody(p) && p.type === "text/plain");
    $("msg-text").hidden = true;
    showFrame(null);
    $("images-note").hidden = true;
    if (html) {
      const cids = {};
      for (const p of msg.parts)
        if (p.cid && /^image\//.test(p.type)) cids[p.cid.replace(/^<|>$/g, "")] = await dataUrl(uid, p);
      const clean = Sanitize.sanitizeMail(await partText(uid, html), { showImages: st.showImages, cids });
      showFrame(clean.html);
      $("images-note").hidden = clean.blocked === 0;
    } else {
      $("msg-text").textContent = text ? await partText(uid, text) : "";
      $("msg-text").hidden = false;
    }
    const ul = $("attachments");
    ul.textContent = "";
    for (const p of msg.parts) {
      if (isBody(p) || (p.cid && !p.name && /^image\//.test(p.type))) continue;
      const label = (p.name || p.part) + " (" + p.type + ", " + p.size + " B)";
      ul.append(el("li", null,
        el("a", { href: Api.partUrl(st.mailbox, uid, p.part, false), target: "_blank", rel: "noopener", className: "attachment" }, label),
        " ",
        el("a", { href: Api.partUrl(st.mailbox, uid, p.part, true), className: "download" }, S.download)));
    }
    $("reader").hidden = false;
    document.body.classList.add("reading");
    $("back-btn").focus();
  }

  async function toggleFlag(flag) {
    const on = hasFlag(st.msg, flag);
    const r = await Api.flags(st.mailbox, st.uid, on ? [] : [flag], on ? [flag] : []);
    st.msg.flags = r.flags;
    const item = st.list.find(m => m.uid === st.uid);
    if (item) item.flags = r.flags;
    renderList();
    renderToolbar();
    loadFolders().catch(showError);
  }

  /* The next message in the list after uid (or the one before), for
   * after a move or a delete. */
  function neighbour(uid) {
    const i = st.list.findIndex(m => m.uid === uid);
    const n = st.list[i + 1] || st.list[i - 1];
    return n ? n.uid : 0;
  }

  async function moveTo(target) {
    const uid = st.uid, next = neighbour(uid);
    try {
      if (target === null) await Api.remove(st.mailbox, uid);
      else await Api.move(st.mailbox, uid, target);
      closeReader();
      await refresh();
      status(target === null ? S.deleted : fmt(S.moved, { mailbox: folderName(target) }));
      if (next) $("message-list").querySelector('tr[data-uid="' + next + '"]')?.focus();
    } catch (e) { showError(e); }
  }

  /* ---- compose ---- */

  /* Addresses separated by commas, a comma inside quotes ("Doe, Jo"
   * <jo@x>) not a separator. */
  function addressList(v) {
    return ((v || "").match(/("[^"]*"|[^,])+/g) || []).map(s => s.trim()).filter(Boolean);
  }
  function bare(a) { const m = /<([^>]*)>/.exec(a); return (m ? m[1] : a).trim().toLowerCase(); }

  function openCompose(fields) {
    $("c-to").value = fields.to || "";
    $("c-cc").value = fields.cc || "";
    $("c-bcc").value = "";
    $("c-subject").value = fields.subject || "";
    $("c-text").value = fields.text || "";
    $("c-files").value = "";
    $("compose-error").textContent = "";
    st.attachments = fields.attachments || [];
    st.replyTo = fields.replyTo || null;
    st.compose = fields;
    renderAttachments();
    $("compose").hidden = false;
    (fields.to ? $("c-text") : $("c-to")).focus();
    if (fields.to) $("c-text").setSelectionRange(0, 0);
  }

  function renderAttachments() {
    const ul = $("c-attachments");
    ul.textContent = "";
    st.attachments.forEach((a, i) => {
      const b = el("button", { type: "button" }, S.remove);
      b.addEventListener("click", () => { st.attachments.splice(i, 1); renderAttachments(); });
      ul.append(el("li", null, a.name + " ", b));
    });
  }

  function fileBase64(blob) {
    return new Promise((ok, fail) => {
      const r = new FileReader();
      r.onload = () => ok(String(r.result).replace(/^data:[^,]*,/, ""));
      r.onerror = () => fail(r.error);
      r.readAsDataURL(blob);
    });
  }

  async function addFiles() {
    for (const f of $("c-files").files)
      st.attachments.push({ name: f.name, type: f.type || "application/octet-stream", data: await fileBase64(f) });
    $("c-files").value = "";
    renderAttachments();
  }

  function quoted(msg, body) {
    const head = fmt(S.quoteHead, { date: msg.headers.date || "", from: msg.headers.from || "" });
    return "\n\n" + head + "\n" + body.split(/\r?\n/).map(l => "> " + l).join("\n");
  }

  async function bodyText(msg) {
    const text = msg.parts.find(p => isBody(p) && p.type === "text/plain");
    if (text) return partText(st.uid, text);
    const html = msg.parts.find(p => isBody(p) && p.type === "text/html");
    if (!html) return "";
    const doc = new DOMParser().parseFromString(await partText(st.uid, html), "text/html");
    return doc.body.textContent || "";
  }

  async function reply(all) {
    const msg = st.msg, h = msg.headers;
    const to = h.reply_to || h.from || "";
    let cc = "";
    if (all) {
      const seen = new Set([bare(to), st.user]);
      cc = addressList((h.to || "") + "," + (h.cc || "")).filter(a => {
        const b = bare(a);
        if (seen.has(b)) return false;
        seen.add(b);
        return true;
      }).join(", ");
    }
    const subject = /^re:/i.test(h.subject || "") ? h.subject : S.rePrefix + (h.subject || "");
    openCompose({ to, cc, subject, text: quoted(msg, await bodyText(msg)),
      in_reply_to: h.message_id || "", references: ((h.references || "") + " " + (h.message_id || "")).trim(),
      replyTo: { mailbox: st.mailbox, uid: st.uid } });
  }

  async function forward() {
    const msg = st.msg, h = msg.headers, uid = st.uid;
    const atts = [];
    for (const p of msg.parts) {
      if (isBody(p)) continue;
      const blob = await (await Api.part(st.mailbox, uid, p.part)).blob();
      atts.push({ name: p.name || ("part-" + p.part), type: p.type, data: await fileBase64(blob) });
    }
    const head = [S.fwdHead, S.from + ": " + (h.from || ""), S.date + ": " + (h.date || ""),
      S.subject + ": " + (h.subject || ""), S.to + ": " + (h.to || "")].join("\n");
    openCompose({ subject: S.fwdPrefix + (h.subject || ""), text: "\n\n" + head + "\n\n" + await bodyText(msg), attachments: atts });
  }

  async function send(ev) {
    ev.preventDefault();
    const to = addressList($("c-to").value), cc = addressList($("c-cc").value), bcc = addressList($("c-bcc").value);
    if (!to.length && !cc.length && !bcc.length) { $("compose-error").textContent = S.needRecipient; return; }
    $("send-btn").disabled = true;
    try {
      await Api.send({ to, cc, bcc, subject: $("c-subject").value, text: $("c-text").value,
        in_reply_to: st.compose.in_reply_to || null, references: st.compose.references || null,
        attachments: st.attachments });
      if (st.replyTo) await Api.flags(st.replyTo.mailbox, st.replyTo.uid, ["\\Answered"], []).catch(() => null);
      $("compose").hidden = true;
      await refresh();
      status(S.sent);
    } catch (e) {
      $("compose-error").textContent = fmt(S.error, { msg: e.message });
    } finally {
      $("send-btn").disabled = false;
    }
  }

  /* ---- keys ---- */

  function typing(e) { return /^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName); }

  function moveFocus(d) {
    const rows = Array.from($("message-list").tBodies[0].rows);
    const i = rows.indexOf(document.activeElement);
    const next = rows[Math.max(0, Math.min(rows.length - 1, i + d))];
    if (next) next.focus();
  }

  function onKey(e) {
    if (!$("compose").hidden) { if (e.key === "Escape") $("compose").hidden = true; return; }
    if ($("app").hidden || typing(e) || e.ctrlKey || e.metaKey || e.altKey) return;
    const reading = st.msg !== null;
    const keys = {
      j: () => moveFocus(1), k: () => moveFocus(-1), c: () => openCompose({}),
      "/": () => $("search-input").focus(),
      Escape: () => { closeReader(); moveFocus(0); },
      r: () => reading && reply(false), a: () => reading && reply(true), f: () => reading && forward(),
      s: () => reading && toggleFlag("\\Flagged"), u: () => reading && toggleFlag("\\Seen"),
      Delete: () => reading && moveTo(null), "#": () => reading && moveTo(null)
    };
    if (keys[e.key]) { e.preventDefault(); Promise.resolve(keys[e.key]()).catch(showError); }
  }

  /* ---- start ---- */

  async function start() {
    $("login").hidden = true;
    $("app").hidden = false;
    $("whoami").textContent = st.user;
    await openFolder(st.mailbox);
    $("message-list").querySelector("tr")?.focus();
  }

  function wire() {
    const on = (id, ev, fn) => $(id).addEventListener(ev, e => Promise.resolve(fn(e)).catch(showError));
    on("login-form", "submit", login);
    on("logout-btn", "click", logout);
    on("compose-btn", "click", () => openCompose({}));
    on("menu-btn", "click", () => document.body.classList.toggle("menu-open"));
    on("search-form", "submit", e => {
      e.preventDefault();
      st.query = $("search-input").value.trim();
      st.page = 0;
      $("search-clear").hidden = !st.query;
      closeReader();
      return refresh();
    });
    on("search-clear", "click", () => openFolder(st.mailbox));
    on("prev-page", "click", () => { st.page--; renderList(); });
    on("next-page", "click", () => { st.page++; renderList(); });
    on("back-btn", "click", () => { closeReader(); renderList(); });
    on("reply-btn", "click", () => reply(false));
    on("reply-all-btn", "click", () => reply(true));
    on("forward-btn", "click", forward);
    on("flag-btn", "click", () => toggleFlag("\\Flagged"));
    on("unread-btn", "click", () => toggleFlag("\\Seen"));
    on("move-btn", "click", () => moveTo($("move-select").value));
    on("delete-btn", "click", () => moveTo(null));
    on("show-images", "click", () => { st.showImages = true; return renderMessage(); });
    on("compose-form", "submit", send);
    on("cancel-btn", "click", () => { $("compose").hidden = true; });
    on("c-files", "change", addFiles);
    document.addEventListener("keydown", onKey);
    window.addEventListener("api-logged-out", showLogin);
  }

  applyStrings();
  wire();
  Api.mailboxes().then(start, showLogin);
})();
