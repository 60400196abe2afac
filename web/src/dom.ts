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

/** Unix seconds as the console writes times: UTC, to the second, as Atlas's results (null: `none`). */
export function utc(unix: number | null, none = "—"): string {
  return unix ? new Date(unix * 1000).toISOString().replace(".000Z", "Z") : none;
}

/** A definition list of facts (label, value), as the probe and measurement pages show them. */
export function facts(pairs: [string, string][]): HTMLDListElement {
  return el("dl", { class: "facts" }, ...pairs.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

/** A table's header row. */
export function tableHead(...headers: string[]): HTMLTableSectionElement {
  return el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { scope: "col" }, h))));
}

/** A download link for text made here (a blob: URL the console made itself; the CSP allows no other). */
export function download(name: string, type: string, text: () => string, label: string): HTMLButtonElement {
  const b = el("button", { type: "button", "data-download": name }, label);
  b.addEventListener("click", () => {
    const url = URL.createObjectURL(new Blob([text()], { type }));
    const a = el("a", { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  });
  return b;
}

/** A canvas sized for the screen's pixels, its context scaled to CSS pixels. */
export function sized(canvas: HTMLCanvasElement, w: number, h: number): CanvasRenderingContext2D {
  const dpr = window.devicePixelRatio || 1;
  canvas.width = w * dpr; canvas.height = h * dpr; canvas.style.height = `${h}px`;
  const ctx = canvas.getContext("2d")!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}
