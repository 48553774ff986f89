//! Marks the tests that need root ignored when this crate is built without it (cfg `not_root`;
//! see src/testing/needs.rs).

#[allow(dead_code)]
#[path = "src/testing/needs.rs"]
mod needs;

fn main() {
    needs::emit_build_cfgs(&[needs::Need::Root]);
}
