#!/usr/bin/env python3
"""A faultline client adapter for ZooKeeper (Debian's python3-kazoo).

One ZooKeeper session per adapter process, with this worker's own node only (a client cut off
with its node stays there, as a client in that partition would). A register is the znode
/faultline/r/KEY holding the value in decimal:

- read: get (NoNode: null), preceded by sync on the same session with read-mode=sync, so that
  the node has caught up with the leader before it answers (without sync a node answers from
  its own copy, which may be stale);
- write: set, or create when the znode does not exist yet (set again if another client
  created it first);
- cas [a, b]: get the value and its version, compare with a, then set b at that version only.

Outcomes (docs/adapter-protocol.md):
- no connection to the node when the op comes (none within a short wait): nothing was sent
  (code 1, definite: fail);
- a read that failed in any way changed nothing (code 11, definite: fail);
- connection loss, session expiry or no answer in time during a write or a cas's set: the
  request may have reached the leader and may still commit (code 0 / 13, indefinite: info);
- a cas whose get found another value (22), no znode (20), or whose set found another version
  (BadVersion, 22): ZooKeeper wrote nothing (definite: fail);
- a create refused with NodeExists, a set with NoNode: nothing written, the adapter tries the
  other (a write is only ok when one of them succeeded).
"""

import json
import sys
import time

from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError,
    NodeExistsError,
    NoNodeError,
    OperationTimeoutError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.retry import KazooRetry

ROOT = "/faultline/r"


class NotSent(Exception):
    pass


def path(key):
    return "%s/%s" % (ROOT, key)


class Zk:
    def __init__(self, address, timeout):
        self.timeout = timeout
        # Reconnect quickly, forever, to this node only; no retries of commands (a retried
        # write could apply twice, and the caller must know what was sent).
        self.zk = KazooClient(
            hosts="%s:2181" % address,
            timeout=10.0,
            connection_retry=KazooRetry(max_tries=-1, delay=0.1, backoff=1.5, max_delay=1.0),
            command_retry=None,
        )
        self.zk.start_async()
        self.made_root = False

    def wait(self, async_result, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise OperationTimeoutError("no time left")
        try:
            return async_result.get(timeout=left)
        except KazooTimeoutError as e:
            raise OperationTimeoutError("no answer in %.1fs: %s" % (self.timeout, e))

    def connected(self, deadline):
        """Waits a little for the session (a node just restarted or healed); raises NotSent."""
        until = min(deadline, time.monotonic() + self.timeout / 2)
        while not self.zk.connected:
            if time.monotonic() >= until:
                raise NotSent("not connected (%s)" % self.zk.state)
            time.sleep(0.02)

    def ensure_root(self, deadline):
        if self.made_root:
            return
        try:
            self.wait(self.zk.ensure_path_async(ROOT), deadline)
        except NodeExistsError:
            pass
        self.made_root = True


def handle(zk, sync, req):
    f, key, value = req["f"], req.get("key"), req.get("value")
    deadline = time.monotonic() + zk.timeout
    c = zk.zk
    read = f == "read"
    # Whether a request that changes something may have been sent.
    sent = [False]
    try:
        zk.connected(deadline)
        if read:
            if sync:
                zk.wait(c.sync_async(path(key)), deadline)
            try:
                data, _ = zk.wait(c.get_async(path(key)), deadline)
            except NoNodeError:
                return {"type": "ok", "value": None}
            return {"type": "ok", "value": int(data)}
        if f == "write":
            zk.ensure_root(deadline)
            while True:
                try:
                    sent[0] = True
                    zk.wait(c.set_async(path(key), b"%d" % value), deadline)
                    return {"type": "ok"}
                except NoNodeError:
                    sent[0] = False
                try:
                    sent[0] = True
                    zk.wait(c.create_async(path(key), b"%d" % value), deadline)
                    return {"type": "ok"}
                except NodeExistsError:
                    sent[0] = False
        if f == "cas":
            expected, new = value
            try:
                data, stat = zk.wait(c.get_async(path(key)), deadline)
            except NoNodeError:
                return {"type": "error", "code": 20, "text": "no znode %s" % path(key)}
            if int(data) != expected:
                return {"type": "error", "code": 22, "text": "expected %s, found %s" % (expected, int(data))}
            try:
                sent[0] = True
                zk.wait(c.set_async(path(key), b"%d" % new, version=stat.version), deadline)
            except BadVersionError:
                return {"type": "error", "code": 22, "text": "version %d changed" % stat.version}
            except NoNodeError:
                return {"type": "error", "code": 20, "text": "no znode %s" % path(key)}
            return {"type": "ok"}
        return {"type": "error", "code": 10, "text": "no op %s" % f}
    except NotSent as e:
        return {"type": "error", "code": 1, "text": str(e)}
    except OperationTimeoutError as e:
        return {"type": "error", "code": 0 if sent[0] else 11, "text": "timeout: %s" % e}
    except Exception as e:  # noqa: BLE001 - ConnectionLoss, SessionExpiredError, anything else
        what = "%s: %s" % (type(e).__name__, e)
        return {"type": "error", "code": 13 if sent[0] else 11, "text": what}


def main():
    inp, out = sys.stdin, sys.stdout
    init = json.loads(inp.readline())
    opts = init.get("options") or {}
    mode = opts.get("read-mode", "sync")
    if mode not in ("sync", "local"):
        sys.stderr.write("read-mode %r: expected sync or local\n" % mode)
        sys.exit(2)
    # Answer before faultline's own timeout would kill us.
    timeout = max(0.05, init.get("timeout_ms", 2000) / 1000.0 * 0.8)
    zk = Zk(init["address"], timeout)
    sys.stderr.write("zookeeper adapter: %s at %s, %s reads\n" % (init["node"], init["address"], mode))
    out.write('{"type":"init_ok"}\n')
    out.flush()
    for line in inp:
        if not line.strip():
            continue
        req = json.loads(line)
        reply = handle(zk, mode == "sync", req)
        reply["id"] = req["id"]
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
