//! This process's peak resident memory (VmHWM), and resetting it between phases so that each
//! phase's peak is its own (Linux: writing 5 to /proc/self/clear_refs resets VmHWM).

/// The peak since start or since the last reset, in MB (10⁶ bytes); None where /proc is missing.
pub(super) fn peak_mb() -> Option<f64> {
    status_mb("VmHWM:")
}

fn status_mb(field: &str) -> Option<f64> {
    field_mb(&std::fs::read_to_string("/proc/self/status").ok()?, field)
}

/// A memory field of a `/proc/<pid>/status` text, in MB.
pub(super) fn field_mb(status: &str, field: &str) -> Option<f64> {
    crate::memory::status_field_bytes(status, field).map(|bytes| bytes as f64 / 1e6)
}

/// Start measuring the peak afresh from the present size; false if the kernel refused.
pub(super) fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}
