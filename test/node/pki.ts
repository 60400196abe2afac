// A test PKI made in the test with openssl: root CA → intermediate CA → server certificate for the given names.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./system.ts";

export type TestPki = { dir: string; root: string; intermediate: string; leaf: string; key: string };

export function makeTestPki(sans: string): TestPki {
  const dir = tempDir("pki");
  const f = (n: string) => join(dir, n);
  const ssl = (...args: string[]) => execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  ssl("req", "-x509", ...ec, "-days", "2", "-subj", "/CN=Vantage Test Root", "-keyout", f("root.key"), "-out", f("root.pem"),
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  writeFileSync(f("ca.ext"), "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n");
  ssl("req", ...ec, "-subj", "/CN=Vantage Test Intermediate", "-keyout", f("int.key"), "-out", f("int.csr"));
  ssl("x509", "-req", "-in", f("int.csr"), "-CA", f("root.pem"), "-CAkey", f("root.key"), "-CAcreateserial", "-days", "2", "-extfile", f("ca.ext"), "-out", f("int.pem"));
  writeFileSync(f("leaf.ext"), `basicConstraints=CA:FALSE\nsubjectAltName=${sans}\nextendedKeyUsage=serverAuth\n`);
  ssl("req", ...ec, "-subj", "/CN=www.example.test", "-keyout", f("leaf.key"), "-out", f("leaf.csr"));
  ssl("x509", "-req", "-in", f("leaf.csr"), "-CA", f("int.pem"), "-CAkey", f("int.key"), "-CAcreateserial", "-days", "2", "-extfile", f("leaf.ext"), "-out", f("leaf.pem"));
  const read = (n: string) => readFileSync(f(n), "utf8").trim();
  return { dir, root: read("root.pem"), intermediate: read("int.pem"), leaf: read("leaf.pem"), key: read("leaf.key") };
}
