/* The HTTP API (README "HTTP API"): JSON in and out, the session in its
 * HttpOnly cookie, every change with Content-Type: application/json. A
 * GET whose connection died (its node went away) is tried once more:
 * lbd sends the new connection to a node that is up, and the session,
 * kept in Redis, is there too. */
"use strict";
(function () {
  class ApiError extends Error {
    constructor(status, msg) { super(msg); this.status = status; }
  }

  async function raw(method, path, body) {
    const opts = { method, credentials: "same-origin", headers: {} };
    if (method !== "GET") {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body === undefined ? {} : body);
    }
    let r;
    try {
      r = await fetch(path, opts);
    } catch (e) {
      if (method !== "GET") throw new ApiError(0, String(e));
      r = await fetch(path, opts);
    }
    const node = r.headers.get("X-Served-By");
    if (node) document.body.dataset.node = node;
    if (r.status === 401 && path !== "/api/login") window.dispatchEvent(new Event("api-logged-out"));
    if (!r.ok) {
      let msg = r.statusText;
      try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
      throw new ApiError(r.status, msg);
    }
    return r;
  }

  async function json(method, path, body) {
    return (await raw(method, path, body)).json();
  }

  function q(params) {
    return Object.keys(params).map(k => encodeURIComponent(k) + "=" + encodeURIComponent(params[k])).join("&");
  }

  window.Api = {
    ApiError,
    login: (user, password) => json("POST", "/api/login", { user, password }),
    logout: () => json("POST", "/api/logout"),
    mailboxes: () => json("GET", "/api/mailboxes"),
    messages: mailbox => json("GET", "/api/messages?" + q({ mailbox })),
    search: (mailbox, text) => json("GET", "/api/search?" + q({ mailbox, q: text })),
    parts: (mailbox, uid) => json("GET", "/api/messages/" + uid + "/parts?" + q({ mailbox })),
    partUrl: (mailbox, uid, part, download) =>
      "/api/messages/" + uid + "/parts/" + part + "?" + q(download ? { mailbox, download: 1 } : { mailbox }),
    part: (mailbox, uid, part) => raw("GET", Api.partUrl(mailbox, uid, part)),
    flags: (mailbox, uid, add, remove) =>
      json("POST", "/api/messages/" + uid + "/flags?" + q({ mailbox }), { add, remove }),
    move: (mailbox, uid, to) => json("POST", "/api/messages/" + uid + "/move?" + q({ mailbox }), { mailbox: to }),
    remove: (mailbox, uid) => json("DELETE", "/api/messages/" + uid + "?" + q({ mailbox })),
    send: msg => json("POST", "/api/send", msg)
  };
})();
