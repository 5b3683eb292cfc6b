// A project's quarantine: what de-identification refused, for its owners to release (processed
// again under the rules of now) or delete (GET /anonymise/projects/{p}/quarantine[/{key}],
// POST .../release and .../delete).
"use strict";

function quarantinePage(root) {
  const project = root.dataset.project;
  const base = `/anonymise/projects/${project}/quarantine`;
  const form = root.querySelector("[data-act]");
  const rows = root.querySelector("[data-rows]");
  const all = root.querySelector("[data-all]");
  const outcome = root.querySelector("[data-outcome]");
  const el = giftcloud.el;

  async function kind(key, cell) {
    const answer = await giftcloud.call("GET", `${base}/${key}`);
    if (!answer.ok) { cell.replaceChildren(answer.body.detail); return; }
    const d = answer.body;
    const maker = [d.manufacturer, d.model].filter(Boolean).join(" ");
    const size = d.rows && d.columns ? `${d.columns}×${d.rows}` : "";
    const frames = d.frames ? `, ${d.frames} frames` : "";
    const burned = d.burned_in_annotation ? `BurnedInAnnotation ${d.burned_in_annotation}` : "no BurnedInAnnotation";
    cell.replaceChildren(`${d.modality || "?"} · ${d.sop_class || "unknown class"}`,
      el("br"), el("span", { class: "muted" }, [maker, `${size}${frames}`, burned].filter(Boolean).join(" · ")));
  }

  function row(held) {
    const id = `held-${held.key.replace(/[^a-z0-9]/gi, "-")}`;
    const box = el("input", { type: "checkbox", id, name: "key", value: held.key });
    box.disabled = held.state !== "held";
    const file = held.upload
      ? [el("label", { for: id }, `file ${held.index}`), " of ",
        el("a", { href: `/projects/${project}/uploads#${held.upload}`, title: `upload ${held.upload}` },
          `upload ${held.upload.slice(0, 8)}`)]
      : [el("label", { for: id }, held.key)];
    const state = held.state === "released" ? [el("br"), el("em", {}, "released: being processed again")] : [];
    const cell = el("td", {}, "…");
    kind(held.key, cell);
    return el("tr", { "data-key": held.key },
      el("td", {}, box), el("td", { class: "when" }, held.since.slice(0, 19).replace("T", " ")),
      el("td", {}, ...file, ...state), cell, el("td", {}, held.reason));
  }

  async function load() {
    const answer = await giftcloud.call("GET", base);
    if (!answer.ok) { giftcloud.say(outcome, answer.body.detail, true); return; }
    all.checked = false;
    rows.replaceChildren(...(answer.body.length ? answer.body.map(row)
      : [el("tr", {}, el("td", { colspan: "5" }, "Nothing is held: every file that arrived was de-identified."))]));
    root.dataset.loaded = "true";
  }

  all.addEventListener("change", () => {
    for (const box of form.querySelectorAll("input[name=key]:not(:disabled)")) box.checked = all.checked;
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const how = event.submitter ? event.submitter.value : "release";
    const keys = [...form.querySelectorAll("input[name=key]:checked")].map((i) => i.value);
    if (!keys.length) { giftcloud.say(outcome, "Choose the files first.", true); return; }
    if (how === "delete" && !window.confirm(`Delete ${keys.length} file(s) for good?`)) return;
    const answer = await giftcloud.call("POST", `${base}/${how}`, { keys });
    if (!answer.ok) { giftcloud.say(outcome, answer.body.detail, true); return; }
    await load();
    giftcloud.say(outcome, how === "delete"
      ? `Deleted ${keys.length} file(s).`
      : `Released ${keys.length} file(s): each is archived, or comes back here with the reason of now.`);
  });
  load();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const node of document.querySelectorAll("[data-quarantine]")) quarantinePage(node);
});
