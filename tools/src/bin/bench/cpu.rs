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
            start: (database.and_then(ticks), process_ns(worker)),
        }
    }

    pub fn per_op(&self, ops: f64) -> PerOp {
        let database = self
            .database
            .and_then(ticks)
            .zip(self.start.0)
            .and_then(|(now, start)| now.checked_sub(start))
            .map(|used| used as f64 / ticks_per_second() * 1e6 / ops);
        let worker = process_ns(self.worker)
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

/// CPU time of a whole process, in nanoseconds, from its CPU-time clock: a request of a
/// few hundred microseconds is measured exactly, where `stat`'s clock ticks are 10 ms
/// apart. Threads that have exited still count: summing the live threads' `schedstat`
/// lost them (tokio's blocking threads end after ten idle seconds), and a run in which one
/// ended read less CPU at its end than at its start.
fn process_ns(pid: u32) -> Option<u64> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: both calls only write through the pointers given, which point to locals of
    // the types they expect.
    if unsafe { libc::clock_getcpuclockid(libc::pid_t::try_from(pid).ok()?, &mut clock) } != 0 {
        return None;
    }
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: as above.
    if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
        return None;
    }
    Some(u64::try_from(now.tv_sec).ok()? * 1_000_000_000 + u64::try_from(now.tv_nsec).ok()?)
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
