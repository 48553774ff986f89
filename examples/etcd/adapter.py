#!/usr/bin/env python3
"""A faultline client adapter for etcd, over etcd's v3 JSON gateway (plain HTTP).

It serves register, cas-register and set as faultline's native etcd client does, and
classifies outcomes the same way (see ARCHITECTURE.md, "The etcd client"):

- the connection could not be made: the request never left (code 1, definite: fail);
- no answer, a reset, or an HTTP error from etcd: a write may still commit (code 0,
  indefinite: info); a read changed nothing (code 11, definite: fail);
- 200 with a cas whose compare failed: code 22 (definite: fail);
- 200: ok.

The option read-mode (linearizable or serializable) chooses the reads, as --read-mode does for
the native client. Python 3 standard library only.
"""

import base64
import http.client
import json
import socket
import sys

PORT = 2379
SET = "faultline/set"


def b64(s):
    return base64.b64encode(s.encode()).decode()


def unb64(s):
    return base64.b64decode(s).decode()


def reg(key):
    return "faultline/r/%s" % key


class NotSent(Exception):
    pass


class NoAnswer(Exception):
    pass


class Etcd:
    def __init__(self, address, timeout):
        self.address = address
        self.timeout = timeout

    def post(self, path, body):
        """POSTs body; returns the decoded answer, or raises NotSent / NoAnswer."""
        conn = http.client.HTTPConnection(self.address, PORT, timeout=self.timeout)
        try:
            try:
                conn.connect()
            except OSError as e:
                raise NotSent("connect: %s" % e)
            try:
                conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException) as e:
                raise NoAnswer("%s: %s" % (type(e).__name__, e))
            if resp.status != 200:
                try:
                    msg = json.loads(data).get("message") or json.loads(data).get("error")
                except ValueError:
                    msg = data[:200]
                raise NoAnswer("HTTP %d: %s" % (resp.status, msg))
            try:
                return json.loads(data)
            except ValueError as e:
                raise NoAnswer("unreadable answer: %s" % e)
        finally:
            conn.close()


def handle(etcd, serializable, req):
    f, value = req["f"], req.get("value")
    keyed = "key" in req
    read = f == "read"
    try:
        if read and keyed:
            ans = etcd.post("/v3/kv/range", {"key": b64(reg(req["key"])), "serializable": serializable})
            kvs = ans.get("kvs") or []
            v = int(unb64(kvs[0]["value"])) if kvs else None
            return {"type": "ok", "value": v}
        if read:
            ans = etcd.post("/v3/kv/range", {
                "key": b64(SET + "/"), "range_end": b64(SET + "0"), "serializable": serializable})
            return {"type": "ok", "value": sorted(int(unb64(kv["value"])) for kv in ans.get("kvs") or [])}
        if f == "write":
            etcd.post("/v3/kv/put", {"key": b64(reg(req["key"])), "value": b64(str(value))})
            return {"type": "ok"}
        if f == "cas":
            k = b64(reg(req["key"]))
            ans = etcd.post("/v3/kv/txn", {
                "compare": [{"key": k, "target": "VALUE", "result": "EQUAL", "value": b64(str(value[0]))}],
                "success": [{"request_put": {"key": k, "value": b64(str(value[1]))}}],
            })
            if ans.get("succeeded"):
                return {"type": "ok"}
            return {"type": "error", "code": 22, "text": "compare failed"}
        if f == "add":
            etcd.post("/v3/kv/put", {"key": b64("%s/%020d" % (SET, value)), "value": b64(str(value))})
            return {"type": "ok"}
        return {"type": "error", "code": 10, "text": "no op %s" % f}
    except NotSent as e:
        return {"type": "error", "code": 1, "text": str(e)}
    except NoAnswer as e:
        return {"type": "error", "code": 11 if read else 0, "text": str(e)}


def main():
    inp, out = sys.stdin, sys.stdout
    init = json.loads(inp.readline())
    opts = init.get("options") or {}
    mode = opts.get("read-mode", "linearizable")
    if mode not in ("linearizable", "serializable"):
        sys.stderr.write("read-mode %r: expected linearizable or serializable\n" % mode)
        sys.exit(2)
    # Answer before faultline's own timeout would kill us.
    timeout = max(0.05, init.get("timeout_ms", 2000) / 1000.0 * 0.8)
    etcd = Etcd(init["address"], timeout)
    sys.stderr.write("etcd adapter: %s at %s, %s reads\n" % (init["node"], init["address"], mode))
    out.write('{"type":"init_ok"}\n')
    out.flush()
    for line in inp:
        if not line.strip():
            continue
        req = json.loads(line)
        reply = handle(etcd, mode == "serializable", req)
        reply["id"] = req["id"]
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
