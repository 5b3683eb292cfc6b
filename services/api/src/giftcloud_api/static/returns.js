// Results back from the hub, for a reidentifier: the inbox (GET /ingest/{p}/returns/items),
// the hospital's nodes (GET .../returns/destinations), approve / decline / retry, the
// re-identified copy (GET .../items/{key}/content) and who the subject is (GET
// /anonymise/reidentify/{p}/{subject}).
"use strict";

const RESULT_KINDS = {
  "1.2.840.10008.5.1.4.1.1.66.4": "segmentation",
  "1.2.840.10008.5.1.4.1.1.66.7": "label map segmentation",
  "1.2.840.10008.5.1.4.1.1.30": "parametric map",
  "1.2.840.10008.5.1.4.1.1.481.3": "RT structure set",
};

function returnsPage(root) {
  const project = root.dataset.project;
  const base = `/ingest/${project}/returns`;
  const rows = root.querySelector("[data-rows]");
  const node = root.querySelector("[data-node]");
  const outcome = root.querySelector("[data-outcome]");
  const el = giftcloud.el;

  function what(item) {
    if (item.kind === "file") return `file ${item.name}`;
    return RESULT_KINDS[item.name] || (item.name.startsWith("1.2.840.10008.5.1.4.1.1.88.") ? "structured report" : item.name);
  }

  async function act(item, how) {
    let body = {};
    if (how === "approve" && item.kind === "instance") {
      if (!node.value) { giftcloud.say(outcome, "Choose the node to deliver it to first.", true); return; }
      body = { destination: node.value };
    }
    if (how === "decline") {
      const reason = window.prompt("Why is it declined? (kept in the audit trail)", "");
      if (reason === null) return;
      body = { reason };
    }
    const answer = await giftcloud.call("POST", `${base}/items/${encodeURIComponent(item.key)}/${how}`, body);
    if (!answer.ok) { giftcloud.say(outcome, answer.body.detail, true); return; }
    await load();
    giftcloud.say(outcome, how === "approve"
      ? (item.kind === "file" ? `Approved ${what(item)}: it may be downloaded.` : `Approved: ${what(item)} is on its way to ${node.value}.`)
      : how === "decline" ? `Declined ${what(item)}: it will not leave.` : `Trying ${what(item)} again.`);
  }

  async function who(item, cell) {
    const answer = await giftcloud.call("GET", `/anonymise/reidentify/${project}/${item.subject}`);
    if (!answer.ok) { cell.replaceChildren(answer.body.detail); return; }
    const study = answer.body.records.find((r) => r.pseudonymised_study_uid === item.study_uid) || answer.body.records[0];
    cell.replaceChildren(el("strong", {}, study.name.replaceAll("^", " ").trim() || "(no name)"),
      el("br"), `ID ${study.patient_id}${study.birth_date ? `, born ${study.birth_date}` : ""}`);
  }

  function row(item) {
    const subject = el("td", {}, item.subject, " ");
    const reveal = el("button", { type: "button", class: "secondary" }, "Who?");
    reveal.addEventListener("click", () => who(item, subject));
    if (["waiting", "approved", "delivered", "failed"].includes(item.state)) subject.append(reveal);
    const state = [el("strong", {}, item.state)];
    const said = item.status || item.reason;
    if (said) state.push(el("br"), el("span", { class: "muted" }, said));
    if (item.destination) state.push(el("br"), `to ${item.destination}`);
    if (item.decided_by) state.push(el("br"), el("span", { class: "muted" }, `by ${item.decided_by}`));
    const decide = el("td", {});
    const button = (label, how, secondary) => {
      const b = el("button", { type: "button", ...(secondary ? { class: "secondary" } : {}) }, label);
      b.addEventListener("click", () => act(item, how));
      return b;
    };
    if (item.state === "waiting") decide.append(button("Approve", "approve"), " ", button("Decline", "decline", true));
    if (item.state === "failed") decide.append(button("Try again", "retry"));
    if (["waiting", "approved", "delivered", "failed"].includes(item.state)) {
      decide.append(" ", el("a", { href: `${base}/items/${encodeURIComponent(item.key)}/content`, download: "" }, "Download"));
    }
    return el("tr", { "data-key": item.key, "data-state": item.state },
      el("td", { class: "when" }, item.created_at.slice(0, 19).replace("T", " ")),
      el("td", {}, what(item)), subject, el("td", {}, ...state), decide);
  }

  async function nodes() {
    const answer = await giftcloud.call("GET", `${base}/destinations`);
    if (!answer.ok) { giftcloud.say(outcome, answer.body.detail, true); return; }
    node.replaceChildren(...(answer.body.length
      ? answer.body.map((n) => el("option", { value: n.name }, `${n.name} (${n.ae_title}${n.renderings ? ", with renderings" : ""})`))
      : [el("option", { value: "" }, "no hospital node: an admin adds one")]));
  }

  async function load() {
    const answer = await giftcloud.call("GET", `${base}/items`);
    if (!answer.ok) { giftcloud.say(outcome, answer.body.detail, true); return; }
    rows.replaceChildren(...(answer.body.length ? answer.body.map(row)
      : [el("tr", {}, el("td", { colspan: "5" }, "No result has come back from the hub yet."))]));
    root.dataset.loaded = "true";
  }

  nodes();
  load();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const node of document.querySelectorAll("[data-returns]")) returnsPage(node);
});
