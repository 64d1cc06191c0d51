import CSystem

/// Why an operation did not succeed. One type for the whole runtime, so the
/// Lua edge turns every failure into results in one place (`Call.fail`).
/// It holds only what the runtime finds: argument errors are the Lua
/// edge's (`BindingFailure`, Sources/XPIO).
///
/// Messages are static: strings are made only at the Lua edge, from an
/// errno (`strerror`) or from these texts.
public enum Failure: Error {
    /// A system call failed with this errno (never one of the would-block class).
    case system(CInt)
    /// The operation would block: EAGAIN, EWOULDBLOCK, EINPROGRESS, EALREADY, EINTR.
    case retry
    /// An error XPIO detects itself; the text starts with "xpio: ".
    case xpio(StaticString)
    /// A message made by the TLS engine (xpio/tls.so), NUL-terminated; it
    /// stays valid until the next call on the same connection, which the
    /// Lua edge is done with by then.
    case message(EngineText)
    /// getaddrinfo failed with this EAI_ code (its message is gai_strerror's).
    case resolution(CInt)
    /// The object (named by its kind, e.g. "socket") has been closed.
    case closed(StaticString)

    /// The one place where an errno becomes a failure: the would-block class
    /// is `retry`, everything else is `system`.
    public static func errno(_ code: CInt) -> Failure {
        switch code {
        case EAGAIN, EWOULDBLOCK, EINPROGRESS, EALREADY, EINTR: return .retry
        default: return .system(code)
        }
    }
}

/// A NUL-terminated message the TLS engine made (`Failure.message`). It is
/// read on the Lua thread that made it, before the next engine call.
public struct EngineText: @unchecked Sendable {
    public let text: UnsafePointer<CChar>
    public init(_ text: UnsafePointer<CChar>) { self.text = text }
}

/// What one try of a transfer that may take several (a write of a range,
/// `sendfile`, `splice`) moved, and how many bytes of what was asked are
/// still to move: the blocking form tries again until none are.
public struct Moved {
    public let count: Int
    public let remaining: Int64

    public init(count: Int, remaining: Int64) {
        self.count = count
        self.remaining = remaining
    }

    /// The same, for a write to `socket`: a TLS socket may hold its last
    /// record back (SecureChannel.write), and then one more try, of
    /// nothing, sends it: a blocking write returns only when every byte has
    /// left XPIO.
    public init(count: Int, remaining: Int64, to socket: borrowing Socket) {
        self.init(count: count, remaining: remaining <= 0 && socket.secure?.holdsUnsent == true ? 1 : remaining)
    }
}
