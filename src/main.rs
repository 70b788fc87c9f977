use clap::Parser;
use loupe::config::{Cli, Command, Settings};
use loupe::startup::Application;
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    loupe::telemetry::init_tracing();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loupe: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = rt.block_on(run(cli.command));
    // A fit still running on the blocking pool is abandoned rather than
    // awaited: a model version is written in one transaction after its fit,
    // so nothing partial reaches the database.
    rt.shutdown_timeout(Duration::from_secs(2));
    code
}

async fn run(command: Command) -> ExitCode {
    match command {
        Command::Serve(args) => {
            let settings = match Settings::parse(args) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("loupe: {e}");
                    return ExitCode::from(2);
                }
            };
            let app = match Application::build(settings).await {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("loupe: cannot start: {e:#}");
                    return ExitCode::from(1);
                }
            };
            if let Err(e) = app.run_until_stopped().await {
                eprintln!("loupe: {e:#}");
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Command::Simulate(args) => loupe::simulate::run(args),
        Command::Backup(args) => loupe::backup::run(args).await,
    }
}
