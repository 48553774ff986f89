//! The EDN reader gives the same events whatever the layout a history is printed in (one op
//! map per line; maps over several lines with comments between them inside one vector; one
//! list with several maps per line; `[process type f value]` tuples), and never panics on a
//! damaged file.

use checkers::generate::Rng;
use checkers::history::{Event, Value};
use checkers::read::{from_reader, Format};

/// A random EDN value and the value the reader should make of it.
fn value(rng: &mut Rng, depth: u32) -> (String, Value) {
    match rng.below(if depth > 2 { 4 } else { 7 }) {
        0 => ("nil".into(), Value::Null),
        1 => {
            let i = rng.below(1000) as i64 - 500;
            (i.to_string(), Value::Int(i))
        }
        2 => {
            let s = [
                "a b",
                "[x",
                "}{",
                "q\"uote",
                "back\\slash",
                "; not a comment",
                "((",
            ][rng.below(7) as usize];
            let escaped = s.replace('\\', "\\\\").replace('"', "\\\"");
            (format!("\"{escaped}\""), Value::Str(s.into()))
        }
        3 => {
            let c = ["(", "[", "]", "\"", ";"][rng.below(5) as usize];
            (format!("\\{c}"), Value::Str(c.into()))
        }
        4 => (":kw".to_string(), Value::Str("kw".into())),
        _ => {
            let n = rng.below(4) as usize;
            let (texts, values): (Vec<String>, Vec<Value>) =
                (0..n).map(|_| value(rng, depth + 1)).unzip();
            let (open, close) = if rng.chance(0.5) {
                ("[", "]")
            } else {
                ("(", ")")
            };
            (
                format!("{open}{}{close}", texts.join(" ")),
                Value::List(values),
            )
        }
    }
}

struct Op {
    process: String,
    kind: &'static str,
    f: &'static str,
    value: String,
    plain_value: bool,
}

fn history(rng: &mut Rng, n: usize) -> Vec<Op> {
    (0..n)
        .map(|_| {
            let (value, v) = value(rng, 0);
            Op {
                process: if rng.chance(0.1) {
                    ":nemesis".into()
                } else {
                    rng.below(10).to_string()
                },
                kind: [":invoke", ":ok", ":fail", ":info"][rng.below(4) as usize],
                f: [":read", ":write", ":cas"][rng.below(3) as usize],
                plain_value: matches!(v, Value::Null | Value::Int(_)),
                value,
            }
        })
        .collect()
}

fn map_one_line(o: &Op) -> String {
    format!(
        "{{:process {}, :type {}, :f {}, :value {}}}",
        o.process, o.kind, o.f, o.value
    )
}

fn map_over_lines(o: &Op, rng: &mut Rng) -> String {
    let sep = |rng: &mut Rng| if rng.chance(0.5) { "\n  " } else { ", " };
    format!(
        "{{:process {},{}:type {}{}:f{}{}{}:value{}{}}}",
        o.process,
        sep(rng),
        o.kind,
        sep(rng),
        if rng.chance(0.3) { "\n   " } else { " " },
        o.f,
        sep(rng),
        if rng.chance(0.3) { "\n   " } else { " " },
        o.value
    )
}

fn read(text: &str) -> Vec<Event> {
    from_reader(std::io::Cursor::new(text.to_string()), "t", Format::Edn)
        .expect("reader")
        .map(|l| l.unwrap_or_else(|e| panic!("{e}\n{text}")).event)
        .collect()
}

#[test]
fn every_layout_reads_the_same_events() {
    let mut rng = Rng::new(7);
    for round in 0..200 {
        let n = 1 + rng.below(30) as usize;
        let ops = history(&mut rng, n);
        let per_line: String = ops.iter().map(|o| map_one_line(o) + "\n").collect();
        let expected = read(&per_line);
        assert_eq!(expected.len(), ops.len(), "round {round}");

        let mut vector = String::from(if rng.chance(0.5) { "[\n" } else { "[" });
        for o in &ops {
            if rng.chance(0.3) {
                vector.push_str(" ; a comment with [ { ( \" in it\n");
            }
            vector.push_str(&map_over_lines(o, &mut rng));
            vector.push_str(if rng.chance(0.7) { "\n " } else { " " });
        }
        vector.push_str("]\n; the end\n");
        assert_eq!(read(&vector), expected, "round {round}:\n{vector}");

        let mut list = String::from("(");
        for (i, o) in ops.iter().enumerate() {
            list.push_str(&map_one_line(o));
            list.push_str(if i % 3 == 2 { "\n" } else { " " });
        }
        list.push(')');
        assert_eq!(read(&list), expected, "round {round}:\n{list}");

        if ops.iter().all(|o| o.plain_value) {
            let tuples: String = ops
                .iter()
                .map(|o| format!("[{} {} {} {}]\n", o.process, o.kind, o.f, o.value))
                .collect();
            assert_eq!(read(&tuples), expected, "round {round}:\n{tuples}");
        }
    }
}

#[test]
fn damaged_files_give_errors_not_panics() {
    let mut rng = Rng::new(11);
    for _ in 0..3000 {
        let n = 1 + rng.below(8) as usize;
        let ops = history(&mut rng, n);
        let mut text = String::from("[");
        for o in &ops {
            text.push_str(&map_over_lines(o, &mut rng));
            text.push('\n');
        }
        text.push(']');
        let mut bytes = text.into_bytes();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(bytes.len() as u64 + 1) as usize;
            match rng.below(3) {
                0 => bytes.truncate(at),
                1 if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => bytes.insert(
                    at.min(bytes.len()),
                    b"[](){}\"\\;#_ \n"[rng.below(13) as usize],
                ),
            }
        }
        let reader = from_reader(std::io::Cursor::new(bytes), "t", Format::Edn).expect("reader");
        for event in reader {
            if let Err(e) = event {
                assert!(e.to_string().starts_with("t:"), "{e}");
            }
        }
    }
}
