// Admin: a project's settings, import, export and models; new projects and tokens.
import { del, download, get, patch, post, session, upload } from "./api.js";
import { clear, errorBox, fmt, h, hotkeys, toast } from "./util.js";

const STRATEGIES = [
  ["auto", "Auto (default) — diverse uncertain batches, a fifth at random"],
  ["entropy", "Entropy — most uncertain overall"],
  ["margin", "Margin — closest top two labels"],
  ["least_confidence", "Least confidence — lowest top label"],
  ["random", "Random — a baseline"],
];
const ROLES = ["annotator", "reviewer", "admin", "service"];

function field(label, input, hint) {
  const id = input.id || (input.id = "f-" + Math.random().toString(36).slice(2, 8));
  return h("div.field", h("label", { for: id }, label), input, hint ? h("p.hint", hint) : null);
}

function select(id, options, value) {
  return h("select", { id }, options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)));
}

function splitLabels(s) {
  return s.split(/[,\n]/).map((x) => x.trim()).filter(Boolean);
}

// ---------------------------------------------------------------- settings
export async function settingsView(main, pid, saved = false) {
  const p = await get(`/projects/${pid}`);
  const formMsg = h("div#settings-msg", { role: "status" }, saved ? h("span.notice.ok#settings-saved", "Saved.") : null);

  const countsText = (x) => `${fmt.int(x.counts.items)} items · ${fmt.int(x.counts.labeled)} labeled` + (x.feature_len ? ` · ${x.feature_len} features` : "");
  const headCounts = h("span.muted#settings-counts", countsText(p));
  const name = h("input#s-name", { type: "text", value: p.name, required: true, autocomplete: "off" });
  const newLabels = h("input#s-new-labels", { type: "text", placeholder: "e.g. unsure, other", autocomplete: "off" });
  const strategy = select("s-strategy", STRATEGIES, p.strategy);
  const scheduled = h("input#s-scheduled", { type: "checkbox", checked: p.retrain_cron !== null });
  const cron = h("input#s-cron", { type: "text", value: p.retrain_cron ?? "0 */5 * * * *", spellcheck: "false", autocomplete: "off", class: "mono" });
  const minNew = h("input#s-min-new", { type: "number", min: 1, step: 1, value: p.min_new_labels });
  const auto = h("input#s-auto", { type: "number", min: 0, max: 1, step: "any", value: p.routing.auto_threshold });
  const reviewT = h("input#s-review", { type: "number", min: 0, max: 1, step: "any", value: p.routing.review_threshold });
  const target = h("input#s-target", { type: "number", min: 0, max: 1, step: "any", value: p.routing.target_precision ?? "", placeholder: "off" });
  const lease = h("input#s-lease", { type: "number", min: 1, max: 86400, step: 1, value: p.lease_seconds });
  const syncCron = () => { cron.disabled = !scheduled.checked; minNew.disabled = !scheduled.checked; };
  scheduled.addEventListener("change", syncCron);
  syncCron();

  const form = h("form.panel.settings#settings-form", { onsubmit: save },
    h("h2", "Project"),
    h("div.cols",
      field("Name", name),
      field("Strategy (which item comes next)", strategy)),
    h("div.field", h("span.label-like", "Labels"),
      h("div.labels-inline", hotkeys(p.labels).map((k, i) => h("span.chip", k !== null ? h("kbd", k) : null, p.labels[i]))),
      h("p.hint", "Existing labels are fixed: stored labels and models refer to them.")),
    field("Add labels", newLabels, "Comma-separated; they are appended after the existing ones."),
    h("h3", "Retraining"),
    h("div.field.check", scheduled, h("label", { for: "s-scheduled" }, "Retrain on a schedule")),
    h("div.cols",
      field("Schedule (six-field cron, seconds first)", cron, "0 */5 * * * * = every five minutes"),
      field("Only when at least this many new labels", minNew)),
    h("h3", "Routing rules for predictions"),
    h("div.cols.three",
      field("Auto at or above", auto, "Confidence at which a prediction is taken as is"),
      field("Review at or above", reviewT, "Below this, a prediction is escalated"),
      field("Target precision", target, "If set, thresholds are calibrated to it on each retrain")),
    h("h3", "Queue"),
    h("div.cols", field("Lease (seconds an item is held for one annotator)", lease)),
    h("div.actions", h("button.primary#save", { type: "submit" }, "Save changes"), formMsg));

  async function save(e) {
    e.preventDefault();
    const body = {};
    if (name.value.trim() !== p.name) body.name = name.value.trim();
    const add = splitLabels(newLabels.value);
    if (add.length) body.labels = [...p.labels, ...add];
    if (strategy.value !== p.strategy) body.strategy = strategy.value;
    const cronValue = scheduled.checked ? cron.value.trim() : null;
    if (cronValue !== p.retrain_cron) body.retrain_cron = cronValue;
    if (+minNew.value !== p.min_new_labels) body.min_new_labels = +minNew.value;
    const routing = {};
    if (+auto.value !== p.routing.auto_threshold) routing.auto_threshold = +auto.value;
    if (+reviewT.value !== p.routing.review_threshold) routing.review_threshold = +reviewT.value;
    const tp = target.value === "" ? null : +target.value;
    if (tp !== p.routing.target_precision) routing.target_precision = tp;
    if (Object.keys(routing).length) body.routing = routing;
    if (+lease.value !== p.lease_seconds) body.lease_seconds = +lease.value;
    if (!Object.keys(body).length) { clear(formMsg, h("span.muted", "Nothing changed.")); return; }
    try {
      const updated = await patch(`/projects/${pid}`, body);
      Object.assign(p, updated);
      settingsView(main, pid, true);
    } catch (err) {
      clear(formMsg, h("span.notice.error", { role: "alert" }, err.message));
    }
  }

  // import
  const file = h("input#upload-file", { type: "file", accept: ".csv,.jsonl,.ndjson,.json,text/csv,application/json" });
  const bar = h("progress#upload-progress", { max: 100, value: 0, hidden: true });
  const pct = h("span#upload-pct.muted");
  const result = h("div#upload-result", { role: "status" });
  const uploadBtn = h("button.primary#upload", { type: "button", onclick: doUpload }, "Upload");
  async function doUpload() {
    const f = file.files[0];
    if (!f) { clear(result, h("span.notice.error", "Choose a file first.")); file.focus(); return; }
    const ext = f.name.toLowerCase().split(".").pop();
    const type = ext === "csv" ? "text/csv" : ext === "json" ? "application/json" : "application/x-ndjson";
    uploadBtn.disabled = true;
    bar.hidden = false;
    bar.value = 0;
    result.replaceChildren();
    try {
      const r = await upload(`/projects/${pid}/items`, f, type, (x) => {
        bar.value = Math.round(x * 100);
        pct.textContent = x < 1 ? `${Math.round(x * 100)} % sent` : "Sent; the server is checking every row…";
      });
      bar.value = 100;
      pct.textContent = "";
      clear(result, h("p.notice.ok#upload-done",
        `${f.name}: ${fmt.int(r.inserted)} inserted · ${fmt.int(r.duplicates)} duplicates · ${fmt.int(r.labeled)} with labels.`));
      file.value = "";
      get(`/projects/${pid}`).then((np) => { headCounts.textContent = countsText(np); }, () => {});
    } catch (err) {
      pct.textContent = "";
      clear(result, h("p.notice.error", { role: "alert" }, `${f.name} was not imported: ${err.message}`));
    } finally {
      uploadBtn.disabled = false;
    }
  }

  const importPanel = h("section.panel#import", { "aria-labelledby": "import-h" },
    h("h2#import-h", "Import items"),
    h("p.muted", "CSV with a header (", h("code", "external_id"), ", ", h("code", "text"), ", ", h("code", "label"),
      ", and ", h("code", "features"), " or one column per feature), JSON Lines, or a JSON array. Existing external ids are counted as duplicates and left alone; a batch with a bad row is rejected whole."),
    field("File (.csv, .jsonl, .json)", file),
    h("div.actions", uploadBtn, bar, pct),
    result);

  const exportPanel = h("section.panel#export", { "aria-labelledby": "export-h" },
    h("h2#export-h", "Export labels"),
    h("p.muted", "Every labeled item with its final label."),
    h("div.actions",
      h("button#export-jsonl", { type: "button", onclick: () => exp("jsonl") }, "Download JSONL"),
      h("button#export-csv", { type: "button", onclick: () => exp("csv") }, "Download CSV")));
  async function exp(format) {
    try {
      const n = await download(`/projects/${pid}/export?format=${format}`, `${p.name}-labels.${format}`);
      toast(`Exported ${fmt.int(n)} bytes.`, "ok");
    } catch (err) { toast(`Export failed: ${err.message}`, "error"); }
  }

  const models = h("div#models-table");
  const trainBtn = h("button#train", { type: "button", onclick: train }, "Train now");
  async function train() {
    trainBtn.disabled = true;
    trainBtn.textContent = "Training…";
    try {
      const m = await post(`/projects/${pid}/train?wait=true`);
      toast(`Model v${m.version}: accuracy ${fmt.pct(m.metrics?.accuracy, 1)}`, "ok");
      refreshModels();
    } catch (err) {
      toast(err.code === "not_enough_labels" ? "Not enough labels yet: at least two classes need labels." : `Training failed: ${err.message}`, "error", 6000);
    } finally { trainBtn.disabled = false; trainBtn.textContent = "Train now"; }
  }
  async function refreshModels() {
    try {
      const list = await get(`/projects/${pid}/models`);
      clear(models, list.length ? h("div.table-wrap", h("table.data",
        h("thead", h("tr", ["Version", "Trained", "Labels", "Accuracy", "Macro F1", "Thresholds (auto / review)", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", list.map((m) => h("tr",
          h("td", `v${m.version}`), h("td", fmt.date(m.trained_at)), h("td.num", fmt.int(m.n_labels)),
          h("td.num", fmt.pct(m.metrics?.accuracy, 1)), h("td.num", fmt.pct(m.metrics?.macro_f1, 1)),
          h("td.num", `${fmt.num(m.thresholds?.auto)} / ${fmt.num(m.thresholds?.review)}`),
          h("td", m.active ? h("span.chip.ok", "active") : "")))))) : h("p.muted", "No model yet."));
    } catch (err) { clear(models, errorBox(err)); }
  }
  const modelsPanel = h("section.panel#models", { "aria-labelledby": "models-h" },
    h("div.panel-head", h("h2#models-h", "Models"), trainBtn), models);

  clear(main,
    h("div.page-head", h("h1", `Settings · ${p.name}`), headCounts),
    h("div.settings-grid", form, h("div.side", importPanel, exportPanel)),
    modelsPanel);
  refreshModels();
}

// ---------------------------------------------------------------- admin
export async function adminView(main) {
  const pName = h("input#np-name", { type: "text", required: true, autocomplete: "off", placeholder: "e.g. support-tickets" });
  const pLabels = h("input#np-labels", { type: "text", required: true, autocomplete: "off", placeholder: "e.g. ham, spam" });
  const pStrategy = select("np-strategy", [["", "The server's default"], ...STRATEGIES], "");
  const pMsg = h("div", { role: "status" });
  const newProject = h("form.panel#new-project", {
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        const body = { name: pName.value.trim(), labels: splitLabels(pLabels.value) };
        if (pStrategy.value) body.strategy = pStrategy.value;
        const p = await post("/projects", body);
        toast(`Project ${p.name} created. Import items next.`, "ok");
        location.hash = `#/p/${p.id}/settings`;
      } catch (err) { clear(pMsg, h("p.notice.error", { role: "alert" }, err.message)); }
    },
  }, h("h2", "New project"),
  field("Name", pName),
  field("Labels", pLabels, "Comma-separated, in hotkey order (the first is 1; labels 0–9 are their own keys)."),
  field("Strategy (which item comes next)", pStrategy, "Everything else can be changed later under Settings."),
  h("div.actions", h("button.primary", { type: "submit" }, "Create project")), pMsg);

  const tName = h("input#tok-name", { type: "text", required: true, autocomplete: "off", placeholder: "e.g. alice" });
  const tRole = select("tok-role", ROLES.map((r) => [r, r]), "annotator");
  const secret = h("div#token-secret", { role: "status" });
  const list = h("div#tokens-table");
  const newToken = h("form.panel#new-token", {
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        const t = await post("/tokens", { name: tName.value.trim(), role: tRole.value });
        const code = h("code.secret", t.token);
        clear(secret, h("div.notice.ok",
          h("p", `Token for ${t.name} (${t.role}). It is shown only now: copy it and hand it over.`),
          h("div.secret-row", code, h("button", { type: "button", onclick: () => copy(t.token) }, "Copy"))));
        tName.value = "";
        loadTokens();
      } catch (err) { clear(secret, h("p.notice.error", { role: "alert" }, err.message)); }
    },
  }, h("h2", "New token"),
  h("div.cols", field("Name", tName), field("Role", tRole)),
  h("p.hint", "Annotators label; reviewers also review; admins do everything; service tokens are for programs."),
  h("div.actions", h("button.primary", { type: "submit" }, "Create token")), secret);

  async function copy(text) {
    try { await navigator.clipboard.writeText(text); toast("Copied.", "ok"); }
    catch { toast("Copy failed: select the token and copy it by hand.", "error"); }
  }

  async function loadTokens() {
    try {
      const tokens = await get("/tokens");
      clear(list, h("div.table-wrap", h("table.data",
        h("thead", h("tr", ["Name", "Role", "Created", "Status", ""].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", tokens.map((t) => h("tr", { dataset: { id: t.id } },
          h("td", t.name), h("td", t.role), h("td", fmt.date(t.created_at)),
          h("td", t.revoked ? h("span.muted", "revoked") : "active"),
          h("td", t.revoked ? "" : t.id === session.me?.id ? h("span.muted", "this session") : revokeButton(t))))))));
    } catch (err) { clear(list, errorBox(err)); }
  }

  function revokeButton(t) {
    const b = h("button.ghost.danger", { type: "button" }, "Revoke");
    b.addEventListener("click", async () => {
      if (!b.dataset.armed) {
        b.dataset.armed = "1";
        b.textContent = `Revoke ${t.name}? Press again`;
        setTimeout(() => { if (b.isConnected) { delete b.dataset.armed; b.textContent = "Revoke"; } }, 4000);
        return;
      }
      try { await del(`/tokens/${t.id}`); toast(`Token ${t.name} revoked.`, "ok"); loadTokens(); }
      catch (err) { toast(err.message, "error"); }
    });
    return b;
  }

  clear(main,
    h("div.page-head", h("h1", "Admin")),
    h("div.admin-grid", newProject, newToken),
    h("section.panel#tokens", { "aria-labelledby": "tokens-h" }, h("h2#tokens-h", "Tokens"), list));
  await loadTokens();
}
