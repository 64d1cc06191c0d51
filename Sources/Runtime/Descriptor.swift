import CSystem

/// One descriptor the runtime owns: a socket, a pipe end, a pidfd, an
/// eventfd, a signalfd. It is what task queues wait on.
///
/// Closing takes the number first (`fd` becomes -1), so an object that has
/// closed never touches a number the kernel may already have handed out
/// again; and the queues that have the number registered forget it before
/// that, waking the tasks that wait on it.
public class Descriptor {
    public private(set) var fd: CInt
    /// The queues that have this descriptor registered: the first in a
    /// field of its own, any others (one descriptor watched by two queues
    /// at once) in an array. Most descriptors are watched by one queue, and
    /// an array of one cost each of them a 48-byte allocation: 96 bytes of
    /// every idle connection pair.
    private var firstQueue: TaskQueue?
    private var otherQueues: [TaskQueue] = []

    public init(_ fd: CInt) { self.fd = fd }

    /// A descriptor dropped without `close` still leaves its queues first.
    deinit { if fd >= 0 { _ = Sys.close(take()) } }

    /// Closed, or given up (`take`): the number is -1.
    public var isClosed: Bool { fd < 0 }

    /// Gives up the number without closing it (spawn hands it to a child);
    /// waiting tasks wake as for a close.
    public func take() -> CInt {
        let old = fd
        guard old >= 0 else { return -1 }
        forEachQueue { $0.forget(old, owner: self) }
        firstQueue = nil
        otherQueues.removeAll()
        fd = -1
        return old
    }

    /// Closes the descriptor; false if it was closed already.
    /// The corresponding C function is `close`.
    @discardableResult
    public func closeDescriptor() throws(Failure) -> Bool {
        guard !isClosed else { return false }
        try Sys.close(take()).get()
        return true
    }

    /// Wakes the tasks every queue has waiting to read this descriptor,
    /// leaving it registered (see `Process.drainSignalPipe`).
    func wakeReaders() {
        dropClosedQueues()
        forEachQueue { $0.wakeReaders(fd) }
    }

    /// `queue` has registered this descriptor (once: its registration
    /// then names this object as its owner). Closed queues leave the list
    /// here, so a long-lived socket does not keep every short-lived queue
    /// that once waited on it.
    func attach(_ queue: TaskQueue) {
        dropClosedQueues()
        if firstQueue == nil { firstQueue = queue } else { otherQueues.append(queue) }
    }

    private func dropClosedQueues() {
        if let queue = firstQueue, queue.isClosed { firstQueue = nil }
        if !otherQueues.isEmpty {
            otherQueues.removeAll { $0.isClosed }
            if firstQueue == nil, !otherQueues.isEmpty { firstQueue = otherQueues.removeFirst() }
        }
    }

    private func forEachQueue(_ body: (TaskQueue) -> Void) {
        if let firstQueue { body(firstQueue) }
        for queue in otherQueues { body(queue) }
    }

    /// Reads at most `buffer.count` bytes; 0 means end of stream.
    /// The corresponding C function is `read`.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(Failure) -> Int {
        guard !isClosed else { throw .closed("descriptor") }
        return try Sys.read(fd, buffer.baseAddress!, buffer.count).get()
    }

    /// Whether `fd`'s open file is in blocking mode (O_NONBLOCK clear): a
    /// file XPIO made non-blocking may have been made blocking again by
    /// another owner of it. False when it cannot be told.
    /// The corresponding C function is `fcntl`.
    static func isBlocking(_ fd: CInt) -> Bool {
        guard case .success(let flags) = Sys.fcntl(fd, F_GETFL, 0) else { return false }
        return flags & O_NONBLOCK == 0
    }

    /// Sets or clears O_NONBLOCK on the open file description (shared by
    /// every process that has it); true when that changed it.
    /// The corresponding C function is `fcntl`.
    @discardableResult
    static func setBlocking(_ fd: CInt, _ blocking: Bool) throws(Failure) -> Bool {
        let flags = try Sys.fcntl(fd, F_GETFL, 0).get()
        let wanted = blocking ? flags & ~O_NONBLOCK : flags | O_NONBLOCK
        if wanted == flags { return false }
        _ = try Sys.fcntl(fd, F_SETFL, wanted).get()
        return true
    }

    /// /dev/null for reading and writing, close-on-exec (spawn's `"null"`).
    /// The corresponding C function is `open`.
    public static func openNull() throws(Failure) -> Descriptor {
        let path: StaticString = "/dev/null"
        return Descriptor(try Sys.open(UnsafeRawPointer(path.utf8Start).assumingMemoryBound(to: CChar.self), O_RDWR).get())
    }

}

/// What a task waits for: a descriptor and the readiness that means "try
/// again". Not always the direction of the call: a `connect` to a name
/// waits for the resolver's completion to become readable.
///
/// The descriptor is not retained: it is one its object keeps (the socket
/// itself, a process's exit watch, a lookup's completion), and the glue
/// hands it to the queue as a plain pointer while Lua holds that object
/// (the queue's waiters keep it until the task is returned). A counted
/// reference here cost every when_ a retain and a release.
public struct WaitTarget {
    public unowned(unsafe) let descriptor: Descriptor
    public let readiness: Readiness

    public init(_ descriptor: Descriptor, _ readiness: Readiness) {
        self.descriptor = descriptor
        self.readiness = readiness
    }
}
