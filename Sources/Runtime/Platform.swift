import CSystem

/// Which path the platform layer (Sources/CSystem/platform.c) was compiled
/// with: Linux's own facilities (epoll, pidfd, signalfd, eventfd, timerfd,
/// accept4, pipe2, flags at creation, abstract Unix names) or the POSIX
/// fallbacks, which a macOS or BSD build uses and `XPIO_PORTABLE=1` compiles
/// on Linux. Asked of C, so the two sides cannot disagree.
public enum Platform {
    /// True where Linux's facilities are compiled in.
    public static let linux = xpio_platform_linux() != 0

    /// What `xpio.platform()` answers: "linux", or "posix" for the fallbacks.
    public static var name: UnsafeRawBufferPointer {
        let text: StaticString = linux ? "linux" : "posix"
        return UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)
    }

    /// What a Linux-only feature answers in a build without it.
    public static var unsupported: Failure { .xpio("xpio: not supported on this system") }
}
