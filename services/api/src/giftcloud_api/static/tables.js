// Sortable tables: each column heading of a table[data-sortable] becomes a button that sorts
// the rows by that column (again: the other way); numbers as numbers (class "n"), a cell's
// data-value before its text. The heading says how it is sorted (aria-sort).
"use strict";

function sortable(table) {
  const heads = [...table.querySelectorAll("thead th")];
  heads.forEach((th, column) => {
    if (th.querySelector("input") || !th.textContent.trim()) return;  // a choose-all box
    const button = giftcloud.el("button", { type: "button", class: "sort" }, th.textContent);
    th.replaceChildren(button);
    button.addEventListener("click", () => {
      const ascending = th.getAttribute("aria-sort") !== "ascending";
      for (const other of heads) other.removeAttribute("aria-sort");
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      const numeric = th.classList.contains("n");
      const key = (row) => {
        const cell = row.children[column];
        const text = cell ? (cell.dataset.value ?? cell.textContent.trim()) : "";
        return numeric ? Number(text.replace(/[^0-9.-]/g, "")) || 0 : text.toLowerCase();
      };
      const body = table.tBodies[0];
      const rows = [...body.rows].filter((row) => row.children.length === heads.length);
      rows.sort((a, b) => {
        const [x, y] = [key(a), key(b)];
        const order = x < y ? -1 : x > y ? 1 : 0;
        return ascending ? order : -order;
      });
      body.append(...rows);
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  for (const table of document.querySelectorAll("table[data-sortable]")) sortable(table);
});
