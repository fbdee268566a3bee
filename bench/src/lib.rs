//! `creditmesh-bench`: the benchmarks, apart from the production binary. Each starts a mesh of
//! its own (a fresh PKI and database, through the `creditmesh` library), drives it, and ends
//! with one JSON line of figures; nothing is asserted. Current figures: `docs/benchmarks.md`.

mod delivery;
mod fairness;
mod flood;
mod gateway;
mod mesh;
mod nginx;
mod push;
mod register;
mod soak;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

/// creditmesh-bench: load, fairness, flood and soak benchmarks of a creditmesh mesh started for
/// each run; each prints one JSON line of figures.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Unary load over mutual TLS against one service directly and through the gateway;
    /// ends with one JSON line of figures.
    Gateway {
        /// Length of each measured phase.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Length of the warm-up before each path is measured.
        #[arg(long, default_value_t = 1)]
        warmup_seconds: u64,
        /// Callers in flight at once in saturation mode.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Persistent connections per path.
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// The gateway's `backend_connections` (default: the configuration's default).
        #[arg(long)]
        backend_connections: Option<u32>,
        /// The gateway's `backend_calls_per_connection` (default: the configuration's default).
        #[arg(long)]
        backend_calls_per_connection: Option<u32>,
        /// Also measure nginx (`grpc_pass`) in front of the same backend: this binary, or
        /// `nginx` from the PATH or /usr/sbin when no path is given.
        #[arg(long, num_args = 0..=1, value_name = "PATH")]
        nginx: Option<Option<std::path::PathBuf>>,
    },
    /// Sustained writes (complaints, each an event) at a fixed rate while the outbox relay
    /// delivers; ends with one JSON line: produced and delivered per second, backlog.
    Delivery {
        /// How long the load runs.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
        /// Complaints per second, open loop.
        #[arg(long, default_value_t = 300)]
        rate: u64,
        /// Run on this PostgreSQL server (a fresh database is made and dropped); SQLite
        /// otherwise.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// One tenant's reads at a fixed rate, alone and while another tenant sends ten times its
    /// share of calls in flight, in turns; ends with one JSON line of both p99s.
    Fairness {
        /// Length of each phase of each round.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Reads per second of the quiet tenant, open loop.
        #[arg(long, default_value_t = 100)]
        rate: u64,
        /// Calls in flight each tenant may hold.
        #[arg(long, default_value_t = 8)]
        share: u32,
        /// Alone, then crowded, this many times, `seconds` each.
        #[arg(long, default_value_t = 4)]
        rounds: u32,
    },
    /// Fills the public register with N agencies through the disclosure service's event sink,
    /// checkpointing on, then searches it by name and reads it by USCC through the public
    /// listener at a fixed rate; ends with one JSON line.
    Register {
        /// Agencies published before the reads.
        #[arg(long, default_value_t = 10_000)]
        agencies: usize,
        /// How long the reads run.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Reads per second, half searches by name and half lookups by USCC.
        #[arg(long, default_value_t = 500)]
        rate: u64,
        /// Run on this PostgreSQL server (a fresh database is made and dropped); SQLite
        /// otherwise.
        #[arg(long)]
        postgres: Option<String>,
    },
    /// The public listener flooded with connections and health watches beyond every cap,
    /// under the default limits, then left alone; ends with one JSON line: what was admitted
    /// and refused, a regulator's p99 meanwhile, resident memory before, at the peak, after.
    Flood {
        /// Loopback addresses the flood comes from (127.0.0.2 and up).
        #[arg(long, default_value_t = 16)]
        addresses: u8,
        /// Connections opened from each address.
        #[arg(long, default_value_t = 80)]
        connections: usize,
        /// Health watches opened on each connection.
        #[arg(long, default_value_t = 2)]
        watches: usize,
        /// Floods one after another.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
    },
    /// Records pushed through the gateway on one stream, then pushed again (all duplicates),
    /// and on PostgreSQL as many rows loaded with COPY into the same table; ends with one
    /// JSON line: rows/s of each, their ratio, rows written by the second push, peak RSS.
    /// With `--agencies N`, N agencies push `--records` each at once through the gateway, on a
    /// connection each, `--rounds` times; the line says in how many rounds every stream ended
    /// with every ack.
    Push {
        /// Records each agency pushes.
        #[arg(long, default_value_t = 1_000_000)]
        records: usize,
        /// Run on this PostgreSQL server (a fresh database is made and dropped); SQLite
        /// otherwise, without COPY.
        #[arg(long)]
        postgres: Option<String>,
        /// Agencies pushing at once, each on a connection of its own.
        #[arg(long, default_value_t = 1)]
        agencies: usize,
        /// How many times the agencies push at once, with new keys each time.
        #[arg(long, default_value_t = 1)]
        rounds: usize,
    },
    /// Mixed traffic through the gateway at a fixed rate for a long time; ends with one JSON
    /// line: p50/p99 and resident memory of the first and the last window.
    Soak {
        /// How long the traffic runs.
        #[arg(long, default_value_t = 1800)]
        seconds: u64,
        /// Length of the first and the last window measured.
        #[arg(long, default_value_t = 300)]
        window_seconds: u64,
        /// Calls per second, open loop.
        #[arg(long, default_value_t = 200)]
        rate: u64,
        /// Run on this PostgreSQL server (a fresh database is made and dropped); SQLite
        /// otherwise.
        #[arg(long)]
        postgres: Option<String>,
    },
}

/// The command line: every benchmark and flag with its help.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

/// Parses the command line and runs the benchmark; the `creditmesh-bench` binary is this
/// function.
pub fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    creditmesh::cli::run_to_completion(async {
        println!("{}", run(cli.command).await?);
        Ok(())
    })
}

async fn run(command: Command) -> Result<serde_json::Value> {
    let log = creditmesh::Config::load(&[] as &[&std::path::Path])?.log;
    let _telemetry = creditmesh_rpc::telemetry::init(&log.filter, log.format == "json")?;
    creditmesh::memory::spawn_collector();
    match command {
        Command::Gateway {
            seconds,
            warmup_seconds,
            concurrency,
            connections,
            backend_connections,
            backend_calls_per_connection,
            nginx,
        } => {
            let nginx = match nginx {
                Some(Some(path)) => Some(path),
                Some(None) => Some(crate::nginx::find().context("nginx is not on the PATH")?),
                None => None,
            };
            let mut limits = crate::mesh::unlimited();
            if let Some(n) = backend_connections {
                limits.backend_connections = n.max(1);
            }
            if let Some(n) = backend_calls_per_connection {
                limits.backend_calls_per_connection = n.max(1);
            }
            crate::gateway::gateway(
                crate::gateway::BenchOptions {
                    seconds,
                    warmup_seconds,
                    concurrency,
                    connections: connections.max(1),
                },
                limits,
                nginx.as_deref(),
            )
            .await
        }
        Command::Delivery {
            seconds,
            rate,
            postgres,
        } => {
            crate::delivery::delivery(crate::delivery::DeliveryOptions {
                seconds,
                rate,
                postgres,
            })
            .await
        }
        Command::Fairness {
            seconds,
            rate,
            share,
            rounds,
        } => {
            crate::fairness::fairness(crate::fairness::FairnessOptions {
                seconds,
                rate,
                share: share.max(1),
                rounds,
            })
            .await
        }
        Command::Register {
            agencies,
            seconds,
            rate,
            postgres,
        } => {
            crate::register::register(crate::register::RegisterOptions {
                agencies,
                seconds,
                rate,
                postgres,
            })
            .await
        }
        Command::Flood {
            addresses,
            connections,
            watches,
            rounds,
        } => {
            crate::flood::flood(crate::flood::FloodOptions {
                addresses: addresses.clamp(1, 250),
                connections,
                watches,
                rounds,
            })
            .await
        }
        Command::Push {
            records,
            postgres,
            agencies,
            rounds,
        } => {
            let options = crate::push::PushOptions {
                records: records.max(1),
                postgres,
            };
            if agencies > 1 {
                crate::push::at_once(options, agencies, rounds.max(1)).await
            } else {
                crate::push::push_bench(options).await
            }
        }
        Command::Soak {
            seconds,
            window_seconds,
            rate,
            postgres,
        } => {
            crate::soak::soak(crate::soak::SoakOptions {
                seconds,
                window_seconds: window_seconds.min(seconds).max(1),
                rate,
                postgres,
            })
            .await
        }
    }
}
