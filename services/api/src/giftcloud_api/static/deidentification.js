// The de-identification page: a project's profile options and burned-in attestations, read
// from anonymise (GET /anonymise/projects/{p}/profile) and, by an owner, chosen (PUT).
"use strict";

function deidentificationPage(root) {
  const project = root.dataset.project;
  const owner = root.dataset.owner === "yes";
  const form = root.querySelector("[data-choose]");
  const outcome = root.querySelector("[data-outcome]");
  const SOURCES = {
    default: "The site's default profile.",
    file: "The profile the site's operator set for this project.",
    owners: "As this project's owners chose.",
  };

  function box(name, value, checked, label, hint) {
    const id = `${name}-${value}`;
    const input = giftcloud.el("input", { type: "checkbox", id, name, value });
    input.checked = checked;
    input.disabled = !owner || value === "clean_pixel_data";
    const parts = [input, " ", giftcloud.el("label", { for: id }, label)];
    if (hint) parts.push(giftcloud.el("p", { class: "hint" }, hint));
    return giftcloud.el("div", { class: "choice" }, ...parts);
  }

  function show(state) {
    root.querySelector("[data-source]").textContent =
      `${SOURCES[state.source]} Recorded in each instance as: ${state.description}.`;
    root.querySelector("[data-options]").replaceChildren(...state.options.map((o) =>
      box("option", o.name, o.on, `${o.meaning} (${o.code})`, o.explanation)));
    root.querySelector("[data-attestations]").replaceChildren(...state.burned_in.map((a) =>
      box("attested", a.kind, a.attested, `The project's ${a.label} carry no burned-in text`,
        a.attested && a.by ? `Attested by ${a.by} on ${a.at.slice(0, 10)}.` : "")));
  }

  async function load() {
    const answer = await giftcloud.call("GET", `/anonymise/projects/${project}/profile`);
    if (!answer.ok) { giftcloud.say(outcome, answer.body.detail, true); return; }
    show(answer.body);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const checked = (name) => [...form.querySelectorAll(`input[name=${name}]:checked`)]
      .filter((i) => i.value !== "clean_pixel_data").map((i) => i.value);
    const answer = await giftcloud.call("PUT", `/anonymise/projects/${project}/profile`,
      { options: checked("option"), burned_in_attested: checked("attested") });
    if (!answer.ok) { giftcloud.say(outcome, answer.body.detail, true); return; }
    show(answer.body);
    giftcloud.say(outcome, "Saved: instances that arrive from now on are de-identified this way.");
  });
  load();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const node of document.querySelectorAll("[data-deid]")) deidentificationPage(node);
});
