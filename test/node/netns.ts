// Network namespaces the tests make for themselves (root only): a private place to send packets that nobody
// answers, or to build multi-hop paths. Every namespace made here is deleted by `remove()`.
import { execFileSync } from "node:child_process";

export function netnsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return "not root: network namespaces need CAP_SYS_ADMIN";
  try {
    execFileSync("ip", ["netns", "list"], { stdio: "ignore" });
    return null;
  } catch {
    return "`ip netns` is not available (install iproute2)";
  }
}

export class Netns {
  readonly name: string;
  constructor(tag: string) {
    this.name = `vt-${tag}-${process.pid}`;
    if (this.name.length > 31) throw new Error(`namespace name too long: ${this.name}`);
    execFileSync("ip", ["netns", "add", this.name]);
    this.ip("link", "set", "lo", "up");
  }

  ip(...args: string[]): void {
    execFileSync("ip", ["-n", this.name, ...args]);
  }

  /** Runs a command inside the namespace and returns its stdout. */
  exec(cmd: string, args: string[], input?: string): string {
    return execFileSync("ip", ["netns", "exec", this.name, cmd, ...args], { encoding: "utf8", timeout: 60_000, input });
  }

  remove(): void {
    try { execFileSync("ip", ["netns", "del", this.name]); } catch { /* already gone */ }
  }
}

/** A namespace whose 10.9.0.0/24 link has no other host on it: echo requests to 10.9.0.2 are never answered. */
export function silentLink(tag: string): Netns {
  const ns = new Netns(tag);
  ns.ip("link", "add", "v0", "type", "veth", "peer", "name", "v1");
  ns.ip("addr", "add", "10.9.0.1/24", "dev", "v0");
  ns.ip("link", "set", "v0", "up");
  ns.ip("link", "set", "v1", "up");
  return ns;
}
