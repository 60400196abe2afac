// The web console's entry: the API key form, and the view the URL names (route.ts). Views: the probe map
// (probe-map.ts), a probe's page (probe-page.ts), a measurement's page (measurement-page.ts) and its DNSMON grid
// (measurement-grid.ts), the form that makes one (measurement-form.ts), the account (account-page.ts) and
// the cartogram (cartogram.ts).
import { accountPage } from "./account-page.ts";
import { api, apiKey, setApiKey } from "./api.ts";
import { cartogram } from "./cartogram.ts";
import { el } from "./dom.ts";
import { measurementForm } from "./measurement-form.ts";
import { measurementGrid, targetsGrid } from "./measurement-grid.ts";
import { measurementPage } from "./measurement-page.ts";
import { probeMap } from "./probe-map.ts";
import { probePage } from "./probe-page.ts";
import { currentRoute, leaveView } from "./route.ts";

async function render(): Promise<void> {
  const view = document.getElementById("view")!;
  leaveView();
  const route = currentRoute();
  const [section, id, sub] = route.path;
  if (section === "measurements" && id === "new") measurementForm(route, view);
  else if (section === "measurements" && id && sub === "grid") await measurementGrid(id, route, view);
  else if (section === "measurements" && id && !sub) await measurementPage(id, route, view);
  else if (section === "probes" && id) await probePage(id, view);
  else if (section === "probes") await probeMap(route, view);
  else if (section === "account") await accountPage(view);
  else if (section === "cartogram") await cartogram(route, view);
  else if (section === "grid") await targetsGrid(route, view);
  else view.replaceChildren(el("h1", {}, "Not found"), el("p", {}, `There is no view "${route.path.join("/")}".`));
}

/** Checks a key by asking for the account's credits; says whose key it is, or why it was refused. */
async function showKeyState(): Promise<void> {
  const state = document.getElementById("key-state")!;
  if (!apiKey()) { state.textContent = "anonymous"; return; }
  try {
    const c = await api<{ current_balance: number }>("/api/v2/credits/");
    state.textContent = `key in use: ${c.current_balance.toLocaleString("en")} credits`;
  } catch (e) {
    state.replaceChildren(el("span", { class: "error" }, `key refused: ${(e as Error).message}`));
  }
}

function setUpKeyForm(): void {
  const form = document.getElementById("key-form") as HTMLFormElement;
  const input = document.getElementById("api-key") as HTMLInputElement;
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    setApiKey(input.value.trim() || null);
    input.value = "";
    void showKeyState().then(render);
  });
  document.getElementById("key-forget")!.addEventListener("click", () => { setApiKey(null); void showKeyState().then(render); });
}

const goto = document.getElementById("goto-measurement") as HTMLFormElement;
goto.addEventListener("submit", (e) => {
  e.preventDefault();
  const id = String(new FormData(goto).get("id") ?? "").trim();
  if (/^\d+$/.test(id)) location.hash = `#/measurements/${id}`;
});

window.addEventListener("hashchange", () => void render());
setUpKeyForm();
void showKeyState();
void render();
