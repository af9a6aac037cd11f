//! `iotex-injector` binary: everything lives in the library ([`iotex_injector::cli::main_with`]).

fn main() {
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code =
        rt.block_on(iotex_injector::cli::main_with(std::env::args_os(), iotex_shared::shutdown::shutdown_signal()));
    // Do not wait for lingering connection tasks: the report is written.
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    std::process::exit(code);
}
