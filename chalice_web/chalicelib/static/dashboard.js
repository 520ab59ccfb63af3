// The operator's dashboard: queue, fleet, throughput and latency, updating by themselves.
"use strict";

(() => {
  const { api, errorMessage } = IRaaS;
  const STATS_EVERY_MS = 2000; // GET v1/stats: three cheap AWS calls per reading
  const METRICS_EVERY_MS = 5000; // GET v1/metrics: the workers publish every few seconds anyway
  const WINDOW_S = 300; // what the charts show

  const $ = (id) => document.getElementById(id);
  const status = $("dashboard-status");
  const samples = { t: [], visible: [], inFlight: [], running: [], desired: [] };
  const queueChart = Charts.lineChart($("chart-queue"), { label: "Request queue over the last 5 minutes" });
  const workersChart = Charts.lineChart($("chart-workers"), { label: "Workers over the last 5 minutes" });
  const rateChart = Charts.lineChart($("chart-rate"), {
    label: "Images answered per second over the last 5 minutes",
    format: (v) => (v >= 10 ? v.toFixed(0) : v.toFixed(1)),
  });
  const latencyChart = Charts.lineChart($("chart-latency"), {
    label: "Latency from queued to answered over the last 5 minutes, seconds",
    format: (v) => (v >= 10 ? v.toFixed(0) : v.toFixed(2)),
  });

  function keepWindow(now) {
    while (samples.t.length && samples.t[0] < now - WINDOW_S) {
      for (const series of Object.values(samples)) series.shift();
    }
  }

  /** Redraw chart with {name: values} over the times t; the first series solid, the second dashed. */
  function plot(chart, t, named) {
    const series = Object.entries(named).map(([name, values], i) => ({ name, values, cls: `s${i + 1}` }));
    chart.update({ t, windowS: WINDOW_S, series });
  }

  function showStats(stats) {
    const now = Date.now() / 1000;
    const w = stats.workers || {};
    samples.t.push(now);
    samples.visible.push(stats.queue.visible);
    samples.inFlight.push(stats.queue.in_flight);
    samples.running.push(w.running ?? 0);
    samples.desired.push(w.desired ?? 0);
    keepWindow(now);
    $("tile-queued").textContent = stats.queue.visible;
    $("tile-in-flight").textContent = stats.queue.in_flight;
    $("tile-dead").textContent = stats.dead_letter ? stats.dead_letter.visible : "–";
    const cap = w.max ? `, cap ${w.max}${w.capped_by ? ` (${w.capped_by})` : ""}` : "";
    $("tile-workers").replaceChildren(
      `${w.running ?? 0} running`,
      IRaaS.el("span", { class: "sub", text: `${w.desired ?? 0} wanted${cap}` }),
    );
    plot(queueChart, samples.t, { queued: samples.visible, "in flight": samples.inFlight });
    plot(workersChart, samples.t, { running: samples.running, wanted: samples.desired });
  }

  function showMetrics(metrics) {
    const last = metrics.last_minute || {};
    $("tile-rate").textContent = last.images_per_s === undefined ? "–" : last.images_per_s.toFixed(1);
    $("tile-latency").textContent =
      last.latency_p50_s === undefined || last.latency_p50_s === null
        ? "–"
        : `${last.latency_p50_s.toFixed(2)} s / ${last.latency_p90_s.toFixed(2)} s`;
    const series = metrics.series || [];
    const half = (metrics.bucket_s || 10) / 2; // plot each bucket at its middle
    const t = series.map((b) => b.t + half);
    const orNull = (v) => (v === undefined ? null : v);
    plot(rateChart, t, { "answered/s": series.map((b) => b.images_per_s) });
    plot(latencyChart, t, {
      p50: series.map((b) => orNull(b.latency_p50_s)),
      p90: series.map((b) => orNull(b.latency_p90_s)),
    });
  }

  async function readStats() {
    const r = await api("v1/stats");
    if (r.ok) {
      showStats(r.body);
      status.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } else {
      status.textContent = `Could not read the service's stats: ${errorMessage(r.body, r.status)}`;
    }
  }

  async function readMetrics() {
    const r = await api("v1/metrics");
    if (r.ok) showMetrics(r.body);
  }

  // One timer per reading, paused while the page is hidden (a background tab costs nothing).
  function every(ms, fn) {
    let timer = null;
    let running = false;
    const tick = async () => {
      timer = null;
      running = true;
      await fn();
      running = false;
      if (!document.hidden) timer = setTimeout(tick, ms);
    };
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && timer === null && !running) tick();
    });
    tick();
  }

  every(STATS_EVERY_MS, readStats);
  every(METRICS_EVERY_MS, readMetrics);
})();
