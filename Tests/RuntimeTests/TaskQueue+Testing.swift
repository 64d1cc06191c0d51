import Runtime

// What the tests ask of a queue beyond what the glue does.
extension TaskQueue {
    /// The ids the last wait found ready, copied.
    var ready: [Int32] { Array(readyWaiters) }
}
