// The new-measurement form (#/measurements/new): the six types with Atlas's fields and defaults (measurement-fields.ts),
// where the probes come from (area, country, ASN, prefix, probe ids, an earlier measurement's probes, or probes
// picked on the map: `?probes=1,2`), and when it runs. As it is filled in, the API prices it
// (POST /api/v2/measurements/cost/): the credits creation would set aside against those free, and an identical
// recent one-off offered as "use its results". The API's errors are shown at the field they name. The form's state
// is in the URL, so a filled-in form is a link.
import { api, ApiError, apiKey } from "./api.ts";
import { append, el, viewLink } from "./dom.ts";
import { AREAS, DEFAULT_INTERVAL, type Field, FIELDS, type MeasurementType, SOURCE_TYPES, TYPE_LABELS, TYPES } from "./measurement-fields.ts";
import { navigate, onLeave, type Route } from "./route.ts";

type Price = {
  credits: number; available: number; enough: boolean;
  definitions: { credits_per_result: number; results_first_day: number; credits: number; reuses?: number }[];
  warnings: { code: string; detail: string; measurement: number }[];
};
type Source = { type: string; value: string; requested: number };

/** When it runs: a start for either kind; the rest for periodic measurements only. */
const START: Field = { name: "start_time", label: "Start (UTC)", kind: "text", help: "Now when empty; e.g. 2026-12-24T06:00:00Z" };
const SCHEDULE: Field[] = [
  { name: "interval", label: "Every (seconds)", kind: "number", default: DEFAULT_INTERVAL, min: 60 },
  { name: "stop_time", label: "Stop (UTC)", kind: "text", help: "Runs until stopped when empty." },
  { name: "spread", label: "Spread (seconds)", kind: "number", min: 0, max: 400, help: "How far apart the probes' runs may be." },
];

/** An input for a field: its label, its control, its help and the place its error goes (ids from the field's name). */
function control(f: Field, value: string | null): { row: HTMLElement; input: HTMLInputElement | HTMLSelectElement } {
  const id = `f-${f.name}`;
  let input: HTMLInputElement | HTMLSelectElement;
  if (f.kind === "select") {
    input = el("select", { id, name: f.name });
    for (const o of f.options!) input.append(el("option", { value: o }, o));
    input.value = value ?? String(f.default ?? f.options![0]);
  } else if (f.kind === "boolean") {
    input = el("input", { id, name: f.name, type: "checkbox" });
    (input as HTMLInputElement).checked = value === null ? f.default === true : value === "true";
  } else {
    input = el("input", { id, name: f.name, type: f.kind === "number" ? "number" : "text", inputmode: f.kind === "number" ? "numeric" : "text" });
    if (f.kind === "number") {
      if (f.min !== undefined) input.setAttribute("min", String(f.min));
      if (f.max !== undefined) input.setAttribute("max", String(f.max));
    }
    if (f.default !== undefined) input.setAttribute("placeholder", String(f.default));
    input.value = value ?? "";
  }
  if (f.required) input.setAttribute("aria-required", "true");
  const described = [f.help ? `${id}-help` : "", `${id}-error`].filter(Boolean).join(" ");
  input.setAttribute("aria-describedby", described);
  const row = el("div", { class: `field ${f.kind}`, "data-field": f.name },
    el("label", { for: id }, f.label, f.required ? " *" : ""), input,
    f.help ? el("small", { id: `${id}-help` }, f.help) : null,
    el("p", { id: `${id}-error`, class: "field-error", "aria-live": "polite" }));
  return { row, input };
}

export function measurementForm(route: Route, view: HTMLElement): void {
  const q = route.query;
  const type: MeasurementType = (TYPES as readonly string[]).includes(q.get("type") ?? "") ? q.get("type") as MeasurementType : "ping";
  const oneoff = q.get("oneoff") !== "false";

  const typePicker = el("fieldset", { class: "types" }, el("legend", {}, "Type"),
    ...TYPES.map((t) => {
      const radio = el("input", { type: "radio", name: "type", value: t, id: `type-${t}` });
      radio.checked = t === type;
      return el("label", { for: `type-${t}` }, radio, TYPE_LABELS[t]);
    }));
  const inputs = new Map<string, HTMLInputElement | HTMLSelectElement>();
  const defFields = el("fieldset", { class: "definition" }, el("legend", {}, `What to measure (${TYPE_LABELS[type]})`));
  for (const f of FIELDS[type]) {
    const { row, input } = control(f, q.get(f.name));
    inputs.set(f.name, input);
    defFields.append(row);
  }

  // Where from: probe sources, one or more.
  const sourceList = el("div", { class: "sources" });
  const sources: Source[] = [];
  const picked = q.get("probes");
  const fromUrl = q.getAll("source");
  if (picked) sources.push({ type: "probes", value: picked, requested: picked.split(",").length });
  for (const s of fromUrl) {
    // type:value:requested, the value possibly an IPv6 prefix with colons of its own.
    const first = s.indexOf(":"), last = s.lastIndexOf(":");
    if (first < 0 || last === first) continue;
    sources.push({ type: s.slice(0, first), value: s.slice(first + 1, last), requested: Number(s.slice(last + 1)) || 10 });
  }
  if (sources.length === 0) sources.push({ type: "area", value: "WW", requested: 10 });
  const drawSources = () => {
    sourceList.replaceChildren(...sources.map((s, i) => {
      const typeSelect = el("select", { id: `source-${i}-type`, "aria-describedby": `source-${i}-type-error` },
        ...SOURCE_TYPES.map(([v, label]) => el("option", { value: v }, label)));
      typeSelect.value = s.type;
      const value = el("input", { id: `source-${i}-value`, value: s.value, "aria-describedby": `source-${i}-hint source-${i}-value-error`, "aria-required": "true" });
      if (s.type === "area") value.setAttribute("list", "areas");  // Atlas's six areas offered as you type
      const requested = el("input", { id: `source-${i}-requested`, type: "number", min: "1", max: "1000", value: String(s.requested), "aria-describedby": `source-${i}-requested-error` });
      const hint = el("small", { id: `source-${i}-hint` }, SOURCE_TYPES.find(([v]) => v === s.type)?.[2] ?? "");
      typeSelect.addEventListener("change", () => { s.type = typeSelect.value; if (s.type === "area") s.value = "WW"; drawSources(); changed(); });
      value.addEventListener("input", () => { s.value = value.value.trim(); });
      requested.addEventListener("input", () => { s.requested = Number(requested.value); });
      const remove = el("button", { type: "button", "aria-label": `Remove probe source ${i + 1}` }, "Remove");
      remove.disabled = sources.length === 1;
      remove.addEventListener("click", () => { sources.splice(i, 1); drawSources(); changed(); });
      return el("div", { class: "source", "data-source": String(i) },
        el("div", { class: "field" }, el("label", { for: typeSelect.id }, "Probes by"), typeSelect, el("p", { id: `source-${i}-type-error`, class: "field-error" })),
        el("div", { class: "field" }, el("label", { for: value.id }, "Value"), value, hint, el("p", { id: `source-${i}-value-error`, class: "field-error", "aria-live": "polite" })),
        el("div", { class: "field" }, el("label", { for: requested.id }, "How many"), requested, el("p", { id: `source-${i}-requested-error`, class: "field-error", "aria-live": "polite" })),
        remove);
    }));
  };
  drawSources();
  const addSource = el("button", { type: "button" }, "Add a probe source");
  addSource.addEventListener("click", () => { sources.push({ type: "country", value: "", requested: 10 }); drawSources(); changed(); });

  // When: one-off now, or every so often.
  const kindOneoff = el("input", { type: "radio", name: "kind", value: "oneoff", id: "kind-oneoff" });
  const kindPeriodic = el("input", { type: "radio", name: "kind", value: "periodic", id: "kind-periodic" });
  (oneoff ? kindOneoff : kindPeriodic).checked = true;
  const schedule = el("div", { class: "schedule" });
  for (const f of SCHEDULE) {
    const { row, input } = control(f, q.get(f.name));
    inputs.set(f.name, input);
    schedule.append(row);
  }
  const start = control(START, q.get(START.name));
  inputs.set(START.name, start.input);
  const isPublic = control({ name: "is_public", label: "Public (anyone may see it and its results)", kind: "boolean", default: true }, q.get("is_public"));
  inputs.set("is_public", isPublic.input);
  const when = el("fieldset", { class: "when" }, el("legend", {}, "When"),
    el("label", { for: "kind-oneoff" }, kindOneoff, "Once"), el("label", { for: "kind-periodic" }, kindPeriodic, "Periodically"),
    start.row, schedule, isPublic.row);
  const showSchedule = () => { schedule.hidden = kindOneoff.checked; };
  showSchedule();

  const price = el("div", { id: "price", class: "price", role: "status", "aria-live": "polite" });
  const formError = el("p", { id: "form-error", class: "error", role: "alert", tabindex: "-1" });
  const submit = el("button", { type: "submit", id: "create" }, "Create measurement");
  const form = el("form", { id: "measurement-form", novalidate: "" }, typePicker, defFields,
    el("fieldset", {}, el("legend", {}, "Probes"), sourceList, addSource), when, price, formError, submit);
  const areas = el("datalist", { id: "areas" }, ...AREAS.map((a) => el("option", { value: a })));
  view.replaceChildren();
  append(view, el("h1", {}, "New measurement"), apiKey() ? null : el("p", { class: "error" }, "Enter an API key (above) to price and create measurements."), form, areas);
  submit.disabled = !apiKey();

  /** The request body, as Atlas takes it: only what the user set, so Atlas's defaults apply to the rest. */
  const body = (): Record<string, unknown> => {
    const d: Record<string, unknown> = { type };
    for (const f of FIELDS[type]) {
      const input = inputs.get(f.name)!;
      if (f.kind === "boolean") d[f.name] = (input as HTMLInputElement).checked;
      else if (input.value.trim() === "") continue;
      else if (f.kind === "number" || f.name === "af") d[f.name] = Number(input.value);
      else d[f.name] = input.value.trim();
    }
    const startAt = inputs.get(START.name)!.value.trim();
    if (startAt) d.start_time = /^\d+$/.test(startAt) ? Number(startAt) : startAt;
    if (!kindOneoff.checked) {
      for (const f of SCHEDULE) {
        const v = inputs.get(f.name)!.value.trim();
        if (v) d[f.name] = f.kind === "number" ? Number(v) : v;
      }
      if (d.interval === undefined) d.interval = DEFAULT_INTERVAL;
    }
    d.is_public = (inputs.get("is_public") as HTMLInputElement).checked;
    return { definitions: [d], probes: sources.map((s) => ({ type: s.type, value: s.value, requested: s.requested })), is_oneoff: kindOneoff.checked };
  };

  /** The form's state into the URL (no history entry per keystroke): reloading or sharing it shows the same form. */
  const keepInUrl = () => {
    const next = new URLSearchParams({ type });
    if (!kindOneoff.checked) next.set("oneoff", "false");
    for (const [name, input] of inputs) {
      const f = [...FIELDS[type], START, ...SCHEDULE].find((x) => x.name === name) ?? { kind: "boolean", default: true };
      if (input instanceof HTMLInputElement && input.type === "checkbox") { if (input.checked !== (f.default === true)) next.set(name, String(input.checked)); }
      else if (input.value.trim() && input.value !== String(f.default ?? "")) next.set(name, input.value.trim());
    }
    for (const s of sources) next.append("source", `${s.type}:${s.value}:${s.requested}`);
    history.replaceState(null, "", `#/measurements/new?${next}`);
  };

  // Errors at their fields: `/definitions/0/packets` at Packets, `/probes/1/value` at the second source's value,
  // `/stop_time` at Stop. What names no field on the form goes above the button.
  const touched = new Set<string>();
  let submitted = false;
  const fieldOf = (pointer: string): string | null => {
    const def = /^\/definitions\/0\/([^/]+)/.exec(pointer);
    if (def && inputs.has(def[1]!)) return `f-${def[1]}`;
    const src = /^\/probes\/(\d+)\/(type|value|requested)/.exec(pointer);
    if (src && Number(src[1]) < sources.length) return `source-${src[1]}-${src[2]}`;
    const top = /^\/(start_time|stop_time|is_oneoff)$/.exec(pointer);
    if (top && inputs.has(top[1]!)) return `f-${top[1]}`;
    return null;
  };
  const clearErrors = () => {
    for (const p of form.querySelectorAll(".field-error")) p.textContent = "";
    for (const i of form.querySelectorAll("[aria-invalid]")) i.removeAttribute("aria-invalid");
    formError.textContent = "";
  };
  const showErrors = (e: ApiError, all: boolean): HTMLElement | null => {
    clearErrors();
    let first: HTMLElement | null = null;
    const loose: string[] = [];
    for (const item of e.errors.length ? e.errors : [{ source: {}, detail: e.message }]) {
      const id = "pointer" in item.source && item.source.pointer ? fieldOf(item.source.pointer) : null;
      const input = id ? document.getElementById(id) : null;
      if (!id || !input) { loose.push(item.detail); continue; }
      if (!all && !touched.has(id)) continue;
      document.getElementById(`${id}-error`)!.textContent = item.detail;
      input.setAttribute("aria-invalid", "true");
      first ??= input;
    }
    if (loose.length && (all || e.errors.length === 0)) formError.textContent = loose.join(" ");
    return first;
  };

  let asked = 0;
  const reprice = async () => {
    keepInUrl();
    if (!apiKey()) return;
    const mine = ++asked;
    try {
      const p = await api<Price>("/api/v2/measurements/cost/", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body()) });
      if (mine !== asked) return;
      clearErrors();
      showPrice(price, p);
    } catch (e) {
      if (mine !== asked || !(e instanceof ApiError)) return;
      showErrors(e, submitted);
      const first = e.errors[0];
      const at = first?.source.pointer ? fieldOf(first.source.pointer) : null;
      const label = at ? document.querySelector(`label[for="${at}"]`)?.textContent?.replace(/ \*$/, "") : null;
      price.replaceChildren(el("p", {}, "Not priced yet: ", label && first ? `${label}: ${first.detail}` : e.message));
    }
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const changed = () => { clearTimeout(timer); timer = setTimeout(() => void reprice(), 250); };
  onLeave(() => clearTimeout(timer));
  form.addEventListener("input", (e) => {
    const t = e.target as HTMLElement;
    if (t.id) touched.add(t.id);
    if (t instanceof HTMLInputElement && t.name === "type") return;
    changed();
  });
  form.addEventListener("change", (e) => {
    const t = e.target as HTMLInputElement;
    if (t.name === "type") {
      // Another type has other fields: the shared ones (target, description, af, sources, schedule) carry over.
      keepInUrl();
      const next = new URLSearchParams(location.hash.split("?")[1] ?? "");
      next.set("type", t.value);
      navigate(`#/measurements/new?${next}`);
      return;
    }
    if (t.name === "kind") showSchedule();
    changed();
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clearTimeout(timer);
    submitted = true;
    submit.disabled = true;
    formError.textContent = "";
    try {
      const created = await api<{ measurements: number[] }>("/api/v2/measurements/", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body()) });
      navigate(`#/measurements/${created.measurements[0]}`);
    } catch (err) {
      const first = err instanceof ApiError ? showErrors(err, true) : null;
      if (!(err instanceof ApiError)) formError.textContent = `Could not create it: ${(err as Error).message}`;
      else if (!first && !formError.textContent) formError.textContent = err.message;
      (first ?? formError).focus?.();
      submit.disabled = false;
      void reprice();
    }
  });
  void reprice();
}

/** The price, and a duplicate offered as its earlier results (free, and already there). */
function showPrice(box: HTMLElement, p: Price): void {
  const perDefinition = p.definitions.map((d) => d.reuses
    ? `takes measurement ${d.reuses}'s results: no cost`
    : `${d.credits_per_result} credits a result × ${d.results_first_day.toLocaleString("en")} results in its first day`);
  box.dataset.credits = String(p.credits);
  box.replaceChildren();
  append(box,
    el("p", {}, el("strong", {}, `Cost: ${p.credits.toLocaleString("en")} credits`), ` set aside now (${perDefinition.join("; ")}). `,
      `You have ${p.available.toLocaleString("en")} free.`),
    p.enough ? null : el("p", { class: "error" }, `Not enough credits: ${(p.credits - p.available).toLocaleString("en")} more are needed. Credits are earned by hosting probes.`),
    ...p.warnings.filter((w) => w.code === "duplicate").map((w) => el("p", { class: "duplicate", "data-duplicate": String(w.measurement) },
      w.detail, " ", viewLink(`#/measurements/${w.measurement}`, `Use the earlier results (measurement ${w.measurement})`))),
  );
}
