import CLua
import Runtime

// The task queue's runtime half, for the C glue that keeps the tasks
// (Sources/CLua/tasks.c). Queues and wait targets arrive as unretained
// pointers to objects Lua keeps alive for the call.

private func queue(_ pointer: UnsafeMutableRawPointer?) -> TaskQueue {
    Unmanaged<TaskQueue>.fromOpaque(pointer!).takeUnretainedValue()
}

/// Runs `body` on the queue without retaining it: Lua holds the queue for
/// the call, and these are the calls every when_ and wait makes (a retain
/// and a release are two atomic operations each time).
private func withQueue<R>(_ pointer: UnsafeMutableRawPointer?, _ body: (TaskQueue) -> R) -> R {
    Unmanaged<TaskQueue>.fromOpaque(pointer!)._withUnsafeGuaranteedRef(body)
}

/// The id the next schedule hands out: the glue stores the task under it
/// first, so that a memory error while storing leaves the queue untouched.
@_cdecl("xpio_queue_next_waiter")
func queueNextWaiter(_ pointer: UnsafeMutableRawPointer?) -> Int32 {
    withQueue(pointer) { $0.nextWaiter }
}

/// Reserves a waiter and makes it wait for `readiness` on `target` (none:
/// ready at the next wait): its id, or a failure with nothing reserved.
@_cdecl("xpio_queue_schedule")
func queueSchedule(_ call: UnsafeMutablePointer<xpio_call>?, _ pointer: UnsafeMutableRawPointer?,
                   _ target: UnsafeMutableRawPointer?, _ readiness: Int32) -> Int32 {
    let direction: Readiness = readiness == Int32(XPIO_WRITABLE) ? .write : .read
    return withQueue(pointer) { queue in
        do throws(Failure) {
            let id = try queue.reserve()
            do throws(Failure) {
                if let target {
                    // Lua holds the target for the call: no retain.
                    let failure: Failure? = Unmanaged<Descriptor>.fromOpaque(target)._withUnsafeGuaranteedRef { descriptor in
                        do throws(Failure) { try queue.schedule(id, on: descriptor, direction) } catch { return error }
                        return nil
                    }
                    if let failure { throw failure }
                } else {
                    try queue.schedule(id, on: nil, direction)
                }
            } catch {
                queue.cancel(id)
                throw error
            }
            return id
        } catch { return Call(call!).fail(error) }
    }
}

@_cdecl("xpio_queue_cancel")
func queueCancel(_ pointer: UnsafeMutableRawPointer?, _ waiter: Int32) -> Int32 {
    queue(pointer).cancel(waiter) ? 1 : 0
}

/// 1: `ready` holds the ready waiters (maybe none); 0: nothing to wait on.
@_cdecl("xpio_queue_wait")
func queueWait(_ call: UnsafeMutablePointer<xpio_call>?, _ pointer: UnsafeMutableRawPointer?, _ timeout: Double,
               _ hasTimeout: Int32) -> Int32 {
    withQueue(pointer) { queue in
        do throws(Failure) {
            return try queue.wait(timeout: hasTimeout != 0 ? timeout : nil) ? 1 : 0
        } catch { return Call(call!).fail(error) }
    }
}

@_cdecl("xpio_queue_ready")
func queueReady(_ pointer: UnsafeMutableRawPointer?, _ count: UnsafeMutablePointer<Int32>?) -> UnsafePointer<Int32>? {
    let ready = queue(pointer).readyWaiters
    count!.pointee = Int32(ready.count)
    return UnsafePointer(ready.baseAddress)
}

@_cdecl("xpio_queue_delivered")
func queueDelivered(_ pointer: UnsafeMutableRawPointer?) { queue(pointer).markDelivered() }

@_cdecl("xpio_queue_is_closed")
func queueIsClosed(_ pointer: UnsafeMutableRawPointer?) -> Int32 { queue(pointer).isClosed ? 1 : 0 }

@_cdecl("xpio_queue_close")
func queueClose(_ pointer: UnsafeMutableRawPointer?) { queue(pointer).close() }
