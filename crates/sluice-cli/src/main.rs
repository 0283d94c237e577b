//! The `sluice` binary: `serve` runs the server; operator commands (noun/verb) talk to a running
//! server over its signed admin API and print JSON on stdout.

mod automation_worker;
mod client;
mod worker;

/// mimalloc: the request path allocates many small short-lived buffers, which glibc's allocator
/// serves measurably slower (see docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use sluice_core::clock::SystemClock;
use sluice_server::config::{Config, Overrides};

#[derive(Parser)]
#[command(name = "sluice", version, about = "Durable job orchestration server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Manage access keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Run a job worker: `sluice worker --action-type C/O/P/V -- CMD ARGS…` for CodePipeline
    /// jobs, or `sluice worker --automation` for SSM Automation scripts and commands.
    Worker(WorkerArgs),
    /// Manage action types.
    ActionTypes {
        #[command(subcommand)]
        command: ActionTypesCommand,
    },
    /// Cloudforet facade: mint tokens, register account-collector plugins.
    Cloudforet {
        #[command(subcommand)]
        command: CloudforetCommand,
    },
}

#[derive(Subcommand)]
enum CloudforetCommand {
    /// Mint a token; prints {"token"}.
    Token {
        /// DOMAIN_ADMIN, WORKSPACE_OWNER, WORKSPACE_MEMBER or SYSTEM_TOKEN.
        #[arg(long)]
        role: String,
        #[arg(long)]
        domain_id: String,
        /// Required for the workspace roles.
        #[arg(long)]
        workspace_id: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 86_400)]
        expires_in: i64,
    },
    /// Manage account-collector plugins.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// Register (or re-point) a plugin by id; prints {"plugin_id","endpoint"}.
    Register {
        #[arg(long)]
        plugin_id: String,
        /// The plugin's gRPC endpoint, http://host:port.
        #[arg(long)]
        endpoint: String,
    },
}

#[derive(Args)]
struct WorkerArgs {
    /// The action type whose jobs to run, CATEGORY/OWNER/PROVIDER/VERSION.
    #[arg(long, value_parser = worker::parse_action_type, required_unless_present = "automation")]
    action_type: Option<serde_json::Value>,
    /// The queryable property's value to poll for, KEY=VALUE.
    #[arg(long, value_parser = worker::parse_query, conflicts_with = "automation")]
    query: Option<(String, String)>,
    /// Run SSM Automation `aws:executeScript` and `aws:runCommand` steps instead.
    #[arg(long, conflicts_with_all = ["action_type", "command"])]
    automation: bool,
    /// How many jobs to run at once.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// How often, in seconds, a running command's last line of output is reported as its
    /// job's progress (only when it changed).
    #[arg(long, default_value = "10", value_parser = worker::parse_seconds, conflicts_with = "automation")]
    progress_every: std::time::Duration,
    /// The command to run for each job, after `--`.
    #[arg(last = true, required_unless_present = "automation")]
    command: Vec<String>,
}

#[derive(Subcommand)]
enum ActionTypesCommand {
    /// Register a ThirdParty action type; prints clientId and clientToken for its job workers.
    RegisterThirdParty {
        #[arg(long)]
        category: String,
        #[arg(long)]
        provider: String,
        #[arg(long)]
        version: String,
        /// Input artifact bounds, MIN..MAX.
        #[arg(long, default_value = "0..5", value_parser = parse_bounds)]
        input_artifacts: (u32, u32),
        /// Output artifact bounds, MIN..MAX.
        #[arg(long, default_value = "0..5", value_parser = parse_bounds)]
        output_artifacts: (u32, u32),
    },
}

fn parse_bounds(text: &str) -> Result<(u32, u32), String> {
    let (min, max) = text.split_once("..").ok_or_else(|| format!("{text:?} is not MIN..MAX"))?;
    let number = |n: &str| n.trim().parse::<u32>().map_err(|_| format!("{n:?} is not a whole number"));
    Ok((number(min)?, number(max)?))
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SLUICE_LISTEN")]
    listen: Option<String>,
    /// Directory for the SQLite database, keys and artifacts.
    #[arg(long, env = "SLUICE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL (sqlite://… or postgres://…); default SQLite in the data dir.
    #[arg(long = "database", env = "SLUICE_DATABASE_URL")]
    database_url: Option<String>,
    /// Optional TOML configuration file.
    #[arg(long, env = "SLUICE_CONFIG")]
    config: Option<PathBuf>,
    #[arg(long, env = "SLUICE_ACCOUNT_ID", hide = true)]
    account_id: Option<String>,
    #[arg(long, env = "SLUICE_REGION", hide = true)]
    region: Option<String>,
    /// Directory for artifact bytes (replicas on one database must share it).
    #[arg(long, env = "SLUICE_ARTIFACTS_DIR")]
    artifacts_dir: Option<PathBuf>,
    /// How long a Cloudforet account-collector plugin may take to answer a sync, in seconds.
    #[arg(long, env = "SLUICE_CLOUDFORET_PLUGIN_TIMEOUT_SECONDS")]
    cloudforet_plugin_timeout_seconds: Option<u64>,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an access key for a named user; prints accessKeyId and secretAccessKey.
    Create {
        #[arg(long)]
        name: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Keys { command: KeysCommand::Create { name } } => {
            let output = runtime.block_on(client::Client::from_env()?.create_key(&name))?;
            println!("{}", serde_json::to_string_pretty(&output)?);
            Ok(())
        }
        Command::Worker(args) if args.automation => {
            runtime.block_on(automation_worker::run(client::Client::from_env()?, args.concurrency))
        }
        Command::Worker(args) => {
            let spec = worker::WorkerSpec {
                action_type: args.action_type.context("--action-type is required")?,
                query: args.query,
                concurrency: args.concurrency,
                progress_every: args.progress_every,
                command: args.command,
            };
            runtime.block_on(worker::run(client::Client::from_env()?, spec))
        }
        Command::Cloudforet { command } => {
            let (path, body) = match command {
                CloudforetCommand::Token { role, domain_id, workspace_id, expires_in } => (
                    "/admin/v1/cloudforet/tokens",
                    serde_json::json!({"role": role, "domain_id": domain_id, "workspace_id": workspace_id, "expires_in": expires_in}),
                ),
                CloudforetCommand::Plugins { command: PluginsCommand::Register { plugin_id, endpoint } } => (
                    "/admin/v1/cloudforet/plugins",
                    serde_json::json!({"plugin_id": plugin_id, "endpoint": endpoint}),
                ),
            };
            let output = runtime.block_on(client::Client::from_env()?.post_admin(path, &body))?;
            println!("{}", serde_json::to_string_pretty(&output)?);
            Ok(())
        }
        Command::ActionTypes { command } => {
            let ActionTypesCommand::RegisterThirdParty {
                category,
                provider,
                version,
                input_artifacts,
                output_artifacts,
            } = command;
            let body = serde_json::json!({
                "category": category,
                "provider": provider,
                "version": version,
                "inputArtifactDetails": {"minimumCount": input_artifacts.0, "maximumCount": input_artifacts.1},
                "outputArtifactDetails": {"minimumCount": output_artifacts.0, "maximumCount": output_artifacts.1},
            });
            let client = client::Client::from_env()?;
            let output = runtime.block_on(client.post_admin("/admin/v1/action-types/third-party", &body))?;
            println!("{}", serde_json::to_string_pretty(&output)?);
            Ok(())
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if std::env::var("SLUICE_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn root_from_env() -> anyhow::Result<Option<sluice_engine::keys::Credentials>> {
    let id = std::env::var("SLUICE_ROOT_ACCESS_KEY_ID").ok();
    let secret = std::env::var("SLUICE_ROOT_SECRET_ACCESS_KEY").ok();
    match (id, secret) {
        (Some(access_key_id), Some(secret_access_key)) => {
            Ok(Some(sluice_engine::keys::Credentials { access_key_id, secret_access_key }))
        }
        (None, None) => Ok(None),
        _ => {
            anyhow::bail!("set both SLUICE_ROOT_ACCESS_KEY_ID and SLUICE_ROOT_SECRET_ACCESS_KEY, or neither")
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let overrides = Overrides {
        listen: args.listen,
        data_dir: args.data_dir,
        database_url: args.database_url,
        account_id: args.account_id,
        region: args.region,
        body_limit: None,
        artifacts_dir: args.artifacts_dir,
        cloudforet_plugin_timeout_seconds: args.cloudforet_plugin_timeout_seconds,
    };
    let config = Config::load(args.config.as_deref(), overrides)?;
    let master_key = std::env::var("SLUICE_MASTER_KEY").ok();
    let app = sluice_server::bootstrap(&config, Arc::new(SystemClock), master_key, root_from_env()?).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, data_dir = %config.data_dir.display(), "sluice listening");
    eprintln!("sluice: listening on http://{address}");
    sluice_server::run(listener, app, shutdown_signal()).await?;
    tracing::info!("sluice stopped");
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler can be installed");
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutdown requested; draining in-flight requests");
}

#[cfg(test)]
mod tests {
    use super::parse_bounds;

    #[test]
    fn artifact_bounds_parse() {
        assert_eq!(parse_bounds("0..5"), Ok((0, 5)));
        assert_eq!(parse_bounds("1..1"), Ok((1, 1)));
        assert!(parse_bounds("1-2").is_err());
        assert!(parse_bounds("a..2").is_err());
    }
}
