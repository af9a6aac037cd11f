//! `iotex-injector` binary: everything lives in the library ([`iotex_injector::program::main_with`]).

fn main() {
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = rt.block_on(async {
        // Handlers before anything else, so a signal during set-up drains and reports instead of killing.
        let signal = iotex_shared::shutdown::install();
        iotex_injector::program::main_with(std::env::args_os(), signal).await
    });
    // Do not wait for lingering connection tasks: the report is written.
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    std::process::exit(code);
}
