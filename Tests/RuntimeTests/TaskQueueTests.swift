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

    /// A wait as the C glue makes it: the ready ids, then delivered.
    func waitReady(_ queue: TaskQueue, _ timeout: Double?) throws -> [Int32]? {
        guard try queue.wait(timeout: timeout) else { return nil }
        let ready = queue.ready
        queue.markDelivered()
        return ready
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
        try queue.schedule(on: a, .read)
        let start = Clock.now()
        #expect(try waitReady(queue, 0.05) == [])
        #expect(Clock.now() - start >= 0.045)
        withExtendedLifetime(b) {}   // the peer stays open: no hang-up
    }

    @Test(arguments: [false, true])
    func readersWakeWhenDataArrives(poll: Bool) throws {
        let queue = try makeQueue(poll: poll)
        let (a, b) = try Socket.pair()
        let first = try queue.schedule(on: a, .read)
        let second = try queue.schedule(on: a, .read)
        let writer = try queue.schedule(on: a, .write)
        #expect(try waitReady(queue, 1) == [writer])           // writable at once, not readable yet
        try write(b, "x")
        #expect(Set(try waitReady(queue, 1) ?? []) == [first, second])
        #expect(queue.isEmpty)
    }

    @Test(arguments: [false, true])
    func cancelledWaitersAreNotReturned(poll: Bool) throws {
        let queue = try makeQueue(poll: poll)
        let (a, b) = try Socket.pair()
        let id = try queue.schedule(on: a, .read)
        #expect(queue.cancel(id))
        #expect(!queue.cancel(id))
        #expect(queue.isEmpty)
        try write(b, "x")
        #expect(try waitReady(queue, 0.01) == [])
    }

    /// A cancelled waiter's id is free again, and the waiter it names next
    /// is a new one: it is scheduled, and returned by the next wait.
    @Test func aCancelledIdIsHandedOutAgain() throws {
        let queue = try makeQueue(poll: false)
        let first = try queue.schedule(on: nil, .read)
        #expect(queue.cancel(first))
        #expect(queue.isEmpty)
        let again = try queue.schedule(on: nil, .read)
        #expect(again == first)                      // the slot is free again
        #expect(try waitReady(queue, nil) == [again])
        #expect(!queue.cancel(again))                // delivered: not scheduled any more
    }

    /// The glue has stored its task under `nextWaiter` when it schedules:
    /// a schedule that fails must leave that id free, and nothing waiting.
    @Test func aFailedScheduleLeavesNothingReserved() throws {
        let queue = try makeQueue(poll: false)
        let (a, _) = try Socket.pair()
        let next = queue.nextWaiter
        Sys.faults["epoll_ctl"] = (ENOMEM, 1)
        defer { Sys.faults["epoll_ctl"] = nil }
        #expect(throws: Failure.self) { try queue.schedule(on: a, .read) }
        #expect(queue.isEmpty)
        #expect(queue.nextWaiter == next)
        #expect(try queue.schedule(on: a, .read) == next)   // and the id is handed out again
    }

    /// The C glue stores a task under `nextWaiter` before it schedules: the
    /// two must agree, whether the id is new or one a cancel freed.
    @Test func nextWaiterIsTheIdScheduleHandsOut() throws {
        let queue = try makeQueue(poll: false)
        let (a, _) = try Socket.pair()
        let first = queue.nextWaiter
        #expect(queue.nextWaiterIsNew && queue.idsUsed == 0)
        #expect(try queue.schedule(on: a, .read) == first)
        let second = queue.nextWaiter
        #expect(second != first)
        #expect(try queue.schedule(on: nil, .read) == second)
        #expect(queue.idsUsed == 2)
        #expect(queue.cancel(first))
        #expect(queue.nextWaiter == first)           // a freed id comes back first
        #expect(!queue.nextWaiterIsNew)              // the glue has its places already
        #expect(try queue.schedule(on: a, .write) == first)
        #expect(queue.nextWaiter != first && queue.nextWaiter != second)
        #expect(queue.nextWaiterIsNew && queue.idsUsed == 2)
    }

    /// A wait whose ready list was not taken (the C glue failed to make the
    /// result table: out of memory) returns the same tasks again.
    @Test func undeliveredTasksComeBack() throws {
        let queue = try makeQueue(poll: false)
        let id = try queue.schedule(on: nil, .read)
        #expect(try queue.wait(timeout: nil))
        #expect(queue.ready == [id])
        #expect(try queue.wait(timeout: nil))       // not delivered: again, at once
        #expect(queue.ready == [id])
        queue.markDelivered()
        #expect(try queue.wait(timeout: nil) == false)
    }

    @Test(arguments: [false, true])
    func closingASocketWakesItsWaiters(poll: Bool) throws {
        let queue = try makeQueue(poll: poll)
        let (a, _) = try Socket.pair()
        let id = try queue.schedule(on: a, .read)
        try a.close()
        #expect(try waitReady(queue, nil) == [id])
        // The queue holds nothing for the old descriptor number: a new socket
        // that reuses it is not confused with the old one.
        let (c, d) = try Socket.pair()
        let fresh = try queue.schedule(on: c, .read)
        try write(d, "y")
        #expect(try waitReady(queue, 1) == [fresh])
    }

    @Test(arguments: [false, true])
    func hangUpWakesReaders(poll: Bool) throws {
        let queue = try makeQueue(poll: poll)
        let (a, b) = try Socket.pair()
        let id = try queue.schedule(on: a, .read)
        try b.close()
        #expect(try waitReady(queue, 1) == [id])
    }

    @Test func aNilTargetIsReadyAtOnce() throws {
        let queue = try makeQueue(poll: false)
        let id = try queue.schedule(on: nil, .read)
        #expect(!queue.isEmpty)
        #expect(try waitReady(queue, nil) == [id])
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
        let fd = try queue.embeddingDescriptor()
        func readable() -> Bool {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            return poll(&entry, 1, 0) == 1
        }
        let (a, b) = try Socket.pair()
        let id = try queue.schedule(on: a, .read)
        #expect(!readable())
        try a.close()
        #expect(readable())
        #expect(try queue.wait(timeout: 0))
        #expect(queue.ready == [id])
        queue.markDelivered()
        #expect(!readable())
        withExtendedLifetime(b) {}
    }

    /// Describing a queue (tostring) reads its epoll descriptor; only
    /// `embeddingDescriptor` (tqueue:fileno) opens the eventfd.
    @Test func readingTheDescriptorOpensNothing() throws {
        let queue = try TaskQueue()
        let before = Sys.counts["eventfd", default: 0]
        _ = queue.epollDescriptor
        _ = queue.epollDescriptor
        #expect(Sys.counts["eventfd", default: 0] == before)
        _ = try queue.embeddingDescriptor()
        #expect(Sys.counts["eventfd", default: 0] == before + 1)
    }
}
