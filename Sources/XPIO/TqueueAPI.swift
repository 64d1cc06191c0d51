import CLua
import Runtime

/// The task-queue entries of `Spec/tqueue.spec`; the Lua bookkeeping of
/// tasks is `Scheduling`'s, the waiting `Runtime.TaskQueue`'s.
enum TqueueAPI {
    typealias Object = TaskQueue
    static var userValues: CInt { 3 }

    static func wait(_ L: LuaState, _ this: TaskQueue, timeout: Double?) -> CInt {
        Scheduling.wait(L, this, queueIndex: 1, timeout: timeout)
    }

    static func isEmpty(_ L: LuaState, _ this: TaskQueue) -> CInt {
        Lua.push(L, this.isEmpty)
    }

    static func fileno(_ this: TaskQueue) throws(Failure) -> CInt {
        guard !this.isClosed else { throw .closed("tqueue") }
        guard let fd = this.fileno else { throw .xpio("xpio: a poll-backend queue has no descriptor") }
        return fd
    }

    static func close(_ L: LuaState, _ this: TaskQueue) -> CInt {
        guard !this.isClosed else { return Lua.fail(L, .closed("tqueue")) }
        Scheduling.dropAll(L, queueIndex: 1)
        this.close()
        return Lua.pushTrue(L)
    }

    static func dispose(_ this: TaskQueue) { this.close() }

    static func describe(_ L: LuaState, _ this: TaskQueue?) -> CInt {
        guard let this, !this.isClosed else {
            xpio_pushdescription(L, "xpio.tqueue", -1, "")
            return 1
        }
        guard let fd = this.fileno else { return Lua.push(L, "xpio.tqueue: poll" as StaticString) }
        xpio_pushdescription(L, "xpio.tqueue", fd, "fd")
        return 1
    }
}
