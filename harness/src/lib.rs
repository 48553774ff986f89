//! faultline's harness as a library: the `faultline` binary's commands, the test plan and
//! the run lifecycle, so that tests and embedding programs can run a plan with a registry of
//! their own databases and workloads (`test_cmd::run_with`).

pub mod bench_cmd;
pub mod bench_store;
pub mod campaign;
pub mod check_cmd;
pub mod checking;
pub mod cli;
pub mod cluster_cmd;
pub mod db_cmd;
pub mod db_flags;
pub mod exec_cmd;
pub mod exit;
pub mod index;
pub mod index_cmd;
pub mod logging;
pub mod nemesis_cmd;
pub mod node_cmd;
pub mod plan;
pub mod power;
pub mod recorder;
pub mod report;
pub mod run;
pub mod scheduler;
pub mod serve_cmd;
pub mod session;
pub mod shrink;
pub mod shrink_cmd;
pub mod store;
pub mod test_cmd;
pub mod timeline;
pub mod yaml_text;
