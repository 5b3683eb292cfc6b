// Flower runs at a hub: the apps its runner offers (GET /api/federation/flower/runner), a
// run with the app's settings (POST /api/projects/{p}/federation/flower/runs), the runs
// with their state and pooled result as they come (GET .../runs), cancel (.../cancel).
"use strict";

function flowerRunsPage(root) {
  const base = `/api/projects/${root.dataset.project}/federation/flower/runs`;
  const el = giftcloud.el;
  const outcome = root.querySelector("[data-outcome]");
  const list = root.querySelector("[data-run-list]");
  const form = root.querySelector("[data-run]");
  const choice = form.querySelector("[data-app]");
  const fields = form.querySelector("[data-config]");
  const ended = ["done", "failed", "cancelled"];
  let apps = [];

  const stamp = (iso) => (iso ? `${iso.slice(0, 19).replace("T", " ")} UTC` : "never");

  // one input per setting the app declares, of its default's kind
  function settings() {
    const app = apps.find((a) => a.name === choice.value);
    fields.replaceChildren(...Object.entries(app ? app.config : {}).map(([key, value], n) => {
      const id = `c${n}`;
      const input = typeof value === "boolean"
        ? el("input", { id, type: "checkbox", "data-key": key, "data-kind": "boolean" })
        : el("input", { id, "data-key": key, "data-kind": typeof value, value: String(value),
          inputmode: typeof value === "number" ? "decimal" : "text", size: "12" });
      if (typeof value === "boolean") input.checked = value;
      return el("div", {}, el("label", { for: id }, key), " ", input);
    }));
  }

  function configOf() {
    const config = {};
    for (const input of fields.querySelectorAll("[data-key]")) {
      const kind = input.dataset.kind;
      if (kind === "boolean") config[input.dataset.key] = input.checked;
      else if (kind === "number") config[input.dataset.key] = Number(input.value);
      else config[input.dataset.key] = input.value;
    }
    return config;
  }

  async function offered() {
    const answer = await giftcloud.call("GET", "/api/federation/flower/runner");
    const runner = root.querySelector("[data-runner]");
    if (!answer.ok) { runner.textContent = answer.body.detail; return; }
    apps = answer.body.apps;
    runner.textContent = `The hub's runner last called in at ${stamp(answer.body.seen_at)}; it serves ${answer.body.projects.join(", ") || "no project yet"}.`;
    root.querySelector("[data-apps]").replaceChildren(
      ...apps.map((a) => el("li", {}, el("strong", {}, a.name), ` — ${a.description}`)));
    choice.replaceChildren(...apps.map((a) => el("option", { value: a.name }, a.name)));
    settings();
  }

  function cancel(run) {
    const button = el("button", { type: "button" }, "Cancel");
    button.addEventListener("click", async () => {
      const done = await giftcloud.call("POST", `${base}/${run.id}/cancel`);
      giftcloud.say(outcome, done.ok ? "Asked to stop the run." : done.body.detail, !done.ok);
      await load();
    });
    return button;
  }

  function shown(run) {
    const settingsText = Object.entries(run.config).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(", ");
    return el("section", { "data-flower-run": run.id, "data-state": run.state },
      el("h3", {}, `${run.app}${settingsText ? ` (${settingsText})` : ""}: ${run.state}`),
      el("p", { class: "muted" }, `asked by ${run.asked_by} at ${stamp(run.asked_at)}`
        + (run.flower_run ? `; Flower run ${run.flower_run}` : "")),
      ...(run.reason ? [el("p", {}, run.reason)] : []),
      ...(run.result ? [el("pre", {}, JSON.stringify(run.result, null, 1))] : []),
      ...(ended.includes(run.state) ? [] : [el("p", {}, cancel(run))]));
  }

  async function load() {
    const answer = await giftcloud.call("GET", base);
    if (!answer.ok) { list.replaceChildren(el("p", {}, answer.body.detail)); return []; }
    list.replaceChildren(...(answer.body.length ? answer.body.map(shown) : [el("p", {}, "No run yet.")]));
    root.dataset.loaded = "true";
    return answer.body;
  }

  choice.addEventListener("change", settings);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const made = await giftcloud.call("POST", base, { app: choice.value, config: configOf() });
    if (!made.ok) { giftcloud.say(outcome, made.body.detail, true); return; }
    giftcloud.say(outcome, "Asked: the hub's runner starts it at the sites.");
    for (let waited = 0; waited < 600; waited += 1) {
      const found = (await load()).find((r) => r.id === made.body.id);
      if (!found || ended.includes(found.state)) {
        giftcloud.say(outcome, found ? `The run is ${found.state}.` : "The run is gone.", found?.state !== "done");
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  });

  offered();
  load();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const node of document.querySelectorAll("[data-flower-runs]")) flowerRunsPage(node);
});
