import Runtime

// What the tests ask of a queue beyond what the glue does (the product has
// the two steps, reserve and schedule, that the C glue needs).
extension TaskQueue {
    /// The ids the last wait found ready, copied.
    var ready: [Int32] { Array(readyWaiters) }

    /// Reserves and schedules at once: the waiter's id.
    @discardableResult
    func schedule(_ target: Descriptor?, _ readiness: Readiness) throws(Failure) -> Int32 {
        let id = try reserve()
        do {
            try schedule(id, on: target, readiness)
        } catch {
            _ = cancel(id)
            throw error
        }
        return id
    }
}
