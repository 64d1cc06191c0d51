import CSystem
import Testing
@testable import Runtime

/// Every row of the EINTR table in `Sys.swift`, with faults injected into
/// the system call wrappers (debug builds only). `Sys.faults` is global:
/// `make test` runs `swift test --no-parallel`.
@Suite(.serialized) struct InterruptTests {
    init() { Sys.faults = [:] }

    @Test func readAndWriteAreRetried() throws {
        let (a, b) = try Socket.pair()
        Sys.faults["write"] = (EINTR, 2)
        let byte: UInt8 = 42
        let written = try withUnsafeBytes(of: byte) { try b.write($0) }
        #expect(written == 1)
        Sys.faults["read"] = (EINTR, 3)
        var buffer: (UInt64, UInt64) = (0, 0)
        let count = try withUnsafeMutableBytes(of: &buffer) { try a.read(into: $0) }
        #expect(count == 1)
        #expect(Sys.faults["read"]!.count == 0)
    }

    @Test func acceptIsRetried() throws {
        let listener = try Socket.open(stream: true)
        try listener.bind(Address(host: 0x7F00_0001, port: 0))
        try listener.listen(backlog: 4)
        let client = try Socket.open(stream: true)
        do { try client.connect(try listener.localAddress()) } catch .retry {}
        usleep(20_000)   // let the loopback handshake finish
        Sys.faults["accept4"] = (EINTR, 1)
        _ = try listener.accept()
    }

    @Test func closeCountsEINTRAsClosed() throws {
        let socket = try Socket.open(stream: true)
        Sys.faults["close"] = (EINTR, 1)
        try socket.close()
        #expect(!socket.isOpen)
    }

    @Test func connectIsNotReissuedAndReportsRetry() throws {
        let socket = try Socket.open(stream: true)
        Sys.faults["connect"] = (EINTR, 1)
        do {
            try socket.connect(Address(host: 0x7F00_0001, port: 9))
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
        _ = try queue.schedule(a, .read)
        Sys.faults[poll ? "poll" : "epoll_wait"] = (EINTR, 3)
        let start = Clock.now()
        #expect(try queue.wait(timeout: 0.05))
        #expect(queue.ready.isEmpty)
        #expect(Clock.now() - start >= 0.045)
        withExtendedLifetime(b) {}
    }

    @Test func otherErrorsAreReported() throws {
        let (a, _) = try Socket.pair()
        Sys.faults["read"] = (EIO, 1)
        var buffer: UInt64 = 0
        #expect(throws: Failure.self) { _ = try withUnsafeMutableBytes(of: &buffer) { try a.read(into: $0) } }
    }
}
