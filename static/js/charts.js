// Hand-made SVG charts: a line chart, vertical bars (optionally stacked) and
// horizontal bars. Each scales with its container (viewBox) and carries a
// text equivalent (<title> per mark, aria-label on the chart).
const NS = "http://www.w3.org/2000/svg";
const W = 560, H = 250;
const M = { top: 14, right: 16, bottom: 42, left: 48 };

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}
const title = (t) => s("title", {}, t);

function svgRoot(label, w = W, h = H) {
  return s("svg", { viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": label, class: "chart", preserveAspectRatio: "xMidYMid meet" });
}

/** Round tick values covering [lo, hi]. */
export function ticks(lo, hi, n = 5) {
  if (hi <= lo) hi = lo + 1;
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-6; v += step) out.push(+v.toFixed(10));
  return out;
}

function yAxis(g, yTicks, y, fmtY, width) {
  for (const t of yTicks) {
    const yy = y(t);
    g.append(s("line", { x1: M.left, x2: width - M.right, y1: yy, y2: yy, class: "grid" }));
    g.append(s("text", { x: M.left - 8, y: yy + 4, "text-anchor": "end", class: "tick" }, fmtY(t)));
  }
}

function axisTitle(g, text, x, y, rotate) {
  g.append(s("text", { x, y, "text-anchor": "middle", class: "axis-title", transform: rotate ? `rotate(-90 ${x} ${y})` : null }, text));
}

/**
 * Lines with points. series: [{name, color, dash, points: [{x, y, tip}]}].
 */
export function lineChart({ series, xLabel, yLabel, yMin, yMax, fmtX = String, fmtY = String, label }) {
  const svg = svgRoot(label);
  const all = series.flatMap((se) => [...se.points, ...(se.band || []).flatMap((b) => [{ x: b.x, y: b.lo }, { x: b.x, y: b.hi }])]);
  let x0 = Math.min(...all.map((p) => p.x)), x1 = Math.max(...all.map((p) => p.x));
  const single = x0 === x1;
  if (single) { x0 -= 1; x1 += 1; }
  const ys = all.map((p) => p.y);
  const lo = yMin ?? Math.min(...ys), hi = yMax ?? Math.max(...ys);
  const yTicks = ticks(lo, hi, 4);
  const step = yTicks.length > 1 ? yTicks[1] - yTicks[0] : 1;
  while (yTicks[0] > lo + 1e-9) yTicks.unshift(+(yTicks[0] - step).toFixed(10));
  const ylo = yTicks[0], yhi = Math.max(hi, yTicks[yTicks.length - 1]);
  const pad = (x1 - x0) * 0.04;
  const x = (v) => M.left + ((v - x0 + pad) / (x1 - x0 + 2 * pad)) * (W - M.left - M.right);
  const y = (v) => H - M.bottom - ((v - ylo) / (yhi - ylo || 1)) * (H - M.top - M.bottom);
  const g = s("g");
  yAxis(g, yTicks, y, fmtY, W);
  const xTicks = single ? [x0 + 1] : ticks(x0, x1, 5).filter((t) => t >= x0 && t <= x1 && Number.isInteger(t));
  for (const t of xTicks) {
    g.append(s("text", { x: x(t), y: H - M.bottom + 18, "text-anchor": "middle", class: "tick" }, fmtX(t)));
  }
  g.append(s("line", { x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom, class: "axis" }));
  axisTitle(g, xLabel, (M.left + W - M.right) / 2, H - 6);
  axisTitle(g, yLabel, 13, (M.top + H - M.bottom) / 2, true);
  for (const se of series) {
    // An interval drawn as a shaded band behind the line.
    const band = [...(se.band || [])].sort((a, b) => a.x - b.x);
    if (band.length > 1) {
      const pts = [...band.map((b) => [x(b.x), y(b.hi)]), ...band.reverse().map((b) => [x(b.x), y(b.lo)])];
      g.append(s("polygon", { points: pts.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(" "), fill: se.color, "fill-opacity": 0.14, stroke: "none", class: "series-band" }));
    }
  }
  for (const se of series) {
    const pts = [...se.points].sort((a, b) => a.x - b.x);
    if (pts.length > 1) {
      g.append(s("polyline", {
        points: pts.map((p) => `${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join(" "),
        fill: "none", stroke: se.color, "stroke-width": 2.5, "stroke-dasharray": se.dash || null,
        "stroke-linejoin": "round", class: "series-line",
      }));
    }
    for (const p of pts) {
      g.append(s("circle", { cx: x(p.x), cy: y(p.y), r: 4.5, fill: "#fff", stroke: se.color, "stroke-width": 2.5, class: "point", "data-series": se.key ?? se.name },
        title(p.tip || `${se.name}: ${fmtY(p.y)} at ${fmtX(p.x)}`)));
    }
  }
  svg.append(g);
  return svg;
}

/**
 * Vertical bars; several series stack. categories: ["0.0–0.1", …];
 * series: [{name, color, values: [n per category]}].
 */
export function columnChart({ categories, series, xLabel, yLabel, fmtY = (v) => v.toLocaleString("en"), label, every = 1 }) {
  const svg = svgRoot(label);
  const totals = categories.map((_, i) => series.reduce((a, se) => a + (se.values[i] || 0), 0));
  const max = Math.max(1, ...totals);
  const yTicks = ticks(0, max, 4).filter((t) => Number.isInteger(t));
  const step = yTicks.length > 1 ? yTicks[1] - yTicks[0] : 1;
  while (yTicks[yTicks.length - 1] < max) yTicks.push(yTicks[yTicks.length - 1] + step);
  const yhi = yTicks[yTicks.length - 1];
  const y = (v) => H - M.bottom - (v / yhi) * (H - M.top - M.bottom);
  const band = (W - M.left - M.right) / categories.length;
  const gap = Math.min(band * 0.18, 10);
  const g = s("g");
  yAxis(g, yTicks, y, fmtY, W);
  categories.forEach((c, i) => {
    let acc = 0;
    for (const se of series) {
      const v = se.values[i] || 0;
      if (v > 0) {
        const top = y(acc + v), bottom = y(acc);
        g.append(s("rect", {
          x: M.left + i * band + gap / 2, y: top, width: Math.max(1, band - gap), height: Math.max(0.5, bottom - top),
          fill: se.color, class: "bar", "data-series": se.name, rx: 2,
        }, title(`${c}${series.length > 1 ? " · " + se.name : ""}: ${fmtY(v)}`)));
      }
      acc += v;
    }
    if (i % every === 0) {
      g.append(s("text", { x: M.left + i * band + band / 2, y: H - M.bottom + 18, "text-anchor": "middle", class: "tick" }, c));
    }
  });
  g.append(s("line", { x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom, class: "axis" }));
  axisTitle(g, xLabel, (M.left + W - M.right) / 2, H - 6);
  if (yLabel) axisTitle(g, yLabel, 13, (M.top + H - M.bottom) / 2, true);
  svg.append(g);
  return svg;
}

/** Horizontal bars with the value at the end: rows [{label, value, color}]. */
export function barList({ rows, fmtV = (v) => v.toLocaleString("en"), label }) {
  const row = 30, left = 170, right = 80;
  const height = Math.max(row * rows.length + 10, 40);
  const svg = svgRoot(label, W, height);
  const max = Math.max(1, ...rows.map((r) => r.value));
  rows.forEach((r, i) => {
    const yy = 6 + i * row;
    const w = (r.value / max) * (W - left - right);
    svg.append(s("text", { x: left - 10, y: yy + 17, "text-anchor": "end", class: "bar-label" }, r.label.length > 24 ? r.label.slice(0, 23) + "…" : r.label));
    svg.append(s("rect", { x: left, y: yy + 3, width: W - left - right, height: row - 10, class: "track", rx: 3 }));
    svg.append(s("rect", { x: left, y: yy + 3, width: Math.max(w, r.value ? 2 : 0), height: row - 10, fill: r.color, class: "bar", rx: 3 },
      title(`${r.label}: ${fmtV(r.value)}`)));
    svg.append(s("text", { x: left + w + 8, y: yy + 17, class: "bar-value" }, fmtV(r.value)));
  });
  return svg;
}

export function legend(items) {
  const ul = document.createElement("ul");
  ul.className = "legend";
  for (const { name, color, dash } of items) {
    const li = document.createElement("li");
    const sw = document.createElement("span");
    sw.className = "swatch" + (dash ? " dashed" : "");
    sw.style.setProperty("--c", color);
    li.append(sw, name);
    ul.append(li);
  }
  return ul;
}
