// Federated counts at a hub: the sites (GET /api/federation/sites), a question
// (POST /api/projects/{p}/federation/counts) and the answers as they come
// (GET .../counts/{id}): each site's released cells, and the pooled ones. And jobs
// (POST/GET /api/projects/{p}/federation/jobs, .../cancel, .../retry): each site's state
// and released outputs.
"use strict";

function criterionValue(op, text) {
  if (op === "in") return text.split(",").map((v) => v.trim());
  if (op === "between") return text.split("..").map((v) => v.trim());
  return text.trim();
}

// The predicates of a form's criteria lines (_criteria.html), empty lines left out.
function criteriaOf(form) {
  const criteria = [];
  for (const line of form.querySelectorAll("fieldset .filters")) {
    const attribute = line.querySelector("[data-attribute]").value;
    const text = line.querySelector("[data-value]").value;
    if (!attribute || !text.trim()) continue;
    const op = line.querySelector("[data-op]").value;
    criteria.push({ attribute, op, value: criterionValue(op, text) });
  }
  return criteria;
}

const stamp = (iso) => `${iso.slice(0, 19).replace("T", " ")} UTC`;

function federationPage(root) {
  const project = root.dataset.project;
  const base = `/api/projects/${project}/federation/counts`;
  const el = giftcloud.el;
  const outcome = root.querySelector("[data-outcome]");
  const questions = root.querySelector("[data-questions]");

  async function sites() {
    const answer = await giftcloud.call("GET", "/api/federation/sites");
    const list = root.querySelector("[data-sites]");
    if (!answer.ok) { list.replaceChildren(el("li", {}, answer.body.detail)); return; }
    list.replaceChildren(...(answer.body.length ? answer.body.map((s) => el("li", {},
      el("strong", {}, s.name), ` — federation ${s.enabled ? "on" : "off"}`,
      s.policy.k ? `, k = ${s.policy.k}` : "",
      `, last seen ${s.last_seen_at ? s.last_seen_at.slice(0, 19).replace("T", " ") + " UTC" : "never"}`))
      : [el("li", {}, "No site is registered at this hub.")]));
  }

  function shown(q) {
    const keys = q.pooled.cells.map((c) => c.key);
    const name = (key) => key.join(" / ") || "count";
    const head = el("tr", {}, el("th", { scope: "col" }, "Site"), el("th", { scope: "col" }, "State"),
      ...keys.map((k) => el("th", { scope: "col" }, name(k))), el("th", { scope: "col" }, "Total"),
      el("th", { scope: "col" }, "Why"));
    const rows = q.parts.map((p) => {
      const a = p.answer || { cells: [] };
      const cells = new Map(a.cells.map((c) => [name(c.key), c.count]));
      const count = (k) => !cells.has(name(k)) ? "–" : cells.get(name(k)) === null ? `< ${a.k}` : String(cells.get(name(k)));
      const total = p.state !== "answered" ? "–" : a.total === null ? `< ${a.k}` : String(a.total);
      const why = p.state === "answered" ? `k = ${a.k}${a.epsilon ? `, epsilon ${a.epsilon}` : ""}` : p.reason;
      return el("tr", {}, el("th", { scope: "row" }, p.site), el("td", {}, p.state),
        ...keys.map((k) => el("td", {}, count(k))), el("td", {}, total), el("td", {}, why));
    });
    rows.push(el("tr", {}, el("th", { scope: "row" }, "pooled"), el("td", {}, `${q.pooled.sites.length} site(s)`),
      ...q.pooled.cells.map((c) => el("td", {}, `${c.count}${c.partial ? "+" : ""}`)),
      el("td", {}, String(q.pooled.total)), el("td", {}, "released cells only")));
    const where = q.question.criteria.map((c) => `${c.attribute} ${c.op} ${c.value}`).join(" and ") || "everything";
    const by = q.question.group_by.length ? ` by ${q.question.group_by.join(" and ")}` : "";
    return el("section", { "data-question": q.id },
      el("h3", {}, `${q.question.unit} where ${where}${by}`),
      el("p", { class: "muted" }, `asked by ${q.asked_by} at ${q.asked_at.slice(0, 19).replace("T", " ")} UTC`),
      el("div", { class: "scroll" }, el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows))));
  }

  async function load() {
    const answer = await giftcloud.call("GET", base);
    if (!answer.ok) { questions.replaceChildren(el("p", {}, answer.body.detail)); return []; }
    questions.replaceChildren(...(answer.body.length ? answer.body.map(shown) : [el("p", {}, "Nothing asked yet.")]));
    root.dataset.loaded = "true";
    return answer.body;
  }

  root.querySelector("[data-ask]").addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = {
      criteria: criteriaOf(root.querySelector("[data-ask]")),
      group_by: [...root.querySelectorAll("[data-group]")].map((s) => s.value).filter(Boolean),
      unit: root.querySelector("[data-unit]").value,
    };
    const epsilon = root.querySelector("[data-epsilon]").value.trim();
    if (epsilon) body.epsilon = Number(epsilon);
    const asked = await giftcloud.call("POST", base, body);
    if (!asked.ok) { giftcloud.say(outcome, asked.body.detail, true); return; }
    giftcloud.say(outcome, "Asked: the sites answer when they next call in.");
    for (let waited = 0; waited < 120; waited += 1) {
      const found = (await load()).find((q) => q.id === asked.body.id);
      if (!found || found.parts.every((p) => p.state !== "pending")) break;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    giftcloud.say(outcome, "Every site has answered, refused or failed.");
  });

  sites();
  load();
}

function jobsPage(root) {
  const base = `/api/projects/${root.dataset.project}/federation/jobs`;
  const el = giftcloud.el;
  const outcome = root.querySelector("[data-outcome]");
  const list = root.querySelector("[data-job-list]");
  const form = root.querySelector("[data-submit]");

  async function approved() {
    const answer = await giftcloud.call("GET", "/api/federation/sites");
    const shown = root.querySelector("[data-approved]");
    if (!answer.ok) { shown.replaceChildren(el("li", {}, answer.body.detail)); return; }
    const names = new Set();
    shown.replaceChildren(...answer.body.map((s) => {
      const algorithms = Object.keys(s.policy.algorithms || {}).sort();
      algorithms.forEach((a) => names.add(a));
      return el("li", {}, el("strong", {}, s.name), ` — ${algorithms.join(", ") || "nothing approved"}`);
    }));
    if (!answer.body.length) shown.replaceChildren(el("li", {}, "No site is registered at this hub."));
    form.querySelector("[data-algorithm]").replaceChildren(
      ...[...names].sort().map((n) => el("option", { value: n }, n)));
  }

  function act(job, action) {
    const button = el("button", { type: "button", "data-action": action }, action === "cancel" ? "Cancel" : "Try again");
    button.addEventListener("click", async () => {
      const done = await giftcloud.call("POST", `${base}/${job.id}/${action}`);
      giftcloud.say(outcome, done.ok ? `Asked to ${action} the job.` : done.body.detail, !done.ok);
      await load();
    });
    return button;
  }

  function shown(job) {
    const rows = job.parts.map((p) => el("tr", {}, el("th", { scope: "row" }, p.site),
      el("td", {}, p.state.replace("_", " ")), el("td", {}, String(p.attempt)), el("td", {}, String(p.run)),
      el("td", {}, p.reason || "–")));
    const outputs = job.parts.flatMap((p) => p.released.map((r) =>
      el("div", {}, el("p", {}, `${p.site}, run ${r.run}:`), el("pre", {}, JSON.stringify(r.output, null, 1)))));
    const where = job.question ? `the series counted for question ${job.question}`
      : job.criteria.map((c) => `${c.attribute} ${c.op} ${c.value}`).join(" and ") || "every series";
    return el("section", { "data-job": job.id },
      el("h3", {}, `${job.algorithm} on ${where}${job.standing ? " (standing)" : ""}`),
      el("p", { class: "muted" }, `submitted by ${job.submitted_by} at ${stamp(job.submitted_at)}`),
      el("div", { class: "scroll" }, el("table", {}, el("thead", {}, el("tr", {},
        ...["Site", "State", "Attempt", "Run", "Why"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, ...rows))),
      ...outputs, el("p", {}, act(job, "cancel"), " ", act(job, "retry")));
  }

  async function load() {
    const answer = await giftcloud.call("GET", base);
    if (!answer.ok) { list.replaceChildren(el("p", {}, answer.body.detail)); return []; }
    list.replaceChildren(...(answer.body.length ? answer.body.map(shown) : [el("p", {}, "No job yet.")]));
    root.dataset.loaded = "true";
    return answer.body;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let parameters;
    try { parameters = JSON.parse(form.querySelector("[data-parameters]").value || "{}"); }
    catch { giftcloud.say(outcome, "Parameters: write a JSON object, such as {\"bins\": 4}.", true); return; }
    const body = { algorithm: form.querySelector("[data-algorithm]").value, criteria: criteriaOf(form), parameters,
      standing: form.querySelector("[data-standing]").checked };
    const question = form.querySelector("[data-question-id]").value.trim();
    if (question) body.question = question;
    const made = await giftcloud.call("POST", base, body);
    if (!made.ok) { giftcloud.say(outcome, made.body.detail, true); return; }
    giftcloud.say(outcome, "Submitted: each site takes it when it next calls in.");
    const settled = ["done", "withheld", "refused", "failed", "cancelled", "awaiting_release", "waiting"];
    for (let waited = 0; waited < 120; waited += 1) {
      const found = (await load()).find((j) => j.id === made.body.id);
      if (!found || found.parts.every((p) => settled.includes(p.state))) break;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    giftcloud.say(outcome, "Every site has run it, holds it for its steward, or said why not.");
  });

  approved();
  load();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const node of document.querySelectorAll("[data-federation]")) federationPage(node);
  for (const node of document.querySelectorAll("[data-jobs]")) jobsPage(node);
});
