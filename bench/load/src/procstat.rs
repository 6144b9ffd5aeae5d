//! CPU time and resident memory of server processes, from `/proc/<pid>/stat` and
//! `/proc/<pid>/status` (Linux).

use anyhow::Context;

/// Clock ticks per second of `utime`/`stime` (`getconf CLK_TCK`; 100 on Linux).
const TICKS_PER_S: u64 = 100;

/// One reading of a set of processes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// User + system CPU time, in milliseconds, summed over the processes.
    pub cpu_ms: u64,
    /// Resident set size, in KiB, summed over the processes.
    pub rss_kib: u64,
}

/// Reads CPU and RSS of `pids` (summed).
pub fn sample(pids: &[u32]) -> anyhow::Result<Sample> {
    let mut total = Sample::default();
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("read /proc/{pid}/stat"))?;
        // Fields after the command name (which may hold spaces) start at field 3.
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks: u64 = fields
            .get(11..13)
            .context("short /proc stat")?
            .iter()
            .map(|f| f.parse::<u64>().unwrap_or(0))
            .sum();
        total.cpu_ms += ticks * 1000 / TICKS_PER_S;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        total.rss_kib += status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(total)
}
