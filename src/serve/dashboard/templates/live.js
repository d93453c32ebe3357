(function () {
  "use strict";
  var body = document.body;
  var live = document.querySelector("[data-live]");
  if (!live) { return; }
  var es = null;
  function span(ms) {
    var s = Math.round(Math.abs(ms) / 1000), t;
    if (s >= 86400) { t = Math.floor(s / 86400) + "d " + Math.floor(s % 86400 / 3600) + "h"; }
    else if (s >= 3600) { t = Math.floor(s / 3600) + "h " + Math.floor(s % 3600 / 60) + "m"; }
    else if (s >= 60) { t = Math.floor(s / 60) + "m " + (s % 60) + "s"; }
    else { t = s + "s"; }
    return ms >= 0 ? "in " + t : t + " ago";
  }
  function swap(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var fresh = doc.querySelector("[data-live]") || (live === body ? doc.body : null);
    if (!fresh) { return; }
    var open = Array.prototype.map.call(live.querySelectorAll("details[open][id]"), function (d) { return d.id; });
    if (live === body) {
      body.innerHTML = fresh.innerHTML;
      if (fresh.hasAttribute("data-live")) {
        body.setAttribute("data-stamp", fresh.getAttribute("data-stamp") || "");
      } else {
        // The run ended: the page is final.
        body.removeAttribute("data-live");
        body.setAttribute("data-live-state", "off");
        if (es) { es.close(); }
      }
    } else {
      live.replaceWith(fresh);
      live = fresh;
    }
    open.forEach(function (id) { var d = document.getElementById(id); if (d) { d.open = true; } });
    body.setAttribute("data-refreshed", String(Number(body.getAttribute("data-refreshed") || 0) + 1));
  }
  var busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(location.href, { headers: { "Accept": "text/html" }, credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.redirected && new URL(r.url).pathname === "/login") { location.assign(r.url); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) { if (html !== null) { swap(html); } })
      .catch(function () {})
      .then(function () { busy = false; if (again) { again = false; refresh(); } });
  }
  function clocks() {
    var now = Date.now(), crossed = false;
    document.querySelectorAll("[data-due]").forEach(function (el) {
      var ms = Date.parse(el.getAttribute("data-due")) - now;
      if (isNaN(ms)) { return; }
      el.textContent = span(ms);
      if (ms < 0 && el.getAttribute("data-past") !== "1") { el.setAttribute("data-past", "1"); crossed = true; }
    });
    if (crossed) { refresh(); }
  }
  setInterval(clocks, 1000);
  if (!window.EventSource) { return; }
  es = new EventSource("/dashboard/events?since=" + encodeURIComponent(live.getAttribute("data-stamp") || ""));
  es.onopen = function () { body.setAttribute("data-live-state", "open"); };
  es.onerror = function () {
    body.setAttribute("data-live-state", "off");
    if (es.readyState === EventSource.CLOSED) { refresh(); }
  };
  live.getAttribute("data-live").split(" ").forEach(function (name) { es.addEventListener(name, refresh); });
})();
