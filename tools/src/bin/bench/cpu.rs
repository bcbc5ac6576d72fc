//! CPU time per operation, of the database server and of the process doing the work. When
//! every core is busy, this, not the time a lock is held, is what bounds throughput.

use std::process::Command;

/// Microseconds of CPU per operation; `None` where the process could not be read (a
/// database on another machine).
#[derive(Debug, Clone, Copy, Default)]
pub struct PerOp {
    pub database: Option<f64>,
    pub worker: Option<f64>,
}

/// CPU used by the database server and by `worker` from [`Meter::start`] on.
pub struct Meter {
    database: Option<u32>,
    worker: u32,
    start: (Option<u64>, Option<u64>),
}

impl Meter {
    pub fn start(worker: u32) -> Self {
        let database = database_pid();
        Self {
            database,
            worker,
            start: (database.and_then(ticks), thread_ns(worker)),
        }
    }

    pub fn per_op(&self, ops: f64) -> PerOp {
        let database = self
            .database
            .and_then(ticks)
            .zip(self.start.0)
            .and_then(|(now, start)| now.checked_sub(start))
            .map(|used| used as f64 / ticks_per_second() * 1e6 / ops);
        let worker = thread_ns(self.worker)
            .zip(self.start.1)
            .and_then(|(now, start)| now.checked_sub(start))
            .map(|used| used as f64 / 1e3 / ops);
        PerOp { database, worker }
    }
}

/// The local MariaDB or MySQL server, if it runs here.
fn database_pid() -> Option<u32> {
    ["mariadbd", "mysqld"].iter().find_map(|name| {
        // The longest-running one: a machine with several servers runs the shared one first.
        let out = Command::new("pgrep")
            .args(["-o", "-x", name])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    })
}

/// CPU time of the threads of a process, in nanoseconds (the first field of each
/// `/proc/<pid>/task/<tid>/schedstat`): a request of a few hundred microseconds is measured
/// exactly, where `stat`'s clock ticks are 10 ms apart. The worker's threads (the tokio
/// runtime's) live as long as it does.
fn thread_ns(pid: u32) -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// User + system time of a process, in clock ticks (`/proc/<pid>/stat` fields 14 and 15).
fn ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it are plain numbers.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}
