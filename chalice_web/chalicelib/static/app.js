// Shared by the page's parts: building elements, calling the JSON API (with the API key, where the
// service needs one), and its error messages.
"use strict";

const IRaaS = (() => {
  /** el("li", {class: "card"}, child, "text"): a new element (text is never parsed as HTML). */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  /** The message of the API's error body {"error": {"code", "message"}}, or a fallback. */
  function errorMessage(body, status) {
    if (body && body.error && body.error.message) return body.error.message;
    if (status === 0) return "the service could not be reached";
    return `the service answered ${status}`;
  }

  // ---- the API key: asked for when the service answers 401/403, kept for this tab only -------

  const KEY_STORAGE = "iraas.apiKey";
  const KEY_HEADER = "x-api-key";

  function apiKey() {
    try { return window.sessionStorage.getItem(KEY_STORAGE) || ""; } catch (error) { return ""; }
  }

  function keyHeaders() {
    const key = apiKey();
    return key ? { [KEY_HEADER]: key } : {};
  }

  /** Show the key form, saying why; once per reason, however many requests were refused. */
  function askForKey(status) {
    const form = document.getElementById("key-form");
    if (!form) return;
    const why = apiKey()
      ? "The service did not accept this API key. Enter the right one."
      : "This service needs an API key. Enter it to use the page.";
    const message = document.getElementById("key-status");
    if (!form.hidden && message.textContent === why) return;
    message.textContent = why;
    const firstTime = form.hidden;
    form.hidden = false;
    if (firstTime) document.getElementById("key-input").focus();
  }

  function setUpKeyForm() {
    const form = document.getElementById("key-form");
    if (!form) return;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const input = document.getElementById("key-input");
      const key = input.value.trim();
      if (!key) return;
      try { window.sessionStorage.setItem(KEY_STORAGE, key); } catch (error) { /* private mode: not kept */ }
      input.value = "";
      form.hidden = true;
      document.getElementById("key-status").textContent = "";
      document.dispatchEvent(new CustomEvent("iraas:key")); // the parts reload what they could not read
    });
  }

  function refused(status) {
    if (status === 401 || status === 403) askForKey(status);
  }

  async function parse(response) {
    const type = response.headers.get("content-type") || "";
    if (type.includes("application/json")) return response.json();
    return response.text();
  }

  /**
   * fetch() against the API (relative to the page), resolving to {status, ok, body, headers}.
   * options.as "blob": a successful answer's body as a Blob (an image an <img> could not fetch
   * itself, since it cannot send the key); otherwise JSON or text, by the answer's type.
   */
  async function api(path, { as, ...options } = {}) {
    try {
      const headers = { ...(options.headers || {}), ...keyHeaders() };
      const response = await fetch(path, { ...options, headers });
      refused(response.status);
      const body = as === "blob" && response.ok ? await response.blob() : await parse(response);
      return { status: response.status, ok: response.ok, body, headers: response.headers };
    } catch (error) {
      return { status: 0, ok: false, body: null, headers: new Headers() };
    }
  }

  /**
   * POST a body with upload progress (fetch has none): resolves to {status, ok, body}.
   * onProgress receives 0..1 while the body is being sent.
   */
  function upload(path, body, contentType, onProgress) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", path);
      if (contentType) xhr.setRequestHeader("Content-Type", contentType);
      for (const [name, value] of Object.entries(keyHeaders())) xhr.setRequestHeader(name, value);
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      });
      xhr.upload.addEventListener("load", () => onProgress(1));
      xhr.addEventListener("load", () => {
        refused(xhr.status);
        let parsed = xhr.responseText;
        if ((xhr.getResponseHeader("content-type") || "").includes("application/json")) {
          try { parsed = JSON.parse(xhr.responseText); } catch (error) { /* keep the text */ }
        }
        resolve({ status: xhr.status, ok: xhr.status >= 200 && xhr.status < 300, body: parsed });
      });
      xhr.addEventListener("error", () => resolve({ status: 0, ok: false, body: null }));
      xhr.send(body);
    });
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  /** Call fn() until it returns something other than undefined, backing off up to maxDelay. */
  async function poll(fn, { delay = 500, maxDelay = 4000, timeoutMs = 300000 } = {}) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const value = await fn();
      if (value !== undefined) return value;
      await sleep(delay);
      delay = Math.min(maxDelay, delay * 1.5);
    }
    return undefined;
  }

  const percent = (x) => `${(100 * x).toFixed(1)}%`;

  /** A link that saves `text` as `filename`: a plain link to `path`, which the browser fetches
   * itself, unless the service needs a key (a link cannot send one): then from the text in hand. */
  function downloadLink(path, filename, text, label) {
    const link = el("a", { href: path, download: filename, text: label });
    link.addEventListener("click", (event) => {
      if (!apiKey()) return;
      event.preventDefault();
      const url = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
      const save = el("a", { href: url, download: filename });
      document.body.append(save);
      save.click();
      save.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    });
    return link;
  }

  setUpKeyForm();

  return { el, api, upload, poll, sleep, errorMessage, percent, downloadLink };
})();
