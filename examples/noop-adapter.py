#!/usr/bin/env python3
"""A faultline client adapter that needs no database (docs/adapter-protocol.md).

Without options it acknowledges every operation at once: writes, cas and adds are `ok`,
register reads return null, set reads [] (and transactions echo their micro-ops). It measures the protocol's overhead
(scripts/bench-adapter).

  --state FILE      keep registers, the set and list-append's lists in FILE, shared by
                    every adapter process under an exclusive lock, so that histories are
                    linearizable and transactions strictly serializable (for tests)
  --fault KIND      misbehave after answering --after N requests (per process, so again
                    after each restart): hang (never answer), crash (apply the op, then
                    exit without answering), garbage (print a line that is not JSON),
                    wrong-id (answer with another id)
  --after N         (default 3)

Python 3 standard library only.
"""

import argparse
import fcntl
import json
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--state")
    ap.add_argument("--fault", choices=["hang", "crash", "garbage", "wrong-id"])
    ap.add_argument("--after", type=int, default=3)
    args = ap.parse_args()

    inp = sys.stdin.buffer
    out = sys.stdout
    raw = sys.stdout.buffer
    init = json.loads(inp.readline())
    assert init["type"] == "init", init
    global WORKLOAD
    WORKLOAD = init.get("workload")
    sys.stderr.write("noop adapter for %s on %s (worker %s)\n"
                     % (init.get("workload"), init.get("node"), init.get("worker")))
    out.write('{"type":"init_ok"}\n')
    out.flush()

    answered = 0
    for line in inp:
        req = json.loads(line)
        rid = req["id"]
        if args.fault and answered >= args.after:
            if args.fault == "hang":
                time.sleep(3600)
            elif args.fault == "crash":
                if args.state:
                    apply(args.state, req)
                sys.stderr.write("crashing on request %s\n" % rid)
                os._exit(3)
            elif args.fault == "garbage":
                out.write("this is not json\n")
                out.flush()
                answered = 0
                continue
            elif args.fault == "wrong-id":
                out.write(json.dumps({"type": "ok", "id": rid + 1000}) + "\n")
                out.flush()
                answered = 0
                continue
        if not args.state and req["f"] not in ("read", "txn"):
            # The fast path the benchmark measures: acknowledge at once.
            raw.write(b'{"type":"ok","id":%d}\n' % rid)
            raw.flush()
            answered += 1
            continue
        if args.state:
            reply = apply(args.state, req)
        else:
            reply = {"type": "ok", "value": None if "key" in req else []}
            if req["f"] == "txn":
                empty = None if WORKLOAD == "rw-register" else []
                reply["value"] = [[op, k, empty if op == "r" else v] for op, k, v in req["value"]]
        reply["id"] = rid
        out.write(json.dumps(reply) + "\n")
        out.flush()
        answered += 1


WORKLOAD = None


def req_key(k):
    """A key as the request carried it: integers stay integers."""
    return int(k) if k.lstrip("-").isdigit() else k


def apply(path, req):
    """Applies one request to the shared state under an exclusive lock."""
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        text = fh.read()
        state = json.loads(text) if text.strip() else {"registers": {}, "set": []}
        f, key, value = req["f"], str(req.get("key")), req.get("value")
        regs = state["registers"]
        if f == "read" and "key" in req:
            reply = {"type": "ok", "value": regs.get(key)}
        elif f == "read":
            reply = {"type": "ok", "value": sorted(state["set"])}
        elif f == "write":
            regs[key] = value
            reply = {"type": "ok"}
        elif f == "cas":
            if regs.get(key) == value[0]:
                regs[key] = value[1]
                reply = {"type": "ok"}
            else:
                reply = {"type": "error", "code": 22, "text": "expected %s" % value[0]}
        elif f == "add":
            state["set"].append(value)
            reply = {"type": "ok"}
        elif f == "txn":
            # Micro-ops applied in order, all under the lock: serializable (strictly).
            lists = state.setdefault("lists", {})
            done = []
            for op, k, v in value:
                k = str(k)
                if op == "append":
                    lists.setdefault(k, []).append(v)
                    done.append([op, req_key(k), v])
                elif op == "w":
                    regs[k] = v
                    done.append([op, req_key(k), v])
                elif WORKLOAD == "rw-register":
                    done.append([op, req_key(k), regs.get(k)])
                else:
                    done.append([op, req_key(k), list(lists.get(k, []))])
            reply = {"type": "ok", "value": done}
        else:
            return {"type": "error", "code": 10, "text": "no op %s" % f}
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(state))
        fh.flush()
        return reply


if __name__ == "__main__":
    main()
