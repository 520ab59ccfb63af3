// The classify panel: drop or pick images; each one uploads, waits for its label, shows its top-5.
"use strict";

(() => {
  const { el, api, upload, poll, errorMessage, percent } = IRaaS;
  const WAIT_S = 25; // how long one request waits for its answer before it is polled instead
  const CONCURRENT = 4; // uploads at a time: a folder of photos must not open 500 connections

  const drop = document.getElementById("drop");
  const input = document.getElementById("images");
  const list = document.getElementById("results");
  const waiting = [];
  let active = 0;

  function card(file) {
    const state = el("p", { class: "state", text: "waiting to upload" });
    const thumb = file.type.startsWith("image/")
      ? el("img", { src: URL.createObjectURL(file), alt: "", width: 96, height: 96 })
      : el("div", { class: "thumb-none", "aria-hidden": "true", text: "?" });
    const body = el("div", { class: "body" }, el("p", { class: "name", text: file.name }), state);
    const item = el("li", { class: "card", "data-state": "waiting" }, thumb, body);
    list.prepend(item);
    return {
      item,
      set(kind, text) {
        item.dataset.state = kind;
        state.textContent = text;
      },
      body,
    };
  }

  function showResult(view, result) {
    const best = result.top5[0];
    view.set("done", `${best.label} (${percent(best.confidence)})`);
    const rows = result.top5.map((p) => {
      const bar = el("span", { class: "bar" });
      bar.style.width = percent(p.confidence); // CSSOM, allowed by the page's style-src policy
      return el(
        "li",
        { "aria-label": `${p.label}: ${percent(p.confidence)}` },
        el("span", { class: "label", text: p.label }),
        el("span", { class: "track", "aria-hidden": "true" }, bar),
        el("span", { class: "value", "aria-hidden": "true", text: percent(p.confidence) }),
      );
    });
    view.body.append(el("ol", { class: "top5", "aria-label": "Top 5" }, ...rows));
  }

  function showError(view, response) {
    view.set("error", `Error: ${errorMessage(response.body, response.status)}`);
    view.item.setAttribute("role", "alert");
  }

  async function classify(file) {
    const view = card(file);
    view.set("uploading", "uploading…");
    const form = new FormData();
    form.append("myfile", file, file.name);
    const sent = upload(`v1/images?wait=${WAIT_S}`, form, null, (done) => {
      view.set(done < 1 ? "uploading" : "classifying", done < 1 ? `uploading ${percent(done)}` : "classifying…");
    });
    let response = await sent;
    if (response.status === 202 && response.body && response.body.id) {
      view.set("queued", "queued: the service is busy, checking back…");
      const id = encodeURIComponent(response.body.id);
      response = await poll(async () => {
        const r = await api(`v1/images/${id}`);
        return r.status === 202 ? undefined : r;
      });
      if (!response) return view.set("error", "Error: no answer yet; try again later");
    }
    if (response.ok && response.body && response.body.top5) showResult(view, response.body);
    else showError(view, response);
  }

  function next() {
    while (active < CONCURRENT && waiting.length) {
      active += 1;
      classify(waiting.shift()).finally(() => {
        active -= 1;
        next();
      });
    }
  }

  function add(files) {
    for (const file of files) waiting.push(file);
    next();
  }

  input.addEventListener("change", () => {
    add(input.files);
    input.value = "";
  });
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (event) => {
      event.preventDefault();
      drop.dataset.state = "over";
    });
  }
  for (const type of ["dragleave", "drop"]) {
    drop.addEventListener(type, () => { drop.dataset.state = "idle"; });
  }
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    add(event.dataTransfer.files);
  });
})();
