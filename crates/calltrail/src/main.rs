//! The `calltrail` command: parses the CLI, sets up telemetry, runs one command, and reports
//! failure as one readable line on stderr with a non-zero exit code.

use std::process::ExitCode;

/// mimalloc instead of the system allocator: the webhook path and replay allocate many small,
/// short-lived strings across threads, where glibc's malloc spent a third of replay's time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match calltrail::cli::parse_args(std::env::args_os()) {
        Ok(cli) => cli,
        Err(errors) => errors.exit(),
    };
    calltrail::telemetry::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("calltrail: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(calltrail::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("calltrail: {}", calltrail::cli::one_line(&error));
            ExitCode::FAILURE
        }
    }
}
