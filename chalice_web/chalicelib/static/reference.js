// The API reference: ../openapi.json (chalicelib/openapi.py) as readable HTML. Built with
// textContent only: no text of the document is ever parsed as HTML.
"use strict";

(() => {
  const { el } = IRaaS;
  const METHODS = ["get", "put", "post", "delete", "options", "head", "patch"];
  const root = document.getElementById("reference");
  const status = document.getElementById("reference-status");

  /** A `tag` element of `text`, its `code` spans as <code>. */
  function prose(tag, text) {
    const node = el(tag);
    String(text || "").split("`").forEach((part, i) => {
      if (part) node.append(i % 2 ? el("code", { text: part }) : part);
    });
    return node;
  }

  const refName = (ref) => ref.split("/").pop();
  const anchor = (text) => text.replace(/[^A-Za-z0-9]+/g, "-");

  /** A "#/components/..." reference followed within the document. */
  function resolve(doc, value) {
    if (!value || !value.$ref || !value.$ref.startsWith("#/")) return value;
    return value.$ref.slice(2).split("/").reduce((node, key) => (node ? node[key] : undefined), doc) || {};
  }

  function bounds(schema) {
    const parts = [];
    if (schema.minimum !== undefined) parts.push(`at least ${schema.minimum}`);
    if (schema.maximum !== undefined) parts.push(`at most ${schema.maximum}`);
    if (schema.minItems !== undefined || schema.maxItems !== undefined) {
      parts.push(`${schema.minItems ?? 0} to ${schema.maxItems ?? "any number of"} items`);
    }
    if (schema.maxLength !== undefined) parts.push(`at most ${schema.maxLength} characters`);
    return parts.length ? ` (${parts.join(", ")})` : "";
  }

  /** A schema in words: its type, constraints and description; objects as a list of properties. */
  function schemaNode(schema) {
    const node = el("span", { class: "schema" });
    if (!schema) return node;
    if (schema.$ref) node.append(el("a", { href: `#schema-${refName(schema.$ref)}` }, el("code", { text: refName(schema.$ref) })));
    if (schema.type) node.append(el("code", { text: [].concat(schema.type).join(" or ") }));
    if (schema.contentMediaType) node.append(" (raw bytes)");
    if ("const" in schema) node.append(" ", el("code", { text: JSON.stringify(schema.const) }));
    if (schema.enum) node.append(" one of ", el("code", { text: schema.enum.map((v) => JSON.stringify(v)).join(", ") }));
    node.append(bounds(schema));
    if (schema.description) node.append(node.textContent ? ": " : "", prose("span", schema.description));
    if (schema.items) node.append(" Each: ", schemaNode(schema.items));
    if (schema.properties) {
      const required = schema.required ? new Set(schema.required) : null;
      node.append(el("ul", { class: "properties" }, ...Object.entries(schema.properties).map(([name, property]) =>
        el("li", {}, el("code", { class: "name", text: name }), required && !required.has(name) ? " (optional) " : " ",
          schemaNode(property)))));
    }
    for (const key of ["oneOf", "anyOf"]) {
      if (schema[key]) node.append(" One of:", el("ul", {}, ...schema[key].map((s) => el("li", {}, schemaNode(s)))));
    }
    return node;
  }

  /** {media type: {schema}} as a list of the types and their schemas. */
  function contentList(content) {
    return el("ul", { class: "content" }, ...Object.entries(content || {}).map(([media, { schema }]) =>
      el("li", {}, el("code", { text: media }), " ", schemaNode(schema))));
  }

  function parameterTable(parameters) {
    const rows = parameters.map((p) => el("tr", {},
      el("td", {}, el("code", { text: p.name })),
      el("td", { text: p.in + (p.required ? ", required" : "") }),
      el("td", {}, schemaNode(p.schema)),
      el("td", {}, prose("span", p.description))));
    const head = el("tr", {}, ...["Name", "In", "Type", "Description"].map((h) => el("th", { scope: "col", text: h })));
    return el("div", { class: "table-wrap" }, el("table", {}, el("caption", { text: "Parameters" }), el("thead", {}, head), el("tbody", {}, ...rows)));
  }

  function responseList(doc, responses) {
    const list = el("dl", { class: "responses" });
    for (const [code, ref] of Object.entries(responses)) {
      const response = resolve(doc, ref);
      const detail = el("dd", {}, prose("p", response.description));
      const headers = Object.entries(response.headers || {});
      if (headers.length) {
        detail.append(el("p", { text: "Headers: " }, ...headers.flatMap(([name, h], i) =>
          [i ? "; " : "", el("code", { text: name }), h.description ? ` (${h.description})` : ""])));
      }
      if (response.content) detail.append(contentList(response.content));
      list.append(el("dt", {}, el("code", { class: `http-status s${code[0]}xx`, text: code })), detail);
    }
    return list;
  }

  function operationNode(doc, path, method, op) {
    const id = `op-${method}${anchor(path)}`;
    const section = el("section", { class: "operation", id, "aria-labelledby": `${id}-title` });
    section.append(el("h3", { id: `${id}-title` },
      el("span", { class: `method ${method}`, text: method.toUpperCase() }), " ", el("code", { class: "path", text: path })));
    if (op.summary) section.append(el("p", { class: "op-summary", text: op.summary }));
    if (op.description) section.append(prose("p", op.description));
    const open = Array.isArray(op.security) && op.security.length === 0;
    const scheme = Object.values((doc.components || {}).securitySchemes || {})[0];
    section.append(prose("p", open ? "No API key needed." : `Needs an API key in the \`${scheme ? scheme.name : "x-api-key"}\` header.`));
    if (op.parameters && op.parameters.length) section.append(parameterTable(op.parameters.map((p) => resolve(doc, p))));
    if (op.requestBody) {
      const body = resolve(doc, op.requestBody);
      section.append(el("h4", { text: "Request body" }));
      if (body.description) section.append(prose("p", body.description));
      section.append(contentList(body.content));
    }
    section.append(el("h4", { text: "Responses" }), responseList(doc, op.responses || {}));
    return section;
  }

  function render(doc) {
    const operations = [];
    for (const [path, item] of Object.entries(doc.paths || {})) {
      for (const method of METHODS) if (item[method]) operations.push({ path, method, op: item[method] });
    }
    const described = Object.fromEntries((doc.tags || []).map((t) => [t.name, t.description]));
    const tags = [...Object.keys(described), ""];
    const tagOf = ({ op }) => (op.tags && tags.includes(op.tags[0]) ? op.tags[0] : "");
    const info = doc.info || {};
    root.append(prose("p", info.description), el("p", { class: "muted", text: `Version ${info.version}, OpenAPI ${doc.openapi}.` }));
    root.append(el("nav", { "aria-label": "Routes" }, el("ul", { class: "toc" }, ...operations.map(({ path, method, op }) =>
      el("li", {}, el("a", { href: `#op-${method}${anchor(path)}` }, el("code", { text: `${method.toUpperCase()} ${path}` })),
        op.summary ? ` ${op.summary}` : "")))));
    for (const tag of tags) {
      const tagged = operations.filter((o) => tagOf(o) === tag);
      if (!tagged.length) continue;
      root.append(el("h2", { text: tag || "Other routes" }));
      if (described[tag]) root.append(prose("p", described[tag]));
      root.append(...tagged.map(({ path, method, op }) => operationNode(doc, path, method, op)));
    }
    const schemas = Object.entries((doc.components || {}).schemas || {});
    if (schemas.length) {
      root.append(el("h2", { text: "Schemas" }), ...schemas.map(([name, schema]) =>
        el("section", { class: "operation", id: `schema-${name}` }, el("h3", {}, el("code", { text: name })), schemaNode(schema))));
    }
  }

  async function load() {
    try {
      const response = await fetch("../openapi.json", { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error(`the service answered ${response.status}`);
      render(await response.json());
      status.textContent = "";
      root.dataset.state = "done";
    } catch (error) {
      status.textContent = `The API's description could not be read: ${error.message}`;
      root.dataset.state = "error";
    }
  }

  load();
})();
