//! What a pull shows while it works, as docker pull does: on a terminal, one line per layer
//! with its state (Waiting, Downloading with bytes and rate, Verifying, Download complete, Pull
//! complete), redrawn in place (indicatif); elsewhere one line per layer event; nothing with -q.
//! All of it on stderr: stdout is the image ID's.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    quiet: bool,
    /// Some on a terminal.
    multi: Option<MultiProgress>,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        // A terminal that can redraw: with TERM unset or dumb, indicatif draws nothing, so such a
        // terminal gets the event lines a pipe gets.
        let dumb = std::env::var("TERM").map_or(true, |t| t.is_empty() || t == "dumb");
        let terminal = rustix::termios::isatty(rustix::stdio::stderr()) && !dumb;
        let multi =
            (!quiet && terminal).then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Progress { quiet, multi }
    }

    /// A line of its own (printed above the bars on a terminal).
    pub fn say(&self, line: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(line);
            }
            None if !self.quiet => eprintln!("{line}"),
            None => {}
        }
    }

    /// A layer to download: `short` names it, `size` is its blob's.
    pub fn layer(&self, short: &str, size: u64) -> Layer {
        let bar = self.multi.as_ref().map(|m| {
            let bar = m.add(ProgressBar::new(size));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix}: {msg:<18} {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec}",
                )
                .expect("the template is valid"),
            );
            bar.set_prefix(short.to_string());
            bar.set_message("Waiting");
            bar
        });
        Layer { bar, short: short.to_string(), size, quiet: self.quiet }
    }
}

/// One layer's line.
pub struct Layer {
    bar: Option<ProgressBar>,
    short: String,
    size: u64,
    quiet: bool,
}

impl Layer {
    pub fn downloading(&self) {
        match &self.bar {
            Some(b) => b.set_message("Downloading"),
            None if !self.quiet => eprintln!("{}: downloading {} bytes", self.short, self.size),
            None => {}
        }
    }

    pub fn bytes(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// Back to where a resumed download starts.
    pub fn at(&self, position: u64) {
        if let Some(b) = &self.bar {
            b.set_position(position);
        }
    }

    pub fn verifying(&self) {
        if let Some(b) = &self.bar {
            b.set_message("Verifying");
        }
    }

    pub fn done(&self) {
        match &self.bar {
            Some(b) => b.finish_with_message("Download complete"),
            None if !self.quiet => eprintln!("{}: done", self.short),
            None => {}
        }
    }

    pub fn failed(&self) {
        if let Some(b) = &self.bar {
            b.abandon_with_message("Failed");
        }
    }
}
