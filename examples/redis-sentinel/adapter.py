#!/usr/bin/env python3
"""A faultline client adapter for Redis with Sentinel (python3-redis).

Each request goes to the primary that the sentinels name, asking this worker's own node's
sentinel first (so a worker whose node is cut off with the old primary keeps writing to it, as
a client in that partition would). Register: GET / SET on "r:KEY"; cas: a Lua script (atomic on
the primary); set: SADD / SMEMBERS on "faultline-set".

Outcomes (docs/adapter-protocol.md):
- no primary known, or the connection could not be made: nothing was sent (code 11 / 1: fail);
- a replica refused a write (READONLY): fail (11);
- a timeout or a connection lost mid-request: a write may have been applied (0: info); a read
  changed nothing (11: fail);
- a cas whose expected value differs: 22 (fail).
"""

import json
import sys

import redis
from redis.sentinel import MasterNotFoundError, Sentinel

SET = "faultline-set"
CAS = """
local v = redis.call('get', KEYS[1])
if v == ARGV[1] then redis.call('set', KEYS[1], ARGV[2]) return 1 end
return 0
"""


def main():
    inp, out = sys.stdin, sys.stdout
    init = json.loads(inp.readline())
    timeout = max(0.05, init.get("timeout_ms", 2000) / 1000.0 * 0.8)
    me = init["address"]
    addrs = [me] + [n["address"] for n in init["nodes"] if n["address"] != me]
    sentinel = Sentinel([(a, 26379) for a in addrs], socket_timeout=timeout,
                        socket_connect_timeout=timeout)
    sys.stderr.write("redis adapter: %s, sentinels %s\n" % (init["node"], addrs))
    out.write('{"type":"init_ok"}\n')
    out.flush()
    primary = None
    for line in inp:
        if not line.strip():
            continue
        req = json.loads(line)
        read = req["f"] == "read"
        try:
            addr = sentinel.discover_master("mymaster")
            if primary is None or primary[0] != addr:
                primary = (addr, redis.Redis(host=addr[0], port=addr[1], socket_timeout=timeout,
                                             socket_connect_timeout=timeout))
                sys.stderr.write("primary now %s:%s\n" % addr)
            reply = handle(primary[1], req)
        except MasterNotFoundError as e:
            reply = {"type": "error", "code": 11, "text": "no primary: %s" % e}
        except redis.exceptions.ReadOnlyError as e:
            primary = None
            reply = {"type": "error", "code": 11, "text": "replica: %s" % e}
        except redis.exceptions.TimeoutError as e:
            primary = None
            reply = {"type": "error", "code": 11 if read else 0, "text": "timeout: %s" % e}
        except redis.exceptions.ConnectionError as e:
            primary = None
            never_sent = "connecting to" in str(e)
            code = 1 if never_sent else (11 if read else 13)
            reply = {"type": "error", "code": code, "text": str(e)}
        except redis.exceptions.ResponseError as e:
            reply = {"type": "error", "code": 11 if read else 13, "text": str(e)}
        reply["id"] = req["id"]
        out.write(json.dumps(reply) + "\n")
        out.flush()


def handle(r, req):
    f, value = req["f"], req.get("value")
    if f == "read" and "key" in req:
        v = r.get("r:%s" % req["key"])
        return {"type": "ok", "value": None if v is None else int(v)}
    if f == "read":
        return {"type": "ok", "value": sorted(int(x) for x in r.smembers(SET))}
    if f == "write":
        r.set("r:%s" % req["key"], value)
        return {"type": "ok"}
    if f == "cas":
        if r.eval(CAS, 1, "r:%s" % req["key"], str(value[0]), str(value[1])) == 1:
            return {"type": "ok"}
        return {"type": "error", "code": 22, "text": "expected %s" % value[0]}
    if f == "add":
        r.sadd(SET, value)
        return {"type": "ok"}
    return {"type": "error", "code": 10, "text": "no op %s" % f}


if __name__ == "__main__":
    main()
