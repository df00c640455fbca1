/* The participant app's service worker (served as /participant/sw.js, scope /participant/): keeps the app shell and
   the assets it needs, every participant page and due list fetched while online (network first), and answers from
   that cache when the network is away; a questionnaire page never seen falls back to the shell, which asks it from
   the cached instrument definitions (static/ecoa-offline.js). Writes are never cached or replayed here: the page's
   queue (IndexedDB) sends them. */
"use strict";
var CACHE = "trialstack-participant";
var SHELL = "/participant/questionnaires/offline";
var ASSETS = [SHELL, "/participant/questionnaires", "/static/app.css", "/static/app.js", "/static/ecoa-offline.js",
              "/static/ecoa/manifest.webmanifest", "/static/ecoa/icon-192.png", "/static/ecoa/icon-512.png"];

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) {
    return Promise.all(ASSETS.map(function (url) {
      return fetch(url, { credentials: "same-origin" }).then(function (r) { if (r.ok && !r.redirected) { return cache.put(url, r); } })
        .catch(function () {});
    }));
  }).then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) { event.waitUntil(self.clients.claim()); });

function kept(request) {
  return fetch(request).then(function (response) {
    if (response.ok && !response.redirected) {
      var copy = response.clone();
      caches.open(CACHE).then(function (cache) { cache.put(request, copy); });
    }
    return response;
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request, url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) { return; }
  var page = request.mode === "navigate" && url.pathname.indexOf("/participant") === 0;
  var due = url.pathname.indexOf("/api/") === 0 && /\/questionnaires\/due$/.test(url.pathname);
  var asset = url.pathname.indexOf("/static/") === 0;
  if (!page && !due && !asset) { return; }
  event.respondWith(kept(request).catch(function () {
    return caches.match(request, { ignoreSearch: page }).then(function (hit) {
      if (hit) { return hit; }
      if (page && url.pathname.indexOf("/participant/questionnaires/") === 0) { return caches.match(SHELL); }
      if (page) { return caches.match("/participant/questionnaires"); }
      return Response.error();
    });
  }));
});
