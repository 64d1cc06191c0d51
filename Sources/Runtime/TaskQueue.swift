import CSystem

/// What a task waits for on a descriptor.
public enum Readiness { case read, write }

/// The runtime half of a task queue: waiters, by id, on descriptors, and a
/// wait that returns the ids whose readiness has come. The Lua half
/// (`Sources/CLua/tasks.c`) maps ids to task tables.
///
/// One thread: a queue is used only from the thread of the Lua state that
/// made it, and never from the resolver's (docs/ARCHITECTURE.md); it has no locks.
///
/// Cost model, the reason for the layout:
/// - Registrations are an array indexed by descriptor number and waiters an
///   array with a free list, each waiter linked into its descriptor's list
///   for its direction: scheduling, waking and dequeuing are O(1), and a wait
///   costs O(ready events), not O(waiters).
/// - A descriptor stays registered with the kernel between waits and its
///   interest only grows while tasks come and go: `epoll_ctl` runs when a
///   direction is first wanted, and again only when an event arrives for a
///   direction nobody waits on any more (then the interest shrinks). A task
///   that reads, waits, reads again costs no `epoll_ctl` at all.
public final class TaskQueue {
    struct Registration {
        var generation: UInt32 = 0
        var interest: UInt32 = 0       // what the kernel watches; 0: not registered
        var readers: Int32 = -1        // head of the waiter list per direction
        var writers: Int32 = -1
        /// The descriptor object the registration belongs to. A number is
        /// not enough: one closed behind XPIO's back (by a library it was
        /// handed to) and reused by a new socket must not pass for the old
        /// registration, which the kernel dropped with the old file. Set,
        /// it also says that this queue is in the descriptor's queues
        /// (`Descriptor.attach`). 24 bytes in all: the array is indexed by
        /// descriptor number, one per descriptor a queue ever watched.
        var owner: ObjectIdentifier?
    }

    struct Waiter {
        enum State { case free, waiting, ready }
        // The one-byte fields last: 16 bytes a waiter, where they were 20.
        var fd: CInt = -1
        var previous: Int32 = -1
        var next: Int32 = -1           // also links the free list
        var state = State.free
        var readiness = Readiness.read
        /// Woken by no event, only when its descriptor goes away (or by
        /// `cancel`): a task waiting behind another's turn on a socket,
        /// which that task hands on when its call ends
        /// (Sources/CLua/blocking.c). Waiting for the socket's readiness
        /// instead, every task in line was resumed at each of its events.
        var parked = false
    }

    let selector: Selector
    private var registrations = FallibleArray<Registration>()
    private var waiters = FallibleArray<Waiter>()
    private var freeWaiters: Int32 = -1
    /// How many waiters were ever handed out (wrapping): `nextSerial`.
    private var schedules: UInt32 = 0
    private var waitingCount = 0
    /// Ids that are ready without an event (closed descriptor, exited
    /// process); returned by the next wait.
    private var pendingReady = FallibleArray<Int32>()
    /// The ids the last `wait` found ready, until `delivered` releases them;
    /// a wait that finds them undelivered (the caller failed to take them)
    /// returns them again.
    public var readyWaiters: UnsafeBufferPointer<Int32> { UnsafeBufferPointer(start: readyBuffer, count: readyCount) }
    private var readyBuffer = UnsafeMutablePointer<Int32>.allocate(capacity: 64)   // grown with malloc: see growReady
    private var readyCapacity = 64
    private var readyCount = 0
    private var delivered = true
    public private(set) var isClosed = false

    /// The backend for new queues; `XPIO_BACKEND=poll` selects poll(2) at load.
    public nonisolated(unsafe) static var defaultBackendIsPoll = false

    /// Whether new queues use epoll: on Linux unless poll was asked for;
    /// never in the portable build.
    static var epollByDefault: Bool { Platform.linux && !defaultBackendIsPoll }

    public init() throws(Failure) {
        selector = try Selector(backend: TaskQueue.epollByDefault ? .epoll : .poll)
    }

    deinit {
        free(readyBuffer)   // Swift's allocate is malloc's too
        registrations.free()
        waiters.free()
        pendingReady.free()
    }

    private func removeFromReady(_ id: Int32) {
        guard let position = readyWaiters.firstIndex(of: id) else { return }
        for index in position..<(readyCount - 1) { readyBuffer[index] = readyBuffer[index + 1] }
        readyCount -= 1
        if readyCount == 0 { delivered = true }
    }

    /// Room for one more waiter in every list that can hold it: the
    /// waiters, the pending list and the ready list (an id is in each at
    /// most once), made before the waiter is, so that a failure (ENOMEM,
    /// see `Memory`) leaves nothing to undo and no later append grows.
    private func makeRoomForWaiter() throws(Failure) {
        let needed = waiters.count + 1
        try waiters.reserve(needed)
        try pendingReady.reserve(needed)
        if readyCapacity < needed { try growReady() }
    }

    private func growReady() throws(Failure) {
        guard let block = malloc(readyCapacity * 2 * MemoryLayout<Int32>.stride) else { throw .system(ENOMEM) }
        let bigger = block.bindMemory(to: Int32.self, capacity: readyCapacity * 2)
        bigger.update(from: readyBuffer, count: readyCount)
        free(readyBuffer)
        readyBuffer = bigger
        readyCapacity *= 2
    }

    @_optimize(speed)
    private func appendReady(_ id: Int32) {
        // Never full: makeRoomForWaiter made room for every waiter.
        if readyCount == readyCapacity { try! growReady() }
        readyBuffer[readyCount] = id
        readyCount += 1
    }

    /// True when no task is waiting (none scheduled and none pending).
    public var isEmpty: Bool { waitingCount == 0 && pendingReady.isEmpty }

    /// The epoll descriptor (nil on the poll backend or when closed).
    public var epollDescriptor: CInt? {
        guard selector.backend == .epoll, !isClosed else { return nil }
        return selector.epollFD
    }

    /// The epoll descriptor, readable when a wait would return tasks, for
    /// embedding the queue in another event loop. Tasks that are ready
    /// without an event (their socket was closed) would not make it readable,
    /// so the first call adds an eventfd to the set that is signalled for them.
    public func embeddingDescriptor() throws(Failure) -> CInt {
        guard !isClosed else { throw .closed("tqueue") }
        guard Platform.linux else { throw Platform.unsupported }
        guard selector.backend == .epoll else { throw .xpio("xpio: a poll-backend queue has no descriptor") }
        if wakeFD < 0 {
            let fd = try Sys.eventfd().get()
            do {
                try selector.update(fd: fd, generation: TaskQueue.wakeGeneration, old: 0, new: EPOLLIN.rawValue)
            } catch {
                _ = Sys.close(fd)
                throw error
            }
            wakeFD = fd
            if !pendingReady.isEmpty { signalWake() }
        }
        return selector.epollFD
    }

    /// The eventfd behind `embeddingDescriptor`, or -1; its events carry this generation.
    private var wakeFD: CInt = -1
    private static let wakeGeneration = UInt32.max

    private func signalWake() {
        var one: UInt64 = 1
        _ = Sys.write(wakeFD, &one, 8)
    }

    private func markReady(_ id: Int32) {
        waiters[Int(id)].state = .ready
        if pendingReady.isEmpty && wakeFD >= 0 { signalWake() }
        pendingReady.append(id)
    }

    // MARK: scheduling

    /// The id the next `schedule` hands out (the head of the free list, or a
    /// new one): the Lua half stores its task under it before scheduling.
    public var nextWaiter: Int32 { freeWaiters >= 0 ? freeWaiters : Int32(waiters.count) }

    /// Whether `nextWaiter` is an id never handed out before (the free list
    /// is empty). The Lua half keeps a place per id ever used and makes one
    /// only for a new id.
    public var nextWaiterIsNew: Bool { freeWaiters < 0 }

    /// The serial number the next `schedule` gives its waiter: with the
    /// id, it names one scheduling, so that the Lua half can tell a task's
    /// `_dequeuedata` from one kept from an earlier scheduling of the same
    /// id (which must unschedule nothing). It wraps after 2^32 schedules.
    public var nextSerial: UInt32 { schedules &+ 1 }

    /// How many ids were handed out since the queue was made or closed.
    public var idsUsed: Int32 { Int32(waiters.count) }

    /// Makes a new waiter wait for `readiness` on `target` (nil or closed:
    /// ready at the next wait; `parked`: for nothing but `target` going
    /// away, see `Waiter.parked`): its id, the one `nextWaiter` named. The
    /// waiter is taken only after the last step that can fail (the kernel
    /// set's update), so a failure leaves nothing to undo. One pass over
    /// the arrays: this is every `when_` call's share of the runtime.
    @discardableResult
    @_optimize(speed)
    public func schedule(on target: Descriptor?, _ readiness: Readiness, parked: Bool = false) throws(Failure) -> Int32 {
        guard !isClosed else { throw .closed("tqueue") }
        // The target is read, not bound: a `let` binding of it cost every
        // call a retain and a release (the caller holds it for the call).
        guard let fd = target?.fd, fd >= 0 else { return try scheduleReady() }
        let index = Int(fd)
        if registrations.count <= index { try registrations.grow(to: index + 1, filling: Registration()) }
        if freeWaiters < 0 { try makeRoomForWaiter() }
        if registrations[index].owner != ObjectIdentifier(target.unsafelyUnwrapped) { adopt(target.unsafelyUnwrapped, at: index) }
        let wanted: UInt32 = readiness == .read ? EPOLLIN.rawValue | EPOLLRDHUP.rawValue : EPOLLOUT.rawValue
        let interest = registrations[index].interest
        if !parked && interest & wanted != wanted {
            do throws(Failure) {
                try selector.update(fd: fd, generation: registrations[index].generation, old: interest, new: interest | wanted)
            } catch {
                // epoll refuses a regular file or a directory (EPERM); poll
                // calls it always ready, and so does the queue.
                guard case .system(EPERM) = error else { throw error }
                return try scheduleReady()
            }
            registrations[index].interest = interest | wanted
        }
        let head = readiness == .read ? registrations[index].readers : registrations[index].writers
        let id = allocateWaiter(Waiter(fd: fd, previous: -1, next: head, state: .waiting, readiness: readiness, parked: parked))
        if head >= 0 { waiters[Int(head)].previous = id }
        if readiness == .read { registrations[index].readers = id } else { registrations[index].writers = id }
        waitingCount += 1
        return id
    }

    /// A waiter ready at once: the next wait returns it.
    private func scheduleReady() throws(Failure) -> Int32 {
        if freeWaiters < 0 { try makeRoomForWaiter() }
        let id = allocateWaiter(Waiter(state: .ready))
        markReady(id)
        return id
    }

    /// Removes a waiting or pending waiter; false if `id` is not scheduled.
    @discardableResult
    public func cancel(_ id: Int32) -> Bool {
        guard id >= 0, Int(id) < waiters.count else { return false }
        switch waiters[Int(id)].state {
        case .free: return false
        case .waiting:
            unlink(id)
            waitingCount -= 1
        case .ready:
            if let position = pendingReady.firstIndex(of: id) {
                pendingReady.remove(at: position)
            } else {
                // In a ready list the caller has not taken (its wait failed
                // to make the result table): out of it, or the id, reused,
                // would come back from the next wait for another task.
                removeFromReady(id)
            }
        }
        releaseWaiter(id)
        return true
    }

    // MARK: waiting

    /// Waits for readiness. `timeout` in seconds (nil: no limit; negative: 0).
    /// Returns false, without waiting, when nothing is scheduled and there is
    /// no timeout; otherwise fills `ready` (possibly empty) and returns true.
    /// The caller takes the ids in `ready` and calls `markDelivered`.
    @_optimize(speed)
    public func wait(timeout: Double?) throws(Failure) -> Bool {
        guard !isClosed else { throw .closed("tqueue") }
        if !delivered { return true }
        // A finished lookup nobody asked for again (a try_resolve given up
        // on) holds two descriptors: let go of them here too, not only at
        // the next resolve, which may never come.
        if !Resolver.requests.isEmpty { Resolver.forgetFinished() }
        if isEmpty && timeout == nil { return false }
        var remaining = timeout.map { $0 > 0 ? $0 : 0 }
        // A zero timeout never needs the clock: the loop below ends after one poll.
        let deadline = remaining.flatMap { $0 > 0 ? Clock.now() + $0 : nil }
        if !pendingReady.isEmpty { remaining = 0 }
        while true {
            let count = try selector.wait(milliseconds: TaskQueue.milliseconds(remaining))
            for index in 0..<count { dispatch(selector.event(at: index)) }
            if readyCount > 0 || !pendingReady.isEmpty || remaining == 0 { break }
            // No task is ready: an EINTR, a timeout, or level-triggered
            // readiness nobody waits for any more (its interest has just
            // shrunk). Go on with what is left of the timeout.
            guard let deadline else { continue }
            let left = deadline - Clock.now()
            if left <= 0 { break }
            remaining = left
        }
        if !pendingReady.isEmpty {
            for index in 0..<pendingReady.count { appendReady(pendingReady[index]) }
            pendingReady.removeAll()
        }
        delivered = readyCount == 0
        return true
    }

    /// The caller has taken the ids in `ready`: release them.
    @_optimize(speed)
    public func markDelivered() {
        for id in readyWaiters where waiters[Int(id)].state == .ready { releaseWaiter(id) }
        readyCount = 0
        delivered = true
    }

    static func milliseconds(_ seconds: Double?) -> CInt {
        guard let seconds else { return -1 }
        if seconds == 0 { return 0 }   // wait(0), a scheduler's poll: the common case
        let milliseconds = seconds * 1000
        guard milliseconds < Double(CInt.max) else { return CInt.max }
        // Round up without ceil(), which lives in libm.
        let whole = CInt(milliseconds)
        return Double(whole) < milliseconds ? whole + 1 : whole
    }

    @_optimize(speed)
    private func dispatch(_ event: (fd: CInt, generation: UInt32, bits: UInt32)) {
        if event.generation == TaskQueue.wakeGeneration && event.fd == wakeFD {
            var count: UInt64 = 0
            _ = Sys.read(wakeFD, &count, 8)   // reset; pendingReady is returned by this wait
            return
        }
        let index = Int(event.fd)
        guard index < registrations.count else { return }
        // Read once, written back once: the waiter lists and the interest
        // change together, and nothing below touches `registrations`.
        var registration = registrations[index]
        guard registration.generation == event.generation, registration.interest != 0 else { return }
        let failure = EPOLLERR.rawValue | EPOLLHUP.rawValue
        let readable = event.bits & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue | failure) != 0
        let writable = event.bits & (EPOLLOUT.rawValue | failure) != 0
        // Parked waiters stay: "had" counts those woken.
        let hadReaders = readable && registration.readers >= 0 && wakeAll(&registration.readers)
        let hadWriters = writable && registration.writers >= 0 && wakeAll(&registration.writers)
        // Shrink the interest for directions nobody waited on. A queue an
        // outer loop polls (`embeddingDescriptor`) shrinks it as soon as the
        // waiters are woken too: left in place, a descriptor still readable
        // would keep the queue's descriptor readable with no task waiting,
        // and the outer loop would wake twice per event.
        let embedded = wakeFD >= 0
        var interest = registration.interest
        if readable && (!hadReaders || embedded) { interest &= ~(EPOLLIN.rawValue | EPOLLRDHUP.rawValue) }
        if event.bits & EPOLLOUT.rawValue != 0 && (!hadWriters || embedded) { interest &= ~EPOLLOUT.rawValue }
        if event.bits & failure != 0 && ((!hadReaders && !hadWriters) || embedded) { interest = 0 }
        if interest != registration.interest {
            let old = registration.interest
            if (try? selector.update(fd: event.fd, generation: event.generation, old: old, new: interest)) != nil || interest == 0 {
                registration.interest = interest
            }
        }
        registrations[index] = registration
    }

    /// Wakes the list's waiters but the parked ones, which stay, in order;
    /// whether it woke any.
    @_optimize(speed)
    private func wakeAll(_ head: inout Int32) -> Bool {
        var id = head
        var kept: Int32 = -1, last: Int32 = -1
        var woke = false
        while id >= 0 {
            let next = waiters[Int(id)].next
            if waiters[Int(id)].parked {
                waiters[Int(id)].previous = last
                waiters[Int(id)].next = -1
                if last >= 0 { waiters[Int(last)].next = id } else { kept = id }
                last = id
            } else {
                waiters[Int(id)].state = .ready
                waiters[Int(id)].previous = -1
                waiters[Int(id)].next = -1
                appendReady(id)
                waitingCount -= 1
                woke = true
            }
            id = next
        }
        head = kept
        return woke
    }

    // MARK: descriptors going away

    /// `fd` of `owner` is about to be closed (or handed over): drop it from
    /// the kernel set before the number can be reused, and make its waiters
    /// ready so their tasks learn of it at the next wait. A registration of
    /// another object under the same number (the old one's number was
    /// closed behind XPIO's back and reused) is not this one's to drop.
    func forget(_ fd: CInt, owner: Descriptor) {
        let index = Int(fd)
        guard !isClosed, index < registrations.count,
              registrations[index].owner == ObjectIdentifier(owner) else { return }
        retire(index, fd)
    }

    /// `descriptor` is the new owner of registration `index` (its fd's):
    /// whatever waited on the old one is made ready, as at a close. Out of
    /// line: it runs at a descriptor's first wait on this queue only.
    @inline(never)
    private func adopt(_ descriptor: Descriptor, at index: Int) {
        if registrations[index].owner != nil { retire(index, descriptor.fd) }
        registrations[index].owner = ObjectIdentifier(descriptor)
        descriptor.attach(self)
    }

    /// Ends registration `index` (descriptor `fd`): out of the kernel set
    /// (a descriptor already closed answers ENOENT, ignored), its waiters
    /// ready, a new generation so that stale events are dropped.
    private func retire(_ index: Int, _ fd: CInt) {
        if registrations[index].interest != 0 {
            try? selector.update(fd: fd, generation: registrations[index].generation,
                                 old: registrations[index].interest, new: 0)
        }
        makePending(&registrations[index].readers)
        makePending(&registrations[index].writers)
        let old = registrations[index].generation
        let generation = old &+ 1 == TaskQueue.wakeGeneration ? 0 : old &+ 1
        registrations[index] = Registration()
        registrations[index].generation = generation
    }

    /// Makes every task waiting to read `fd` ready at the next wait, with no
    /// event and without unregistering `fd`: the SIGCHLD pipe's way to pass
    /// on a wake-up that one waiter consumed for all.
    func wakeReaders(_ fd: CInt) {
        let index = Int(fd)
        guard !isClosed, index < registrations.count else { return }
        makePending(&registrations[index].readers)
    }

    /// Moves a waiter list to `pendingReady`.
    private func makePending(_ head: inout Int32) {
        var id = head
        while id >= 0 {
            let next = waiters[Int(id)].next
            waiters[Int(id)].previous = -1
            waiters[Int(id)].next = -1
            markReady(id)
            waitingCount -= 1
            id = next
        }
        head = -1
    }

    /// Releases the kernel side. Waiting tasks are dropped, not woken.
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        if wakeFD >= 0 { _ = Sys.close(wakeFD) }
        wakeFD = -1
        selector.close()
        registrations.free()
        waiters.free()
        pendingReady.free()
        readyCount = 0
        delivered = true
        freeWaiters = -1
        waitingCount = 0
    }

    // MARK: waiter storage

    /// Stores `waiter` under the id `nextWaiter` names.
    @_optimize(speed)
    private func allocateWaiter(_ waiter: Waiter) -> Int32 {
        schedules &+= 1
        if freeWaiters >= 0 {
            let id = freeWaiters
            freeWaiters = waiters[Int(id)].next
            waiters[Int(id)] = waiter
            return id
        }
        waiters.append(waiter)
        return Int32(waiters.count - 1)
    }

    @_optimize(speed)
    private func releaseWaiter(_ id: Int32) {
        waiters[Int(id)] = Waiter()
        waiters[Int(id)].next = freeWaiters
        freeWaiters = id
    }

    private func unlink(_ id: Int32) {
        let waiter = waiters[Int(id)]
        if waiter.previous >= 0 {
            waiters[Int(waiter.previous)].next = waiter.next
        } else if waiter.readiness == .read {
            registrations[Int(waiter.fd)].readers = waiter.next
        } else {
            registrations[Int(waiter.fd)].writers = waiter.next
        }
        if waiter.next >= 0 { waiters[Int(waiter.next)].previous = waiter.previous }
        waiters[Int(id)].previous = -1
        waiters[Int(id)].next = -1
    }
}
