//! Command line / environment configuration of the bridge.

use std::path::PathBuf;

use clap::Parser;

/// `bridge`: serves the playground page and relays its WebSocket protocol to a
/// real RabbitMQ.
#[derive(Debug, Clone, Parser)]
#[command(name = "bridge", version, about)]
pub struct Config {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, env = "BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,

    /// RabbitMQ to relay to. Never sent to browsers.
    #[arg(
        long,
        env = "AMQP_URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f",
        hide_env_values = true
    )]
    pub amqp_url: String,

    /// Folder with the built page (index.html, pkg/...). Relative paths are
    /// resolved against the current directory.
    #[arg(long, env = "STATIC_DIR", default_value = "static")]
    pub static_dir: PathBuf,

    /// Largest accepted WebSocket text frame in bytes; larger frames get a
    /// `protocol_error` frame.
    #[arg(long, env = "MAX_FRAME_BYTES", default_value_t = 131_072)]
    pub max_frame_bytes: usize,

    /// Extra origins allowed to open `/ws` (same-origin is always allowed), e.g.
    /// `http://localhost:3000`. Repeatable.
    #[arg(long = "allow-origin", env = "ALLOW_ORIGIN", value_delimiter = ',')]
    pub allow_origins: Vec<String>,

    /// Let clients run `broker_restart` (rabbitmqctl stop_app/start_app on this
    /// host). Off by default: it affects every user of the broker.
    #[arg(long, env = "ALLOW_BROKER_RESTART")]
    pub allow_broker_restart: bool,

    /// Requests a client may send per second (bursts up to twice that);
    /// frames beyond it get a `protocol_error` and are not executed.
    #[arg(long, env = "MAX_REQUESTS_PER_SEC", default_value_t = 50)]
    pub max_requests_per_sec: u32,

    /// Seconds without any frame from a client after which its session is
    /// closed and its broker objects deleted.
    #[arg(long, env = "IDLE_TIMEOUT_SECS", default_value_t = 900)]
    pub idle_timeout_secs: u64,

    /// Folder for the crash journal: what this process declared on the
    /// broker, so that the next bridge deletes what a killed one left.
    /// Default: `$XDG_STATE_HOME/amqp-playground`, else
    /// `~/.local/state/amqp-playground`, else the temp folder.
    #[arg(long, env = "STATE_DIR")]
    pub state_dir: Option<PathBuf>,
}

impl Config {
    /// Defaults as if no flags were given (for tests and embedding).
    pub fn with_defaults() -> Self {
        Config::parse_from(["bridge"])
    }

    /// The folder of the crash journals.
    pub fn state_root(&self) -> PathBuf {
        if let Some(dir) = &self.state_dir {
            return dir.clone();
        }
        let base = std::env::var_os("XDG_STATE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|h| PathBuf::from(h).join(".local/state"))
            })
            .unwrap_or_else(std::env::temp_dir);
        base.join("amqp-playground")
    }

    /// The static folder as an absolute path.
    pub fn static_root(&self) -> PathBuf {
        if self.static_dir.is_absolute() {
            self.static_dir.clone()
        } else {
            std::env::current_dir()
                .map(|d| d.join(&self.static_dir))
                .unwrap_or_else(|_| self.static_dir.clone())
        }
    }
}
