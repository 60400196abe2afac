export * from "./atlas.ts";
export * from "./messages.ts";
export * from "./net.ts";
export * from "./builtins.ts";
export * from "./pricing.ts";
export * from "./encoding.ts";
export * from "./release.ts";
