//! The load generator against the real server: each op it drives, on one thread and on
//! several, completes without errors and reports what it measured. BENCHMARKS.md rests on
//! its figures, so a load generator that silently counted failures as calls would be a
//! defect here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use tollgate_e2e::{CatalogDir, Server};

/// Runs `tollgate-loadgen` with `args` and returns the JSON lines it printed.
fn loadgen(server: &Server, args: &[&str]) -> Vec<serde_json::Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_tollgate-loadgen"))
        .arg("--addr")
        .arg(server.grpc_addr().to_string())
        .args(["--duration-s", "1", "--warmup-s", "0", "--customers", "3"])
        .args(args)
        .output()
        .expect("run tollgate-loadgen");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "loadgen {args:?} failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn assert_clean_run(report: &serde_json::Value, rpc: &str) {
    assert_eq!(report["rpc"], rpc, "{report}");
    assert!(report["ops"].as_u64().unwrap() > 0, "no calls: {report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert!(report["latency_us_p99"].as_u64().unwrap() > 0, "{report}");
    // The machine's processors, and of them the ones the load generator may run on.
    let machine = &report["machine"];
    let cpus = machine["cpus"].as_u64().unwrap();
    let allowed = machine["cpus_allowed"].as_u64().unwrap();
    assert!(allowed >= 1 && allowed <= cpus, "{report}");
}

/// Pinned to one core, as the benchmarks run it, the load generator still reports the
/// machine's processors, and its own one apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_it_reports_the_machine_and_its_one_core_apart() -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism()?.get() as u64;
    if cores < 2 || Command::new("taskset").arg("--version").output().is_err() {
        eprintln!("skipped: needs taskset and 2 cores to pin to one of them");
        return Ok(());
    }
    let catalog = CatalogDir::examples_plus_e2e()?;
    let server = Server::start_with_catalog(&catalog).await?;
    let output = Command::new("taskset")
        .args(["-c", "0", env!("CARGO_BIN_EXE_tollgate-loadgen")])
        .arg("--addr")
        .arg(server.grpc_addr().to_string())
        .args(["--rpc", "empty", "--duration-s", "1", "--warmup-s", "0"])
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let report: serde_json::Value = stdout
        .lines()
        .find(|l| l.starts_with('{'))
        .map(serde_json::from_str)
        .expect("a JSON line")?;
    assert_clean_run(&report, "empty");
    assert_eq!(report["machine"]["cpus_allowed"], 1, "{report}");
    assert!(
        report["machine"]["cpus"].as_u64().unwrap() >= cores,
        "{report}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_op_runs_clean_on_one_thread_and_on_two() -> anyhow::Result<()> {
    let catalog = CatalogDir::examples_plus_e2e()?;
    let server = Server::start_with_catalog(&catalog).await?;
    for threads in ["1", "2"] {
        let reports = loadgen(
            &server,
            &[
                "--rpc",
                "reserve-commit",
                "--concurrency",
                "4",
                "--threads",
                threads,
                "--compare",
            ],
        );
        // The floor (two empty calls), the op, then the comparison.
        assert_eq!(reports.len(), 3, "{reports:?}");
        assert_clean_run(&reports[0], "empty-pair");
        assert_clean_run(&reports[1], "reserve-commit");
        let ratio = reports[2]["compare"]["throughput_ratio_to_empty"]
            .as_f64()
            .unwrap();
        assert!(ratio > 0.0, "{reports:?}");
        let check = loadgen(
            &server,
            &[
                "--rpc",
                "check",
                "--rate",
                "200",
                "--threads",
                threads,
                "--no-setup",
            ],
        );
        assert_clean_run(&check[0], "check");
        assert_eq!(check[0]["mode"], "open", "{check:?}");
        // Every call due in the 1 s measured is counted, however late it ends: 200.
        assert_eq!(check[0]["ops"], 200, "{check:?}");
        assert_eq!(check[0]["dropped"], 0, "{check:?}");
        let ingest = loadgen(
            &server,
            &[
                "--rpc",
                "ingest",
                "--concurrency",
                "2",
                "--batch",
                "50",
                "--threads",
                threads,
                "--no-setup",
            ],
        );
        assert_clean_run(&ingest[0], "ingest");
    }
    // With --trace-dir, every call counted is in the trace of its op, in the order they
    // ended, inside the measured second.
    let traces = tempfile::tempdir()?;
    let dir = traces.path().to_str().unwrap();
    let args = ["--rpc", "reserve-commit", "--concurrency", "4", "--compare"];
    let reports = loadgen(&server, &[&args[..], &["--trace-dir", dir]].concat());
    for report in &reports[..2] {
        let rpc = report["rpc"].as_str().unwrap();
        let text = std::fs::read_to_string(traces.path().join(format!("{rpc}.trace")))?;
        let calls: Vec<(u64, u64)> = text
            .lines()
            .map(|l| {
                let (ended, latency) = l.split_once(' ').unwrap();
                (ended.parse().unwrap(), latency.parse().unwrap())
            })
            .collect();
        assert_eq!(calls.len() as u64, report["ops"].as_u64().unwrap(), "{rpc}");
        assert!(
            calls.windows(2).all(|w| w[0].0 <= w[1].0),
            "{rpc}: not in order"
        );
        assert!(
            calls
                .iter()
                .all(|&(ended, latency)| ended < 1_000_000 && latency >= 1)
        );
        // The histogram keeps 3 significant digits: its max is the slowest call's bucket.
        let slowest = calls.iter().map(|c| c.1).max().unwrap();
        let max = report["latency_us_max"].as_u64().unwrap();
        assert!(
            slowest <= max && max - slowest <= max / 500,
            "{rpc}: {slowest} vs {max}"
        );
    }

    // A bad flag is refused with a message naming it.
    let refused = Command::new(env!("CARGO_BIN_EXE_tollgate-loadgen"))
        .args(["--threads", "1000"])
        .output()?;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--threads"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    Ok(())
}
