//! CPU time and memory of a process (the server under test, or the generator itself) from /proc.

/// Clock ticks per second of /proc's CPU counters (Linux's USER_HZ).
const TICKS_PER_SECOND: f64 = 100.0;

/// User + system CPU seconds of `pid` (all its threads) and of its children that have exited.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // Fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime, stime, cutime, cstime are fields 14-17 of the whole line: 11-14 after the name.
    (tick(11) + tick(12) + tick(13) + tick(14)) / TICKS_PER_SECOND
}

/// Resident memory of `pid` in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `pid` and every descendant (a PartyKit dev server runs workerd in child processes).
pub fn process_tree(pid: u32) -> Vec<u32> {
    let mut tree = vec![pid];
    let mut at = 0;
    while at < tree.len() {
        let parent = tree[at];
        let children =
            std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children")).unwrap_or_default();
        tree.extend(children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
        at += 1;
    }
    tree
}

/// CPU seconds of a whole process tree.
pub fn tree_cpu_seconds(pid: u32) -> f64 {
    process_tree(pid).into_iter().map(cpu_seconds).sum()
}

/// Resident memory of a whole process tree, in KiB.
pub fn tree_rss_kib(pid: u32) -> u64 {
    process_tree(pid).into_iter().map(rss_kib).sum()
}
