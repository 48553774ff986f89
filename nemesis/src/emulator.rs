//! A user-space stand-in for `tc netem`, for kernels built without `sch_netem` (such as the
//! one the local provider's nodes share with the controller). Packets that faultline's
//! iptables chain `FAULTLINE-NETEM` sends to NFQUEUE are held and released here: delayed
//! (with jitter), sent at once to reorder them, dropped, corrupted (one bit flipped past the
//! IP header, so the receiver's checksum drops them, as with netem), or paced to a rate.
//! Duplication needs the kernel's netem and is refused.
//!
//! It runs on the node as `faultline node netem-queue ...`; the rules use `--queue-bypass`,
//! so packets flow unharmed whenever no emulator is listening.

use crate::fault::NetemSpec;
use rand::Rng;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

/// The NFQUEUE number faultline uses.
pub const QUEUE: u16 = 1717;

struct Held {
    release: Instant,
    seq: u64,
    msg: nfq::Message,
}

impl PartialEq for Held {
    fn eq(&self, o: &Self) -> bool {
        (self.release, self.seq) == (o.release, o.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Held {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.release, self.seq).cmp(&(o.release, o.seq))
    }
}

/// What to do with one packet, decided from the spec and the RNG.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fate {
    /// Drop it.
    Drop,
    /// Release it after this long (zero: at once), flipping the given bit first if any.
    Release {
        /// How long to hold it.
        after: Duration,
        /// Which bit of the packet to flip.
        flip_bit: Option<usize>,
    },
}

/// Decides a packet's fate the way netem would.
pub fn fate(spec: &NetemSpec, len: usize, rng: &mut impl Rng) -> Fate {
    let chance = |p: Option<f64>, rng: &mut dyn rand::RngCore| {
        p.is_some_and(|p| rng.random_range(0.0..100.0) < p)
    };
    if chance(spec.loss, rng) {
        return Fate::Drop;
    }
    let flip_bit = (chance(spec.corrupt, rng) && len > 20).then(|| rng.random_range(160..len * 8));
    let mut after = spec.delay.unwrap_or_default();
    if let Some(j) = spec.jitter {
        let j = j.as_secs_f64();
        let d = after.as_secs_f64() + rng.random_range(-j..=j);
        after = Duration::from_secs_f64(d.max(0.0));
    }
    if chance(spec.reorder, rng) {
        after = Duration::ZERO;
    }
    Fate::Release { after, flip_bit }
}

/// Binds the queue and applies `spec` to every packet until killed. Calls `ready` once the
/// queue is bound.
pub fn run(spec: &NetemSpec, seed: u64, ready: impl FnOnce()) -> std::io::Result<()> {
    let mut q = nfq::Queue::open()?;
    q.bind(QUEUE)?;
    q.set_fail_open(QUEUE, true)?;
    q.set_queue_max_len(QUEUE, 65536)?;
    q.set_nonblocking(true);
    ready();
    let mut rng = crate::seeded(seed);
    let mut held: BinaryHeap<Reverse<Held>> = BinaryHeap::new();
    let mut seq = 0u64;
    // Pacing for a rate limit: when the link is free again.
    let mut link_free = Instant::now();
    loop {
        loop {
            match q.recv() {
                Ok(mut msg) => {
                    let now = Instant::now();
                    let len = msg.get_payload().len();
                    match fate(spec, len, &mut rng) {
                        Fate::Drop => {
                            msg.set_verdict(nfq::Verdict::Drop);
                            q.verdict(msg)?;
                        }
                        Fate::Release { after, flip_bit } => {
                            if let Some(bit) = flip_bit {
                                let p = msg.get_payload_mut();
                                if let Some(b) = p.get_mut(bit / 8) {
                                    *b ^= 1 << (bit % 8);
                                }
                            }
                            let mut release = now + after;
                            if let Some(kbit) = spec.rate_kbit {
                                let start = release.max(link_free);
                                let secs = (len as f64 * 8.0) / (kbit as f64 * 1000.0);
                                link_free = start + Duration::from_secs_f64(secs);
                                release = link_free;
                            }
                            msg.set_verdict(nfq::Verdict::Accept);
                            seq += 1;
                            held.push(Reverse(Held { release, seq, msg }));
                        }
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        let now = Instant::now();
        while held.peek().is_some_and(|h| h.0.release <= now) {
            if let Some(Reverse(h)) = held.pop() {
                q.verdict(h.msg)?;
            }
        }
        let next = held.peek().map_or(Duration::from_millis(1), |h| {
            h.0.release.saturating_duration_since(now)
        });
        std::thread::sleep(next.min(Duration::from_millis(1)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fates_follow_the_spec() {
        let mut rng = crate::seeded(3);
        let spec = NetemSpec {
            delay: Some(Duration::from_millis(100)),
            jitter: Some(Duration::from_millis(10)),
            loss: Some(20.0),
            corrupt: Some(10.0),
            ..NetemSpec::default()
        };
        let (mut dropped, mut flipped, n) = (0, 0, 20_000);
        for _ in 0..n {
            match fate(&spec, 1500, &mut rng) {
                Fate::Drop => dropped += 1,
                Fate::Release { after, flip_bit } => {
                    assert!(
                        after >= Duration::from_millis(90) && after <= Duration::from_millis(110)
                    );
                    if let Some(b) = flip_bit {
                        assert!((160..1500 * 8).contains(&b));
                        flipped += 1;
                    }
                }
            }
        }
        assert!((3_600..4_400).contains(&dropped), "{dropped}");
        assert!((1_200..2_000).contains(&flipped), "{flipped}");
        let reorder = NetemSpec {
            delay: Some(Duration::from_millis(50)),
            reorder: Some(100.0),
            ..NetemSpec::default()
        };
        assert_eq!(
            fate(&reorder, 100, &mut rng),
            Fate::Release {
                after: Duration::ZERO,
                flip_bit: None
            }
        );
    }
}
