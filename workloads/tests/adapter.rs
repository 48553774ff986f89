//! The adapter client against real adapter processes (examples/noop-adapter.py and small
//! shell scripts): the handshake, replies, and every way an adapter can misbehave. No
//! cluster and no root needed.

use checkers::history::{EventKind, Key, Value};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use workloads::adapter::{AdapterClient, AdapterSpec};
use workloads::{Client, Op, Outcome};

fn noop() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/noop-adapter.py")
        .display()
        .to_string()
}

fn spec(argv: Vec<String>, stderr: Option<PathBuf>, timeout: Duration) -> AdapterSpec {
    let mut init = serde_json::Map::new();
    init.insert("node".into(), "n1".into());
    init.insert("workload".into(), "register".into());
    AdapterSpec {
        argv,
        cwd: None,
        init,
        stderr,
        timeout,
        start_timeout: Duration::from_secs(20),
    }
}

fn adapter(args: &[&str], dir: &Path, timeout: Duration) -> AdapterClient {
    let mut argv = vec!["python3".to_string(), noop()];
    argv.extend(args.iter().map(|s| s.to_string()));
    AdapterClient::new(spec(argv, Some(dir.join("adapter.stderr")), timeout)).unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn write(v: i64) -> Op {
    Op::Write {
        key: Key::Int(1),
        value: v,
    }
}

fn read() -> Op {
    Op::Read { key: Key::Int(1) }
}

/// As the scheduler does: prepare (start the adapter if needed), then invoke.
fn call(rt: &tokio::runtime::Runtime, c: &AdapterClient, op: &Op) -> Outcome {
    rt.block_on(async {
        c.prepare().await;
        c.invoke(op).await
    })
}

/// Invoke without preparing: a start inside the op, within its timeout.
fn invoke_only(rt: &tokio::runtime::Runtime, c: &AdapterClient, op: &Op) -> Outcome {
    rt.block_on(c.invoke(op))
}

/// The PIDs of the adapter processes started, from the markers in the stderr file.
fn pids(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("adapter.stderr"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split("(pid ").nth(1))
        .filter_map(|p| p.trim_end_matches(')').parse().ok())
        .collect()
}

/// Killed and reaped: no /proc entry left.
fn gone(pid: i32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn replies_become_outcomes_and_state_is_shared_through_the_adapter() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let s = state.to_str().unwrap();
    let a = adapter(&["--state", s], dir.path(), Duration::from_secs(5));
    let b = adapter(&["--state", s], dir.path(), Duration::from_secs(5));
    let rt = rt();
    assert_eq!(call(&rt, &a, &read()), Outcome::ok(Value::Null));
    assert_eq!(call(&rt, &a, &write(4)), Outcome::ok(Value::Int(4)));
    assert_eq!(call(&rt, &b, &read()), Outcome::ok(Value::Int(4)));
    let cas = |old, new| Op::Cas {
        key: Key::Int(1),
        old,
        new,
    };
    let failed = call(&rt, &b, &cas(3, 5));
    assert_eq!(failed.kind, EventKind::Fail, "{failed:?}");
    assert!(failed.error.unwrap().contains("precondition-failed"));
    assert_eq!(call(&rt, &b, &cas(4, 5)).kind, EventKind::Ok);
    assert_eq!(call(&rt, &a, &read()), Outcome::ok(Value::Int(5)));
    call(&rt, &a, &Op::Add { value: 9 });
    call(&rt, &b, &Op::Add { value: 2 });
    assert_eq!(
        call(&rt, &a, &Op::ReadSet),
        Outcome::ok(Value::List(vec![Value::Int(2), Value::Int(9)]))
    );
    assert_eq!((a.starts(), b.starts()), (1, 1));
    // The adapter's stderr is kept, with a line per start.
    let err = std::fs::read_to_string(dir.path().join("adapter.stderr")).unwrap();
    assert!(err.contains("noop adapter for register on n1"), "{err}");
    assert_eq!(pids(dir.path()).len(), 2);
    // A client used from another runtime keeps working (the harness makes one per phase).
    drop(rt);
    assert_eq!(call(&self::rt(), &a, &read()), Outcome::ok(Value::Int(5)));
}

#[test]
fn a_hanging_adapter_times_out_as_info_is_killed_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let a = adapter(
        &["--fault", "hang", "--after", "2"],
        dir.path(),
        Duration::from_millis(500),
    );
    let rt = rt();
    assert_eq!(call(&rt, &a, &write(1)).kind, EventKind::Ok);
    assert_eq!(call(&rt, &a, &write(2)).kind, EventKind::Ok);
    let t = Instant::now();
    let hung = call(&rt, &a, &write(3));
    assert_eq!(hung.kind, EventKind::Info, "{hung:?}");
    assert_eq!(hung.value, Value::Int(3));
    assert!(hung
        .error
        .unwrap()
        .contains("no reply from the adapter within"));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let first = pids(dir.path())[0];
    assert!(gone(first), "the hung adapter {first} is still there");
    // The next op runs on a new adapter process.
    assert_eq!(call(&rt, &a, &write(4)).kind, EventKind::Ok);
    assert_eq!(a.starts(), 2);
}

#[test]
fn an_adapter_that_crashes_mid_operation_gives_info_and_is_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let a = adapter(
        &[
            "--state",
            state.to_str().unwrap(),
            "--fault",
            "crash",
            "--after",
            "1",
        ],
        dir.path(),
        Duration::from_secs(5),
    );
    let rt = rt();
    assert_eq!(call(&rt, &a, &write(1)).kind, EventKind::Ok);
    let crashed = call(&rt, &a, &write(2));
    assert_eq!(crashed.kind, EventKind::Info, "{crashed:?}");
    assert!(crashed.error.unwrap().contains("exited"));
    // It did take effect before the crash: info, not fail, was the only honest outcome.
    assert_eq!(call(&rt, &a, &read()), Outcome::ok(Value::Int(2)));
    assert_eq!(a.starts(), 2);
    let err = std::fs::read_to_string(dir.path().join("adapter.stderr")).unwrap();
    assert!(err.contains("crashing on request 2"), "{err}");
}

#[test]
fn garbage_and_unknown_ids_give_info_and_a_new_adapter() {
    for fault in ["garbage", "wrong-id"] {
        let dir = tempfile::tempdir().unwrap();
        let a = adapter(
            &["--fault", fault, "--after", "1"],
            dir.path(),
            Duration::from_secs(5),
        );
        let rt = rt();
        assert_eq!(call(&rt, &a, &write(1)).kind, EventKind::Ok);
        let bad = call(&rt, &a, &write(2));
        assert_eq!(bad.kind, EventKind::Info, "{fault}: {bad:?}");
        let why = bad.error.unwrap();
        let want = if fault == "garbage" {
            "adapter wrote garbage"
        } else {
            "adapter answered id 1002 while op 2 was in flight"
        };
        assert!(why.contains(want), "{fault}: {why}");
        assert!(gone(pids(dir.path())[0]), "{fault}");
        assert_eq!(call(&rt, &a, &write(3)).kind, EventKind::Ok, "{fault}");
        assert_eq!(a.starts(), 2, "{fault}");
    }
}

#[test]
fn an_adapter_that_cannot_start_or_shake_hands_fails_the_op_which_was_never_sent() {
    let rt = rt();
    let missing = AdapterClient::new(spec(
        vec!["/nonexistent/adapter".into()],
        None,
        Duration::from_secs(2),
    ))
    .unwrap();
    let o = invoke_only(&rt, &missing, &write(1));
    assert_eq!(o.kind, EventKind::Fail, "{o:?}");
    assert!(o.error.unwrap().contains("cannot start adapter"));
    let rude = AdapterClient::new(spec(
        vec!["sh".into(), "-c".into(), "read x; echo hello".into()],
        None,
        Duration::from_secs(2),
    ))
    .unwrap();
    let o = invoke_only(&rt, &rude, &write(1));
    assert_eq!(o.kind, EventKind::Fail, "{o:?}");
    assert!(o.error.unwrap().contains("expected init_ok"));
    let mute = AdapterClient::new(spec(
        vec!["sleep".into(), "30".into()],
        None,
        Duration::from_millis(300),
    ))
    .unwrap();
    let t = Instant::now();
    let o = invoke_only(&rt, &mute, &write(1));
    assert_eq!(o.kind, EventKind::Fail, "{o:?}");
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(AdapterClient::new(spec(vec![], None, Duration::from_secs(1))).is_err());
}

#[test]
fn an_op_abandoned_by_its_caller_still_ends_before_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let a = adapter(
        &["--fault", "hang", "--after", "0"],
        dir.path(),
        Duration::from_millis(400),
    );
    let rt = rt();
    // The caller gives up first; the adapter's own timeout still kills the process.
    let r = rt.block_on(async {
        a.prepare().await;
        tokio::time::timeout(Duration::from_millis(50), a.invoke(&write(1))).await
    });
    assert!(r.is_err());
    let next = call(&rt, &a, &write(2));
    assert_eq!(next.kind, EventKind::Info, "{next:?}");
    assert!(gone(pids(dir.path())[0]));
    assert_eq!(a.starts(), 2);
}

#[test]
fn a_line_longer_than_the_limit_is_info_saying_so() {
    let rt = rt();
    let script = "import sys, time\n\
        sys.stdin.readline()\n\
        print('{\"type\":\"init_ok\"}', flush=True)\n\
        sys.stdin.readline()\n\
        sys.stdout.write('x' * (40 << 20) + '\\n')\n\
        sys.stdout.flush()\n\
        time.sleep(30)\n";
    let long = AdapterClient::new(spec(
        vec!["python3".into(), "-c".into(), script.into()],
        None,
        Duration::from_secs(10),
    ))
    .unwrap();
    let o = call(&rt, &long, &write(1));
    assert_eq!(o.kind, EventKind::Info, "{o:?}");
    let why = o.error.unwrap();
    assert!(
        why.contains("adapter wrote a line longer than 32 MiB, the longest faultline reads"),
        "{why}"
    );
    assert!(why.len() < 1000, "{why}");
}

/// Dead: no /proc entry, or a zombie waiting for a parent that is not us.
fn dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

fn dead_soon(pid: i32) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(2) {
        if dead(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A shell adapter that starts `sleep 1000` in its process group (its PID in DIR/child.pid),
/// shakes hands, and then runs `after`.
fn with_a_child(dir: &Path, after: &str) -> AdapterClient {
    let script = format!(
        "sleep 1000 & echo $! > {dir}/child.pid\n\
         read line\n\
         echo '{{\"type\":\"init_ok\"}}'\n\
         {after}\n",
        dir = dir.display()
    );
    AdapterClient::new(spec(
        vec!["sh".into(), "-c".into(), script],
        Some(dir.join("adapter.stderr")),
        Duration::from_secs(2),
    ))
    .unwrap()
}

fn child_pid(dir: &Path) -> i32 {
    std::fs::read_to_string(dir.join("child.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn when_a_client_goes_its_adapters_whole_process_group_is_gone() {
    let rt = rt();
    for after in [
        // Does not exit when its stdin closes.
        "trap '' TERM; while :; do sleep 1; done",
        // Exits when its stdin closes, leaving its child.
        "while read line; do :; done; exit 0",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let a = with_a_child(dir.path(), after);
        rt.block_on(a.start_now()).unwrap();
        let (adapter, child) = (pids(dir.path())[0], child_pid(dir.path()));
        assert!(!dead(adapter) && !dead(child), "{after}");
        let t = Instant::now();
        drop(a);
        // Gone when the client's drop returns (the program may end right after).
        assert!(
            gone(adapter),
            "{after}: the adapter {adapter} outlived its client"
        );
        assert!(dead_soon(child), "{after}: its child {child} outlived it");
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    }
}

#[test]
fn a_replaced_adapters_children_are_gone_too() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    // Exits at the first op, leaving its child.
    let a = with_a_child(dir.path(), "read line; exit 3");
    let o = call(&rt, &a, &write(1));
    assert_eq!(o.kind, EventKind::Info, "{o:?}");
    let child = child_pid(dir.path());
    assert!(
        dead_soon(child),
        "the child {child} of a replaced adapter is left"
    );
}

/// An adapter restarted at every op, writing 2 MiB of stderr each time: the file stays within
/// the head and one tail, however many restarts.
#[test]
fn an_adapter_restarted_again_and_again_keeps_its_stderr_file_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let script = "import sys\n\
        sys.stderr.write('y' * (2 << 20))\n\
        sys.stderr.flush()\n\
        sys.stdin.readline()\n\
        print('{\"type\":\"init_ok\"}', flush=True)\n\
        sys.stdin.readline()\n";
    let a = AdapterClient::new(spec(
        vec!["python3".into(), "-c".into(), script.into()],
        Some(dir.path().join("adapter.stderr")),
        Duration::from_secs(5),
    ))
    .unwrap();
    let rt = rt();
    for v in 0..8 {
        // Each op reaches an adapter that exits without answering: info, and a new one next.
        rt.block_on(async {
            a.prepare().await;
            let o = a.invoke(&write(v)).await;
            assert_eq!(o.kind, EventKind::Info, "{o:?}");
        });
    }
    drop(a);
    let err = std::fs::read(dir.path().join("adapter.stderr")).unwrap();
    let limit = workloads::adapter::client::STDERR_HEAD as usize
        + workloads::adapter::client::STDERR_TAIL
        + 8 * 1024;
    assert!(err.len() < limit, "{} bytes after 8 restarts", err.len());
    assert!(String::from_utf8_lossy(&err).contains("cut here"));
}

#[test]
fn an_adapters_stderr_keeps_its_head_and_tail_and_says_what_was_cut() {
    let dir = tempfile::tempdir().unwrap();
    let script = "import sys\n\
        sys.stderr.write('HEAD-START\\n' + 'x' * (20 << 20) + 'TAIL-END\\n')\n\
        sys.stderr.flush()\n\
        sys.stdin.readline()\n\
        print('{\"type\":\"init_ok\"}', flush=True)\n\
        for line in sys.stdin: pass\n";
    let a = AdapterClient::new(spec(
        vec!["python3".into(), "-c".into(), script.into()],
        Some(dir.path().join("adapter.stderr")),
        Duration::from_secs(5),
    ))
    .unwrap();
    let rt = rt();
    rt.block_on(a.start_now()).unwrap();
    drop(a);
    let err = std::fs::read(dir.path().join("adapter.stderr")).unwrap();
    let limit = workloads::adapter::client::STDERR_HEAD as usize
        + workloads::adapter::client::STDERR_TAIL
        + 1024;
    assert!(err.len() < limit, "{} bytes", err.len());
    let text = String::from_utf8_lossy(&err);
    assert!(
        text.starts_with("== faultline: adapter start 1 (pid "),
        "{}",
        &text[..80]
    );
    assert!(text.contains("\nHEAD-START\nxxx"));
    assert!(
        text.ends_with("xxxxTAIL-END\n"),
        "{}",
        &text[text.len() - 80..]
    );
    let cut = text
        .lines()
        .find(|l| l.contains("cut here"))
        .expect("a line saying what was cut");
    assert!(
        cut.contains("of the adapter's stderr")
            && cut.contains(&format!(
                "kept the first {} and the last {} bytes",
                workloads::adapter::client::STDERR_HEAD,
                workloads::adapter::client::STDERR_TAIL
            )),
        "{cut}"
    );
}

#[test]
fn an_adapter_that_cannot_start_says_why_from_its_stderr() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let typo = AdapterClient::new(spec(
        vec!["python3".into(), "/nonexistent/adaptr.py".into()],
        Some(dir.path().join("adapter.stderr")),
        Duration::from_secs(5),
    ))
    .unwrap();
    let e = rt.block_on(typo.start_now()).unwrap_err();
    assert!(
        e.contains("adapter handshake")
            && e.contains("its stderr ends: ")
            && e.contains("can't open file '/nonexistent/adaptr.py'"),
        "{e}"
    );
    // An op that has to start it fails with the same reason.
    let o = invoke_only(&rt, &typo, &write(1));
    assert_eq!(o.kind, EventKind::Fail, "{o:?}");
    assert!(o.error.unwrap().contains("can't open file"));
    // One that never answers is quoted too, once its time is up.
    let mut s = spec(
        vec![
            "sh".into(),
            "-c".into(),
            "echo 'waiting for the database' >&2; sleep 30".into(),
        ],
        None,
        Duration::from_secs(5),
    );
    s.start_timeout = Duration::from_millis(500);
    let mute = AdapterClient::new(s).unwrap();
    let e = rt.block_on(mute.start_now()).unwrap_err();
    assert!(
        e.contains("no init_ok within 500ms")
            && e.contains("its stderr ends: waiting for the database"),
        "{e}"
    );
}

#[test]
fn a_transaction_read_of_the_wrong_shape_for_the_workload_is_info() {
    use workloads::op::MicroOp;
    let rt = rt();
    // Answers every read with an integer, whatever the workload.
    let script = "import sys, json\n\
        sys.stdin.readline()\n\
        print('{\"type\":\"init_ok\"}', flush=True)\n\
        for line in sys.stdin:\n\
        \x20   req = json.loads(line)\n\
        \x20   value = [[f, k, 7 if f == 'r' else v] for f, k, v in req['value']]\n\
        \x20   print(json.dumps({'type': 'ok', 'id': req['id'], 'value': value}), flush=True)\n";
    let txn = Op::Txn(vec![MicroOp::Read { key: Key::Int(1) }]);
    for (workload, want) in [
        ("list-append", EventKind::Info),
        ("rw-register", EventKind::Ok),
    ] {
        let mut s = spec(
            vec!["python3".into(), "-c".into(), script.into()],
            None,
            Duration::from_secs(5),
        );
        s.init.insert("workload".into(), workload.into());
        let a = AdapterClient::new(s).unwrap();
        let o = call(&rt, &a, &txn);
        assert_eq!(o.kind, want, "{workload}: {o:?}");
        if want == EventKind::Info {
            let e = o.error.unwrap();
            assert!(e.contains("read 7: expected a list of integers"), "{e}");
        }
    }
}
