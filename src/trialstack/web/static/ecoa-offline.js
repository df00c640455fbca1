/* eCOA in the participant app without a network (docs/ecoa.md). No framework; every page works online without it.

   - registers the service worker (/participant/sw.js), which keeps the app shell, the pages and the assets;
   - keeps the due entries and instrument definitions from GET .../questionnaires/due (localStorage);
   - offline, asks a questionnaire one question per screen from those definitions (show_if evaluated here with the
     tree the server sent), then keeps the completed entry in IndexedDB with the device's time (ISO with its UTC
     offset) and a client_id (crypto.randomUUID), shown as "queued";
   - when the network is back (the online event, or any page load) posts each queued entry to the API, whose
     client_id makes a resend harmless, and shows the device's time beside the server's receipt time. */
(function () {
  "use strict";

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/participant/sw.js", { scope: "/participant/" }).catch(function () {});
  }
  // Signing out clears the pages kept for offline use (the queue stays: it holds answers not yet sent).
  document.querySelectorAll('form[action="/logout"]').forEach(function (form) {
    form.addEventListener("submit", function () { if (window.caches) { caches.delete("trialstack-participant"); } });
  });

  var app = document.querySelector("[data-ecoa]");
  if (!app) { return; }
  var subject = app.getAttribute("data-subject");
  var dueUrl = app.getAttribute("data-due-url");
  var submitUrl = app.getAttribute("data-submit-url");
  var dueKey = "trialstack-ecoa-due:" + dueUrl;

  function $(selector) { return app.querySelector(selector); }
  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }
  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }
  function pad(n) { return String(n).padStart(2, "0"); }
  function deviceTime() {
    var d = new Date(), offset = -d.getTimezoneOffset(), sign = offset >= 0 ? "+" : "-", abs = Math.abs(offset);
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" + pad(d.getHours()) + ":" +
      pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + sign + pad(Math.floor(abs / 60)) + ":" + pad(abs % 60);
  }
  function shortTime(iso) { return iso ? iso.replace("T", " ").replace(/:\d\d(\.\d+)?(?=[Z+-]|$)/, "").replace("Z", " UTC") : ""; }
  function uuid() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID(); }
    var b = crypto.getRandomValues(new Uint8Array(16)), h = Array.from(b, function (x) { return pad(x.toString(16)); });
    return h.slice(0, 4).join("") + "-" + h.slice(4, 6).join("") + "-" + h.slice(6, 8).join("") + "-" +
      h.slice(8, 10).join("") + "-" + h.slice(10).join("");
  }

  // --- the queue (IndexedDB) ----------------------------------------------------------------------------------
  function store(mode, work) {
    return new Promise(function (resolve, reject) {
      var open = indexedDB.open("trialstack-ecoa", 1);
      open.onupgradeneeded = function () { open.result.createObjectStore("entries", { keyPath: "client_id" }); };
      open.onerror = function () { reject(open.error); };
      open.onsuccess = function () {
        var tx = open.result.transaction("entries", mode), request = work(tx.objectStore("entries"));
        tx.oncomplete = function () { resolve(request ? request.result : undefined); open.result.close(); };
        tx.onerror = function () { reject(tx.error); };
      };
    });
  }
  function keep(entry) { return store("readwrite", function (s) { return s.put(entry); }); }
  function kept() {
    return store("readonly", function (s) { return s.getAll(); }).then(function (all) {
      return (all || []).filter(function (e) { return e.subject === subject; });
    });
  }

  function send(entry) {
    return fetch(submitUrl, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(entry.body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        if (response.ok) {
          entry.state = "sent"; entry.received_at = answer.received_at;
        } else if (response.status === 401 || response.status === 403 || response.status >= 500) {
          entry.message = "Not sent yet: " + (answer.detail || "sign in again") + ".";
        } else {
          entry.state = "refused"; entry.message = answer.detail || "The study refused this entry.";
        }
        return keep(entry);
      });
    }, function () { /* still offline: stays queued */ });
  }
  function flush() {
    if (!navigator.onLine) { return Promise.resolve(); }
    return kept().then(function (all) {
      return all.filter(function (e) { return e.state === "queued"; })
        .reduce(function (chain, e) { return chain.then(function () { return send(e); }); }, Promise.resolve());
    }).then(showQueue);
  }
  function showQueue() {
    var list = $("[data-ecoa-queue]"), card = $("[data-ecoa-queue-card]");
    if (!list) { return Promise.resolve(); }
    return kept().then(function (all) {
      list.textContent = "";
      all.sort(function (a, b) { return a.body.completed_at < b.body.completed_at ? 1 : -1; });
      all.forEach(function (e) {
        var li = el("li", { "data-queued": e.body.instrument + "/" + e.body.entry, "data-state": e.state });
        li.appendChild(el("strong", {}, e.name + " · " + e.body.entry));
        var words = { queued: "Queued: will be sent when you are online", sent: "Sent", refused: "Not accepted" }[e.state];
        li.appendChild(el("span", { "class": "p-small ecoa-state ecoa-" + e.state },
          " " + words + ". Completed on this phone at " + shortTime(e.body.completed_at) +
          (e.received_at ? "; received at " + shortTime(e.received_at) : "") + (e.message ? ". " + e.message : "")));
        list.appendChild(li);
      });
      if (card) { card.hidden = all.length === 0; }
    });
  }

  // --- due entries and instruments ----------------------------------------------------------------------------
  function loadDue() {
    var cached = function () { return JSON.parse(localStorage.getItem(dueKey) || "null"); };
    if (!navigator.onLine) { return Promise.resolve(cached()); }
    return fetch(dueUrl, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) { throw new Error(String(r.status)); }
      return r.json();
    }).then(function (due) { localStorage.setItem(dueKey, JSON.stringify(due)); return due; }, cached);
  }

  // show_if, as the rule language reads it: three-valued; a choice reads as its option's value, a scale as a number.
  function ruleValue(item, answer) {
    if (answer === undefined || answer === "") { return null; }
    if (item.type === "single_choice" && item.numeric) {
      var option = item.options.find(function (o) { return o.code === answer; });
      return option ? option.value : null;
    }
    if (item.type === "numeric_rating" || item.type === "visual_analogue") { return Number(answer); }
    return answer;
  }
  function evaluate(node, env) {
    var op = node[0], a, b;
    if (op === "const") { return node[1]; }
    if (op === "name") { return env[node[1]] === undefined ? null : env[node[1]]; }
    if (op === "is_blank" || op === "is_present") {
      a = evaluate(node[1], env);
      var blank = a === null || String(a).trim() === "";
      return op === "is_blank" ? blank : !blank;
    }
    if (op === "not" || op === "neg") {
      a = evaluate(node[1], env);
      return a === null ? null : (op === "not" ? !a : -a);
    }
    if (op === "in") {
      a = evaluate(node[1], env);
      return a === null ? null : (node[2].indexOf(a) >= 0) !== node[3];
    }
    a = evaluate(node[1], env); b = evaluate(node[2], env);
    if (op === "and") { return a === false || b === false ? false : (a === null || b === null ? null : true); }
    if (op === "or") { return a === true || b === true ? true : (a === null || b === null ? null : false); }
    if (a === null || b === null) { return null; }
    switch (op) {
      case "+": return a + b;
      case "-": return a - b;
      case "*": return a * b;
      case "/": return b === 0 ? null : a / b;
      case "**": return Math.pow(a, b);
      case "==": return a === b;
      case "!=": return a !== b;
      case "<": return a < b;
      case "<=": return a <= b;
      case ">": return a > b;
      case ">=": return a >= b;
    }
    return null;
  }
  function shown(instrument, answers) {
    var env = {};
    instrument.items.forEach(function (item) { env[item.id] = ruleValue(item, answers[item.id]); });
    return instrument.items.filter(function (item) {
      return !item.show_if_tree || evaluate(item.show_if_tree, env) !== false;
    });
  }

  // --- asking offline: one question per screen, a review, then the queue ---------------------------------------
  function ask(due, instrumentId, entryId, answers, at) {
    var instrument = due && due.instruments[instrumentId];
    var entry = due && due.entries.find(function (e) { return e.instrument === instrumentId && e.entry === entryId; });
    var screen = $("[data-ecoa-screen]");
    if (!instrument || !entry || !screen) { return false; }
    var lists = $("[data-ecoa-lists]");
    if (lists) { lists.hidden = true; }
    screen.hidden = false;

    function items() { return shown(instrument, answers); }
    function render(itemId) {
      var visible = items(), index = visible.findIndex(function (i) { return i.id === itemId; });
      screen.textContent = "";
      screen.appendChild(el("p", { "class": "p-small" }, instrument.name + " · " + entry.entry + " · offline"));
      if (index < 0) { return review(); }
      var item = visible[index];
      screen.appendChild(el("p", { "class": "p-progress" }, "Question " + (index + 1) + " of " + visible.length));
      var form = el("form", { "data-ecoa-offline-form": item.id });
      var fieldset = el("fieldset", { "class": "p-question" });
      var legend = el("legend", {}, item.text + (item.required ? "" : " (optional)"));
      if (item.section) { legend.prepend(el("span", { "class": "p-hint" }, item.section)); }
      fieldset.appendChild(legend);
      controls(item).forEach(function (c) { fieldset.appendChild(c); });
      var error = el("div", { "class": "field-error", role: "alert", hidden: "" });
      fieldset.appendChild(error);
      form.appendChild(fieldset);
      var nav = el("div", { "class": "p-nav" });
      if (index > 0) { nav.appendChild(el("button", { "class": "p-btn", type: "button", "data-go": "back" }, "Back")); }
      nav.appendChild(el("button", { "class": "p-btn p-primary", type: "submit" }, "Next"));
      form.appendChild(nav);
      screen.appendChild(form);
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var value = read(form);
        if (value === "" && item.required) { error.hidden = false; error.textContent = "⚠ Please answer this question to go on."; return; }
        if (value === "") { delete answers[item.id]; } else { answers[item.id] = value; }
        var now = items(), at = now.findIndex(function (i) { return i.id === item.id; });
        render(at + 1 < now.length ? now[at + 1].id : null);
      });
      var back = form.querySelector("[data-go=back]");
      if (back) {
        back.addEventListener("click", function () {
          var value = read(form);
          if (value !== "") { answers[item.id] = value; }
          render(visible[index - 1].id);
        });
      }
      var first = form.querySelector("input, textarea");
      if (first) { first.focus(); }
    }
    function controls(item) {
      var given = (answers[item.id] || "").split(","), nodes = [];
      var choices = item.options.length ? item.options.map(function (o) { return { code: o.code, label: o.label }; }) : null;
      if (!choices && item.type === "numeric_rating" && item.max - item.min <= 10) {
        choices = [];
        for (var n = item.min; n <= item.max; n++) { choices.push({ code: String(n), label: String(n) }); }
      }
      if (choices) {
        var wrap = el("div", { "class": item.options.length ? "" : "ecoa-scale" });
        choices.forEach(function (c) {
          var label = el("label", { "class": "p-choice" + (item.options.length ? "" : " ecoa-scale-point") });
          var input = el("input", { type: item.type === "multiple_choice" ? "checkbox" : "radio", name: "answer", value: c.code });
          input.checked = given.indexOf(c.code) >= 0;
          label.appendChild(input); label.appendChild(el("span", {}, c.label));
          wrap.appendChild(label);
        });
        nodes.push(wrap);
        if (!item.options.length) {
          nodes.push(el("p", { "class": "p-small" }, item.min + " = " + (item.min_label || "lowest") + " · " + item.max + " = " + (item.max_label || "highest")));
        }
        return nodes;
      }
      var field = el("div", { "class": "p-field" }), id = "offline-answer";
      var kind = { date: "date", time: "time", numeric_rating: "number", visual_analogue: "number" }[item.type];
      var words = kind === "number" ? "A number from " + item.min + " (" + (item.min_label || "lowest") + ") to " + item.max +
        " (" + (item.max_label || "highest") + ")" : (kind === "date" ? "Date" : kind === "time" ? "Time" : "Your answer");
      field.appendChild(el("label", { "for": id }, words));
      var control = kind ? el("input", { id: id, name: "answer", type: kind }) : el("textarea", { id: id, name: "answer", rows: "4", "class": "ecoa-text" });
      if (kind === "number") { control.setAttribute("min", item.min); control.setAttribute("max", item.max); control.setAttribute("inputmode", "numeric"); }
      control.value = answers[item.id] || "";
      field.appendChild(control);
      return [field];
    }
    function read(form) {
      var values = Array.from(form.querySelectorAll("[name=answer]")).filter(function (c) {
        return (c.type !== "radio" && c.type !== "checkbox") || c.checked;
      }).map(function (c) { return c.value.trim(); }).filter(Boolean);
      return values.join(",");
    }
    function review() {
      screen.appendChild(el("h1", {}, "Check your answers"));
      var list = el("dl", { "class": "ecoa-review" });
      items().forEach(function (item) {
        var row = el("div", { "class": "ecoa-review-row" }), value = answers[item.id];
        var option = item.options.find(function (o) { return o.code === value; });
        row.appendChild(el("dt", {}, item.text));
        var dd = el("dd", {}, value === undefined ? "Not answered" : (option ? option.label : value) + " ");
        var change = el("button", { "class": "p-btn ecoa-change", type: "button" }, "Change");
        change.addEventListener("click", function () { render(item.id); });
        dd.appendChild(change); row.appendChild(dd); list.appendChild(row);
      });
      screen.appendChild(list);
      var done = el("button", { "class": "p-btn p-primary", type: "button" }, "Keep my answers on this phone");
      done.addEventListener("click", function () {
        var asked = {};
        items().forEach(function (i) { if (answers[i.id] !== undefined) { asked[i.id] = answers[i.id]; } });
        var body = { instrument: instrumentId, entry: entryId, client_id: uuid(), answers: asked,
                     completed_at: deviceTime(), mode: "participant" };
        keep({ client_id: body.client_id, subject: subject, name: instrument.name, body: body, state: "queued" })
          .then(function () {
            screen.hidden = true; screen.textContent = "";
            if (lists) { lists.hidden = false; }
            var started = app.querySelector('[data-ecoa-entry="' + instrumentId + "/" + entryId + '"]');
            if (started) { started.remove(); }
            return showQueue();
          }).then(flush);
      });
      screen.appendChild(done);
    }
    render(at || items()[0].id);
    return true;
  }

  // --- wiring -------------------------------------------------------------------------------------------------
  function offlineNote() {
    var note = $("[data-ecoa-offline-note]");
    if (note) { note.hidden = navigator.onLine; }
  }
  // Offline, "Start" asks the questionnaire here instead of loading its page.
  app.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("[data-ecoa-start]");
    if (!link || navigator.onLine) { return; }
    var parts = link.getAttribute("data-ecoa-start").split("/");
    event.preventDefault();
    loadDue().then(function (due) { ask(due, parts[0], parts[1], {}, null); });
  });
  // A question page whose network went away: carry on here with the answers given so far.
  var form = document.querySelector("[data-ecoa-form]");
  if (form) {
    form.addEventListener("submit", function (event) {
      var device = form.querySelector("[data-ecoa-device-time]");
      if (device) { device.value = deviceTime(); }
      if (navigator.onLine) { return; }
      event.preventDefault();
      var parts = form.getAttribute("data-ecoa-form").split("/"), answers = {};
      Array.from(form.elements).forEach(function (c) {
        if (c.name && c.name.indexOf("a.") === 0) { answers[c.name.slice(2)] = c.value; }
      });
      var at = form.querySelector("[name=at]").value;
      loadDue().then(function (due) { ask(due, parts[0], parts[1], answers, at === "__review__" ? null : at); });
    });
  }
  // The shell the service worker serves for a page it never kept: the questionnaire named in the address.
  if (app.hasAttribute("data-ecoa-shell")) {
    loadDue().then(function (due) {
      var match = location.pathname.match(/^\/participant\/questionnaires\/([^/]+)\/([^/]+)$/);
      if (match && ask(due, match[1], decodeURIComponent(match[2]), {}, null)) { return; }
      var open = $("[data-ecoa-open]");
      open.textContent = "";
      (due ? due.entries : []).filter(function (e) { return e.status === "open"; }).forEach(function (e) {
        var li = el("li", { "data-ecoa-entry": e.instrument + "/" + e.entry });
        var link = el("a", { "class": "p-btn p-primary", href: "/participant/questionnaires/" + e.instrument + "/" + e.entry,
                             "data-ecoa-start": e.instrument + "/" + e.entry }, "Start " + e.name + " · " + e.entry);
        li.appendChild(link); open.appendChild(li);
      });
      if (!open.children.length) { open.appendChild(el("li", {}, "Nothing to do right now (as last seen online).")); }
    });
  }
  window.addEventListener("online", function () { offlineNote(); flush(); });
  window.addEventListener("offline", offlineNote);
  offlineNote();
  loadDue();
  showQueue().then(flush);
})();
