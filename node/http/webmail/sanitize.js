/* HTML mail made harmless before it is shown, on top of the frame it is
 * shown in (a sandbox without allow-scripts, with a Content-Security-
 * Policy of its own): parsed inert by DOMParser (nothing runs, nothing
 * loads), then only an allowed set of elements and attributes kept; no
 * scripts, handlers, forms, frames, plugins, base or meta; links only to
 * http(s) and mailto, opened outside; cid: images from the message's own
 * parts (as data: URLs); remote images left out until the reader asks. */
"use strict";
(function () {
  const DROP = new Set(["script", "style", "iframe", "frame", "frameset", "object", "embed", "applet",
    "form", "input", "button", "select", "option", "textarea", "link", "meta", "base", "noscript",
    "template", "svg", "math", "audio", "video", "source", "track", "canvas", "portal", "dialog",
    "title", "head"]);
  const URL_ATTRS = new Set(["href", "src", "action", "formaction", "background", "poster", "srcset",
    "xlink:href", "data", "codebase", "cite", "longdesc", "usemap", "ping", "lowsrc", "dynsrc"]);

  function remote(url) { return /^\s*https?:/i.test(url); }

  /* cid: a Content-ID as the message's parts name it, without <>. */
  function cidOf(url) {
    const m = /^\s*cid:(.*)$/i.exec(url);
    return m ? decodeURIComponent(m[1]).replace(/^<|>$/g, "") : null;
  }

  function cleanStyle(value, showImages, counter) {
    if (!/url\s*\(|expression\s*\(|@import|behavior\s*:/i.test(value)) return value;
    if (showImages && !/expression\s*\(|@import|behavior\s*:|javascript:/i.test(value)) return value;
    counter.blocked++;
    return value.replace(/url\s*\([^)]*\)/gi, "none").replace(/expression\s*\(|@import|behavior\s*:/gi, "");
  }

  function cleanElement(el, opts, counter) {
    for (const attr of Array.from(el.attributes)) {
      const name = attr.name.toLowerCase(), value = attr.value;
      if (name.startsWith("on") || name === "formaction" || name === "srcdoc" || name === "is") {
        el.removeAttribute(attr.name);
      } else if (name === "style") {
        el.setAttribute("style", cleanStyle(value, opts.showImages, counter));
      } else if (name === "src" && el.localName === "img") {
        const cid = cidOf(value);
        if (cid !== null) {
          if (opts.cids[cid]) el.setAttribute("src", opts.cids[cid]);
          else el.removeAttribute("src");
        } else if (/^\s*data:image\/(png|gif|jpeg|webp);/i.test(value)) {
          /* inline data stays */
        } else if (remote(value) && opts.showImages) {
          /* asked for */
        } else {
          if (remote(value)) counter.blocked++;
          el.removeAttribute("src");
          el.setAttribute("data-blocked-src", value);
        }
      } else if (name === "href" && el.localName === "a") {
        if (/^\s*(https?:|mailto:)/i.test(value)) {
          el.setAttribute("target", "_blank");
          el.setAttribute("rel", "noopener noreferrer");
        } else if (!/^\s*#/.test(value)) {
          el.removeAttribute(attr.name);
        }
      } else if (URL_ATTRS.has(name)) {
        el.removeAttribute(attr.name);
      }
    }
  }

  function walk(node, opts, counter) {
    for (const child of Array.from(node.children)) {
      if (DROP.has(child.localName)) { child.remove(); continue; }
      cleanElement(child, opts, counter);
      walk(child, opts, counter);
    }
  }

  /* Returns { html, blocked }: the document to show (its own CSP first)
   * and how many remote images were held back. opts: { showImages,
   * cids: { contentId: dataUrl } }. */
  function sanitizeMail(source, opts) {
    const doc = new DOMParser().parseFromString(source, "text/html");
    const counter = { blocked: 0 };
    const styles = Array.from(doc.querySelectorAll("style")).map(s => cleanStyle(s.textContent, opts.showImages, counter));
    walk(doc.body, opts, counter);
    const csp = "default-src 'none'; style-src 'unsafe-inline'; img-src data:" +
      (opts.showImages ? " http: https:" : "") + "; form-action 'none'; base-uri 'none'";
    const head = '<meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="' + csp + '">' +
      '<meta name="referrer" content="no-referrer">' +
      styles.map(s => "<style>" + s.replace(/<\//g, "<\\/") + "</style>").join("");
    return { html: "<!doctype html><html><head>" + head + "</head><body>" + doc.body.innerHTML + "</body></html>",
             blocked: counter.blocked };
  }

  window.Sanitize = { sanitizeMail };
})();
