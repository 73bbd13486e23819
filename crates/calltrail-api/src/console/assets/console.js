// calltrail console: small progressive enhancements. Every page works without this file.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Rows of a list open their page on click anywhere in the row; the link in the row stays
  // the keyboard and screen-reader way in.
  for (const row of document.querySelectorAll("tr[data-href]")) {
    row.addEventListener("click", (event) => {
      if (event.target.closest("a, button, input, label, select")) return;
      const href = row.getAttribute("data-href");
      if (href && href.startsWith("/")) window.location.assign(href);
    });
  }

  // "Expand all" / "Collapse all" for groups of <details> (the raw payloads of a call).
  for (const group of document.querySelectorAll("[data-details-group]")) {
    const items = group.querySelectorAll("details");
    if (items.length < 2) continue;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "secondary";
    const label = () => (Array.from(items).every((d) => d.open) ? "Collapse all" : "Expand all");
    button.textContent = label();
    button.addEventListener("click", () => {
      const open = label() === "Expand all";
      for (const d of items) d.open = open;
      button.textContent = label();
    });
    for (const d of items) d.addEventListener("toggle", () => { button.textContent = label(); });
    const heading = group.querySelector("h2");
    if (heading) heading.after(button); else group.prepend(button);
  }
});
