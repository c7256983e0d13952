//! `spawner top CONTAINER [ps OPTIONS]`: the container's processes as the host's `ps` shows them
//! (default `-ef`), the rows of processes in its cgroup kept, as Docker's `top` does.

use super::record::{Container, Status};
use crate::container::RunError;
use std::collections::HashSet;

/// The container's processes: those in its cgroup, else (no cgroup on record, or unreadable) those
/// in its PID namespace.
pub fn pids(c: &Container) -> Result<HashSet<i32>, RunError> {
    if let Some(location) = &c.state.cgroup {
        match crate::cgroup::Cgroup::reopen(location).and_then(|cg| cg.pids()) {
            Ok(pids) if !pids.is_empty() => return Ok(pids.into_iter().collect()),
            Ok(_) => {}
            Err(e) => log::info!("cgroup of {}: {e}; looking for its PID namespace", c.record.name),
        }
    }
    let ns = |pid: &str| std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let theirs = ns(&c.state.pid.to_string())
        .ok_or_else(|| RunError::msg(format!("container {} is not running", c.record.name)))?;
    let entries = std::fs::read_dir("/proc").map_err(|e| RunError::msg(format!("/proc: {e}")))?;
    Ok(entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|pid| ns(&pid.to_string()).as_ref() == Some(&theirs))
        .collect())
}

/// Docker refuses options that would name another column PID (`-o user=PID`): the PID column is
/// how rows are told apart.
fn check_ps_args(args: &[String]) -> Result<(), RunError> {
    for item in args.iter().flat_map(|a| a.split(',')) {
        if let Some((key, value)) = item.split_once('=') {
            if value.trim_start().starts_with("PID") && key != "pid" {
                return Err(RunError::msg(format!("specifying \"{key}={value}\" is not allowed")));
            }
        }
    }
    Ok(())
}

/// `ps`'s output cut to the rows of `pids`: titles, then one row of cells a process (a
/// command's spaces kept in its last cell). A thread row (`-m`: PID "-") follows its process.
pub fn parse_ps(output: &str, pids: &HashSet<i32>) -> Result<(Vec<String>, Vec<Vec<String>>), RunError> {
    let mut lines = output.lines();
    let titles: Vec<String> = lines.next().unwrap_or("").split_ascii_whitespace().map(String::from).collect();
    let at = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| RunError::msg("Couldn't find PID field in ps output"))?;
    let mut rows = Vec::new();
    let mut in_container = false;
    for line in lines.filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let Some(pid) = fields.get(at) else { continue };
        let keep = match *pid {
            "-" => in_container,
            pid => {
                let pid: i32 = pid.parse().map_err(|_| RunError::msg(format!("Unexpected pid '{pid}'")))?;
                in_container = pids.contains(&pid);
                in_container
            }
        };
        if keep {
            let last = (titles.len() - 1).min(fields.len());
            let mut row: Vec<String> = fields[..last].iter().map(|f| f.to_string()).collect();
            row.push(fields[last..].join(" "));
            rows.push(row);
        }
    }
    Ok((titles, rows))
}

/// What `top` prints, as Docker's client sets it.
pub fn top(c: &Container, ps_args: &[String]) -> Result<String, RunError> {
    if c.status() != Status::Running {
        return Err(RunError::msg(format!("container {} is not running", c.record.name)));
    }
    check_ps_args(ps_args)?;
    let default = ["-ef".to_string()];
    let args = if ps_args.is_empty() { &default[..] } else { ps_args };
    let pids = pids(c)?;
    let mut list: Vec<i32> = pids.iter().copied().collect();
    list.sort_unstable();
    let list: Vec<String> = list.iter().map(i32::to_string).collect();
    let ps = |extra: &[String]| std::process::Command::new("ps").args(args).args(extra).output();
    // `-q PIDS` makes ps read only those; some options (f) refuse it: then every process is read.
    let output = match ps(&["-q".into(), list.join(",")]) {
        Ok(out) if out.status.success() => out,
        _ => match ps(&[]) {
            Ok(out) if out.status.success() => out,
            Ok(out) => {
                let why = String::from_utf8_lossy(&out.stderr);
                return Err(RunError::msg(format!("ps {}: {}", args.join(" "), why.trim())));
            }
            Err(e) => return Err(RunError::msg(format!("ps: {e}"))),
        },
    };
    let (titles, rows) = parse_ps(&String::from_utf8_lossy(&output.stdout), &pids)?;
    let mut table = vec![titles];
    table.extend(rows);
    Ok(super::template::tabwrite(&table, 20, 3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_the_containers_processes_are_kept() {
        let output = "UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 10:00 ?        00:00:01 /sbin/init
root         700     650  0 10:01 ?        00:00:00 sleep 100
root         701     700  0 10:01 ?        00:00:00 sh -c  echo hi
";
        let pids: HashSet<i32> = [700, 701].into();
        let (titles, rows) = parse_ps(output, &pids).unwrap();
        assert_eq!(titles, ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][7], "sleep 100");
        assert_eq!(rows[1][7], "sh -c echo hi");
        let threads = "USER PID TID CMD\nroot 700 - sleep\nroot - 700 -\nroot 9 - other\nroot - 9 -\n";
        let (_, rows) = parse_ps(threads, &pids).unwrap();
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert!(parse_ps("USER CMD\nroot x\n", &pids).unwrap_err().to_string().contains("PID field"));
        assert!(check_ps_args(&["-o".into(), "pid,user=PID".into()]).is_err());
        assert!(check_ps_args(&["-o".into(), "pid=PID,user".into()]).is_ok());
    }
}
