// giftcloud's web pages: what a page does in place (no library, no build step).
// The pages read the catalogue server-side; this script calls the public API with a
// short-lived bearer token that the session gives it (POST /auth/session/token, which
// needs X-Requested-With: no other site can make that request).
"use strict";

const giftcloud = (() => {
  let cached = null;
  let asking = null;

  // one request for a token at a time, however many parts of the page want one
  function token() {
    if (cached && cached.until > Date.now()) return Promise.resolve(cached.token);
    if (!asking) asking = fresh().finally(() => { asking = null; });
    return asking;
  }

  async function fresh() {
    const answer = await fetch("/auth/session/token", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-Requested-With": "giftcloud" },
    });
    if (answer.status === 401) {
      location.href = "/signin?next=" + encodeURIComponent(location.pathname + location.search);
      throw new Error("signed out");
    }
    if (!answer.ok) throw new Error((await parsed(answer)).detail);
    const body = await answer.json();
    cached = { token: body.access_token, until: Date.now() + (body.expires_in - 30) * 1000 };
    return cached.token;
  }

  function forget() { cached = null; }

  // a refusal's body (JSON where it is: a STOW-RS answer names each refused part), with
  // its reason in .detail
  async function parsed(answer) {
    let body = {};
    try { body = JSON.parse(await answer.text()) || {}; } catch (_) { /* not JSON */ }
    if (Array.isArray(body.detail)) body.detail = body.detail.map((d) => d.msg).join("; ");
    if (typeof body.detail !== "string") body.detail = `${answer.status} ${answer.statusText}`;
    return body;
  }

  // the API's answer as {ok, status, body}; a refusal's reason in body.detail
  async function call(method, url, body, headers) {
    const options = { method, headers: { Authorization: `Bearer ${await token()}`, ...headers } };
    if (body !== undefined) {
      if (body instanceof Blob || typeof body === "string") options.body = body;
      else {
        options.body = JSON.stringify(body);
        options.headers["Content-Type"] = "application/json";
      }
    }
    const answer = await fetch(url, options);
    if (answer.ok) {
      const type = answer.headers.get("content-type") || "";
      const text = type.includes("json") ? await answer.text() : "";
      const data = text ? JSON.parse(text) : null;
      return { ok: true, status: answer.status, body: data, headers: answer.headers };
    }
    return { ok: false, status: answer.status, body: await parsed(answer), headers: answer.headers };
  }

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attributes || {})) node.setAttribute(k, v);
    for (const child of children) node.append(child);
    return node;
  }

  function say(node, text, problem) {
    node.textContent = text;
    node.classList.toggle("problem", Boolean(problem));
  }

  return { token, forget, call, el, say };
})();

// --- projects: a new one ------------------------------------------------------------

function projectsPage(form) {
  const outcome = form.querySelector(".outcome");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = form.elements.name.value.trim();
    giftcloud.say(outcome, `Creating ${name}…`);
    const made = await giftcloud.call("POST", "/auth/projects", {
      name, title: form.elements.title.value.trim(),
    });
    if (!made.ok) { giftcloud.say(outcome, made.body.detail, true); return; }
    // the catalogue hears of it from auth; then a token that carries the new role
    // (and ingest, before anyone uploads)
    for (let i = 0; i < 60; i++) {
      giftcloud.forget();
      const listed = await giftcloud.call("GET", "/api/projects");
      const ingest = await giftcloud.call("GET", `/ingest/${name}/uploads`);
      if (listed.ok && listed.body.some((p) => p.name === name) && ingest.ok) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    location.href = "/auth/session/renew?next=" + encodeURIComponent(`/projects/${name}`);
  });
}

// --- upload ----------------------------------------------------------------------------

const BATCH_FILES = 20;
const BATCH_BYTES = 32 * 1024 * 1024;

async function view(blob, from, to) {
  return new DataView(await blob.slice(from, to).arrayBuffer());
}

// the entries of a zip, read by slices of the file (a zip of any size costs only its
// directory), each {name, size, open} where open() gives its bytes: stored entries as a
// slice, deflated ones inflated then (one batch at a time, not the whole zip at once)
async function readZip(file) {
  const tailStart = Math.max(0, file.size - 65557);  // the end record and its comment
  const tail = await view(file, tailStart, file.size);
  let end = tail.byteLength - 22;
  while (end >= 0 && tail.getUint32(end, true) !== 0x06054b50) end--;
  if (end < 0) throw new Error("not a zip file (no end of central directory)");
  const count = tail.getUint16(end + 10, true);
  const directorySize = tail.getUint32(end + 12, true);
  const directoryAt = tail.getUint32(end + 16, true);
  if (count === 0xffff || directoryAt === 0xffffffff) {
    throw new Error("a ZIP64 file (over 4 GB or 65,535 entries): unzip it and send the folder");
  }
  const directory = await view(file, directoryAt, directoryAt + directorySize);
  const out = [];
  let at = 0;
  for (let n = 0; n < count; n++) {
    if (directory.getUint32(at, true) !== 0x02014b50) throw new Error("a damaged zip file");
    const method = directory.getUint16(at + 10, true);
    const packed = directory.getUint32(at + 20, true);
    const size = directory.getUint32(at + 24, true);
    const nameLength = directory.getUint16(at + 28, true);
    const skip = nameLength + directory.getUint16(at + 30, true) + directory.getUint16(at + 32, true);
    const local = directory.getUint32(at + 42, true);
    const name = `${file.name}/${new TextDecoder().decode(
      new Uint8Array(directory.buffer, directory.byteOffset + at + 46, nameLength))}`;
    at += 46 + skip;
    if (name.endsWith("/")) continue;
    if (method !== 0 && method !== 8) {
      out.push({ name, refused: `compression method ${method} is not supported: zip it again with deflate` });
      continue;
    }
    async function open() {
      const header = await view(file, local, local + 30);
      const start = local + 30 + header.getUint16(26, true) + header.getUint16(28, true);
      const raw = file.slice(start, start + packed);
      if (method === 0) return raw;
      return new Response(raw.stream().pipeThrough(new DecompressionStream("deflate-raw"))).blob();
    }
    out.push({ name, size, open });
  }
  return out;
}

async function entriesOf(entry, path) {
  // the files under a dropped folder
  if (entry.isFile) {
    return [await new Promise((ok, fail) => entry.file((f) => ok({ name: path + f.name, file: f }), fail))];
  }
  const reader = entry.createReader();
  const out = [];
  for (;;) {
    const some = await new Promise((ok, fail) => reader.readEntries(ok, fail));
    if (!some.length) break;
    for (const child of some) out.push(...await entriesOf(child, `${path}${entry.name}/`));
  }
  return out;
}

async function isDicom(blob) {
  const head = new Uint8Array(await blob.slice(0, 132).arrayBuffer());
  return head.length === 132 && String.fromCharCode(...head.slice(128)) === "DICM";
}

function uploadPage(root) {
  const project = root.dataset.project;
  const progress = root.querySelector("[data-progress]");
  const status = root.querySelector("[data-status]");
  const outcome = root.querySelector("[data-outcome] tbody");
  const refused = root.querySelector("[data-refused]");
  const drop = root.querySelector("[data-drop]");
  const uploads = new Map();  // id → {names, row}

  function refuse(name, why) {
    if (refused.querySelector(".muted")) refused.textContent = "";
    const item = giftcloud.el("li", {}, giftcloud.el("strong", {}, name), `: ${why}`);
    if (why.includes("De-identification page")) {  // its way out, one click away
      item.append(" ", giftcloud.el("a", { href: `/projects/${project}/deidentification` }, "Open the De-identification page"));
    }
    refused.append(item);
  }

  function multipart(files, boundary) {
    const parts = [];
    for (const f of files) {
      parts.push(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`, f.file, "\r\n");
    }
    parts.push(`--${boundary}--\r\n`);
    return new Blob(parts);
  }

  // each refused part of a STOW-RS answer, named by the file it was, with its reason
  function refusedParts(answer, files) {
    const failed = answer.body && answer.body["00081198"] ? answer.body["00081198"].Value : [];
    for (const f of failed) {
      const index = (f["00091003"] || {}).Value;  // giftcloud's private: the part's index
      const why = (f["00091001"] || f["00000902"] || { Value: ["refused"] }).Value[0];
      const part = Array.isArray(index) ? index[0] : undefined;
      refuse(part !== undefined && files[part] ? files[part].name : "a file", `refused: ${why}`);
    }
    return failed.length;
  }

  async function send(items) {
    // every file, zips' entries included, as {name, size, open}; opened a batch at a time
    const entries = [];
    for (const item of items) {
      if (/\.zip$/i.test(item.name)) {
        try {
          for (const inner of await readZip(item.file)) {
            if (inner.refused) refuse(inner.name, inner.refused);
            else entries.push(inner);
          }
        } catch (error) { refuse(item.name, error.message); }
      } else if (!/(^|\/)DICOMDIR$/.test(item.name)) {  // the media's index, not an image
        entries.push({ name: item.name, size: item.file.size, open: async () => item.file });
      }
    }
    const batches = [];
    let batch = [];
    let bytes = 0;
    for (const e of entries) {
      if (batch.length && (batch.length >= BATCH_FILES || bytes + e.size > BATCH_BYTES)) {
        batches.push(batch); batch = []; bytes = 0;
      }
      batch.push(e); bytes += e.size;
    }
    if (batch.length) batches.push(batch);
    progress.max = Math.max(entries.reduce((sum, e) => sum + e.size, 0), 1);
    progress.value = 0;
    let sent = 0;
    for (const [n, chosen] of batches.entries()) {
      giftcloud.say(status, `Sending batch ${n + 1} of ${batches.length} (${sent} of ${entries.length} files)…`);
      const files = [];
      for (const e of chosen) {
        const file = await e.open();
        if (await isDicom(file)) files.push({ name: e.name, file });
        else refuse(e.name, "not a DICOM Part 10 file: no 'DICM' prefix after the 128-byte preamble; not sent");
      }
      if (files.length) {
        const boundary = `giftcloud-${crypto.randomUUID()}`;
        const answer = await giftcloud.call("POST", `/dicomweb/${project}/studies`,
          multipart(files, boundary),
          { "Content-Type": `multipart/related; type="application/dicom"; boundary=${boundary}`, Accept: "application/dicom+json" });
        if (!refusedParts(answer, files) && !answer.ok) {  // the whole batch refused, for one reason
          for (const f of files) refuse(f.name, `not sent: ${answer.body.detail}`);
        }
        const id = answer.headers.get("X-Giftcloud-Upload");
        if (id) track(id, files.map((f) => f.name));
      }
      sent += chosen.length;
      progress.value += chosen.reduce((sum, e) => sum + e.size, 0);
    }
    giftcloud.say(status, `Sent ${sent} file(s) in ${batches.length} batch(es); waiting for de-identification and the archive…`);
    await follow();
  }

  // a batch by its files' names (the first and how many more), its id as a tooltip
  function track(id, names) {
    const row = giftcloud.el("tr", { "data-upload-id": id });
    outcome.append(row);
    const more = names.length > 1 ? ` and ${names.length - 1} more` : "";
    uploads.set(id, { names, row, label: `${names[0]}${more}`, reported: new Set(), status: null });
  }

  async function follow() {
    for (;;) {
      let pending = 0;
      for (const [id, upload] of uploads) {
        const answer = await giftcloud.call("GET", `/ingest/${project}/uploads/${id}`);
        if (!answer.ok) continue;
        const u = answer.body;
        upload.status = u;
        pending += u.pending;
        upload.row.replaceChildren(
          giftcloud.el("td", { title: `upload ${id}` }, upload.label),
          giftcloud.el("td", { class: "n" }, String(u.accepted)),
          giftcloud.el("td", { class: "n" }, String(u.archived - u.already)),
          giftcloud.el("td", { class: "n" }, String(u.already)),
          giftcloud.el("td", { class: "n" }, String(u.pending)),
          giftcloud.el("td", { class: "n" }, String(u.rejected.length)),
        );
        for (const r of u.rejected) {
          if (upload.reported.has(r.object)) continue;
          upload.reported.add(r.object);
          const index = parseInt(r.object, 10);
          refuse(upload.names[index] || r.object, `rejected: ${r.reason}`);
        }
      }
      if (pending === 0) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    // this send's batches only: the table keeps the earlier sends' rows
    const sum = (key) => [...uploads.values()].reduce((n, u) => n + (u.status ? u.status[key] : 0), 0);
    const already = sum("already");
    const before = already ? `, ${already} already in the project (sent before)` : "";
    giftcloud.say(status, `Done: ${sum("archived") - already} new instance(s) archived${before}.`);
    root.dataset.done = "true";
  }

  function start(items) {
    root.dataset.done = "false";
    uploads.clear();
    send(items).catch((error) => giftcloud.say(status, `The upload stopped: ${error.message}`, true));
  }

  for (const input of root.querySelectorAll("[data-files],[data-folder]")) {
    input.addEventListener("change", () => {
      start([...input.files].map((f) => ({ name: f.webkitRelativePath || f.name, file: f })));
    });
  }
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", async (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    // taken from the event before anything waits: the browser empties it afterwards
    const dropped = [];
    for (const item of event.dataTransfer.items) {
      if (item.kind !== "file") continue;
      const entry = item.webkitGetAsEntry && item.webkitGetAsEntry();
      const file = item.getAsFile();
      dropped.push({ entry, file });
    }
    const items = [];
    for (const { entry, file } of dropped) {
      if (entry && entry.isDirectory) items.push(...await entriesOf(entry, ""));
      else if (file) items.push({ name: file.name, file });
    }
    start(items);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const on = (selector, run) => { for (const node of document.querySelectorAll(selector)) run(node); };
  on("[data-action=create-project]", projectsPage);
  on("[data-upload]", uploadPage);
});
