import CLua
import Runtime

// The task queue's runtime half, for the C glue that keeps the tasks
// (Sources/CLua/tasks.c). Queues and wait targets arrive as unretained
// pointers to objects Lua keeps alive for the call.

/// Runs `body` on the queue without retaining it: Lua holds the queue for
/// the call, and every when_ and wait makes these calls (a retain and a
/// release are two atomic operations each time).
private func withQueue<R>(_ pointer: UnsafeMutableRawPointer?, _ body: (TaskQueue) -> R) -> R {
    Unmanaged<TaskQueue>.fromOpaque(pointer!)._withUnsafeGuaranteedRef(body)
}

/// The id the next schedule hands out, and its serial number: the glue
/// stores the task under the id first, so that a memory error while
/// storing leaves the queue untouched.
@_cdecl("xpio_queue_next_waiter")
func queueNextWaiter(_ pointer: UnsafeMutableRawPointer?, _ isNew: UnsafeMutablePointer<Int32>?,
                     _ serial: UnsafeMutablePointer<UInt32>?) -> Int32 {
    withQueue(pointer) { queue in
        isNew!.pointee = queue.nextWaiterIsNew ? 1 : 0
        serial!.pointee = queue.nextSerial
        return queue.nextWaiter
    }
}

/// How many waiter ids the queue has handed out so far (ids 0 to this - 1).
@_cdecl("xpio_queue_ids_used")
func queueIdsUsed(_ pointer: UnsafeMutableRawPointer?) -> Int32 {
    withQueue(pointer) { $0.idsUsed }
}

/// Makes a new waiter wait for `readiness` on `target` (none: ready at the
/// next wait; XPIO_PARKED: for nothing but the target going away, see
/// `TaskQueue.Waiter.parked`): its id, or a failure with no waiter taken.
@_cdecl("xpio_queue_schedule")
func queueSchedule(_ call: UnsafeMutablePointer<xpio_call>?, _ pointer: UnsafeMutableRawPointer?,
                   _ target: UnsafeMutableRawPointer?, _ readiness: Int32) -> Int32 {
    let direction: Readiness = readiness == Int32(XPIO_WRITABLE) ? .write : .read
    let parked = readiness == Int32(XPIO_PARKED)
    return withQueue(pointer) { queue in
        func schedule(on descriptor: Descriptor?) -> Int32 {
            do throws(Failure) { return try queue.schedule(on: descriptor, direction, parked: parked) } catch { return Call(call!).fail(error) }
        }
        guard let target else { return schedule(on: nil) }
        // Lua holds the target for the call: no retain.
        return Unmanaged<Descriptor>.fromOpaque(target)._withUnsafeGuaranteedRef { schedule(on: $0) }
    }
}

@_cdecl("xpio_queue_cancel")
func queueCancel(_ pointer: UnsafeMutableRawPointer?, _ waiter: Int32) -> Int32 {
    withQueue(pointer) { $0.cancel(waiter) } ? 1 : 0
}

/// 1 + the number of ready waiters (`ready` holds them; maybe none); 0:
/// nothing to wait on.
@_cdecl("xpio_queue_wait")
func queueWait(_ call: UnsafeMutablePointer<xpio_call>?, _ pointer: UnsafeMutableRawPointer?, _ timeout: Double,
               _ hasTimeout: Int32) -> Int32 {
    withQueue(pointer) { queue in
        do throws(Failure) {
            return try queue.wait(timeout: hasTimeout != 0 ? timeout : nil) ? 1 + Int32(queue.readyWaiters.count) : 0
        } catch { return Call(call!).fail(error) }
    }
}

@_cdecl("xpio_queue_ready")
func queueReady(_ pointer: UnsafeMutableRawPointer?, _ count: UnsafeMutablePointer<Int32>?) -> UnsafePointer<Int32>? {
    withQueue(pointer) { queue in
        let ready = queue.readyWaiters
        count!.pointee = Int32(ready.count)
        return UnsafePointer(ready.baseAddress)
    }
}

@_cdecl("xpio_queue_delivered")
func queueDelivered(_ pointer: UnsafeMutableRawPointer?) { withQueue(pointer) { $0.markDelivered() } }

@_cdecl("xpio_queue_is_closed")
func queueIsClosed(_ pointer: UnsafeMutableRawPointer?) -> Int32 { withQueue(pointer) { $0.isClosed } ? 1 : 0 }

@_cdecl("xpio_queue_close")
func queueClose(_ pointer: UnsafeMutableRawPointer?) { withQueue(pointer) { $0.close() } }
