// Wharf's own script, loaded by every page (no inline script: the CSP allows only 'self').
// Copy buttons: <button class="copy-button" data-copy-target="#id"> copies the text of #id.
// Delegated from the document, so buttons in content htmx swaps in work too.
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain-HTTP pages have no Clipboard API: select a hidden textarea and copy it.
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "copy-scratch";
      document.body.appendChild(area);
      area.select();
      var done = false;
      try { done = document.execCommand("copy"); } catch (e) { done = false; }
      document.body.removeChild(area);
      if (done) { resolve(); } else { reject(new Error("copy refused")); }
    });
  }

  function say(button, text) {
    if (!button.dataset.label) { button.dataset.label = button.textContent; }
    button.textContent = text;
    window.clearTimeout(button._copyTimer);
    button._copyTimer = window.setTimeout(function () {
      button.textContent = button.dataset.label;
    }, 1500);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) { return; }
    var source = document.querySelector(button.getAttribute("data-copy-target"));
    if (!source) { return; }
    copyText(source.textContent.trim()).then(
      function () { say(button, "Copied"); },
      function () { say(button, "Select and copy"); }
    );
  });
})();

/* Wharf's own script (served from 'self': the Content-Security-Policy allows no inline code).

   Refreshing part of a form for a new choice (htmx posts the form with _refresh and swaps
   in the fields for that choice) never replaces what the user typed meanwhile: a field
   whose value changed after the refresh was sent keeps the value it has now, because the
   server rendered the one it was sent. Secrets are left alone: their inputs carry
   hx-preserve, and htmx keeps them as they are. */
(function () {
  "use strict";

  function refreshForm(elt) {
    const vals = elt && elt.getAttribute && elt.getAttribute("hx-vals");
    return vals && vals.indexOf("_refresh") !== -1 ? elt.closest("form") : null;
  }

  function snapshot(form) {
    const values = new Map();
    for (const el of form.elements) {
      if (!el.id || ["file", "password", "submit", "button", "hidden"].includes(el.type)) continue;
      values.set(el.id, el.type === "checkbox" || el.type === "radio" ? el.checked : el.value);
    }
    return values;
  }

  function keep(el, value, doc) {
    if (el.type === "radio") {
      if (!value) return; // the radio now checked in its group says it
      for (const other of doc.querySelectorAll('input[type="radio"]')) {
        if (other.name === el.name) other.removeAttribute("checked");
      }
      el.setAttribute("checked", "");
    } else if (el.type === "checkbox") {
      el.toggleAttribute("checked", value);
    } else if (el.tagName === "TEXTAREA") {
      el.textContent = value;
    } else if (el.tagName === "SELECT") {
      for (const option of el.options) option.toggleAttribute("selected", option.value === value);
    } else if (el.type !== "password") {
      el.setAttribute("value", value);
    }
  }

  document.addEventListener("htmx:beforeRequest", function (event) {
    const form = refreshForm(event.detail.elt);
    if (form) form.wharfSent = snapshot(form);
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    // detail.elt is the swap's target here; the request's config names who sent it.
    const config = event.detail.requestConfig;
    const form = refreshForm(config ? config.elt : null);
    const sent = form && form.wharfSent;
    if (!sent || typeof event.detail.serverResponse !== "string") return;
    form.wharfSent = null;
    const typed = [...snapshot(form)].filter(([id, value]) => sent.has(id) && sent.get(id) !== value);
    if (typed.length === 0) return;
    const doc = new DOMParser().parseFromString(event.detail.serverResponse, "text/html");
    for (const [id, value] of typed) {
      const el = doc.getElementById(id);
      if (el) keep(el, value, doc);
    }
    event.detail.serverResponse = doc.documentElement.outerHTML;
  });
})();
