/* Reading mail: time zone cookie, selection, status toasts and Gmail-style keyboard shortcuts. */
"use strict";
(() => {
  // Report the browser's time zone so the server renders dates in the person's local time.
  try {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && !document.cookie.split("; ").includes("tz=" + encodeURIComponent(zone))) {
      document.cookie = "tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; SameSite=Lax";
    }
  } catch (e) { /* no Intl: server time zone */ }

  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  let toastTimer = null;

  function toast(text, isError) {
    const box = $("#toast");
    if (!box) return;
    box.textContent = text;
    box.classList.toggle("error", Boolean(isError));
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { box.hidden = true; }, isError ? 8000 : 4000);
  }

  function strings() { const box = $("#toast"); return box ? box.dataset : {}; }
  function rows() { return $$(".msg-row"); }
  function cursorRow() { return $(".msg-row.cursor") || (document.activeElement && document.activeElement.closest && document.activeElement.closest(".msg-row")); }
  function setCursor(row) {
    rows().forEach((r) => r.classList.remove("cursor"));
    if (!row) return;
    row.classList.add("cursor");
    const link = $(".msg-link", row);
    if (link) { link.focus(); row.scrollIntoView({ block: "nearest" }); }
  }
  function moveCursor(step) {
    const all = rows();
    if (!all.length) return;
    const current = cursorRow() || $(".msg-row.current");
    let index = current ? all.indexOf(current) + step : 0;
    index = Math.max(0, Math.min(all.length - 1, index));
    setCursor(all[index]);
  }
  function messageOpen() { return $("#message-pane .conversation"); }

  // Run an action from a toolbar: the checked rows, else the row under the cursor, else the open message.
  function act(action) {
    const checked = $$(".msg-row .select:checked");
    const inMessage = document.activeElement && document.activeElement.closest && document.activeElement.closest("#message-pane");
    const row = cursorRow();
    let form = null;
    if (checked.length) {
      form = $("#bulk");
    } else if (row && !inMessage) {
      const box = $(".select", row);
      if (box) box.checked = true;
      form = $("#bulk");
    } else if (messageOpen()) {
      form = $("#message-pane .msg-toolbar");
    }
    if (!form) { toast(strings().noSelection || "Select a message first.", true); return; }
    if (action === "flag") {
      const target = checked.length ? checked[0].closest(".msg-row") : (row && !inMessage ? row : null);
      const flagged = target ? target.classList.contains("flagged") : Boolean($("#message-pane .msg.opened .marker.flag"));
      action = flagged ? "unflag" : "flag";
    }
    let button = $('button[name="action"][value="' + action + '"]', form);
    if (!button && action === "delete") button = $('button[name="action"][value="delete-forever"]', form);
    // A list swapped in a moment ago may not be wired up yet: a plain submit would reload the page.
    if (window.htmx) window.htmx.process(form);
    if (button) button.click();
  }

  let pendingG = false;
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const t = event.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) {
      if (event.key === "Escape") t.blur();
      return;
    }
    if ($("dialog[open]")) return;
    const key = event.key;
    if (pendingG) {
      pendingG = false;
      if (key === "i") { const inbox = $("[data-shortcut-inbox]"); if (inbox) inbox.click(); event.preventDefault(); }
      return;
    }
    const handlers = {
      j: () => moveCursor(1),
      k: () => moveCursor(-1),
      o: () => { const row = cursorRow(); if (row) $(".msg-link", row).click(); },
      u: () => { const back = $("#message-pane [data-key-back]"); if (back && getComputedStyle(back).display !== "none") back.click(); else setCursor(cursorRow() || $(".msg-row.current") || rows()[0]); },
      x: () => { const row = cursorRow(); const box = row && $(".select", row); if (box) box.checked = !box.checked; },
      s: () => act("flag"),
      e: () => act("archive"),
      "#": () => act("delete"),
      "!": () => act("spam"),
      I: () => act("read"),
      U: () => act("unread"),
      "/": () => { const q = $("#search-q"); if (q) q.focus(); },
      "?": () => { const d = $("#shortcuts"); if (d) d.showModal(); },
      g: () => { pendingG = true; setTimeout(() => { pendingG = false; }, 1500); },
      c: () => compose("compose"), r: () => compose("reply"), a: () => compose("reply-all"), f: () => compose("forward"),
    };
    if (key === "Enter" && t && t.classList && t.classList.contains("msg-row")) { $(".msg-link", t).click(); return; }
    const handler = handlers[key];
    if (handler) { event.preventDefault(); handler(); }
  });

  function compose(kind) {
    const link = $('[data-compose="' + kind + '"]');
    if (link) link.click();
    else toast(strings().noCompose || "Writing mail is not available yet.", false);
  }

  document.addEventListener("click", (event) => {
    const t = event.target;
    if (t.matches && t.matches("[data-select-all]")) {
      $$(".msg-row .select").forEach((box) => { box.checked = t.checked; });
    }
    if (t.closest && t.closest("[data-shortcuts-open]")) { const d = $("#shortcuts"); if (d) d.showModal(); }
    const link = t.closest && t.closest(".msg-link");
    if (link) {
      rows().forEach((r) => r.classList.remove("current", "cursor"));
      link.closest(".msg-row").classList.add("current");
    }
  });

  // Actions on the open message act on the list the person is looking at.
  document.body.addEventListener("htmx:configRequest", (event) => {
    const list = $("[data-list-url]");
    if (list && event.detail.parameters && event.detail.parameters.has && event.detail.parameters.has("next")) {
      event.detail.parameters.set("next", list.dataset.listUrl);
    } else if (list && event.detail.parameters && "next" in event.detail.parameters) {
      event.detail.parameters.next = list.dataset.listUrl;
    }
  });

  document.body.addEventListener("mail-status", (event) => toast(event.detail.value || "", false));
  // An action's refusal comes as a mail-error raised on <body> (heard even when a live redraw has
  // removed the form that sent it); other failed requests are told by htmx:responseError.
  document.body.addEventListener("mail-error", (event) => toast(event.detail.value || "", true));
  document.body.addEventListener("htmx:responseError", (event) => {
    const xhr = event.detail.xhr;
    if (xhr && (xhr.getResponseHeader("HX-Trigger") || "").indexOf("mail-error") >= 0) return;
    const text = xhr && xhr.getResponseHeader("Content-Type") && xhr.getResponseHeader("Content-Type").startsWith("text/plain")
      ? xhr.responseText : (strings().actionFailed || "That did not work. Nothing was changed; please try again.");
    toast(text, true);
  });
  document.body.addEventListener("htmx:sendError", () => {
    toast(strings().offline || "No connection to the server. Nothing was changed.", true);
  });

  document.body.addEventListener("htmx:afterRequest", (event) => {
    const el = event.detail.elt;
    if (el && el.dataset && el.dataset.markRead && event.detail.successful) {
      const row = document.getElementById("row-" + el.dataset.markRead);
      if (row) row.classList.remove("unread");
    }
  });

  document.body.addEventListener("htmx:afterSwap", (event) => {
    const target = event.detail.target;
    const mail = $("#mail");
    if (!target || !mail) return;
    if (target.id === "message-pane") {
      mail.dataset.pane = "message";
      const heading = $(".conv-subject", target);
      if (heading && !(document.activeElement && document.activeElement.closest(".msg-list"))) heading.focus();
    } else if (target.id === "list-pane" && !messageOpen()) {
      mail.dataset.pane = "list";
    }
  });
})();
