/* Live updates: one WebSocket per page to /ws/, reconnecting with backoff.
 *
 * Server events arrive as JSON {type: "mail.new" | "mail.changed" | "sync.progress" | "account.status" | ...}.
 * Each is re-dispatched on document.body as a DOM event "webmail:<type>" (detail = the event), and
 * mail changes also fire "mail-changed", which htmx elements listen to (hx-trigger="mail-changed from:body")
 * to refresh themselves from the cache. After a reconnect "mail-changed" fires once, so whatever
 * arrived while the socket was down is caught up.
 */
"use strict";
(function () {
  const body = document.body;
  if (!body || body.dataset.live !== "on") return;
  let socket = null;
  let attempt = 0;
  let everConnected = false;
  let pingTimer = null;

  function fire(name, detail) {
    body.dispatchEvent(new CustomEvent(name, { detail: detail, bubbles: true }));
  }

  function setStatus(state) {
    body.dataset.liveState = state;
    const el = document.getElementById("live-status");
    if (el) {
      el.dataset.state = state;
      el.textContent = el.dataset["label" + state.charAt(0).toUpperCase() + state.slice(1)] || "";
    }
  }

  function notify(event) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    // This browser's choice wins; without one, the person's setting (Settings → desktop notifications).
    const choice = localStorage.getItem("webmail.notify") || (body.dataset.notify === "on" ? "on" : "off");
    if (choice !== "on" || document.hasFocus()) return;
    const latest = event.latest || {};
    try {
      new Notification(latest.from || "New mail", { body: latest.subject || "", tag: "webmail-new-mail" });
    } catch (e) { /* some browsers only allow notifications from a service worker */ }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws/");
    setStatus("connecting");
    socket.addEventListener("open", function () {
      attempt = 0;
      setStatus("live");
      if (everConnected) fire("mail-changed", { reconnected: true });
      everConnected = true;
      clearInterval(pingTimer);
      pingTimer = setInterval(function () {
        if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "ping" }));
      }, 30000);
    });
    socket.addEventListener("message", function (msg) {
      let event;
      try { event = JSON.parse(msg.data); } catch (e) { return; }
      if (!event || typeof event.type !== "string") return;
      fire("webmail:" + event.type, event);
      if (event.type === "mail.new" || event.type === "mail.changed") fire("mail-changed", event);
      if (event.type === "mail.new") notify(event);
    });
    socket.addEventListener("close", function (e) {
      clearInterval(pingTimer);
      if (e.code === 4401) { setStatus("signedout"); return; }  // not signed in: do not hammer
      setStatus("offline");
      if (paused) return;
      const delay = Math.min(30000, 500 * Math.pow(2, attempt)) * (0.75 + Math.random() / 2);
      attempt += 1;
      setTimeout(connect, delay);
    });
  }

  // Desktop notifications: off until the person turns them on (and the browser allows them).
  document.addEventListener("click", function (e) {
    const toggle = e.target.closest && e.target.closest("[data-notify-toggle]");
    if (!toggle || !("Notification" in window)) return;
    if (localStorage.getItem("webmail.notify") === "on") {
      localStorage.setItem("webmail.notify", "off");
      toggle.setAttribute("aria-pressed", "false");
      return;
    }
    Notification.requestPermission().then(function (permission) {
      const on = permission === "granted";
      localStorage.setItem("webmail.notify", on ? "on" : "off");
      toggle.setAttribute("aria-pressed", on ? "true" : "false");
    });
  });
  document.querySelectorAll("[data-notify-toggle]").forEach(function (t) {
    t.setAttribute("aria-pressed", localStorage.getItem("webmail.notify") === "on" ? "true" : "false");
  });

  let paused = false;
  window.webmailLive = {
    reconnectNow: function () { if (socket) socket.close(); },
    // For tests and for a page going to sleep: drop the socket and stay offline until resume().
    pause: function () { paused = true; if (socket) socket.close(); },
    resume: function () { if (paused) { paused = false; connect(); } },
  };
  connect();
})();

/* The mail page: refresh the list (and, out of band, the folder tree with counts and progress) from
 * the cache when the server says something changed. A list with ticked messages is left alone until
 * the selection is cleared, so a person's selection never jumps under their hand. */
(function () {
  let timer = null;
  let pending = false;
  function refresh() {
    const head = document.querySelector("#list-pane .list-head[data-list-url]");
    if (!head || !window.htmx) return;
    if (document.querySelector("#list-pane input[type=checkbox]:checked")) { pending = true; return; }
    pending = false;
    const url = head.dataset.listUrl;
    window.htmx.ajax("GET", url + (url.indexOf("?") >= 0 ? "&" : "?") + "live=1", {
      target: "#list-pane", swap: "innerHTML",
    });
  }
  document.body.addEventListener("mail-changed", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 25);
  });
  document.body.addEventListener("change", function (e) {
    if (pending && e.target.matches && e.target.matches("#list-pane input[type=checkbox]")) {
      if (!document.querySelector("#list-pane input[type=checkbox]:checked")) refresh();
    }
  });
  // The page title carries the unread count of the folder on screen.
  const baseTitle = document.title;
  document.body.addEventListener("htmx:afterSettle", function () {
    const count = document.querySelector("#folders .current .count [aria-hidden]");
    const n = count ? parseInt(count.textContent, 10) : 0;
    document.title = (n > 0 ? "(" + n + ") " : "") + baseTitle.replace(/^\(\d+\) /, "");
  });
})();
