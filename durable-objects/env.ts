// Names and helpers every part of the edge shares. The bindings' type, `Env`, is global (bindings.d.ts).

export const REGISTRY_NAME = "registry";
export const BRAIN_NAME = "brain";

export function flag(v: string | undefined): boolean {
  return v === "true" || v === "1";
}
