#!/usr/bin/python3
# Reads C-DNS files (RFC 8618) with Python's cbor2, a CBOR decoder not written here, checks every map against the
# RFC's CDDL (Appendix A: keys, value types, mandatory items, table indexes in range) and prints each
# query/response pair as one JSON line, reconstructed from the block tables.
import gzip, ipaddress, json, sys
import cbor2

class Invalid(Exception):
    pass

def need(cond, what):
    if not cond:
        raise Invalid(what)

def uint(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0

def check_map(m, where, allowed, mandatory=()):
    need(isinstance(m, dict), f"{where} is not a map")
    for k in m:
        need(isinstance(k, int), f"{where}: key {k!r} is not an integer")
        need(k in allowed, f"{where}: key {k} is not in the CDDL")
        need(allowed[k](m[k]), f"{where}: key {k} has a value of the wrong type: {m[k]!r}")
    for k in mandatory:
        need(k in m, f"{where}: mandatory key {k} missing")

any_ = lambda v: True
arr = lambda f: (lambda v: isinstance(v, list) and len(v) > 0 and all(f(x) for x in v))
bstr = lambda v: isinstance(v, bytes)
tstr = lambda v: isinstance(v, str)
dict_ = lambda v: isinstance(v, dict)

def name_text(wire):
    labels, i = [], 0
    while i < len(wire) and wire[i] != 0:
        n = wire[i]
        raw = wire[i + 1:i + 1 + n]
        labels.append("".join(chr(c) if 32 < c < 127 and c not in (46, 92) else "\\%03d" % c for c in raw))
        i += 1 + n
    need(i == len(wire) - 1, f"name {wire!r} is not one uncompressed wire-format name")
    return ".".join(labels)

def read(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        doc = cbor2.load(f)
    need(isinstance(doc, list) and len(doc) == 3, "File is not a 3-item array")
    need(doc[0] == "C-DNS", "file-type-id is not \"C-DNS\"")
    pre = doc[1]
    check_map(pre, "FilePreamble", {0: lambda v: v == 1, 1: lambda v: v == 0, 2: uint, 3: arr(dict_)}, (0, 1, 3))
    params = []
    for bp in pre[3]:
        check_map(bp, "BlockParameters", {0: dict_, 1: dict_}, (0,))
        sp = bp[0]
        check_map(sp, "StorageParameters", {0: uint, 1: uint, 2: dict_, 3: arr(lambda v: uint(v) and v <= 15), 4: arr(lambda v: uint(v) and v <= 65535),
                                             5: uint, 6: lambda v: uint(v) and 1 <= v <= 32, 7: lambda v: uint(v) and 1 <= v <= 128,
                                             8: uint, 9: uint, 10: tstr, 11: tstr}, (0, 1, 2, 3, 4))
        check_map(sp[2], "StorageHints", {0: uint, 1: uint, 2: uint, 3: uint}, (0, 1, 2, 3))
        if 1 in bp:
            check_map(bp[1], "CollectionParameters", {0: uint, 1: uint, 2: uint, 3: lambda v: isinstance(v, bool), 4: arr(tstr),
                                                       5: arr(bstr), 6: arr(uint), 7: tstr, 8: tstr, 9: tstr})
        params.append(sp)
    need(isinstance(doc[2], list), "file-blocks is not an array")
    for b, block in enumerate(doc[2]):
        where = f"Block {b}"
        check_map(block, where, {0: dict_, 1: dict_, 2: dict_, 3: arr(dict_), 4: arr(dict_), 5: arr(dict_)}, (0,))
        check_map(block[0], f"{where} BlockPreamble", {0: lambda v: isinstance(v, list) and len(v) == 2 and uint(v[0]) and uint(v[1]), 1: uint})
        sp = params[block[0].get(1, 0)]
        ticks = sp[0]
        if 1 in block:
            check_map(block[1], f"{where} BlockStatistics", {k: uint for k in range(6)})
        t = block.get(2, {})
        check_map(t, f"{where} BlockTables", {0: arr(lambda v: bstr(v) and len(v) <= 16), 1: arr(dict_), 2: arr(bstr), 3: arr(dict_), 4: arr(arr(uint)), 5: arr(dict_), 6: arr(arr(uint)), 7: arr(dict_), 8: arr(dict_)})
        addrs, cts, names, sigs = t.get(0, []), t.get(1, []), t.get(2, []), t.get(3, [])
        for i, ct in enumerate(cts):
            check_map(ct, f"{where} ClassType {i}", {0: uint, 1: uint}, (0, 1))
        for i, s in enumerate(sigs):
            check_map(s, f"{where} QueryResponseSignature {i}", {k: uint for k in range(17)})
            need(s.get(0, 0) < len(addrs) or 0 not in s, f"{where} signature {i}: server-address-index out of range")
            need(8 not in s or s[8] < len(cts), f"{where} signature {i}: query-classtype-index out of range")
        earliest = block[0][0]
        for i, qr in enumerate(block.get(3, [])):
            w = f"{where} QueryResponse {i}"
            check_map(qr, w, {0: uint, 1: uint, 2: uint, 3: uint, 4: uint, 5: uint, 6: lambda v: isinstance(v, int), 7: uint, 8: uint, 9: uint, 10: dict_, 11: dict_, 12: dict_})
            need(qr.get(1, 0) < len(addrs), f"{w}: client-address-index out of range")
            need(qr.get(4, 0) < len(sigs), f"{w}: qr-signature-index out of range")
            need(7 not in qr or qr[7] < len(names), f"{w}: query-name-index out of range")
            s = sigs[qr[4]]
            flags = s.get(4, 0)
            ct = cts[s[8]] if 8 in s else None
            prefix4, prefix6 = sp.get(6), sp.get(7)
            def addr(raw, prefix):
                full = raw + bytes((16 if len(raw) > 4 or (prefix and prefix > 32) else 4) - len(raw))
                ip = ipaddress.ip_address(full)
                return f"{ip}/{prefix}" if prefix and len(raw) * 8 < (128 if ip.version == 6 else 32) else str(ip)
            v6 = bool(s.get(2, 0) & 1)
            out = {
                "time_us": (earliest[0] * ticks + earliest[1] + qr.get(0, 0)) * 1_000_000 // ticks,
                "client": addr(addrs[qr[1]], prefix6 if v6 else prefix4),
                "client_port": qr.get(2), "server": str(ipaddress.ip_address(addrs[s[0]])), "server_port": s.get(1),
                "transport": "tcp" if (s.get(2, 0) >> 1) & 15 == 1 else "udp", "ipv6": v6,
                "id": qr.get(3), "qname": name_text(names[qr[7]]) if 7 in qr else None,
                "qtype": ct[0] if ct else None, "qclass": ct[1] if ct else None,
                "has_query": bool(flags & 1), "has_response": bool(flags & 2),
                "query_size": qr.get(8), "response_size": qr.get(9), "response_rcode": s.get(16), "query_opcode": s.get(5),
                "query_rd": bool(s.get(6, 0) & 16), "query_do": bool(s.get(6, 0) & 128), "response_aa": bool(s.get(6, 0) & (1 << 14)),
                "edns_version": s.get(13), "udp_size": s.get(14),
                "delay_us": qr[6] * 1_000_000 // ticks if 6 in qr else None,
            }
            print(json.dumps(out))

if __name__ == "__main__":
    try:
        for p in sys.argv[1:]:
            read(p)
    except Invalid as e:
        print(f"invalid C-DNS: {e}", file=sys.stderr)
        sys.exit(1)
