import CSystem

/// The kernel side of a task queue: which descriptors are watched for what,
/// and a wait that reports readiness. Two backends behind one type:
/// epoll (the default) and poll(2), for systems without epoll
/// (`XPIO_BACKEND=poll`). Interest uses epoll's bits in both; EPOLLERR and
/// EPOLLHUP are always reported. Level-triggered.
///
/// Each registration carries a generation with the descriptor
/// (`epoll_data.u64 = generation << 32 | fd`), so an event for a descriptor
/// number that has since been reused is recognised and dropped.
final class Selector {
    enum Backend { case epoll, poll }

    let backend: Backend
    private(set) var epollFD: CInt = -1

    /// Events of the last wait, in epoll's format for both backends.
    private var events: UnsafeMutablePointer<epoll_event>
    private var capacity: Int
    private var bufferFilled = false

    // poll backend: the watched set, dense, and each descriptor's slot in it.
    private var pollSet: [pollfd] = []
    private var pollGenerations: [UInt32] = []
    private var pollSlot: [Int32] = []

    init(backend: Backend) throws(Failure) {
        // The descriptor first: a throw after every stored property is set
        // would run deinit, which frees the event buffer a second time.
        if backend == .epoll { epollFD = try Sys.epoll_create1().get() }
        self.backend = backend
        capacity = 64
        events = .allocate(capacity: capacity)
    }

    deinit {
        close()
        events.deallocate()
    }

    func close() {
        if epollFD >= 0 { _ = Sys.close(epollFD) }
        epollFD = -1
    }

    /// Changes what `fd` is watched for, from `old` to `new` (0: not watched).
    /// The corresponding C function is `epoll_ctl`.
    func update(fd: CInt, generation: UInt32, old: UInt32, new: UInt32) throws(Failure) {
        switch backend {
        case .epoll:
            let op = old == 0 ? EPOLL_CTL_ADD : new == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD
            var event = epoll_event()
            xpio_epoll_set(&event, new, UInt64(generation) << 32 | UInt64(UInt32(bitPattern: fd)))
            try Sys.epoll_ctl(epollFD, op, fd, &event).get()
        case .poll:
            let index = Int(fd)
            while pollSlot.count <= index { pollSlot.append(-1) }
            let slot = Int(pollSlot[index])
            if new == 0 {
                guard slot >= 0 else { return }
                // Swap the last entry into the hole.
                let last = pollSet.count - 1
                if slot != last {
                    pollSet[slot] = pollSet[last]
                    pollGenerations[slot] = pollGenerations[last]
                    pollSlot[Int(pollSet[slot].fd)] = Int32(slot)
                }
                pollSet.removeLast()
                pollGenerations.removeLast()
                pollSlot[index] = -1
                return
            }
            var requested: Int16 = 0
            if new & EPOLLIN.rawValue != 0 { requested |= Int16(POLLIN) }
            if new & EPOLLOUT.rawValue != 0 { requested |= Int16(POLLOUT) }
            if slot >= 0 {
                pollSet[slot].events = requested
                pollGenerations[slot] = generation
            } else {
                pollSlot[index] = Int32(pollSet.count)
                pollSet.append(pollfd(fd: fd, events: requested, revents: 0))
                pollGenerations.append(generation)
            }
        }
    }

    /// Waits up to `milliseconds` (-1: no limit) and returns how many events
    /// `event(at:)` can read. EINTR returns 0 (Sys); the caller recomputes the timeout.
    /// The corresponding C functions are `epoll_wait` and `poll`.
    func wait(milliseconds: CInt) throws(Failure) -> Int {
        switch backend {
        case .epoll:
            if bufferFilled { grow() }
            let count = try Sys.epoll_wait(epollFD, events, CInt(capacity), milliseconds).get()
            bufferFilled = count == capacity   // grow before the next wait, not under the caller
            return count
        case .poll:
            let count = try pollSet.withUnsafeMutableBufferPointer { Sys.poll($0.baseAddress, $0.count, milliseconds) }.get()
            if count == 0 { return 0 }
            while capacity < pollSet.count { grow() }
            var found = 0
            for slot in 0..<pollSet.count where pollSet[slot].revents != 0 {
                let revents = Int32(pollSet[slot].revents)
                var bits: UInt32 = 0
                if revents & Int32(POLLIN) != 0 { bits |= EPOLLIN.rawValue }
                if revents & Int32(POLLOUT) != 0 { bits |= EPOLLOUT.rawValue }
                if revents & Int32(POLLERR) != 0 { bits |= EPOLLERR.rawValue }
                if revents & Int32(POLLHUP) != 0 { bits |= EPOLLHUP.rawValue }
                if revents & Int32(POLLNVAL) != 0 { bits |= EPOLLERR.rawValue }
                xpio_epoll_set(events + found, bits,
                               UInt64(pollGenerations[slot]) << 32 | UInt64(UInt32(bitPattern: pollSet[slot].fd)))
                found += 1
            }
            return found
        }
    }

    /// Event `index` of the last wait: the descriptor, its generation and the epoll bits.
    func event(at index: Int) -> (fd: CInt, generation: UInt32, bits: UInt32) {
        let data = xpio_epoll_data(events + index)
        return (CInt(bitPattern: UInt32(truncatingIfNeeded: data)), UInt32(truncatingIfNeeded: data >> 32),
                xpio_epoll_events(events + index))
    }

    /// Doubles the event buffer: only when a wait filled it.
    private func grow() {
        bufferFilled = false
        let bigger = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity * 2)
        events.deallocate()
        events = bigger
        capacity *= 2
    }
}
