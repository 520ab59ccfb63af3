// A small SVG line chart: a few series over time, redrawn in place. No library needed for this.
"use strict";

const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const W = 320;
  const H = 140;
  const PAD = { left: 34, right: 8, top: 8, bottom: 20 };

  function svg(tag, attrs) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    return node;
  }

  function niceMax(value) {
    if (!(value > 0)) return 1;
    const step = 10 ** Math.floor(Math.log10(value));
    for (const m of [1, 2, 2.5, 5, 10]) if (value <= m * step) return m * step;
    return 10 * step;
  }

  /**
   * A chart in container; update({t: [seconds...], series: [{name, values, cls}], windowS}).
   * The newest point is at the right edge; the x axis spans windowS seconds.
   */
  function lineChart(container, { label, format = (v) => String(v) }) {
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label });
    const title = svg("title", {});
    root.append(title);
    const grid = svg("g", { class: "grid" });
    const lines = svg("g", { class: "lines" });
    root.append(grid, lines);
    const legend = document.createElement("ul");
    legend.className = "legend";
    container.append(root, legend);

    function update({ t, series, windowS }) {
      const now = t.length ? t[t.length - 1] : Date.now() / 1000;
      const x0 = now - windowS;
      const all = series.flatMap((s) => s.values.filter((v) => v !== null));
      const max = niceMax(Math.max(0, ...all));
      const x = (ts) => PAD.left + ((ts - x0) / windowS) * (W - PAD.left - PAD.right);
      const y = (v) => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);
      grid.replaceChildren();
      for (const v of [0, max / 2, max]) {
        grid.append(svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }));
        const text = svg("text", { x: PAD.left - 4, y: y(v) + 4, "text-anchor": "end" });
        text.textContent = format(v);
        grid.append(text);
      }
      const minutes = Math.round(windowS / 60);
      const axis = svg("text", { x: PAD.left, y: H - 4 });
      axis.textContent = `${minutes} min ago`;
      const nowText = svg("text", { x: W - PAD.right, y: H - 4, "text-anchor": "end" });
      nowText.textContent = "now";
      grid.append(axis, nowText);
      lines.replaceChildren();
      legend.replaceChildren();
      const summary = [];
      for (const s of series) {
        let d = "";
        s.values.forEach((v, i) => {
          if (v === null || t[i] < x0) return;
          d += `${d ? "L" : "M"}${x(t[i]).toFixed(1)},${y(v).toFixed(1)}`;
        });
        if (d) lines.append(svg("path", { d, class: `line ${s.cls}` }));
        const lastIndex = s.values.length - 1;
        if (lastIndex >= 0 && s.values[lastIndex] !== null && t[lastIndex] >= x0) {
          // The newest reading as a dot, so that a single reading is visible too.
          lines.append(svg("circle", { cx: x(t[lastIndex]), cy: y(s.values[lastIndex]), r: 3, class: `dot ${s.cls}` }));
        }
        const last = [...s.values].reverse().find((v) => v !== null);
        const item = document.createElement("li");
        item.className = s.cls;
        item.textContent = `${s.name}: ${last === undefined ? "–" : format(last)}`;
        legend.append(item);
        summary.push(item.textContent);
      }
      title.textContent = `${label}. Latest: ${summary.join(", ")}`;
    }

    return { update };
  }

  return { lineChart };
})();
