//! `rcfops logs`: the agent's JSON-lines log, filtered, in human form or raw, optionally followed.

use std::io::{BufRead, Seek, Write};
use std::time::Duration;

use anyhow::{bail, Result};

use super::*;

/// `--since`: an RFC 3339 time or an age such as `90s`, `10m`, `2h`, `1d`; as a unix time.
pub fn parse_since(text: &str, now: f64) -> Result<f64> {
    let t = text.trim();
    if let Ok(at) = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339) {
        return Ok(at.unix_timestamp_nanos() as f64 / 1e9);
    }
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let scale = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => 0.0,
    };
    match num.parse::<u64>() {
        Ok(n) if scale > 0.0 => Ok(now - n as f64 * scale),
        _ => bail!(
            "--since {text:?}: use an RFC 3339 time (2026-11-25T04:56:00Z) or an age such as 90s, 10m, 2h or 1d"
        ),
    }
}

/// Which log lines `rcfops logs` prints.
struct LogFilter {
    run: Option<i64>,
    since: Option<f64>,
}

impl LogFilter {
    fn keep(&self, v: &serde_json::Value) -> bool {
        if let Some(n) = self.run {
            if v["span"]["run"].as_i64() != Some(n) {
                return false;
            }
        }
        if let Some(since) = self.since {
            let at = v["timestamp"].as_str().and_then(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            });
            if at.is_some_and(|at| (at.unix_timestamp_nanos() as f64 / 1e9) < since) {
                return false;
            }
        }
        true
    }
}

/// The human form of one JSON log line: time, level, message, then every field the JSON
/// line has (step timings, metrics, versions, ...) as `key=value`.
pub fn human_log_line(v: &serde_json::Value) -> String {
    let mut out = format!(
        "{} {:>5} {}",
        v["timestamp"].as_str().unwrap_or(""),
        v["level"].as_str().unwrap_or(""),
        v["message"].as_str().unwrap_or("")
    );
    if let Some(r) = v["span"]["run"].as_i64() {
        out.push_str(&format!(
            " run={r} commit={}",
            v["span"]["commit"].as_str().unwrap_or("")
        ));
    }
    if let Some(fields) = v.as_object() {
        for (k, val) in fields {
            if matches!(
                k.as_str(),
                "timestamp" | "level" | "message" | "span" | "target"
            ) {
                continue;
            }
            match val {
                serde_json::Value::String(s) => out.push_str(&format!(" {k}={s}")),
                other => out.push_str(&format!(" {k}={other}")),
            }
        }
    }
    out
}

fn format_log_line(line: &str, filter: &LogFilter, json: bool) -> Option<String> {
    let v = serde_json::from_str::<serde_json::Value>(line).ok()?;
    if !filter.keep(&v) {
        return None;
    }
    Some(if json {
        line.to_string()
    } else {
        human_log_line(&v)
    })
}

pub(super) fn cmd_logs(cfg: &Config, a: LogsArgs) -> Result<i32> {
    let filter = LogFilter {
        run: a.run,
        since: a
            .since
            .as_deref()
            .map(|t| parse_since(t, crate::registry::now_ts()))
            .transpose()?,
    };
    // Like `tail -f`: following starts with the last 10 lines unless told otherwise.
    let last = a.lines.or(if a.follow { Some(10) } else { None });
    let path = cfg.log_path();
    let mut f = loop {
        match std::fs::File::open(&path) {
            Ok(f) => break f,
            Err(_) if a.follow => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => bail!(
                "cannot open the log {}: {e}; has the agent run yet?",
                path.display()
            ),
        }
    };
    let mut reader = std::io::BufReader::new(&mut f);
    let mut line = String::new();
    let stdout = std::io::stdout();
    // What is in the file now: filtered, and cut to the last N lines when asked.
    let mut backlog = std::collections::VecDeque::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 || !line.ends_with('\n') {
            let pos = reader.stream_position()? - n as u64;
            reader.seek(std::io::SeekFrom::Start(pos))?;
            break;
        }
        if let Some(out) = format_log_line(line.trim_end(), &filter, a.json) {
            backlog.push_back(out);
            if last.is_some_and(|n| backlog.len() > n) {
                backlog.pop_front();
            }
        }
    }
    {
        let mut w = stdout.lock();
        for l in backlog {
            writeln!(w, "{l}")?;
        }
        w.flush()?;
    }
    if !a.follow {
        return Ok(0);
    }
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 {
            stdout.lock().flush()?;
            std::thread::sleep(Duration::from_millis(200));
            // Start again from the top if the file was truncated or replaced.
            let pos = reader.stream_position()?;
            if std::fs::metadata(&path)
                .map(|m| m.len() < pos)
                .unwrap_or(false)
            {
                reader.seek(std::io::SeekFrom::Start(0))?;
            }
            continue;
        }
        if !line.ends_with('\n') {
            // A partial line: wait for the rest.
            let pos = reader.stream_position()? - n as u64;
            std::thread::sleep(Duration::from_millis(50));
            reader.seek(std::io::SeekFrom::Start(pos))?;
            continue;
        }
        if let Some(out) = format_log_line(line.trim_end(), &filter, a.json) {
            println!("{out}");
        }
    }
}
