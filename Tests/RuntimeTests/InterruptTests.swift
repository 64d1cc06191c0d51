import CSystem
import Testing
@testable import Runtime

/// Every row of the EINTR table in `Sys.swift`, with faults injected into
/// the system call wrappers (debug builds only). `Sys.faults` is global:
/// `make test` runs `swift test --no-parallel`.
@Suite(.serialized) struct InterruptTests {
    init() { Sys.faults = [:] }

    @Test func readAndWriteAreRetried() throws {
        // Sockets go through send and recv (MSG_DONTWAIT), pipes through write and read.
        let (a, b) = try Socket.pair()
        Sys.faults["send"] = (EINTR, 2)
        let byte: UInt8 = 42
        let written = try withUnsafeBytes(of: byte) { try b.write($0) }
        #expect(written == 1)
        Sys.faults["recv"] = (EINTR, 3)
        #expect(try a.read(size: 16)?.count == 1)
        #expect(Sys.faults["recv"]!.count == 0)
        let (r, w) = try Socket.pipe()
        Sys.faults["write"] = (EINTR, 2)
        #expect(try withUnsafeBytes(of: byte) { try w.write($0) } == 1)
        Sys.faults["read"] = (EINTR, 3)
        #expect(try r.read(size: 16)?.count == 1)
        #expect(Sys.faults["read"]!.count == 0)
    }

    @Test func acceptIsRetried() throws {
        let listener = try Socket.open(type: .TCP)
        try listener.bind(.address(Address(ipv4: 0x7F00_0001, port: 0)))
        try listener.listen(backlog: 4)
        let client = try Socket.open(type: .TCP)
        do { try client.connect(.address(try listener.localAddress())) } catch .retry {}
        // The loopback handshake finished: the listener is readable (a bound
        // for a loaded machine, not a guess at how long it takes).
        var ready = pollfd(fd: try listener.descriptor(), events: Int16(POLLIN), revents: 0)
        #expect(poll(&ready, 1, 10_000) == 1)
        let before = Sys.counts["accept4", default: 0]
        Sys.faults["accept4"] = (EINTR, 1)
        _ = try listener.accept()
        #expect(Sys.faults["accept4"]!.count == 0)                  // the interruption happened
        #expect(Sys.counts["accept4", default: 0] == before + 2)    // and the call was made again
    }

    @Test func closeCountsEINTRAsClosed() throws {
        let socket = try Socket.open(type: .TCP)
        let before = Sys.counts["close", default: 0]
        Sys.faults["close"] = (EINTR, 1)
        try socket.close()
        #expect(Sys.faults["close"]!.count == 0)                    // the interruption happened
        #expect(Sys.counts["close", default: 0] == before + 1)      // and close was not called again
        #expect(socket.isClosed)
    }

    @Test func connectIsNotReissuedAndReportsRetry() throws {
        let socket = try Socket.open(type: .TCP)
        Sys.faults["connect"] = (EINTR, 1)
        do {
            try socket.connect(.address(Address(ipv4: 0x7F00_0001, port: 9)))
            Issue.record("an interrupted connect must not report success")
        } catch .retry {
            // EINTR: the connection is not re-issued and the caller waits for writability.
        } catch {
            Issue.record("an interrupted connect must be a retry, got \(error)")
        }
    }

    @Test(arguments: [false, true])
    func waitResumesWithTheRemainingTimeout(poll: Bool) throws {
        let queue = try TaskQueueTests().makeQueue(poll: poll)
        let (a, b) = try Socket.pair()
        try queue.schedule(on: a, .read)
        Sys.faults[poll ? "poll" : "epoll_wait"] = (EINTR, 3)
        let start = Clock.now()
        #expect(try queue.wait(timeout: 0.05))
        #expect(queue.ready.isEmpty)
        queue.markDelivered()
        #expect(Clock.now() - start >= 0.045)
        withExtendedLifetime(b) {}
    }

    @Test func otherErrorsAreReported() throws {
        let (a, _) = try Socket.pair()
        Sys.faults["recv"] = (EIO, 1)
        #expect(throws: Failure.self) { _ = try a.read(size: 16) }
    }

    @Test func fcntlAndWaitpidAreRetried() throws {
        Sys.faults["fcntl"] = (EINTR, 2)
        _ = try Socket.duplicate(fd: 1)
        #expect(Sys.faults["fcntl"]!.count == 0)
        var status: CInt = 0
        Sys.faults["waitpid"] = (EINTR, 2)
        #expect(throws: Failure.self) { _ = try Sys.waitpid(getpid(), &status).get() }   // ECHILD, after the retries
        #expect(Sys.faults["waitpid"]!.count == 0)
    }

    /// The calls that cannot be interrupted still go through their wrapper:
    /// the fault hook sees them, and a forced error comes back as a failure.
    @Test(arguments: ["socket", "socketpair", "pipe2", "eventfd", "epoll_create1"])
    func uninterruptibleCallsReportTheirErrors(_ name: String) {
        Sys.faults[name] = (EMFILE, 1)
        let outcome: Result<Void, Failure>
        switch name {
        case "socket": outcome = Result { () throws(Failure) in _ = try Socket.open(type: .TCP) }
        case "socketpair": outcome = Result { () throws(Failure) in _ = try Socket.pair() }
        case "pipe2": outcome = Result { () throws(Failure) in _ = try Socket.pipe() }
        case "eventfd": outcome = Result { () throws(Failure) in _ = try TaskQueue().embeddingDescriptor() }
        default: outcome = Result { () throws(Failure) in _ = try TaskQueue() }
        }
        guard case .failure(.system(EMFILE)) = outcome else { Issue.record("\(name): \(outcome)"); return }
    }

    /// Every system call a socket's life makes is one of Sys's wrappers.
    @Test func socketCallsGoThroughSys() throws {
        let before = Sys.counts
        let listener = try Socket.open(type: .TCP)
        try listener.setOption(.reuseAddress, .flag(true))
        _ = try listener.option(.reuseAddress)
        try listener.bind(.address(Address(ipv4: 0x7F00_0001, port: 0)))
        try listener.listen(backlog: 4)
        _ = try listener.localAddress()
        let queue = try TaskQueue()
        try queue.schedule(on: listener, .read)
        _ = try queue.wait(timeout: 0)
        queue.markDelivered()
        try listener.close()
        for name in ["socket", "setsockopt", "getsockopt", "bind", "listen", "getsockname", "epoll_create1", "epoll_ctl",
                     "epoll_wait", "close"] {
            #expect(Sys.counts[name, default: 0] > before[name, default: 0], "\(name) did not go through Sys")
        }
    }
}
