// Annotate and review: one item at a time, keyboard first. The next items are
// leased ahead of time, so a label moves on at once and is saved behind the
// scenes; a failed save is reported and taken back.
import { del, get, post, session } from "./api.js";
import { clear, fmt, h, hotkeys, toast, typing } from "./util.js";

const PREFETCH = 4; // items leased per request
const LOW_WATER = 3; // a new request when fewer than this many wait

export async function annotateView(main, pid, mode) {
  const review = mode === "review";
  const project = await get(`/projects/${pid}`);
  const labels = project.labels;
  const keys = hotkeys(labels);
  const byKey = new Map(keys.map((k, i) => [k, labels[i]]).filter(([k]) => k !== null));
  const shownKeys = keys.filter((k) => k !== null);
  let leaseMs = (project.lease_seconds || 600) * 1000;
  // An item counts as expired a little before the server says so.
  const margin = () => Math.min(5000, leaseMs * 0.1);
  const queuePath = `/projects/${pid}/queue/${review ? "review" : "next"}`;

  const s = {
    buffer: [],          // leased entries waiting, each {entry, expiresAt}
    current: null,       // {entry, expiresAt, shownAt}
    history: [],         // this session's labels, newest last
    fetching: null,
    exhausted: false,
    expired: false,
    busy: false,         // an undo is in flight
    pending: 0,          // labels not yet acknowledged
    sessionCount: 0,
    startedAt: Date.now(),
    durations: [],
    counts: { ...project.counts },
    timer: null,
    alive: true,
  };

  // ---- layout ----
  const progressBar = h("span");
  const progressText = h("span#progress-text");
  const sessionText = h("span#session-text");
  const stage = h("div.stage#stage");
  const labelBar = h("div.label-bar#label-bar", { role: "group", "aria-label": "Labels" });
  const lastAction = h("span.last-action#last-action", { "aria-live": "polite" });
  const keysHelp = h("p.keys.muted",
    review ? [h("kbd", "Enter"), " confirm the proposal · "] : null,
    shownKeys.length ? [h("kbd", shownKeys[0]), "–", h("kbd", shownKeys[shownKeys.length - 1])] : null,
    review ? " choose (override) · " : " label · ",
    h("kbd", "s"), " skip · ", h("kbd", "u"), " or ", h("kbd", "⌫"), " undo");
  const footer = h("div.annotate-foot", keysHelp, lastAction);
  function note(text) { lastAction.textContent = text; }

  clear(main,
    h("section.annotate#annotate", { "aria-label": review ? "Review" : "Annotate", dataset: { mode } },
      h("div.statusbar",
        h("div.progress-block",
          h("div.progress", { "aria-hidden": "true" }, progressBar),
          progressText),
        sessionText),
      stage,
      labelBar,
      footer));

  const section = main.querySelector("#annotate");
  function setPending(d) {
    s.pending += d;
    section.dataset.pending = String(s.pending);
  }
  setPending(0);

  function renderProgress() {
    const c = s.counts;
    if (review) {
      // Escalated cases wait for a senior reviewer; others never see them.
      const mine = session.me?.senior ? c.review : c.review - (c.escalated || 0);
      progressText.textContent = mine === c.review
        ? `${fmt.int(c.review)} waiting for review`
        : `${fmt.int(mine)} waiting for review · ${fmt.int(c.escalated)} escalated to senior reviewers`;
      const seen = s.sessionCount + Math.max(0, mine);
      progressBar.style.width = (seen ? (s.sessionCount / seen) * 100 : 0).toFixed(1) + "%";
    } else {
      const done = c.items ? c.labeled / c.items : 0;
      progressText.textContent = `${fmt.int(c.labeled)} / ${fmt.int(c.items)} labeled`;
      progressBar.style.width = (done * 100).toFixed(1) + "%";
    }
    const n = s.sessionCount;
    let pace = "";
    if (s.durations.length) {
      const sorted = [...s.durations].sort((a, b) => a - b);
      const median = sorted[Math.floor(sorted.length / 2)];
      pace = ` · ${median < 100 ? "<0.1" : (median / 1000).toFixed(1)} s per item`;
      const minutes = (Date.now() - s.startedAt) / 60000;
      if (n >= 5 && minutes >= 0.5) pace += ` · ${(n / minutes).toFixed(1)} per minute`;
    }
    clear(sessionText, "This session: ", h("strong#session-count", { dataset: { count: n } }, fmt.int(n)), pace);
  }

  // ---- the queue ----
  function fetchMore() {
    if (s.fetching) return s.fetching;
    const at = Date.now();
    s.fetching = post(queuePath, { n: PREFETCH })
      .then((r) => {
        const have = new Set([s.current?.entry.item.id, ...s.buffer.map((b) => b.entry.item.id)]);
        const fresh = r.items.filter((e) => !have.has(e.item.id));
        for (const entry of fresh) s.buffer.push({ entry, expiresAt: at + leaseMs - margin() });
        if (!fresh.length && !s.buffer.length) s.exhausted = true;
        else s.exhausted = false;
        stage.dataset.buffered = String(s.buffer.length);
      })
      .catch((e) => { if (s.alive) toast(`Could not fetch items: ${e.message}`, "error"); })
      .finally(() => { s.fetching = null; });
    return s.fetching;
  }

  async function showNext() {
    clearTimeout(s.timer);
    s.current = null;
    while (s.buffer.length && s.buffer[0].expiresAt < Date.now()) s.buffer.shift();
    if (!s.buffer.length) {
      renderLoading();
      await fetchMore();
      if (!s.alive) return;
      while (s.buffer.length && s.buffer[0].expiresAt < Date.now()) s.buffer.shift();
      if (!s.buffer.length) { renderEmpty(); return; }
    }
    show(s.buffer.shift());
    stage.dataset.buffered = String(s.buffer.length);
    if (s.buffer.length < LOW_WATER) fetchMore();
  }

  function show(b) {
    s.current = { ...b, shownAt: performance.now() };
    s.expired = false;
    clearTimeout(s.timer);
    s.timer = setTimeout(onExpired, Math.max(0, b.expiresAt - Date.now()));
    renderItem(b.entry);
  }

  function onExpired() {
    s.expired = true;
    // The server lets the lease go a little later than we do (margin): a
    // fresh request before then would not get these items back.
    s.waitUntil = Math.max(s.waitUntil || 0, (s.current?.expiresAt ?? Date.now()) + margin() + 250);
    s.current = null;
    s.buffer = s.buffer.filter((b) => b.expiresAt > Date.now());
    stage.dataset.state = "expired";
    clear(stage, h("div.panel.state#state-expired",
      h("h2", "Your hold on this item expired"),
      h("p", `Items are kept for you for ${leaseMs < 120000 ? Math.round(leaseMs / 1000) + " seconds" : Math.round(leaseMs / 60000) + " minutes"}; after that they go back to the queue for others.`),
      h("button.primary", { type: "button", onclick: resume }, "Get fresh items ", h("kbd", "r"))));
    renderLabels(null);
  }

  async function resume() {
    if (s.fetching || s.current || s.resuming) return;
    s.resuming = true;
    s.exhausted = false;
    s.expired = false;
    stage.dataset.state = "loading";
    clear(stage, h("p.muted.loading", "Fetching items…"));
    try {
      // Settings (the lease, the counts) may have changed meanwhile.
      const p = await get(`/projects/${pid}`);
      leaseMs = (p.lease_seconds || 600) * 1000;
      if (!s.pending) s.counts = { ...p.counts };
      renderProgress();
    } catch { /* the queue request reports problems */ }
    const wait = (s.waitUntil || 0) - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    s.resuming = false;
    if (s.alive) await showNext();
  }

  // ---- rendering ----
  let waits = 0; // times a person had to wait for the next item (the prefetch fell behind)
  function renderLoading() {
    if (s.sessionCount) stage.dataset.waits = String(++waits);
    stage.dataset.state = "loading";
    clear(stage, h("p.muted.loading", "Loading the next item…"));
  }

  function renderEmpty() {
    stage.dataset.state = "empty";
    clear(stage, h("div.panel.state#state-empty",
      h("h2", review ? "Nothing to review" : "The queue is empty"),
      h("p", review
        ? (!session.me?.senior && s.counts.escalated > 0
          ? `No item is waiting for you. ${fmt.int(s.counts.escalated)} escalated ${s.counts.escalated === 1 ? "case waits" : "cases wait"} for a senior reviewer.`
          : "No item is waiting for a review right now. New ones arrive when predictions are routed to people.")
        : s.counts.unlabeled <= 0
          ? `All ${fmt.int(s.counts.items)} items are labeled. Import more under Settings, or see how the model is doing.`
          : "The items left are held by other annotators right now. They come back if their lease runs out."),
      h("div.actions",
        h("button.primary", { type: "button", onclick: resume }, "Check again ", h("kbd", "r")),
        h("a.button", { href: `#/p/${pid}/dashboard` }, "See the dashboard"))));
    renderLabels(null);
  }

  function tierOf(entry) {
    return entry.tier ?? entry.item.tier ?? entry.item.meta?.tier ?? null;
  }

  function renderItem(entry) {
    const item = entry.item;
    const sug = entry.suggestion;
    const tier = tierOf(entry);
    stage.dataset.state = "item";
    stage.dataset.itemId = item.id;
    const head = h("div.item-head",
      h("span.item-id.muted", { title: "external id" }, item.external_id || `item ${item.id}`),
      tier ? h("span.tier", { dataset: { tier: String(tier) } }, `tier ${tier}`) : null,
      sug ? h("span.suggestion#suggestion",
        review ? "Model proposes " : "Model suggests ",
        h("strong", sug.label),
        h("span.conf", { title: "model confidence" },
          h("span.meter", { "aria-hidden": "true" }, h("span", { style: { width: (sug.confidence * 100).toFixed(0) + "%" } })),
          fmt.pct(sug.confidence)))
        : h("span.suggestion.muted", review ? "Choose the label" : "No suggestion yet"));
    const body = [];
    if (item.text) body.push(h("div.item-text#item-text", { lang: "und" }, item.text.replace(/^\s+/, "")));
    if (item.features && item.features.length) body.push(featureTable(item.features, !item.text));
    const meta = Object.entries(item.meta || {}).filter(([k]) => k !== "tier");
    if (meta.length) {
      body.push(h("dl.meta", meta.map(([k, v]) => [h("dt", k), h("dd", typeof v === "object" ? JSON.stringify(v) : String(v))])));
    }
    clear(stage, h("article.item-card#item", { dataset: { id: item.id, externalId: item.external_id ?? "" }, "aria-label": "Item" },
      head, h("div.item-body", { tabindex: "0", "aria-label": "Item content (scroll with arrow keys)" }, body)));
    renderLabels(sug);
  }

  function renderLabels(sug) {
    const active = !!s.current;
    clear(labelBar,
      review && sug ? h("button.confirm#confirm", { type: "button", disabled: !active, dataset: { label: sug.label }, onclick: () => label(sug.label) },
        "Confirm ", h("strong", sug.label), " ", h("kbd", "Enter")) : null,
      h("div.label-group", labels.map((l, i) => h("button.label-btn", {
        type: "button", disabled: !active, dataset: { label: l, key: keys[i] ?? "" },
        "aria-keyshortcuts": keys[i],
        class: "label-btn" + (!review && sug && sug.label === l ? " suggested" : "") + (labels.length > 6 ? " compact" : ""),
        onclick: () => label(l),
        title: !review && sug && sug.label === l ? "the model's suggestion" : null,
      }, keys[i] !== null ? h("kbd", keys[i]) : null, h("span", l)))),
      h("div.command-group",
        h("button.ghost#skip", { type: "button", disabled: !active, onclick: skip }, h("kbd", "s"), " Skip"),
        h("button.ghost#undo", { type: "button", disabled: !s.history.length, onclick: undo }, h("kbd", "u"), " Undo")));
  }

  // ---- actions ----
  function label(name) {
    if (!s.current || s.busy) return;
    const { entry } = s.current;
    const duration = Math.round(performance.now() - s.current.shownAt);
    const rec = { entry, label: name, labelId: null, failed: false };
    s.history.push(rec);
    s.sessionCount += 1;
    s.durations.push(Math.min(duration, 300000));
    bump(+1, entry);
    setPending(+1);
    rec.promise = post(`/projects/${pid}/items/${entry.item.id}/labels`, { label: name, duration_ms: duration })
      .then((l) => { rec.labelId = l.id; })
      .catch((e) => {
        rec.failed = true;
        const i = s.history.indexOf(rec);
        if (i >= 0) s.history.splice(i, 1);
        s.sessionCount -= 1;
        s.durations.pop();
        bump(-1, entry);
        const what = entry.item.external_id || `item ${entry.item.id}`;
        toast(e.status === 409
          ? `Not saved: your hold on ${what} expired and someone else has it now.`
          : `Not saved (${what}): ${e.message}`, "error", 7000);
        if (s.alive) { renderProgress(); renderLabels(s.current?.entry.suggestion ?? null); }
      })
      .finally(() => { setPending(-1); maybeRefreshCounts(); });
    flash(name);
    note(`${entry.item.external_id || "item " + entry.item.id} → ${name}`);
    showNext();
    renderProgress();
  }

  function bump(d, entry) {
    if (review || entry.item.status === "review") {
      s.counts.review -= d;
      if (tierOf(entry) === "escalate") s.counts.escalated = (s.counts.escalated || 0) - d;
    } else s.counts.unlabeled -= d;
    s.counts.labeled += d;
  }

  function flash(name) {
    const b = labelBar.querySelector(`[data-label="${CSS.escape(name)}"]`);
    if (b) { b.classList.add("pressed"); setTimeout(() => b.classList.remove("pressed"), 160); }
  }

  function skip() {
    if (!s.current || s.busy) return;
    note(`Skipped ${s.current.entry.item.external_id || "item " + s.current.entry.item.id}: it returns to the queue when its lease ends.`);
    showNext();
  }

  async function undo() {
    if (s.busy) return;
    const rec = s.history.pop();
    if (!rec) { note("Nothing to undo in this session."); return; }
    s.busy = true;
    try {
      await rec.promise;
      if (rec.failed || rec.labelId === null) return;
      await del(`/projects/${pid}/labels/${rec.labelId}`);
      s.sessionCount -= 1;
      s.durations.pop();
      bump(-1, rec.entry);
      if (s.current) s.buffer.unshift({ entry: s.current.entry, expiresAt: s.current.expiresAt });
      s.buffer = s.buffer.filter((b) => b.entry.item.id !== rec.entry.item.id);
      s.exhausted = false;
      show({ entry: rec.entry, expiresAt: Date.now() + leaseMs - margin() });
      note(`Undone: “${rec.label}” on ${rec.entry.item.external_id || "item " + rec.entry.item.id}.`);
    } catch (e) {
      s.history.push(rec);
      toast(`Could not undo: ${e.message}`, "error");
    } finally {
      s.busy = false;
      if (s.alive) { renderProgress(); renderLabels(s.current?.entry.suggestion ?? null); }
    }
  }

  let lastRefresh = Date.now();
  function maybeRefreshCounts() {
    if (s.pending || Date.now() - lastRefresh < 15000 || !s.alive) return;
    lastRefresh = Date.now();
    get(`/projects/${pid}`).then((p) => {
      if (!s.pending && s.alive) { s.counts = { ...p.counts }; renderProgress(); }
    }, () => {});
  }

  function onKey(e) {
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e)) return;
    const k = e.key;
    if (byKey.has(k)) {
      e.preventDefault();
      if (!e.repeat) label(byKey.get(k));
    } else if (k === "Enter") {
      const t = e.target;
      if (t && /^(BUTTON|A)$/.test(t.tagName)) return; // the focused control acts
      if (e.repeat) return;
      if (review && s.current?.entry.suggestion) { e.preventDefault(); label(s.current.entry.suggestion.label); }
    } else if (k === "s" || k === "S") {
      e.preventDefault(); skip();
    } else if (k === "u" || k === "U" || k === "Backspace") {
      e.preventDefault(); undo();
    } else if ((k === "r" || k === "R") && !s.current) {
      e.preventDefault(); resume();
    }
  }

  document.addEventListener("keydown", onKey);
  renderProgress();
  renderLabels(null);
  await showNext();
  if (s.alive && section.isConnected) document.getElementById("main").focus({ preventScroll: true });

  return () => {
    s.alive = false;
    clearTimeout(s.timer);
    document.removeEventListener("keydown", onKey);
  };
}

function featureTable(values, prominent) {
  const n = values.length;
  const side = Math.round(Math.sqrt(n));
  const square = side * side === n && n >= 16;
  const cols = square ? side : Math.min(n, 12);
  const lo = Math.min(...values), hi = Math.max(...values);
  const shade = (v) => (hi > lo ? (v - lo) / (hi - lo) : 0);
  const rows = [];
  for (let r = 0; r < Math.ceil(n / cols); r++) {
    const cells = [];
    for (let c = 0; c < cols && r * cols + c < n; c++) {
      const i = r * cols + c;
      const v = values[i];
      const t = shade(v);
      cells.push(h("td", {
        title: `feature ${i}: ${v}`,
        style: { background: `rgba(47, 93, 171, ${(t * 0.55).toFixed(3)})`, color: t > 0.75 ? "#fff" : "" },
      }, Number.isInteger(v) ? String(v) : Number(v).toPrecision(3)));
    }
    rows.push(square ? h("tr", cells) : [
      h("tr.idx", Array.from({ length: cells.length }, (_, c) => h("th", { scope: "col" }, `f${r * cols + c}`))),
      h("tr", cells),
    ]);
  }
  return h("div.features" + (prominent ? ".prominent" : ""),
    h("table.feature-table" + (square ? ".square" : ""), h("caption.muted", `${n} features`), h("tbody", rows)));
}
