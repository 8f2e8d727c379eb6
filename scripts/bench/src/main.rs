//! partyd's load generator: fan-out deliveries with latencies, the highest sustained
//! fan-out rate, idle connections and their memory, GET throughput, and cold loads, against any
//! server speaking TinyBase's PartyKit persister protocol. One JSON object per run on stdout.

mod fanout;
mod http;
mod proc;
mod simple;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Load generator for partyd and the servers it is compared with")]
struct Cli {
    /// host:port of the server (loopback).
    #[arg(long, default_value = "127.0.0.1:1999")]
    host: String,
    /// The party whose rooms are used.
    #[arg(long, default_value = "main")]
    party: String,
    /// The server's pid, for its CPU time and memory (its whole process tree).
    #[arg(long)]
    pid: Option<u32>,
    /// A prefix for room names, so runs never share rooms.
    #[arg(long, default_value = "bench")]
    prefix: String,
    #[command(subcommand)]
    mode: Mode,
}

/// The shape of a fan-out: rooms, sockets per room, senders per room.
#[derive(Args, Clone, Copy)]
struct Shape {
    #[arg(long, default_value_t = 20)]
    rooms: usize,
    #[arg(long, default_value_t = 10)]
    conns: usize,
    #[arg(long, default_value_t = 2)]
    senders: usize,
}

#[derive(Subcommand)]
enum Mode {
    /// R rooms x C sockets, S senders per room sending at a rate for D seconds.
    Fanout {
        #[command(flatten)]
        shape: Shape,
        /// Changes per second per sender.
        #[arg(long, default_value_t = 20.0)]
        rate: f64,
        #[arg(long, default_value_t = 10.0)]
        secs: f64,
    },
    /// Steps the rate up until p99 exceeds the limit or deliveries fall behind.
    Max {
        #[command(flatten)]
        shape: Shape,
        /// The first rate per sender; each step multiplies it by `factor`.
        #[arg(long, default_value_t = 20.0)]
        start_rate: f64,
        #[arg(long, default_value_t = 1.6)]
        factor: f64,
        #[arg(long, default_value_t = 4.0)]
        step_secs: f64,
        #[arg(long, default_value_t = 20.0)]
        p99_limit_ms: f64,
        #[arg(long, default_value_t = 10)]
        max_steps: usize,
    },
    /// Opens N idle sockets over R rooms; reports the server's RSS per socket.
    Connect {
        #[arg(long, default_value_t = 10_000)]
        sockets: usize,
        #[arg(long, default_value_t = 100)]
        rooms: usize,
    },
    /// GET store over R rooms with K keep-alive clients for D seconds.
    Get {
        #[arg(long, default_value_t = 20)]
        rooms: usize,
        #[arg(long, default_value_t = 10)]
        clients: usize,
        #[arg(long, default_value_t = 5.0)]
        secs: f64,
    },
    /// Stores a room of N rows (run before restarting the server for `coldload-get`).
    ColdloadPut {
        #[arg(long, default_value_t = 10_000)]
        rows: usize,
    },
    /// Times the first GET of the room `coldload-put` stored.
    ColdloadGet,
}

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    let result = runtime.block_on(run(&cli));
    match result {
        Ok(report) => println!("{report}"),
        Err(error) => {
            eprintln!("partyd-bench: {error}");
            std::process::exit(1);
        }
    }
}

async fn run(cli: &Cli) -> Result<serde_json::Value, String> {
    let fanout = |shape: Shape, rate, secs, prefix: String| fanout::Fanout {
        host: cli.host.clone(),
        party: cli.party.clone(),
        room_prefix: prefix,
        rooms: shape.rooms,
        conns: shape.conns,
        senders: shape.senders,
        rate,
        secs,
        server_pid: cli.pid,
    };
    match &cli.mode {
        Mode::Fanout { shape, rate, secs } => {
            fanout::run(&fanout(*shape, *rate, *secs, cli.prefix.clone())).await
        }
        Mode::Max { shape, start_rate, factor, step_secs, p99_limit_ms, max_steps } => {
            let mut best: Option<serde_json::Value> = None;
            let mut steps = Vec::new();
            let mut rate = *start_rate;
            for step in 0..*max_steps {
                let report =
                    fanout::run(&fanout(*shape, rate, *step_secs, format!("{}-max{step}", cli.prefix)))
                        .await?;
                let p99 = report["p99_ms"].as_f64().unwrap_or(f64::MAX);
                let kept_up = report["received"].as_f64().unwrap_or(0.0)
                    >= 0.995 * report["expected"].as_f64().unwrap_or(1.0);
                eprintln!("max: rate {rate:.0}/s per sender -> {:.0} deliveries/s, p99 {p99:.2} ms, kept up: {kept_up}", report["deliveries_per_s"].as_f64().unwrap_or(0.0));
                steps.push(report.clone());
                if p99 > *p99_limit_ms || !kept_up {
                    break;
                }
                best = Some(report);
                rate *= factor;
            }
            // When even the first step fails, the server sustains less than that step's rate.
            let below = best
                .is_none()
                .then(|| steps.first().and_then(|first| first["deliveries_per_s"].as_f64()))
                .flatten();
            Ok(serde_json::json!({
                "mode": "max",
                "p99_limit_ms": p99_limit_ms,
                "max_sustained_deliveries_per_s": best.as_ref().and_then(|b| b["deliveries_per_s"].as_f64()),
                "sustains_less_than_deliveries_per_s": below,
                "best": best,
                "steps": steps,
            }))
        }
        Mode::Connect { sockets, rooms } => {
            simple::connect(&cli.host, &cli.party, &cli.prefix, *sockets, *rooms, cli.pid).await
        }
        Mode::Get { rooms, clients, secs } => {
            simple::get(&cli.host, &cli.party, &cli.prefix, *rooms, *clients, *secs, cli.pid).await
        }
        Mode::ColdloadPut { rows } => simple::coldload_put(&cli.host, &cli.party, &cli.prefix, *rows).await,
        Mode::ColdloadGet => simple::coldload_get(&cli.host, &cli.party, &cli.prefix).await,
    }
}
