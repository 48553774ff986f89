//! Synthetic histories of a simulated register, for benchmarks and tests.
//!
//! A simulated cluster runs `processes` clients against linearizable registers, one key at a
//! time (each key gets `ops_per_key` ops, then the clients move to a fresh key, as Jepsen's
//! independent workloads do). Every op takes effect atomically at a random moment while it is
//! in flight, so the history is linearizable, unless `stale_read_rate` asks some reads to return
//! an older value. Crashed ops complete with `info` and may or may not take effect; the process
//! is then retired and the client continues as `process + processes`. Written values are
//! distinct. The generator is deterministic for a seed (it uses its own small PRNG, so the same
//! seed gives the same history on every platform and version).
//!
//! ```
//! use checkers::generate::{GenOptions, Generator};
//! let events: Vec<_> = Generator::new(GenOptions { ops: 100, ..GenOptions::default() }).collect();
//! assert_eq!(events.len(), 200); // each op: an invoke and a completion
//! ```

use crate::history::{Event, EventKind, Key, Process, Value};

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// Ops (invocations) in all.
    pub ops: u64,
    /// Ops per key before the clients move to the next key.
    pub ops_per_key: u64,
    /// Concurrent client processes.
    pub processes: u64,
    /// Fraction of ops that crash (complete with `info`).
    pub crash_rate: f64,
    /// Fraction of reads that return a stale value (makes the history invalid).
    pub stale_read_rate: f64,
    /// Whether to generate `cas` ops (cas-register) or only reads and writes (register).
    pub cas: bool,
    /// The seed.
    pub seed: u64,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            ops: 1000,
            ops_per_key: 1000,
            processes: 10,
            crash_rate: 0.01,
            stale_read_rate: 0.0,
            cas: true,
            seed: 42,
        }
    }
}

/// A small, fast, portable PRNG (splitmix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        unit < p
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum OpKind {
    Read,
    Write(i64),
    Cas(Option<i64>, i64),
}

#[derive(Debug, Clone)]
struct InFlight {
    op: OpKind,
    key: i64,
    /// The result once the op has taken effect: Some(ok?, read value).
    effect: Option<(bool, Option<i64>)>,
}

#[derive(Debug, Clone)]
struct Client {
    process: u64,
    in_flight: Option<InFlight>,
}

/// An iterator over the events of a generated history.
#[derive(Debug)]
pub struct Generator {
    opts: GenOptions,
    rng: Rng,
    clients: Vec<Client>,
    /// Current value and previous value of the active keys.
    values: std::collections::HashMap<i64, (Option<i64>, Option<i64>)>,
    invoked: u64,
    next_value: i64,
    index: u64,
    time: u64,
}

impl Generator {
    /// A generator with these options.
    pub fn new(opts: GenOptions) -> Generator {
        let clients = (0..opts.processes.max(1))
            .map(|p| Client {
                process: p,
                in_flight: None,
            })
            .collect();
        Generator {
            rng: Rng::new(opts.seed),
            opts,
            clients,
            values: std::collections::HashMap::new(),
            invoked: 0,
            next_value: 1,
            index: 0,
            time: 0,
        }
    }

    fn event(&mut self, process: u64, kind: EventKind, f: &str, key: i64, value: Value) -> Event {
        let index = self.index;
        self.index += 1;
        self.time += 1000 + self.rng.below(100_000);
        Event {
            index,
            time: Some(self.time),
            process: Process::Client(process),
            kind,
            f: f.to_string(),
            key: Some(Key::Int(key)),
            value,
            error: None,
            node: None,
        }
    }

    /// Applies an in-flight op to its register; returns (succeeded, value read).
    fn take_effect(&mut self, op: OpKind, key: i64) -> (bool, Option<i64>) {
        let stale = self.rng.chance(self.opts.stale_read_rate);
        let entry = self.values.entry(key).or_insert((None, None));
        match op {
            OpKind::Read => (true, if stale { entry.1 } else { entry.0 }),
            OpKind::Write(v) => {
                *entry = (Some(v), entry.0);
                (true, None)
            }
            OpKind::Cas(expect, new) => {
                if entry.0 == expect {
                    *entry = (Some(new), entry.0);
                    (true, None)
                } else {
                    (false, None)
                }
            }
        }
    }

    fn new_op(&mut self, key: i64) -> OpKind {
        let current = self.values.get(&key).and_then(|v| v.0);
        let roll = self.rng.below(100);
        let v = self.next_value;
        if roll < 50 {
            OpKind::Read
        } else if roll < 75 || !self.opts.cas {
            self.next_value += 1;
            OpKind::Write(v)
        } else {
            self.next_value += 1;
            // Usually expect the current value, sometimes an old one (a failing cas).
            let expect = if self.rng.chance(0.7) {
                current
            } else {
                Some(v - 1 - self.rng.below(5) as i64)
            };
            OpKind::Cas(expect, v)
        }
    }
}

fn op_parts(op: OpKind) -> (&'static str, Value) {
    match op {
        OpKind::Read => ("read", Value::Null),
        OpKind::Write(v) => ("write", Value::Int(v)),
        OpKind::Cas(e, n) => (
            "cas",
            Value::List(vec![e.map_or(Value::Null, Value::Int), Value::Int(n)]),
        ),
    }
}

impl Iterator for Generator {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        let n = self.clients.len();
        loop {
            let all_idle = self.clients.iter().all(|c| c.in_flight.is_none());
            if self.invoked >= self.opts.ops && all_idle {
                return None;
            }
            let i = self.rng.below(n as u64) as usize;
            let process = self.clients[i].process;
            match self.clients[i].in_flight.clone() {
                None => {
                    if self.invoked >= self.opts.ops {
                        continue;
                    }
                    let key = (self.invoked / self.opts.ops_per_key.max(1)) as i64;
                    self.invoked += 1;
                    let op = self.new_op(key);
                    self.clients[i].in_flight = Some(InFlight {
                        op,
                        key,
                        effect: None,
                    });
                    let (f, value) = op_parts(op);
                    return Some(self.event(process, EventKind::Invoke, f, key, value));
                }
                Some(mut flight)
                    if flight.effect.is_none() && !self.rng.chance(self.opts.crash_rate) =>
                {
                    // Take effect now; complete on a later turn.
                    flight.effect = Some(self.take_effect(flight.op, flight.key));
                    self.clients[i].in_flight = Some(flight);
                }
                Some(flight) => {
                    self.clients[i].in_flight = None;
                    let (f, invoke_value) = op_parts(flight.op);
                    let Some((succeeded, read)) = flight.effect else {
                        // Crash: the op may still take effect, or never.
                        if self.rng.chance(0.5) {
                            self.take_effect(flight.op, flight.key);
                        }
                        self.clients[i].process += self.opts.processes.max(1);
                        return Some(self.event(
                            process,
                            EventKind::Info,
                            f,
                            flight.key,
                            invoke_value,
                        ));
                    };
                    let (kind, value) = match flight.op {
                        OpKind::Read => (EventKind::Ok, read.map_or(Value::Null, Value::Int)),
                        _ if succeeded => (EventKind::Ok, invoke_value),
                        _ => (EventKind::Fail, invoke_value),
                    };
                    return Some(self.event(process, kind, f, flight.key, value));
                }
            }
        }
    }
}
