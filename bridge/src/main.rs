use std::process::ExitCode;

use bridge::Config;
use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let server = match bridge::server::Server::bind(config).await {
        Ok(server) => server,
        Err(err) => {
            eprintln!("bridge: error: {err}");
            return ExitCode::FAILURE;
        }
    };
    println!("amqp-playground: serving http://{}/", server.local_addr());
    match server.run(bridge::server::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bridge: error: {err}");
            ExitCode::FAILURE
        }
    }
}
