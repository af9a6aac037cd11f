//! Every integration and end-to-end test of the workspace, in one test binary.
//!
//! One binary links the gateway, the injector and their dependencies once, instead of once per test file.
//! Each module is one former test binary and keeps its name, so a test's full name reads
//! `gateway_cache::final_calls_reach_the_node_once_and_moving_ones_every_time`.
//!
//! - `gateway_*`: the gateway in process, in front of real anvil/ganache nodes or the counting mock.
//! - `injector_*`: the injector in process, against real nodes and the loopback sink.
//! - `e2e_injector_through_gateway`: both together over three nodes.
//! - `nodes`: the test peers themselves.
//! - `iotex_*`: real 5-node IoTeX clusters (`scripts/iotex-cluster.sh`), minutes each. `.config/nextest.toml`
//!   runs them one at a time in the `iotex-real` test group by this module-name prefix (`test(/^iotex_/)`).
//!
//! nextest runs each test in a process of its own. Plain `cargo test` runs them all as threads of one
//! process: the process-wide state the tests share is then the one IoTeX cluster ([`iotex_tests::iotex::Cluster::shared`],
//! serialized by `Cluster::exclusive`), the tracing subscriber (installed once), and signals
//! (`gateway_discovery`'s SIGHUP reaches every gateway of the process; one whose file did not change counts an
//! `unchanged` reload, which no other test asserts on).

mod e2e_injector_through_gateway;
mod gateway_batch_filters;
mod gateway_cache;
mod gateway_clients;
mod gateway_corpus;
mod gateway_discovery;
mod gateway_faults;
mod gateway_guards;
mod gateway_hostile_wire;
mod gateway_nodes;
mod gateway_tokens;
mod gateway_ws;
mod injector_cli;
mod injector_crash;
mod injector_faults;
mod injector_lands;
mod injector_native_wire;
mod injector_shards;
mod injector_stall;
mod iotex_chaos;
mod iotex_cluster;
mod iotex_gateway;
mod iotex_grpc;
mod iotex_grpc_clients;
mod iotex_injector;
mod iotex_native;
mod nodes;
