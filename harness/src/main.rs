//! The `faultline` command-line tool.

fn main() {
    println!("faultline");
}
