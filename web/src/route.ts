// Every view's state is in the URL's fragment (`#/probes?country_code=NL`, `#/probes/1000001`): a permalink opens
// the same view, and the back button goes back through views and filters. The fragment never reaches a server.
export type Route = { path: string[]; query: URLSearchParams };

export function currentRoute(): Route {
  const hash = location.hash.replace(/^#/, "") || "/probes";
  const [path = "", query = ""] = hash.split("?", 2);
  return { path: path.split("/").filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(query) };
}

let leaving: (() => void)[] = [];
let shown = 0;

/** Which view is shown: a view still loading when the user moved on sees the number change, and stops. */
export function viewNumber(): number {
  return shown;
}

/** Something the current view holds open (a stream, an observer) is closed when the next view is shown. */
export function onLeave(fn: () => void): void {
  leaving.push(fn);
}

/** Called before a view is rendered: closes what the previous one held. */
export function leaveView(): void {
  for (const fn of leaving) fn();
  leaving = [];
  shown++;
}

export function navigate(hash: string): void {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}
