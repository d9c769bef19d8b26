// coop's app: follow the node's event stream and refresh the page's main region, so a
// neighbour's confirmation shows up without a reload. No other script runs on the page.
(function () {
  "use strict";
  if (!window.EventSource || !window.fetch || !window.DOMParser) return;
  var timer = null;
  var busy = false;

  function typing() {
    var el = document.activeElement;
    if (!el || !el.form) return false;
    var fields = el.form.querySelectorAll("input:not([type=hidden]), textarea");
    for (var i = 0; i < fields.length; i++) {
      var f = fields[i];
      if ((f.type === "radio" || f.type === "checkbox") ? f.checked && !f.defaultChecked : f.value !== f.defaultValue) return true;
    }
    return false;
  }

  function refresh() {
    timer = null;
    // Never throw away what the member is typing: try again a little later.
    if (busy || typing()) { schedule(1000); return; }
    // A one-time answer the member still has to copy (an approval code) stays until they
    // leave the page: a refresh would fetch the page without it.
    if (document.querySelector("#main [data-keep]")) return;
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (text) {
        if (!text) return;
        var doc = new DOMParser().parseFromString(text, "text/html");
        var fresh = doc.getElementById("main");
        var main = document.getElementById("main");
        if (fresh && main && fresh.innerHTML !== main.innerHTML) {
          main.innerHTML = fresh.innerHTML;
          var live = document.getElementById("live");
          if (live) live.textContent = "Updated " + new Date().toLocaleTimeString();
        }
      })
      .catch(function () {})
      .then(function () { busy = false; });
  }

  function schedule(ms) {
    if (timer === null) timer = setTimeout(refresh, ms);
  }

  var events = new EventSource("/api/v1/events");
  ["accepted", "peer_connected", "peer_disconnected", "catch_up"].forEach(function (kind) {
    events.addEventListener(kind, function () { schedule(150); });
  });
})();
