//! Marks the tests that need root or Chromium ignored when this crate is built without them
//! (cfgs `not_root` and `no_chromium`; see clusters/src/testing/needs.rs).

#[allow(dead_code)]
#[path = "../clusters/src/testing/needs.rs"]
mod needs;

fn main() {
    needs::emit_build_cfgs(&[needs::Need::Root, needs::Need::Chromium]);
}
