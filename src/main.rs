use clap::Parser;
use loupe::config::{Cli, Command, Settings};
use loupe::startup::Application;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    loupe::telemetry::init_tracing();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let settings = match Settings::parse(args) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("loupe: {e}");
                    return std::process::ExitCode::from(2);
                }
            };
            let app = match Application::build(settings).await {
                Ok(a) => a,
                Err(e) => {
                    eprintln!("loupe: cannot start: {e:#}");
                    return std::process::ExitCode::from(1);
                }
            };
            if let Err(e) = app.run_until_stopped().await {
                eprintln!("loupe: {e:#}");
                return std::process::ExitCode::from(1);
            }
            std::process::ExitCode::SUCCESS
        }
        Command::Simulate(args) => loupe::simulate::run(args),
        Command::Backup(args) => loupe::backup::run(args).await,
    }
}
