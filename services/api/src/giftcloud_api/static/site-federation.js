// Federation at a site: its admins' policy (GET/PUT /api/federation/policy), the jobs'
// algorithms (GET /api/federation/algorithms, PUT/DELETE .../algorithms/{name}), Flower apps
// (GET /api/federation/flower/apps, PUT/DELETE .../apps/{digest}); its data steward's held
// outputs (GET /api/federation/jobs?state=awaiting_release, POST .../jobs/{id}/decision).
"use strict";

function siteFederationPage(root) {
  const el = giftcloud.el;
  const outcome = root.querySelector("[data-outcome]");
  const criteria = (job) => job.question ? `the series counted for question ${job.question}`
    : job.criteria.map((c) => `${c.attribute} ${c.op} ${JSON.stringify(c.value)}`).join(", ") || "every series";
  const short = (digest) => (digest ? `${digest.slice(0, 12)}…` : "");

  // a change through the API: its refusal said, else `done` said and the lists read again
  async function change(method, url, body, done) {
    const answer = await giftcloud.call(method, url, body);
    if (!answer.ok) { giftcloud.say(outcome, answer.body.detail, true); return false; }
    giftcloud.say(outcome, done);
    await load();
    return true;
  }

  function button(label, action, secondary) {
    const made = el("button", { type: "button", ...(secondary ? { class: "secondary" } : {}) }, label);
    made.addEventListener("click", action);
    return made;
  }

  function rowsOr(body, columns, empty, row) {
    return body.length ? body.map(row) : [el("tr", {}, el("td", { colspan: String(columns) }, empty))];
  }

  const form = root.querySelector("[data-policy-form]");
  async function policy() {
    const answer = await giftcloud.call("GET", "/api/federation/policy");
    if (!answer.ok) { giftcloud.say(outcome, answer.body.detail, true); return; }
    const now = answer.body;
    form.elements.enabled.checked = now.enabled;
    form.elements.k.value = now.k;
    form.elements.noise.value = now.noise;
    form.elements.budget.value = now.budget;
    root.querySelector("[data-policy-by]").textContent = now.updated_by
      ? `Set by ${now.updated_by} on ${now.updated_at.slice(0, 19).replace("T", " ")} UTC.` : "The defaults: nobody has set it yet.";
  }

  async function algorithms() {
    const answer = await giftcloud.call("GET", "/api/federation/algorithms");
    if (!answer.ok) { giftcloud.say(outcome, answer.body.detail, true); return; }
    root.querySelector("[data-algorithms]").replaceChildren(...rowsOr(answer.body, 5, "No algorithm is installed at this site.", (a) => {
      const current = a.approved === a.digest;
      const state = current ? `yes, by ${a.approved_by}`
        : a.approved ? `an earlier version (${short(a.approved)}): not this code` : "no";
      const decide = el("td", {});
      if (!current) {
        decide.append(button("Approve", () => change("PUT", `/api/federation/algorithms/${encodeURIComponent(a.name)}`,
          { digest: a.digest }, `Approved ${a.name} (code ${short(a.digest)}).`)));
      }
      if (a.approved) {
        decide.append(" ", button("Revoke", () => change("DELETE", `/api/federation/algorithms/${encodeURIComponent(a.name)}`,
          undefined, `Revoked ${a.name}: it runs nowhere here until approved again.`), true));
      }
      return el("tr", { "data-algorithm": a.name }, el("td", {}, el("strong", {}, a.name)), el("td", {}, a.summary),
        el("td", {}, el("code", { title: a.digest }, short(a.digest))), el("td", {}, state), decide);
    }));
  }

  async function flowerApps() {
    const answer = await giftcloud.call("GET", "/api/federation/flower/apps");
    if (!answer.ok) { giftcloud.say(outcome, answer.body.detail, true); return; }
    root.querySelector("[data-flower-apps]").replaceChildren(...rowsOr(answer.body, 4, "No Flower app is approved: the site's gate runs none.", (app) =>
      el("tr", { "data-flower-app": app.digest }, el("td", {}, el("strong", {}, app.name)),
        el("td", {}, el("code", {}, app.digest)),
        el("td", {}, `${app.approved_by}, ${app.approved_at.slice(0, 19).replace("T", " ")} UTC`),
        el("td", {}, button("Revoke", () => change("DELETE", `/api/federation/flower/apps/${app.digest}`, undefined,
          `Revoked ${app.name}: its next run is refused here.`), true)))));
  }

  async function outputs() {
    const answer = await giftcloud.call("GET", "/api/federation/jobs?state=awaiting_release");
    const list = root.querySelector("[data-output-list]");
    if (!answer.ok) { giftcloud.say(outcome, answer.body.detail, true); return; }
    const held = answer.body.slice().reverse();  // oldest first
    list.replaceChildren(...(held.length ? held.map((job) => {
      const decide = async (release) => {
        let reason = "";
        if (!release) {
          const said = window.prompt("Why is it withheld? (the hub is told, and the audit trail keeps it)", "");
          if (said === null) return;
          reason = said;
        }
        await change("POST", `/api/federation/jobs/${encodeURIComponent(job.id)}/decision`, { release, reason },
          release ? `Released job ${job.id}'s output to the hub.` : `Withheld job ${job.id}'s output.`);
      };
      return el("article", { class: "card", "data-output": job.id },
        el("h3", {}, `${job.algorithm} on ${job.project}, run ${job.run}`),
        el("p", {}, `Job ${job.id}, asked by ${job.submitted_by} at the hub, over ${job.series} series here`,
          ` (${criteria(job)}). `, el("span", { class: "muted" }, `Why it waits: ${job.reason}.`)),
        el("pre", { tabindex: "0", "aria-label": `The output of job ${job.id}` }, JSON.stringify(job.output, null, 2)),
        el("p", {}, button("Release", () => decide(true)), " ", button("Withhold", () => decide(false), true)));
    }) : [el("p", {}, "Nothing waits for you.")]));
  }

  async function load() {
    const parts = [];
    if (form) parts.push(policy(), algorithms(), flowerApps());
    if (root.querySelector("[data-outputs]")) parts.push(outputs());
    await Promise.all(parts);
    root.dataset.loaded = "true";
  }

  if (form) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      await change("PUT", "/api/federation/policy", {
        enabled: form.elements.enabled.checked,
        k: Number(form.elements.k.value),
        noise: form.elements.noise.value,
        budget: Number(form.elements.budget.value),
      }, "Saved the policy: it counts from the next question.");
    });
    const flower = root.querySelector("[data-flower-form]");
    flower.addEventListener("submit", async (event) => {
      event.preventDefault();
      const name = flower.elements.name.value.trim();
      const digest = flower.elements.digest.value.trim();
      if (await change("PUT", `/api/federation/flower/apps/${digest}`, { name }, `Approved ${name} (${short(digest)}).`)) flower.reset();
    });
  }
  load();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const node of document.querySelectorAll("[data-site-federation]")) siteFederationPage(node);
});
