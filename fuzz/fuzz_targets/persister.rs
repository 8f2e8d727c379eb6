//! The persister protocol's parsers (`partyd::protocol::persister`) on arbitrary bytes: PUT
//! bodies, admin change bodies and websocket `s` frames.
//!
//! Checked:
//! - none of them panics;
//! - a frame `<prefix>s<payload>` means exactly what the same payload as a body means, with
//!   the default prefix and a custom one (the same changes, or the same refusal), and a frame
//!   without the prefix is never changes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use partyd::protocol::persister::{parse_changes, parse_content, parse_frame, IgnoredFrame};

fuzz_target!(|input: &[u8]| {
    let _ = parse_content(input);
    let changes = parse_changes(input);
    let Ok(text) = std::str::from_utf8(input) else {
        assert!(changes.is_err());
        return;
    };
    for prefix in ["", "tb:"] {
        let frame = format!("{prefix}s{text}");
        assert_eq!(&parse_frame(&frame, prefix), &changes, "{frame:?}");
        let _ = parse_frame(text, prefix);
    }
    if !text.starts_with("tb:") {
        assert_eq!(parse_frame(text, "tb:"), Err(IgnoredFrame::NoPrefix));
    }
});
