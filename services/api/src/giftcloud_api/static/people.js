// The members page (a project's members, invitations) and the admin page (accounts): what
// they do in place, on giftcloud.js's calls.
"use strict";

// --- members ---------------------------------------------------------------------------

const ROLES = ["collaborator", "member", "owner"];

function membersPage(root) {
  const project = root.dataset.project;
  const me = root.dataset.me;
  const rows = root.querySelector("[data-rows]");
  const outcome = root.querySelector("[data-outcome]");

  async function load() {
    const answer = await giftcloud.call("GET", `/auth/projects/${project}/members`);
    if (!answer.ok) { giftcloud.say(outcome, answer.body.detail, true); return; }
    rows.replaceChildren(...answer.body.map((m) => {
      const select = giftcloud.el("select", { "aria-label": `Role of ${m.username}` },
        ...ROLES.map((r) => { const o = giftcloud.el("option", { value: r }, r); o.selected = r === m.role; return o; }));
      select.addEventListener("change", () => change(m.username, select.value));
      // removing is offered on others' rows only, and looks like what it is: not the main action
      const actions = giftcloud.el("td", {});
      if (m.username !== me) {
        const remove = giftcloud.el("button", { type: "button", class: "secondary", "aria-label": `Remove ${m.username} from ${project}` }, "Remove");
        remove.addEventListener("click", () => drop(m.username));
        actions.append(remove);
      } else actions.append(giftcloud.el("span", { class: "muted" }, "you"));
      return giftcloud.el("tr", { "data-member": m.username },
        giftcloud.el("td", {}, m.username), giftcloud.el("td", {}, select), actions);
    }));
  }
  async function change(username, role) {
    const answer = await giftcloud.call("PUT", `/auth/projects/${project}/members`, { username, role });
    giftcloud.say(outcome, answer.ok ? `${username} is now ${role}.` : answer.body.detail, !answer.ok);
    await load();
  }
  async function drop(username) {
    if (!confirm(`Remove ${username} from ${project}?`)) return;
    const answer = await giftcloud.call("DELETE", `/auth/projects/${project}/members/${encodeURIComponent(username)}`);
    giftcloud.say(outcome, answer.ok ? `${username} removed.` : answer.body.detail, !answer.ok);
    await load();
  }
  root.querySelector("[data-add]").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const username = form.elements.username.value.trim().toLowerCase();
    await change(username, form.elements.role.value);
    if (!rows.querySelector(`[data-member="${CSS.escape(username)}"]`)) {
      giftcloud.say(outcome, `There is no user ${username}: invite them below with their e-mail address.`, true);
    } else form.reset();
  });
  root.querySelector("[data-invite]").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const email = form.elements.email.value.trim();
    const role = form.elements.role.value;
    const answer = await giftcloud.call("POST", "/auth/invites", { email, project, role });
    const shown = root.querySelector("[data-invitation]");
    if (!answer.ok) { giftcloud.say(outcome, answer.body.detail, true); return; }
    const body = `You are invited to the project ${project} on giftcloud as ${role}. `
      + `This link works once, until ${answer.body.expires_at.slice(0, 10)}: ${answer.body.url}`;
    const mail = `mailto:${encodeURIComponent(email)}?subject=${encodeURIComponent(`Join ${project} on giftcloud`)}`
      + `&body=${encodeURIComponent(body)}`;
    shown.replaceChildren(giftcloud.el("p", { role: "status" }, `Send ${email} this link (it works once, until ${answer.body.expires_at.slice(0, 10)}): `,
      giftcloud.el("code", { "data-invite-url": "" }, answer.body.url), " ",
      giftcloud.el("a", { href: mail, class: "button" }, "Write the e-mail")));
    form.reset();
  });
  load();
}

// --- admin -----------------------------------------------------------------------------

function adminPage(root) {
  const users = root.querySelector("[data-users]");
  const outcome = root.querySelector("[data-user-outcome]");

  async function load() {
    const answer = await giftcloud.call("GET", "/auth/users");
    if (!answer.ok) { giftcloud.say(outcome, answer.body.detail, true); return; }
    users.replaceChildren(...answer.body.map((u) => {
      const state = u.disabled ? "disabled" : u.locked ? "locked" : "active";
      const toggle = giftcloud.el("button", { type: "button" }, u.disabled ? "Enable" : "Disable");
      toggle.addEventListener("click", () => patch(u.username, { disabled: !u.disabled }));
      const reset = giftcloud.el("button", { type: "button" }, "Password reset link");
      reset.addEventListener("click", () => resetLink(u.username));
      const actions = [toggle, " ", reset];
      if (u.locked) {
        const unlock = giftcloud.el("button", { type: "button" }, "Unlock");
        unlock.addEventListener("click", async () => {
          const done = await giftcloud.call("POST", `/auth/users/${encodeURIComponent(u.username)}/unlock`);
          giftcloud.say(outcome, done.ok ? `${u.username} unlocked.` : done.body.detail, !done.ok);
          await load();
        });
        actions.push(" ", unlock);
      }
      return giftcloud.el("tr", { "data-user": u.username },
        giftcloud.el("td", {}, u.username), giftcloud.el("td", {}, u.site_roles.join(", ") || "—"),
        giftcloud.el("td", {}, state), giftcloud.el("td", {}, ...actions));
    }));
  }
  async function patch(username, change) {
    const answer = await giftcloud.call("PATCH", `/auth/users/${encodeURIComponent(username)}`, change);
    giftcloud.say(outcome, answer.ok ? `${username} ${change.disabled ? "disabled" : "enabled"}.` : answer.body.detail, !answer.ok);
    await load();
  }
  async function resetLink(username) {
    const answer = await giftcloud.call("POST", `/auth/users/${encodeURIComponent(username)}/password-reset`);
    if (!answer.ok) { giftcloud.say(outcome, answer.body.detail, true); return; }
    giftcloud.say(outcome, `Send ${username} this link (it works once, until ${answer.body.expires_at}): ${answer.body.url}`);
  }
  root.querySelector("[data-new-user]").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    const body = { username: form.elements.username.value.trim() };
    if (form.elements.password.value) body.password = form.elements.password.value;
    const answer = await giftcloud.call("POST", "/auth/users", body);
    if (!answer.ok) { giftcloud.say(outcome, answer.body.detail, true); return; }
    giftcloud.say(outcome, `${answer.body.username} created.`);
    form.reset();
    if (!body.password) await resetLink(answer.body.username);
    await load();
  });
  (async () => {
    const list = root.querySelector("[data-projects]");
    const answer = await giftcloud.call("GET", "/auth/projects");
    if (answer.ok) {
      list.replaceChildren(...answer.body.map((p) => giftcloud.el("li", {},
        giftcloud.el("a", { href: `/projects/${p.name}` }, p.name), p.title ? ` — ${p.title}` : "")));
    }
  })();
  load();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const node of document.querySelectorAll("[data-members]")) membersPage(node);
  for (const node of document.querySelectorAll("[data-admin]")) adminPage(node);
});
