//! What hcctl shows a person: a progress bar on a terminal, numbers formatted for reading (the
//! log itself is [`crate::logging`]). Results go to stdout elsewhere; nothing here ever prints patient values.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A rows counter with throughput, drawn only when stderr is a terminal.
pub fn row_progress(verb: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(8));
    let style = ProgressStyle::with_template(&format!(
        "{{spinner}} {verb} {{human_pos}} rows  {{per_sec}}  {{elapsed}}"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(125));
    bar
}

/// A bar over a known number of rows, with throughput and time left; drawn only on a terminal.
pub fn row_bar(verb: &str, total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(8));
    let style = ProgressStyle::with_template(&format!(
        "{{bar:30}} {verb} {{human_pos}}/{{human_len}} rows  {{per_sec}}  eta {{eta}}"
    ))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(125));
    bar
}

/// A byte count as a person writes it: "8 GiB", "1.5 MiB", "512 bytes".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = None;
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = Some(u);
    }
    match unit {
        None => format!("{n} bytes"),
        Some(u) if value.fract() == 0.0 => format!("{value} {u}"),
        Some(u) => format!("{value:.1} {u}"),
    }
}

/// 1234567 → "1,234,567".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// "5s", "500ms", "1m 30s": a timeout as the user would write it.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) && ms < 60_000 {
        format!("{}s", ms / 1000)
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else if ms >= 3_600_000 {
        format!("{}h {}m", ms / 3_600_000, ms % 3_600_000 / 60_000)
    } else {
        format!("{}m {}s", ms / 60_000, ms % 60_000 / 1000)
    }
}

/// What an interrupted command says instead of the general "running it again is safe" (set by
/// `hcctl run` once its tasks have started: they go on without it).
static INTERRUPT_NOTE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

pub fn set_interrupt_note(note: String) {
    if let Ok(mut n) = INTERRUPT_NOTE.lock() {
        *n = Some(note);
    }
}

pub fn interrupt_note() -> Option<String> {
    INTERRUPT_NOTE.lock().ok().and_then(|n| n.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_read_like_sizes() {
        assert_eq!(bytes(512), "512 bytes");
        assert_eq!(bytes(8 << 30), "8 GiB");
        assert_eq!(bytes(1536 << 10), "1.5 MiB");
    }

    #[test]
    fn formats_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(55_500), "55,500");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
