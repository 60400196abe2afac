// The account (#/account), for the key in use: its credits (balance, what is set aside, the day's income and
// spending, a chart of the balance over time rebuilt from the journal, the newest items), its API keys (create with
// grants, disable and enable, delete; a new key is shown once), and the alerts the network raised.
import uPlot from "uplot";
import { allPages, api, ApiError, apiKey } from "./api.ts";
import { append, el, facts, tableHead, utc, viewLink } from "./dom.ts";
import { navigate, viewNumber } from "./route.ts";
import { balanceSeries, type JournalItem as Item } from "./series.ts";

type Credits = {
  account: string; current_balance: number; reserved: number; available: number; estimated_daily_income: number;
  estimated_daily_expenditure: number; estimated_runout_seconds: number | null; last_date_credited: string | null; last_date_debited: string | null;
};
type Key = { uuid: string; label: string; enabled: boolean; is_active: boolean; grants: { permission: string }[]; valid_from: string | null; valid_to: string | null; created_at: string };
type Alert = { id: number; type: string; target: string; accounts: number; window_s: number; time: number; measurements: string[] };

/** The grants a key can hold (durable-objects/registry-schema.ts GRANTS), with what each lets it do. */
const GRANTS: [string, string][] = [
  ["create_measurements", "create measurements"], ["stop_measurements", "stop measurements"], ["get_credits", "see credits"],
  ["transfer_credits", "transfer credits"], ["manage_keys", "manage keys"],
];
/** What the last action on a key did, said when the page is drawn again after it. */
let done = "";

/** How much of the journal the chart goes back through (newest first): two pages of each direction. */
const JOURNAL_ITEMS = 1000;

export async function accountPage(view: HTMLElement): Promise<void> {
  if (!apiKey()) {
    view.replaceChildren(el("h1", {}, "Account"), el("p", {}, "Enter an API key (above) to see its account's credits, keys and alerts."));
    return;
  }
  const mine = viewNumber();
  view.replaceChildren(el("h1", {}, "Account"), el("p", { role: "status" }, "Loading…"));
  let c: Credits;
  try {
    c = await api<Credits>("/api/v2/credits/");
  } catch (e) {
    view.replaceChildren(el("h1", {}, "Account"), el("p", { class: "error" }, `This key cannot see its credits: ${(e as Error).message}`));
    return;
  }
  if (viewNumber() !== mine) return;
  const chartBox = el("div", { class: "chart", id: "balance-chart" });
  const itemsBox = el("div", {}, el("p", {}, "Loading…"));
  const keysBox = el("section", { "aria-labelledby": "keys" }, el("h2", { id: "keys" }, "API keys"));
  const alertsBox = el("section", { "aria-labelledby": "alerts" }, el("h2", { id: "alerts" }, "Alerts"));
  view.replaceChildren();
  append(view,
    el("h1", {}, `Account ${c.account}`),
    el("section", { "aria-labelledby": "credits" }, el("h2", { id: "credits" }, "Credits"),
      facts([
        ["Balance", c.current_balance.toLocaleString("en")], ["Set aside for running measurements", c.reserved.toLocaleString("en")],
        ["Free", c.available.toLocaleString("en")], ["Income, past day", c.estimated_daily_income.toLocaleString("en")],
        ["Spent, past day", c.estimated_daily_expenditure.toLocaleString("en")],
        ["Runs out", c.estimated_runout_seconds === null ? "not at this rate" : `in ${(c.estimated_runout_seconds / 86_400).toFixed(1)} days at the past day's rate`],
      ]),
      el("h3", {}, "Balance over time"), chartBox, itemsBox),
    keysBox, alertsBox);
  await Promise.all([showJournal(c, chartBox, itemsBox), showKeys(keysBox), showAlerts(alertsBox)]);
}

async function showJournal(c: Credits, chartBox: HTMLElement, itemsBox: HTMLElement): Promise<void> {
  let income: Item[], expense: Item[], counts: [number, number];
  try {
    const count = (d: string) => api<{ count: number }>(`/api/v2/credits/${d}-items/?page_size=1`).then((r) => r.count);
    [income, expense, counts] = await Promise.all([
      allPages<Item>("/api/v2/credits/income-items/", JOURNAL_ITEMS), allPages<Item>("/api/v2/credits/expense-items/", JOURNAL_ITEMS),
      Promise.all([count("income"), count("expense")]),
    ]);
  } catch (e) {
    itemsBox.replaceChildren(el("p", { class: "error" }, `Could not load the journal: ${(e as Error).message}`));
    return;
  }
  const s = balanceSeries(c.current_balance, income, expense, income.length >= counts[0], expense.length >= counts[1]);
  chartBox.dataset.points = String(s.t.length);
  if (s.t.length) {
    // The balance holds until now: the line runs to the present, and the window is the journal's, not uPlot's years.
    const now = Math.floor(Date.now() / 1000);
    s.t.push(Math.max(now, s.t[s.t.length - 1]!));
    s.balance.push(c.current_balance);
    const span = Math.max(3600, s.t[s.t.length - 1]! - s.t[0]!);
    const chart = new uPlot({
      width: Math.max(320, chartBox.clientWidth || 800), height: 220, scales: { x: { time: true } },
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      series: [{}, { label: "balance (credits)", stroke: "#10243e", width: 2, paths: uPlot.paths.stepped!({ align: 1 }) }],
      axes: [{}, { label: "credits" }],
    }, [s.t, s.balance], chartBox);
    chart.setScale("x", { min: s.t[0]! - span * 0.05, max: s.t[s.t.length - 1]! + span * 0.02 });
  } else chartBox.replaceChildren(el("p", {}, "No income or spending yet."));
  const newest = [...income.map((i) => ({ ...i, sign: "+" })), ...expense.map((e) => ({ ...e, sign: "−" }))].sort((a, b) => b.id - a.id).slice(0, 20);
  itemsBox.replaceChildren(el("h3", {}, "Newest items"), newest.length ? el("table", { id: "credit-items" },
    tableHead("Time (UTC)", "Kind", "Credits", "Measurement", "Detail"),
    el("tbody", {}, ...newest.map((i) => el("tr", {}, el("td", {}, utc(i.time)), el("td", {}, i.type.replace(/_/g, " ")),
      el("td", { class: "num" }, `${i.sign}${i.amount.toLocaleString("en")}`),
      el("td", {}, i.measurement ? viewLink(`#/measurements/${i.measurement}`, String(i.measurement)) : "—"), el("td", {}, i.detail)))))
    : el("p", {}, "None."));
}

async function showKeys(box: HTMLElement): Promise<void> {
  const heading = box.firstChild!;
  let keys: Key[];
  try {
    keys = (await api<{ results: Key[] }>("/api/v2/keys/")).results;
  } catch (e) {
    box.replaceChildren(heading, el("p", {}, e instanceof ApiError && e.status === 403 ? "This key may not manage keys (it lacks the manage_keys grant)." : `Could not list keys: ${(e as Error).message}`));
    return;
  }
  const said = el("p", { role: "status", id: "key-said" }, done);
  done = "";
  const act = async (what: () => Promise<unknown>, outcome: string) => {
    try {
      await what();
      done = outcome;  // said on the page drawn again
      navigate("#/account");
    } catch (e) { said.replaceChildren(el("span", { class: "error" }, (e as Error).message)); }
  };
  const rows = keys.map((k) => {
    const toggle = el("button", { type: "button", "data-key-toggle": k.uuid }, k.enabled ? "Disable" : "Enable");
    toggle.addEventListener("click", () => void act(() => api(`/api/v2/keys/${k.uuid}/`, {
      method: "PATCH", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ enabled: !k.enabled }),
    }), `Key "${k.label}" ${k.enabled ? "disabled" : "enabled"}.`));
    const remove = el("button", { type: "button", "data-key-delete": k.uuid }, "Delete");
    remove.addEventListener("click", () => {
      if (!remove.dataset.confirm) { remove.dataset.confirm = "1"; remove.textContent = "Delete: it stops working at once"; return; }
      void act(() => api(`/api/v2/keys/${k.uuid}/`, { method: "DELETE" }), `Key "${k.label}" deleted.`);
    });
    return el("tr", { "data-key": k.uuid }, el("td", {}, k.label), el("td", {}, k.grants.map((g) => g.permission).join(", ")),
      el("td", {}, k.is_active ? "active" : k.enabled ? "enabled, outside its validity" : "disabled"),
      el("td", {}, k.valid_to ?? "no end"), el("td", {}, k.created_at), el("td", {}, toggle, " ", remove));
  });

  // A new key: a label, its grants (no more than this key's: the API refuses the rest, at the grant), an end.
  const label = el("input", { id: "new-key-label", required: "", maxlength: "128", "aria-describedby": "new-key-label-error" });
  const validTo = el("input", { id: "new-key-valid_to", placeholder: "2027-12-31T00:00:00Z", "aria-describedby": "new-key-valid_to-error" });
  const grantBoxes = GRANTS.map(([g, what]) => {
    const box = el("input", { type: "checkbox", id: `grant-${g}`, value: g });
    box.checked = g === "create_measurements" || g === "stop_measurements" || g === "get_credits";
    return el("label", { for: box.id }, box, what);
  });
  const errorAt = (id: string) => el("p", { id: `${id}-error`, class: "field-error" });
  const made = el("div", { id: "new-key", role: "status" });
  const form = el("form", { id: "key-create" },
    el("div", { class: "field" }, el("label", { for: label.id }, "Label *"), label, errorAt("new-key-label")),
    el("fieldset", { id: "new-key-grants", "aria-describedby": "new-key-grants-error" }, el("legend", {}, "It may"), ...grantBoxes, errorAt("new-key-grants")),
    el("div", { class: "field" }, el("label", { for: validTo.id }, "Valid until (UTC, optional)"), validTo, errorAt("new-key-valid_to")),
    el("button", { type: "submit" }, "Create key"), made);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    for (const p of form.querySelectorAll(".field-error")) p.textContent = "";
    const grants = [...form.querySelectorAll<HTMLInputElement>("fieldset input:checked")].map((b) => b.value);
    try {
      const k = await api<Key & { key: string }>("/api/v2/keys/", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ label: label.value.trim(), grants, ...(validTo.value.trim() ? { valid_to: validTo.value.trim() } : {}) }),
      });
      made.replaceChildren(el("p", {}, `Key "${k.label}" made. Copy it now: it is not shown again.`),
        el("output", { id: "new-key-value", class: "secret" }, k.key));
      label.value = "";
    } catch (err) {
      if (!(err instanceof ApiError)) { made.replaceChildren(el("p", { class: "error" }, (err as Error).message)); return; }
      for (const item of err.errors) {
        const field = /^\/(label|valid_to|grants)/.exec(item.source.pointer ?? "")?.[1];
        const at = field ? document.getElementById(`new-key-${field}-error`) : null;
        if (at) at.textContent = item.detail;
      }
      if (!err.errors.length) made.replaceChildren(el("p", { class: "error" }, err.message));
    }
  });
  box.replaceChildren(heading, said,
    el("table", { id: "key-list" }, tableHead("Label", "Grants", "State", "Valid until", "Created", "Actions"), el("tbody", {}, ...rows)),
    el("h3", {}, "New key"), form);
}

async function showAlerts(box: HTMLElement): Promise<void> {
  const heading = box.firstChild!;
  try {
    const alerts = (await api<{ results: Alert[] }>("/api/v2/alerts/?page_size=20")).results;
    box.replaceChildren(heading, alerts.length ? el("table", { id: "alert-list" }, tableHead("Time (UTC)", "Alert", "Measurements"),
      el("tbody", {}, ...alerts.map((a) => el("tr", {}, el("td", {}, utc(a.time)),
        el("td", {}, a.type === "crowd" ? `${a.accounts} accounts measured ${a.target} within ${a.window_s / 60} minutes` : `${a.type}: ${a.target}`),
        el("td", {}, ...a.measurements.map((u) => /\/measurements\/(\d+)\/$/.exec(u)?.[1]).filter((id): id is string => !!id)
          .flatMap((id) => [viewLink(`#/measurements/${id}`, id), " "]))))))
      : el("p", {}, "None."));
  } catch (e) {
    box.replaceChildren(heading, el("p", { class: "error" }, `Could not load alerts: ${(e as Error).message}`));
  }
}
