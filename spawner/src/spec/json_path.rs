//! Where in `config.json` a serde error is. oci-spec's types say what is wrong ("unknown variant
//! `RLIMIT_FOO`", "missing field `cwd`") and serde_json says at which line and column it noticed,
//! but neither says in which field; this walks the text up to that point and names the field the
//! way the spec does (`process.rlimits[0].type`).
//!
//! serde_json reports a value's error just after the value (after the closing quote of a string,
//! the last digit of a number, the `}` of an object missing a field), so the field is the last
//! one whose value had begun there and was not yet followed by a `,`.

/// One open object or array on the way to the position.
enum Frame {
    /// `key`: the member whose value is being read, if its key has been read.
    Object { key: Option<String> },
    /// `index`: the element being read; `started`: whether it has begun.
    Array { index: usize, started: bool },
}

/// The field path at `line`:`column` (1-based, as serde_json counts: the column is the number of
/// bytes read on that line), or None at the top level.
pub(super) fn field_at(text: &[u8], line: usize, column: usize) -> Option<String> {
    let end = offset(text, line, column);
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < end {
        match text[i] {
            b'"' => {
                let close = string_end(text, i);
                match stack.last_mut() {
                    Some(Frame::Object { key: key @ None }) => {
                        // The key as JSON decodes it (escapes included); a broken one stops here.
                        *key = Some(serde_json::from_slice(&text[i..=close]).ok()?);
                    }
                    Some(Frame::Array { started, .. }) => *started = true,
                    _ => {}
                }
                i = close;
            }
            b'{' | b'[' => {
                begin_value(&mut stack);
                let frame = match text[i] {
                    b'{' => Frame::Object { key: None },
                    _ => Frame::Array { index: 0, started: false },
                };
                stack.push(frame);
            }
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { key }) => *key = None,
                Some(Frame::Array { index, started }) => (*index, *started) = (*index + 1, false),
                None => {}
            },
            b':' | b' ' | b'\t' | b'\n' | b'\r' => {}
            _ => begin_value(&mut stack),
        }
        i += 1;
    }
    render(&stack)
}

/// The byte offset just past `column` bytes of line `line`.
fn offset(text: &[u8], line: usize, column: usize) -> usize {
    let line_start = match line {
        0 | 1 => 0,
        n => {
            text.iter().enumerate().filter(|(_, &b)| b == b'\n').nth(n - 2).map_or(text.len(), |(i, _)| i + 1)
        }
    };
    line_start.saturating_add(column).min(text.len())
}

/// The index of the quote closing the string that opens at `open` (or the last byte, if none does).
fn string_end(text: &[u8], open: usize) -> usize {
    let mut j = open + 1;
    while j < text.len() {
        match text[j] {
            b'\\' => j += 2,
            b'"' => return j,
            _ => j += 1,
        }
    }
    text.len().saturating_sub(1)
}

/// A scalar, object or array begins inside the innermost frame.
fn begin_value(stack: &mut [Frame]) {
    if let Some(Frame::Array { started, .. }) = stack.last_mut() {
        *started = true;
    }
}

/// `process.rlimits[0].type`; a key that is not a plain name in brackets: `linux.sysctl["net.ipv4.ip_forward"]`.
fn render(stack: &[Frame]) -> Option<String> {
    let mut path = String::new();
    for frame in stack {
        match frame {
            Frame::Object { key: Some(key) } => {
                let plain = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                match (plain, path.is_empty()) {
                    (true, true) => path.push_str(key),
                    (true, false) => {
                        path.push('.');
                        path.push_str(key);
                    }
                    (false, _) => path.push_str(&format!("[{key:?}]")),
                }
            }
            Frame::Array { index, started: true } => path.push_str(&format!("[{index}]")),
            Frame::Object { key: None } | Frame::Array { started: false, .. } => break,
        }
    }
    (!path.is_empty()).then_some(path)
}
