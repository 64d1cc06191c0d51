import CSystem
import Testing
@testable import Runtime

/// The runtime task queue on both backends, with real descriptors.
@Suite(.serialized) struct TaskQueueTests {
    func makeQueue(poll: Bool) throws -> TaskQueue {
        TaskQueue.defaultBackendIsPoll = poll
        defer { TaskQueue.defaultBackendIsPoll = false }
        return try TaskQueue()
    }

    func write(_ socket: Socket, _ text: String) throws {
        var copy = text
        _ = try copy.withUTF8 { try socket.write(UnsafeRawBufferPointer($0)) }
    }

    @Test(arguments: [false, true])
    func nothingScheduledAndNoTimeoutReturnsFalse(poll: Bool) throws {
        let queue = try makeQueue(poll: poll)
        #expect(try queue.wait(timeout: nil) == false)
        #expect(queue.isEmpty)
    }

    @Test(arguments: [false, true])
    func timeoutElapsesWithNothingReady(poll: Bool) throws {
        let queue = try makeQueue(poll: poll)
        let (a, b) = try Socket.pair()
        _ = try queue.schedule(a, .read)
        let start = Clock.now()
        #expect(try queue.wait(timeout: 0.05))
        #expect(queue.ready.isEmpty)
        #expect(Clock.now() - start >= 0.045)
        withExtendedLifetime(b) {}   // the peer stays open: no hang-up
    }

    @Test(arguments: [false, true])
    func readersWakeWhenDataArrives(poll: Bool) throws {
        let queue = try makeQueue(poll: poll)
        let (a, b) = try Socket.pair()
        let first = try queue.schedule(a, .read)
        let second = try queue.schedule(a, .read)
        let writer = try queue.schedule(a, .write)
        #expect(try queue.wait(timeout: 1))
        #expect(queue.ready == [writer])           // writable at once, not readable yet
        try write(b, "x")
        #expect(try queue.wait(timeout: 1))
        #expect(Set(queue.ready) == [first, second])
        #expect(queue.isEmpty)
    }

    @Test(arguments: [false, true])
    func cancelledWaitersAreNotReturned(poll: Bool) throws {
        let queue = try makeQueue(poll: poll)
        let (a, b) = try Socket.pair()
        let id = try queue.schedule(a, .read)
        #expect(queue.cancel(id))
        #expect(!queue.cancel(id))
        #expect(queue.isEmpty)
        try write(b, "x")
        #expect(try queue.wait(timeout: 0.01))
        #expect(queue.ready.isEmpty)
    }

    @Test(arguments: [false, true])
    func closingASocketWakesItsWaiters(poll: Bool) throws {
        let queue = try makeQueue(poll: poll)
        let (a, _) = try Socket.pair()
        let id = try queue.schedule(a, .read)
        try a.close()
        #expect(try queue.wait(timeout: nil))
        #expect(queue.ready == [id])
        // The queue holds nothing for the old descriptor number: a new socket
        // that reuses it is not confused with the old one.
        let (c, d) = try Socket.pair()
        let fresh = try queue.schedule(c, .read)
        try write(d, "y")
        #expect(try queue.wait(timeout: 1))
        #expect(queue.ready == [fresh])
    }

    @Test(arguments: [false, true])
    func hangUpWakesReaders(poll: Bool) throws {
        let queue = try makeQueue(poll: poll)
        let (a, b) = try Socket.pair()
        let id = try queue.schedule(a, .read)
        try b.close()
        #expect(try queue.wait(timeout: 1))
        #expect(queue.ready == [id])
    }

    @Test func aNilSocketIsReadyAtOnce() throws {
        let queue = try makeQueue(poll: false)
        let id = try queue.schedule(nil, .read)
        #expect(!queue.isEmpty)
        #expect(try queue.wait(timeout: nil))
        #expect(queue.ready == [id])
    }

    @Test func millisecondsRoundUp() {
        #expect(TaskQueue.milliseconds(nil) == -1)
        #expect(TaskQueue.milliseconds(0) == 0)
        #expect(TaskQueue.milliseconds(0.0001) == 1)
        #expect(TaskQueue.milliseconds(1.5) == 1500)
        #expect(TaskQueue.milliseconds(1e12) == CInt.max)
    }
}

@Suite struct EmbeddingTests {
    /// tqueue:fileno(): readable exactly when a wait would return something,
    /// including tasks made ready by a close (no kernel event of their own).
    @Test func filenoIsReadableWhenTasksAreReady() throws {
        let queue = try TaskQueue()
        let fd = try #require(queue.fileno)
        func readable() -> Bool {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            return poll(&entry, 1, 0) == 1
        }
        let (a, b) = try Socket.pair()
        let id = try queue.schedule(a, .read)
        #expect(!readable())
        try a.close()
        #expect(readable())
        #expect(try queue.wait(timeout: 0))
        #expect(queue.ready == [id])
        #expect(!readable())
        withExtendedLifetime(b) {}
    }
}
