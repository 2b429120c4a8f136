// kanda steward pages: the only script. Everything works without it; it adds "select all" to the queue.
document.addEventListener("DOMContentLoaded", () => {
  const all = document.querySelector("[data-select-all]");
  if (!all) return;
  const boxes = () => document.querySelectorAll("input[name=item_id]");
  all.addEventListener("change", () => boxes().forEach((b) => { b.checked = all.checked; }));
});
