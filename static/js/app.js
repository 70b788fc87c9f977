// The shell: sign-in, the header, hash routes and the project list.
import { api, can, get, session, setUnauthorizedHandler } from "./api.js";
import { clear, errorBox, fmt, h, toast } from "./util.js";
import { annotateView } from "./annotate.js";
import { dashboardView } from "./dashboard.js";
import { adminView, settingsView } from "./admin.js";

const main = document.getElementById("main");
let cleanup = null; // the current view's teardown (timers, key handlers)

const routes = [
  [/^#\/signin$/, (box) => signinView(box)],
  [/^#\/?$/, (box) => projectsView(box)],
  [/^#\/admin$/, (box) => adminView(box)],
  [/^#\/p\/(\d+)\/annotate$/, (box, pid) => annotateView(box, +pid, "annotate")],
  [/^#\/p\/(\d+)\/review$/, (box, pid) => annotateView(box, +pid, "review")],
  [/^#\/p\/(\d+)\/dashboard$/, (box, pid) => dashboardView(box, +pid)],
  [/^#\/p\/(\d+)\/settings$/, (box, pid) => settingsView(box, +pid)],
];

let routeSeq = 0;

async function route() {
  const seq = ++routeSeq;
  if (cleanup) { try { cleanup(); } catch { /* ignore */ } cleanup = null; }
  const hash = location.hash || "#/";
  if (!session.token && hash !== "#/signin") { location.replace("#/signin"); return; }
  if (session.token && !session.me) {
    try { session.me = await get("/me"); }
    catch (e) { if (e.status !== 401) { clear(main, errorBox(e)); } return; }
  }
  renderTopbar(hash);
  for (const [re, view] of routes) {
    const m = hash.match(re);
    if (m) {
      main.dataset.view = hash.split("/")[hash.startsWith("#/p/") ? 3 : 1] || "projects";
      // Each view renders into its own box: a slow view that is no longer
      // current renders into a detached box and is torn down at once.
      const box = h("div.view", h("p.muted.loading", "Loading…"));
      clear(main, box);
      try {
        const done = (await view(box, ...m.slice(1))) || null;
        if (seq === routeSeq) cleanup = done;
        else if (done) done();
      } catch (e) { clear(box, errorBox(e)); }
      return;
    }
  }
  clear(main, h("div.panel", h("h1", "Not found"), h("p", h("a", { href: "#/" }, "Back to the projects"))));
}

function renderTopbar(hash) {
  const bar = document.getElementById("topbar");
  bar.hidden = !session.me;
  if (!session.me) return;
  document.getElementById("who").textContent = `${session.me.name} · ${session.me.role}`;
  document.getElementById("nav-admin").hidden = !can("admin");
  const nav = document.getElementById("project-nav");
  const m = hash.match(/^#\/p\/(\d+)\/(\w+)/);
  if (!m) { clear(nav); return; }
  const [, pid, here] = m;
  const tabs = [
    ["annotate", "Annotate", can("annotator")],
    ["review", "Review", can("reviewer")],
    ["dashboard", "Dashboard", can("annotator")],
    ["settings", "Settings", can("admin")],
  ];
  clear(nav, h("span.project-name#project-name", { title: "Project" }, nav.dataset.pid === pid ? nav.dataset.name : ""),
    tabs.filter((t) => t[2]).map(([k, label]) =>
      h("a", { href: `#/p/${pid}/${k}`, "aria-current": k === here ? "page" : null }, label)));
  if (nav.dataset.pid !== pid) {
    nav.dataset.pid = pid;
    get(`/projects/${pid}`).then((p) => {
      nav.dataset.name = p.name;
      const el = document.getElementById("project-name");
      if (el) el.textContent = p.name;
    }, () => {});
  }
}

function signOut() {
  session.token = null;
  session.me = null;
  document.getElementById("project-nav").dataset.pid = "";
  location.hash = "#/signin";
}

function signinView(main) {
  if (session.token) { location.replace("#/"); return; }
  const input = h("input#token", {
    type: "password", autocomplete: "off", spellcheck: "false", required: true,
    "aria-describedby": "token-help", placeholder: "paste your token",
  });
  const msg = h("div#signin-msg", { role: "alert" });
  const form = h("form.panel.signin", {
    onsubmit: async (e) => {
      e.preventDefault();
      const token = input.value.trim();
      if (!token) return;
      msg.replaceChildren();
      try {
        session.me = await api("GET", "/me", undefined, { token });
        session.token = token;
        location.hash = "#/";
      } catch (err) {
        clear(msg, h("p.notice.error", err.status === 401 ? "That token is not known to this server." : err.message));
        input.select();
      }
    },
  },
  h("h1", h("span.brand-mark", { "aria-hidden": "true" }), "loupe"),
  h("p.muted", "Active-learning labeling. Sign in with the token your admin gave you."),
  h("label", { for: "token" }, "Token"),
  input,
  h("p.hint#token-help", "Kept in this browser tab only, and forgotten when you close it."),
  h("button.primary", { type: "submit" }, "Sign in"),
  msg);
  clear(main, h("div.center", form));
  input.focus();
}

async function projectsView(main) {
  if (session.me.role === "service") {
    clear(main, h("div.panel", h("h1", "Service token"),
      h("p", "This token is for programs (predictions and decisions over the API); the interface is for people. Sign in with an annotator, reviewer or admin token.")));
    return;
  }
  const projects = await get("/projects");
  const list = h("ul.project-list#projects");
  for (const p of projects) {
    const c = p.counts;
    const done = c.items ? c.labeled / c.items : 0;
    list.append(h("li.card.project", { dataset: { pid: p.id } },
      h("div.project-head",
        h("h2", h("a", { href: `#/p/${p.id}/annotate` }, p.name)),
        h("span.muted", `${p.labels.length} labels · ${p.strategy.replace("_", " ")}`)),
      h("div.labels-inline", p.labels.map((l) => h("span.chip", l))),
      h("div.progress", { role: "progressbar", "aria-valuemin": 0, "aria-valuemax": c.items, "aria-valuenow": c.labeled, "aria-label": "labeled" },
        h("span", { style: { width: (done * 100).toFixed(1) + "%" } })),
      h("p.counts", `${fmt.int(c.labeled)} of ${fmt.int(c.items)} labeled · ${fmt.int(c.unlabeled)} in the pool`,
        c.review ? ` · ${fmt.int(c.review)} to review` : ""),
      h("div.actions",
        h("a.button.primary", { href: `#/p/${p.id}/annotate` }, "Annotate"),
        can("reviewer") ? h("a.button", { href: `#/p/${p.id}/review` }, "Review", c.review ? h("span.badge", fmt.int(c.review)) : null) : null,
        h("a.button", { href: `#/p/${p.id}/dashboard` }, "Dashboard"),
        can("admin") ? h("a.button", { href: `#/p/${p.id}/settings` }, "Settings") : null)));
  }
  clear(main,
    h("div.page-head", h("h1", "Projects"),
      can("admin") ? h("a.button", { href: "#/admin" }, "New project") : null),
    projects.length ? list : h("div.panel.empty",
      h("p", "No projects yet."),
      can("admin") ? h("p", h("a", { href: "#/admin" }, "Create the first one")) : h("p.muted", "Ask an admin to create one.")));
  const first = list.querySelector("a");
  if (first) first.focus();
}

setUnauthorizedHandler(() => {
  toast("Your token is no longer valid; sign in again.", "error");
  signOut();
});
document.getElementById("signout").addEventListener("click", signOut);
window.addEventListener("hashchange", route);
route();
