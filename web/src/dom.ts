// Building the page: every string from the API (probe descriptions, tags, results) goes in as text, never as markup,
// so a probe host's or a measurement creator's `<script>` is shown, not run. There is no innerHTML in the console.
type Child = Node | string | number | null | undefined | false;

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  append(e, ...children);
  return e;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    parent.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
  }
}

/** A link inside the console: only ever to one of its own views (`#/…`), whatever the data says. */
export function viewLink(hash: string, ...children: Child[]): HTMLAnchorElement {
  if (!hash.startsWith("#/")) throw new Error(`not a console view: ${hash}`);
  return el("a", { href: hash }, ...children);
}
