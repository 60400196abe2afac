// Shared helpers for measurements over Node's own TCP/TLS sockets.
export const ms3 = (x: number): number => Math.round(x * 1000) / 1000;

/** The X.509 certificate as PEM, 64 base64 characters a line. */
export function pem(der: Buffer): string {
  const b64 = der.toString("base64").replace(/(.{64})/g, "$1\n").replace(/\n$/, "");
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----`;
}

/** IANA code points of the cipher suites TLS servers commonly pick, for Atlas's hex `server_cipher`. */
const CIPHER_IDS: Record<string, number> = {
  TLS_AES_128_GCM_SHA256: 0x1301, TLS_AES_256_GCM_SHA384: 0x1302, TLS_CHACHA20_POLY1305_SHA256: 0x1303,
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 0xc02b, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 0xc02c,
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 0xc02f, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 0xc030,
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 0xcca8, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 0xcca9,
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: 0xc013, TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: 0xc014,
  TLS_RSA_WITH_AES_128_GCM_SHA256: 0x009c, TLS_RSA_WITH_AES_256_GCM_SHA384: 0x009d,
  TLS_RSA_WITH_AES_128_CBC_SHA: 0x002f, TLS_RSA_WITH_AES_256_CBC_SHA: 0x0035,
};

export function cipherHex(standardName: string | undefined): string | undefined {
  if (!standardName) return undefined;
  const id = CIPHER_IDS[standardName];
  return id === undefined ? standardName : `0x${id.toString(16).padStart(4, "0")}`;
}
