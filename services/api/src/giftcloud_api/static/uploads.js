// A project's uploads, any way in, each with what became of its files: every file refused on
// arrival and every rejection, with its reason (GET /ingest/{p}/uploads[/{id}]).
"use strict";

function uploadsPage(root) {
  const project = root.dataset.project;
  const owner = root.dataset.owner === "yes";
  const rows = root.querySelector("[data-rows]");
  const outcome = root.querySelector("[data-outcome]");
  const el = giftcloud.el;

  // a reason that names the project's De-identification page links to it
  const way = (reason) => (reason.includes("De-identification page")
    ? [" ", el("a", { href: `/projects/${project}/deidentification` }, "Open the De-identification page")]
    : []);

  // a rejected file waits in the quarantine, where owners release or delete it
  const review = () => (owner
    ? [" ", el("a", { href: `/projects/${project}/quarantine` }, "Review it in the quarantine")]
    : []);

  function problems(status) {
    const items = [
      ...status.refusals.map((r) => el("li", {}, el("strong", {}, `file ${r.index}`),
        r.sop_uid ? ` (${r.sop_uid})` : "", `: refused on arrival: ${r.reason}`, ...way(r.reason))),
      ...status.rejected.map((r) => el("li", {}, el("strong", {}, `file ${r.index}`),
        `: rejected by de-identification: ${r.reason}`, ...review())),
    ];
    return items.length ? el("ul", { class: "problems" }, ...items) : "";
  }

  async function details(upload, cell) {
    const answer = await giftcloud.call("GET", `/ingest/${project}/uploads/${upload.id}`);
    if (!answer.ok) { cell.replaceChildren(answer.body.detail); return; }
    const s = answer.body;
    const already = s.already ? ` (${s.already} sent before)` : "";
    const pending = s.pending ? `, ${s.pending} pending` : "";
    cell.replaceChildren(
      `${s.archived} archived${already}, ${s.rejected.length} rejected${pending}`, problems(s));
  }

  async function load() {
    const answer = await giftcloud.call("GET", `/ingest/${project}/uploads`);
    if (!answer.ok) { giftcloud.say(outcome, answer.body.detail, true); return; }
    if (!answer.body.length) {
      rows.replaceChildren(el("tr", {}, el("td", { colspan: "7" }, "Nothing uploaded yet.")));
      return;
    }
    rows.replaceChildren(...answer.body.map((u) => {
      const cell = el("td", {}, "…");
      details(u, cell);
      return el("tr", { "data-upload-id": u.id, id: u.id },
        el("td", { title: `upload ${u.id}`, class: "when" }, u.created_at.slice(0, 19).replace("T", " ")),
        el("td", {}, u.username), el("td", {}, u.source), el("td", {}, u.state),
        el("td", { class: "n" }, String(u.accepted)), el("td", { class: "n" }, String(u.failed)),
        cell);
    }));
    root.dataset.loaded = "true";
  }
  load();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const node of document.querySelectorAll("[data-uploads]")) uploadsPage(node);
});
