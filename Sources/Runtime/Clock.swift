import CSystem

/// The monotonic clock XPIO measures timeouts with.
public enum Clock {
    /// Seconds from an unspecified start, never going backwards.
    /// The corresponding C function is `clock_gettime(CLOCK_MONOTONIC)`.
    public static func now() -> Double {
        var time = timespec()
        Sys.monotonicNow(&time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }
}
