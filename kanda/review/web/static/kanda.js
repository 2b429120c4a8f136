// kanda steward pages: the only script. Everything works without it; it adds "select all" to the queue and
// keyboard shortcuts. An element with data-key="x" is what the key x does: a link is followed, a button pressed,
// a field focused. On the queue, j/k move between rows, o (or Enter) opens the current one, x selects it.
document.addEventListener("DOMContentLoaded", () => {
  const all = document.querySelector("[data-select-all]");
  const boxes = () => document.querySelectorAll("input[name=item_id]");
  if (all) all.addEventListener("change", () => boxes().forEach((b) => { b.checked = all.checked; }));

  const rows = () => Array.from(document.querySelectorAll("[data-testid=queue] tbody tr[data-item]"));
  let current = -1;
  const mark = (index) => {
    const list = rows();
    if (!list.length) return;
    current = Math.max(0, Math.min(index, list.length - 1));
    list.forEach((r, i) => r.classList.toggle("current", i === current));
    list[current].scrollIntoView({ block: "nearest" });
  };

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target instanceof HTMLElement && target.closest("input, textarea, select, [contenteditable]")) {
      if (event.key === "Escape") target.blur();
      return;
    }
    const key = event.key;
    if (key === "?") {
      const help = document.getElementById("key-help");
      if (help) help.hidden = !help.hidden;
      return;
    }
    const list = rows();
    if (list.length) {
      if (key === "j" || key === "k") { mark(current + (key === "j" ? 1 : -1)); event.preventDefault(); return; }
      if ((key === "o" || key === "Enter") && current >= 0) { list[current].querySelector("a").click(); return; }
      if (key === "x" && current >= 0) {
        const box = list[current].querySelector("input[name=item_id]");
        if (box) box.checked = !box.checked;
        return;
      }
    }
    const element = document.querySelector(`[data-key="${CSS.escape(key)}"]`);
    if (!element) return;
    event.preventDefault();
    if (element instanceof HTMLInputElement || element instanceof HTMLSelectElement) element.focus();
    else element.click();
  });
});
