// Runs in the page (page.evaluate): accessibility basics and status colour contrast.
() => {
  const problems = [];
  const describe = (el) => el.outerHTML.slice(0, 120);
  // 1. Every visible form control has a label.
  for (const el of document.querySelectorAll("input, select, textarea, button")) {
    if (el.type === "hidden") continue;
    let name = "";
    if (el.labels && el.labels.length) name = [...el.labels].map(l => l.textContent).join(" ");
    name = name || el.getAttribute("aria-label") || "";
    const by = el.getAttribute("aria-labelledby");
    if (!name && by) {
      name = by.split(/\s+/)
        .map((id) => (document.getElementById(id) || {}).textContent || "")
        .join(" ");
    }
    if (!name && el.tagName === "BUTTON") name = el.textContent;
    if (!name.trim()) problems.push("control without a label: " + describe(el));
  }
  // 2. One h1.
  const h1s = document.querySelectorAll("h1").length;
  if (h1s !== 1) problems.push("the page has " + h1s + " h1 elements");
  // 3. Tables have header cells, in a header row.
  for (const table of document.querySelectorAll("table")) {
    if (!table.querySelector("thead th")) {
      problems.push("table without header cells: " + describe(table));
    }
  }
  // 4. Status colours against what is behind them.
  const rgb = (text) => {
    const m = text.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const parts = m[1].split(",").map(Number);
    return {r: parts[0], g: parts[1], b: parts[2], a: parts.length > 3 ? parts[3] : 1};
  };
  const background = (el) => {
    for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
      const c = rgb(getComputedStyle(node).backgroundColor);
      if (c && c.a > 0) return c;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  const luminance = (c) => {
    const f = (v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const ratios = [];
  for (const el of document.querySelectorAll(".status, .mark, .swatch, .state, .level")) {
    const fg = rgb(getComputedStyle(el).color);
    const bg = background(el);
    const [hi, lo] = [luminance(fg), luminance(bg)].sort((x, y) => y - x);
    const ratio = (hi + 0.05) / (lo + 0.05);
    ratios.push(ratio);
    if (ratio < 4.5) problems.push("contrast " + ratio.toFixed(2) + " < 4.5: " + describe(el));
  }
  return {problems, checked: ratios.length};
}
