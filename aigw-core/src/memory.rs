//! The allocator's own figures, for an admin listener's `/memory` (as Envoy's admin
//! `/memory` reports tcmalloc's).
//!
//! RSS alone cannot tell memory in use from memory an allocator keeps for reuse after
//! a burst; `allocated` against `resident` can. The binaries allocate with jemalloc
//! and read its statistics through [`jemalloc`] (feature `jemalloc-stats`); the
//! library never sets a global allocator, so a binary that does not use jemalloc must
//! not report these.

/// The allocator's figures, in bytes (jemalloc's `stats.*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct MemoryStats {
    /// Bytes in live allocations.
    pub allocated: u64,
    /// Bytes in the pages that hold live allocations (allocated plus the free space of
    /// partly used pages).
    pub active: u64,
    /// Bytes of the allocator's own bookkeeping.
    pub metadata: u64,
    /// Bytes of physically resident pages the allocator holds (active, metadata and
    /// freed pages not yet returned to the system).
    pub resident: u64,
    /// Bytes of address space mapped for active pages.
    pub mapped: u64,
    /// Bytes of address space kept mapped but returned to the system.
    pub retained: u64,
}

/// Reads the allocator's figures now; `None` if it cannot.
pub type MemoryProbe = fn() -> Option<MemoryStats>;

/// jemalloc's figures now, for a binary whose global allocator is jemalloc.
#[cfg(feature = "jemalloc-stats")]
pub fn jemalloc() -> Option<MemoryStats> {
    use tikv_jemalloc_ctl::{epoch, stats};
    // The statistics are a snapshot taken when the epoch advances.
    epoch::advance().ok()?;
    Some(MemoryStats {
        allocated: stats::allocated::read().ok()? as u64,
        active: stats::active::read().ok()? as u64,
        metadata: stats::metadata::read().ok()? as u64,
        resident: stats::resident::read().ok()? as u64,
        mapped: stats::mapped::read().ok()? as u64,
        retained: stats::retained::read().ok()? as u64,
    })
}
