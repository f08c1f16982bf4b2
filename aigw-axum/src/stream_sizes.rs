//! What one open stream holds by value, outside hyper: the sizes of the streamed
//! body's state, kept in check so a field added to it is a decision, not an accident.
//! (Heap blocks behind these — the boxed exchange, the translator, the delivered text —
//! are counted by `scripts/dhat-streams.sh`.)

use crate::stream::{Finisher, StreamBody};
use aigw_core::exchange::{Attempt, Exchange};
use std::mem::size_of;

#[test]
fn the_stream_state_stays_small() {
    let sizes = [
        ("Exchange (boxed)", size_of::<Exchange>()),
        ("Attempt", size_of::<Attempt>()),
        ("Finisher", size_of::<Finisher>()),
        ("StreamBody", size_of::<StreamBody>()),
        ("hyper::body::Incoming", size_of::<hyper::body::Incoming>()),
        ("UpstreamBody", size_of::<crate::upstream::UpstreamBody>()),
        ("http::HeaderMap", size_of::<http::HeaderMap>()),
    ];
    for (name, size) in sizes {
        eprintln!("{name}: {size} bytes");
    }
    // The boxed exchange fits jemalloc's 1,792-byte size class, the body's state (held
    // by value in the boxed response stream) its 768-byte one.
    assert!(size_of::<Exchange>() <= 1792, "{sizes:?}");
    assert!(size_of::<StreamBody>() <= 768, "{sizes:?}");
}
