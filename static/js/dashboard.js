// The dashboard: where the project stands and how the model is doing.
import { can, get, post } from "./api.js";
import { barList, columnChart, legend, lineChart } from "./charts.js";
import { clear, errorBox, fmt, h, toast } from "./util.js";

const C = {
  accuracy: "#2f5dab", f1: "#7a4fa3",
  auto: "#2e7d4f", review: "#b7791f", escalate: "#b42318",
  bars: ["#2f5dab", "#2e7d4f", "#b7791f", "#7a4fa3", "#0f7c8c", "#b42318", "#5b6470", "#8a6d3b", "#3d7a3a"],
};

export async function dashboardView(main, pid) {
  let timer = null, alive = true;
  const body = h("div.dashboard#dashboard");
  const updated = h("span.muted#updated");
  const trainBtn = can("admin") ? h("button#train", { type: "button", onclick: train }, "Train now") : null;
  clear(main,
    h("div.page-head", h("h1", "Dashboard"),
      h("div.actions", updated, h("button#refresh", { type: "button", onclick: () => load() }, "Refresh"), trainBtn)),
    body);

  async function train() {
    trainBtn.disabled = true;
    trainBtn.textContent = "Training…";
    try {
      const m = await post(`/projects/${pid}/train?wait=true`);
      toast(`Model v${m.version} trained on ${fmt.int(m.n_labels)} labels · accuracy ${fmt.pct(m.metrics?.accuracy, 1)}`, "ok");
      await load();
    } catch (e) {
      toast(e.code === "not_enough_labels" ? "Not enough labels yet: at least two classes need labels." : `Training failed: ${e.message}`, "error", 6000);
    } finally {
      trainBtn.disabled = false;
      trainBtn.textContent = "Train now";
    }
  }

  async function load() {
    let p, st;
    try {
      [p, st] = await Promise.all([get(`/projects/${pid}`), get(`/projects/${pid}/stats`)]);
    } catch (e) {
      if (alive) clear(body, errorBox(e));
      return;
    }
    if (!alive) return;
    render(p, st);
    updated.textContent = "Updated " + new Date().toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function render(p, st) {
    const c = st.counts || p.counts;
    const src = st.label_sources || {};
    const reviewed = (src.review || 0) + (src.override || 0);
    clear(body,
      h("div.tiles",
        tile("Items", fmt.int(c.items), `${fmt.int(c.unlabeled)} in the pool`),
        tile("Labeled", fmt.int(c.labeled), c.items ? fmt.pct(c.labeled / c.items, 1) + " of all items" : ""),
        tile("Waiting for review", fmt.int(c.review), c.review ? "confirm or override them under Review" : "nothing to review"),
        tile("Active model", st.active_model ? `v${st.active_model}` : "none",
          st.active_model ? `${fmt.int(st.labels_since_active_model)} labels since` : "train once two classes have labels"),
        tile("Override rate", st.override_rate === null || st.override_rate === undefined ? "—" : fmt.pct(st.override_rate, 1),
          reviewed ? `${fmt.int(src.override || 0)} of ${fmt.int(reviewed)} reviews changed the model's label` : "no reviews yet", "tile-override")),
      h("div.grid",
        panel("Learning curve", "chart-learning", learning(st.learning_curve || [])),
        panel("Label distribution", "chart-labels", distribution(p.labels, st.label_distribution || {}, src)),
        panel("Model confidence over the pool", "chart-confidence", confidence(st.confidence_histogram)),
        panel("Routing over time", "chart-routing", routing(st.routing_volumes))),
      auditAlert(st.audit),
      h("div.grid",
        panel("Automation", "automation", automation(st, p)),
        panel("Reviewers", "reviewers", reviewers(st.reviewers || [], st.gold))),
      panel("Annotators", "annotators", annotators(st.annotators || [])));
  }

  await load();
  timer = setInterval(() => { if (document.visibilityState === "visible") load(); }, 20000);
  return () => { alive = false; clearInterval(timer); };
}

function tile(name, value, note, id) {
  return h("div.tile", { id: id || null }, h("div.tile-name", name), h("div.tile-value", value), h("div.tile-note.muted", note));
}

function panel(title, id, content) {
  return h("section.panel.chart-panel", { id, "aria-labelledby": id + "-h" }, h("h2", { id: id + "-h" }, title), content);
}

function empty(text) {
  return h("div.nodata", h("p", "No data yet"), h("p.muted", text));
}

function learning(curve) {
  const pts = curve.filter((v) => typeof v.accuracy === "number");
  if (!pts.length) return empty("One point appears per model version once a model has been trained and evaluated.");
  // `accuracy` is estimated on every item of the project (labels weighted by
  // their confidence bin's share of all items), with a 95 % interval; the
  // cross-validated accuracy of the labels themselves undershoots, since
  // active learning chose the hardest items.
  const cv = pts.filter((v) => typeof v.cv_accuracy === "number");
  const iv = (v) => Array.isArray(v.accuracy_interval) && v.accuracy_interval.length === 2;
  const range = (v) => iv(v) ? ` (95 % interval ${fmt.pct(v.accuracy_interval[0], 1)}–${fmt.pct(v.accuracy_interval[1], 1)})` : "";
  const tip = (v, what, x, extra = "") => `v${v.version} · ${fmt.int(v.n_labels)} labels · ${what} ${fmt.pct(x, 1)}${extra}`;
  const series = [{
    key: "accuracy", name: "accuracy on all items (estimated)", color: C.accuracy,
    points: pts.map((v) => ({ x: v.n_labels, y: v.accuracy, tip: tip(v, "estimated accuracy", v.accuracy, range(v)) })),
    band: pts.filter(iv).map((v) => ({ x: v.n_labels, lo: v.accuracy_interval[0], hi: v.accuracy_interval[1] })),
  }];
  if (cv.length) series.push({ key: "cv_accuracy", name: "on the labels chosen (cross-validated)", color: C.f1, dash: "6 4", points: cv.map((v) => ({ x: v.n_labels, y: v.cv_accuracy, tip: tip(v, "cross-validated accuracy of the chosen labels", v.cv_accuracy) })) });
  const lo = Math.min(...series.flatMap((s) => s.points.map((p) => p.y)));
  const last = pts[pts.length - 1];
  return [
    lineChart({
      series, xLabel: "labels", yLabel: "score", yMin: Math.max(0, Math.floor(lo * 10) / 10 - 0.05), yMax: 1,
      fmtX: (v) => fmt.int(Math.round(v)), fmtY: (v) => (v * 100).toFixed(0) + "%",
      label: `Learning curve: ${pts.length} model versions; latest v${last.version} at ${last.n_labels} labels, accuracy ${fmt.pct(last.accuracy, 1)}`,
    }),
    h("div.chart-foot", legend(series), h("span.muted", `${pts.length} version${pts.length > 1 ? "s" : ""} · latest v${last.version}: ${fmt.pct(last.accuracy, 1)}${range(last)}`)),
    h("p.muted.chart-note", "Accuracy is estimated on every item of the project, not only on the labelled ones: active learning asks for the hardest items, so accuracy on those (dashed) understates the model. The band is the 95 % interval."),
  ];
}

function distribution(labels, dist, sources) {
  const names = [...labels, ...Object.keys(dist).filter((k) => !labels.includes(k))];
  const total = Object.values(dist).reduce((a, b) => a + b, 0);
  if (!total) return empty("Counts per label appear with the first labels.");
  const rows = names.map((l, i) => ({ label: l, value: dist[l] || 0, color: C.bars[i % C.bars.length] }));
  const SRC = { human: "annotators", import: "imported", review: "confirmed in review", override: "overridden in review" };
  const srcRows = Object.entries(sources).filter(([, n]) => n)
    .map(([k, n]) => ({ label: SRC[k] || k, value: n, color: "#8a9099" }));
  return [
    barList({ rows, label: "Label distribution: " + rows.map((r) => `${r.label} ${r.value}`).join(", "),
      fmtV: (v) => `${fmt.int(v)} (${Math.round((v / total) * 100)}%)` }),
    srcRows.length ? [
      h("h3.sub", "Where the labels came from"),
      barList({ rows: srcRows, label: "Label sources: " + srcRows.map((r) => `${r.label} ${r.value}`).join(", ") }),
    ] : null,
  ];
}

function confidence(hist) {
  const counts = hist?.counts || [];
  const total = counts.reduce((a, b) => a + b, 0);
  if (!total) return empty("Shown once a model has scored the unlabeled pool.");
  const edges = hist.edges;
  const cats = counts.map((_, i) => `${(+edges[i]).toFixed(1)}–${(+edges[i + 1]).toFixed(1)}`);
  const low = counts.reduce((a, n, i) => a + (edges[i + 1] <= 0.7 + 1e-9 ? n : 0), 0);
  return [
    columnChart({ categories: cats, series: [{ name: "items", color: C.accuracy, values: counts }], xLabel: "confidence of the model's top label", yLabel: "items",
      label: `Confidence histogram of ${total} unlabeled items` }),
    h("div.chart-foot", h("span.muted", `${fmt.int(total)} unlabeled items · ${fmt.int(low)} below 0.7`
      + (hist.model_version ? ` · as v${hist.model_version} ranked the pool` : ""))),
  ];
}

function routing(vol) {
  if (!Array.isArray(vol) || !vol.length) return empty("Daily counts of predictions routed auto / review / escalate appear once services call predict.");
  const days = vol.map((d) => d.day);
  const series = ["auto", "review", "escalate"].map((k) => ({ name: k, color: C[k], values: vol.map((d) => d[k] || 0) }));
  const tot = (k) => series.find((s) => s.name === k).values.reduce((a, b) => a + b, 0);
  const label = (d) => { const t = new Date(d + (String(d).length <= 10 ? "T00:00:00Z" : "")); return isNaN(t) ? String(d) : t.toLocaleDateString("en-GB", { day: "numeric", month: "short", timeZone: "UTC" }); };
  return [
    columnChart({ categories: days.map(label), series, xLabel: "day (UTC)", yLabel: "predictions", every: Math.ceil(days.length / 10),
      label: `Routing volumes over ${days.length} days: auto ${tot("auto")}, review ${tot("review")}, escalate ${tot("escalate")}` }),
    h("div.chart-foot", legend(series), h("span.muted", `auto ${fmt.int(tot("auto"))} · review ${fmt.int(tot("review"))} · escalate ${fmt.int(tot("escalate"))}`)),
  ];
}

function annotators(rows) {
  if (!rows.length) return empty("Each annotator's labels, undos and pace appear here.");
  const sorted = [...rows].sort((a, b) => b.labels - a.labels);
  return h("div.table-wrap", h("table.data",
    h("thead", h("tr", h("th", { scope: "col" }, "Annotator"), h("th.num", { scope: "col" }, "Labels"), h("th.num", { scope: "col" }, "Undone"), h("th.num", { scope: "col" }, "Median time per label"))),
    h("tbody", sorted.map((a) => h("tr",
      h("td", a.annotator), h("td.num", fmt.int(a.labels)), h("td.num", fmt.int(a.undone || 0)), h("td.num", fmt.secs(a.median_duration_ms)))))));
}

// A failed audit of auto-accepted cases: shown above everything else.
function auditAlert(audit) {
  if (!audit?.alert) return null;
  return h("div.alert#audit-alert", { role: "alert" }, h("strong", "Automation audit: "), audit.alert,
    ". Thresholds tighten at the next retrain.");
}

function automation(st, p) {
  const cal = st.calibration;
  const audit = st.audit || {};
  const rows = [];
  if (cal) {
    rows.push(["Target precision", fmt.pct(cal.target_precision, 1)]);
    if (cal.auto_threshold === null || cal.auto_threshold === undefined) {
      rows.push(["Auto threshold", "none: everything goes to people"]);
      rows.push(["Why", cal.reason || "no threshold meets the target"]);
    } else {
      rows.push(["Auto threshold", (+cal.auto_threshold).toFixed(3)]);
      rows.push(["Estimated precision", `${fmt.pct(cal.estimated_precision, 1)} (≥ ${fmt.pct(cal.precision_lower_bound, 1)} at 95 %)`]);
      rows.push(["Expected auto coverage", fmt.pct(cal.expected_coverage, 1)]);
      if (cal.reason) rows.push(["Note", cal.reason]);
    }
    rows.push(["Held-out labels", fmt.int(cal.n_heldout)]);
  } else {
    rows.push(["Thresholds", `auto ≥ ${p.routing.auto_threshold}, review ≥ ${p.routing.review_threshold}`]);
    rows.push(["Calibration", "set a target precision under Settings to calibrate the auto threshold on held-out labels"]);
  }
  rows.push(["Audited auto cases", audit.audited ? `${fmt.int(audit.audited)} · precision ${fmt.pct(audit.precision, 1)}` : "none yet"]);
  return h("dl.facts#calibration", rows.map(([k, v]) => [h("dt", k), h("dd", v)]));
}

function reviewers(rows, gold) {
  if (!rows.length) return empty("Each reviewer's agreement with the model, with gold answers and blind items appears here.");
  const pct = (x) => (x === null || x === undefined ? "—" : fmt.pct(x, 0));
  return [
    h("div.table-wrap", h("table.data",
      h("thead", h("tr", h("th", { scope: "col" }, "Reviewer"), h("th.num", { scope: "col" }, "Reviews"),
        h("th.num", { scope: "col", title: "agreement with the model when its suggestion was shown" }, "Agrees with model"),
        h("th.num", { scope: "col", title: "agreement with the model on blind items" }, "Blind"),
        h("th.num", { scope: "col", title: "right answers on gold items" }, "Gold"),
        h("th.num", { scope: "col" }, "Median time"), h("th", { scope: "col" }, "Flag"))),
      h("tbody", rows.map((r) => h("tr", { dataset: { reviewer: r.reviewer } },
        h("td", r.reviewer), h("td.num", fmt.int(r.reviews)), h("td.num", pct(r.agree_with_model_rate)),
        h("td.num", pct(r.blind_agreement_rate)),
        h("td.num", r.gold?.answered ? `${pct(r.gold.accuracy)} of ${fmt.int(r.gold.answered)}` : "—"),
        h("td.num", fmt.secs(r.median_duration_ms)),
        h("td", r.rubber_stamp_suspected
          ? h("span.flag", { title: (r.rubber_stamp_reasons || []).join("; ") }, "rubber-stamping?", h("span.muted.reason", " " + (r.rubber_stamp_reasons || []).join("; ")))
          : h("span.muted", "—"))))))),
    gold?.items ? h("div.chart-foot", h("span.muted", `${fmt.int(gold.items)} gold items · ${fmt.int(gold.answers)} answers · ${pct(gold.accuracy)} right · ${fmt.int(gold.wrong_suggestions_accepted)} of ${fmt.int(gold.wrong_suggestions_shown)} wrong suggestions accepted`)) : null,
  ];
}
