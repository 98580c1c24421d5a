// Compose page: autosave, uploads with progress (drag and drop too), rich text, signatures, address suggestions.
(function () {
  "use strict";
  const form = document.getElementById("compose-form");
  if (!form) return;
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  const status = form.querySelector(".save-status");
  const draftInput = form.querySelector("input[name=draft]");
  const fileInput = form.querySelector("input[type=file]");
  const list = form.querySelector(".attachment-list");
  const uploadErrors = form.querySelector(".upload-errors");
  const maxFile = parseInt(form.dataset.maxAttachment, 10);
  const AUTOSAVE_MS = 3000;
  let dirty = false, saving = null, timer = null;

  function fields() {
    const data = new FormData(form);
    data.delete("files");
    data.delete("action");
    return data;
  }

  function showFieldErrors(errors) {
    for (const name of ["to", "cc", "bcc"]) {
      const box = document.getElementById("id_" + name + "_error");
      if (!box) continue;
      box.textContent = "";
      for (const msg of (errors && errors[name]) || []) {
        const p = document.createElement("p");
        p.className = "error";
        p.textContent = msg;
        box.appendChild(p);
      }
      box.closest(".field").classList.toggle("has-error", !!(errors && errors[name] && errors[name].length));
    }
  }

  function save() {
    if (saving) return saving;
    dirty = false;
    syncRich();
    status.textContent = "Saving…";
    saving = fetch(form.dataset.saveUrl, {
      method: "POST", body: fields(), credentials: "same-origin",
      headers: {"X-CSRFToken": csrf, "Accept": "application/json"},
    }).then(r => r.json()).then(j => {
      if (j.id) {
        draftInput.value = j.id;
        form.dataset.attachUrl = j.urls.attach;
        if (location.pathname !== j.urls.edit) history.replaceState(null, "", j.urls.edit);
        status.textContent = "Draft saved at " + j.saved_at;
        list.querySelectorAll("li.pending").forEach(li => li.remove());
      }
      showFieldErrors(j.errors);
      return j;
    }).catch(() => { status.textContent = "Could not save the draft; retrying."; dirty = true; })
      .finally(() => { saving = null; });
    return saving;
  }

  function changed() {
    dirty = true;
    clearTimeout(timer);
    timer = setTimeout(() => { if (dirty) save(); }, AUTOSAVE_MS);
  }
  form.addEventListener("input", e => { if (e.target !== fileInput) changed(); });
  form.addEventListener("change", e => { if (e.target !== fileInput) changed(); });
  setInterval(() => { if (dirty) save(); }, 5000);

  // On leaving: a beacon survives the page going away.
  function flush() {
    if (!dirty || !navigator.sendBeacon) return;
    syncRich();
    const data = fields();
    data.append("csrfmiddlewaretoken", csrf);
    navigator.sendBeacon(form.dataset.saveUrl, data);
    dirty = false;
  }
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "hidden") flush(); });
  window.addEventListener("pagehide", flush);
  form.addEventListener("submit", () => { dirty = false; clearTimeout(timer); syncRich(); });

  // --- attachments: one request per file, with a <progress> each
  function uploadOne(file) {
    const li = document.createElement("li");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = file.name;
    const progress = document.createElement("progress");
    progress.max = 100; progress.value = 0;
    progress.setAttribute("aria-label", "Uploading " + file.name);
    li.append(name, progress);
    list.appendChild(li);
    if (file.size > maxFile) {
      progress.remove();
      li.classList.add("failed");
      li.append(" — too large (" + Math.ceil(file.size / 1048576) + " MB; the limit is " + Math.floor(maxFile / 1048576) + " MB)");
      return Promise.resolve();
    }
    return (draftInput.value ? Promise.resolve() : save()).then(() => new Promise(resolve => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", form.dataset.attachUrl);
      xhr.setRequestHeader("X-CSRFToken", csrf);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", e => { if (e.lengthComputable) progress.value = 100 * e.loaded / e.total; });
      xhr.addEventListener("loadend", () => {
        let j = {};
        try { j = JSON.parse(xhr.responseText); } catch (err) { j = {errors: ["Upload failed."]}; }
        progress.remove();
        if (j.attachments && j.attachments.length) {
          const a = j.attachments[0];
          li.dataset.id = a.id;
          const size = document.createElement("span");
          size.className = "muted";
          size.textContent = a.size;
          const remove = document.createElement("button");
          remove.type = "button";
          remove.className = "link-button remove-attachment";
          remove.dataset.url = a.remove_url;
          remove.textContent = "Remove";
          li.append(" ", size, " ", remove);
        } else {
          li.classList.add("failed");
          li.append(" — " + ((j.errors && j.errors[0]) || j.error || "Upload failed."));
        }
        resolve();
      });
      const data = new FormData();
      data.append("file", file, file.name);
      xhr.send(data);
    }));
  }
  // Uploads run one after another; Send waits for them, so nothing is sent without its files.
  let uploads = Promise.resolve();
  let busy = 0;
  function uploadAll(files) {
    uploadErrors.textContent = "";
    busy += 1;
    for (const f of files) uploads = uploads.then(() => uploadOne(f));
    const done = uploads;
    done.then(() => { busy -= 1; });
    return done;
  }
  // Empty the input at once: the files go by upload, never a second time with the form.
  fileInput.addEventListener("change", () => { const files = Array.from(fileInput.files); fileInput.value = ""; uploadAll(files); });
  form.addEventListener("submit", e => {
    if (busy > 0) { e.preventDefault(); const by = e.submitter; uploads.then(() => form.requestSubmit(by)); }
  });
  const zone = form.querySelector(".drop-zone");
  ["dragenter", "dragover"].forEach(t => zone.addEventListener(t, e => { e.preventDefault(); zone.classList.add("dragging"); }));
  ["dragleave", "drop"].forEach(t => zone.addEventListener(t, () => zone.classList.remove("dragging")));
  zone.addEventListener("drop", e => { e.preventDefault(); uploadAll(Array.from(e.dataTransfer.files)); });
  list.addEventListener("click", e => {
    const btn = e.target.closest(".remove-attachment");
    if (!btn) return;
    e.preventDefault();
    const url = btn.dataset.url || btn.getAttribute("formaction");
    fetch(url, {method: "POST", credentials: "same-origin", headers: {"X-CSRFToken": csrf, "Accept": "application/json"}})
      .then(r => { if (r.ok) btn.closest("li").remove(); });
  });

  // --- rich text
  const toggle = form.querySelector("input[name=html_mode]");
  const rich = form.querySelector(".rich-editor");
  const richBody = document.getElementById("rich-body");
  const htmlInput = form.querySelector("input[name=body_html]");
  const plain = form.querySelector(".plain-body");
  const textarea = form.querySelector("textarea[name=body_text]");
  function syncRich() { if (toggle.checked) htmlInput.value = richBody.innerHTML; }
  function escapeText(t) { const d = document.createElement("div"); d.textContent = t; return d.innerHTML.replace(/\n/g, "<br>"); }
  function showMode() {
    rich.hidden = !toggle.checked;
    plain.hidden = toggle.checked;
    if (toggle.checked && !richBody.innerHTML.trim()) richBody.innerHTML = htmlInput.value || escapeText(textarea.value);
  }
  if (htmlInput.value) richBody.innerHTML = htmlInput.value; // markup the server stored, shown in our own editor
  toggle.addEventListener("change", showMode);
  showMode();
  richBody.addEventListener("input", () => { syncRich(); changed(); });
  rich.querySelectorAll("[data-command]").forEach(b => b.addEventListener("click", () => {
    const cmd = b.dataset.command;
    const arg = cmd === "createLink" ? prompt("Link address (https://…)") : null;
    if (cmd === "createLink" && !arg) return;
    document.execCommand(cmd, false, arg);
    richBody.focus(); syncRich(); changed();
  }));

  // --- signature follows the chosen identity (plain text, after the "-- " line)
  const identity = form.querySelector("select[name=identity]");
  let lastSig = identity.selectedOptions[0] ? identity.selectedOptions[0].dataset.signature : "";
  identity.addEventListener("change", () => {
    const sig = identity.selectedOptions[0].dataset.signature || "";
    const oldBlock = lastSig ? "\n-- \n" + lastSig : "";
    if (oldBlock && textarea.value.includes(oldBlock)) textarea.value = textarea.value.replace(oldBlock, sig ? "\n-- \n" + sig : "");
    else if (sig && !oldBlock) textarea.value = textarea.value.replace(/^/, "\n\n-- \n" + sig);
    lastSig = sig;
  });

  // --- address suggestions for the last address being typed
  form.querySelectorAll(".address-input").forEach(input => {
    const box = input.parentElement.querySelector(".suggestions");
    let active = -1, req = 0;
    function close() { box.hidden = true; box.textContent = ""; active = -1; }
    function pick(value) {
      const parts = input.value.split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/);
      parts[parts.length - 1] = " " + value;
      input.value = parts.join(",").replace(/^\s+/, "") + ", ";
      close(); input.focus(); changed();
    }
    input.setAttribute("aria-autocomplete", "list");
    input.addEventListener("input", () => {
      const term = input.value.split(",").pop().trim();
      if (term.length < 2) { close(); return; }
      const mine = ++req;
      fetch(form.dataset.addressesUrl + "?q=" + encodeURIComponent(term), {credentials: "same-origin"})
        .then(r => r.json()).then(j => {
          if (mine !== req) return;
          box.textContent = "";
          for (const a of j.addresses) {
            const li = document.createElement("li");
            li.setAttribute("role", "option");
            li.textContent = a;
            li.addEventListener("mousedown", e => { e.preventDefault(); pick(a); });
            box.appendChild(li);
          }
          box.hidden = !j.addresses.length;
        });
    });
    input.addEventListener("keydown", e => {
      const items = box.querySelectorAll("li");
      if (box.hidden || !items.length) return;
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        active = (active + (e.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
        items.forEach((li, i) => li.setAttribute("aria-selected", i === active ? "true" : "false"));
      } else if (e.key === "Enter" && active >= 0) {
        e.preventDefault(); pick(items[active].textContent);
      } else if (e.key === "Escape") { close(); }
    });
    input.addEventListener("blur", () => setTimeout(close, 150));
  });
})();
