export * from "./atlas.ts";
export * from "./messages.ts";
