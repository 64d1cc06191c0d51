import CLua
import Runtime

/// The Lua half of task queues: tasks are tables, the runtime knows waiter
/// ids. Each queue's userdata keeps three values (`TqueueAPI.userValues`):
/// 1. waiter id + 1 -> task, 2. waiter id + 1 -> the object waited on (kept
/// alive while the task waits), 3. the queue's `_dequeue` function.
/// Task fields are read and written raw: the queue never runs user code.
enum Scheduling {
    /// when_read / when_write / when_wait: schedule the task at `task` on its
    /// `_queue` until `socket` has `readiness` (at once when `socket` is nil).
    static func schedule(_ L: LuaState, object: CInt, task: CInt, on socket: Socket?, _ readiness: Readiness) -> CInt {
        let base = lua_gettop(L)
        rawget(L, task, "_queue")
        let queueIndex = lua_gettop(L)
        guard luaL_testudata(L, queueIndex, TqueueAPI.metatable.cString) != nil,
              let queue = Lua.object(L, queueIndex, TaskQueue.self) else {
            return raise(L, base, "xpio: task._queue is not a task queue (xpio.tqueue)")
        }
        rawget(L, task, "_dequeue")
        guard lua_type(L, -1) == LUA_TNIL else { return raise(L, base, "xpio: task is already scheduled") }
        let id: Int32
        do { id = try queue.schedule(socket, readiness) } catch {
            lua_settop(L, base)
            return Lua.fail(L, error)
        }
        prepare(L, queueIndex)
        let key = lua_Integer(id) + 1
        _ = lua_getiuservalue(L, queueIndex, 1)
        lua_pushvalue(L, task)
        lua_rawseti(L, -2, key)
        _ = lua_getiuservalue(L, queueIndex, 2)
        lua_pushvalue(L, object)
        lua_rawseti(L, -2, key)
        lua_pushstring(L, "_dequeue")
        _ = lua_getiuservalue(L, queueIndex, 3)
        lua_rawset(L, task)
        lua_pushstring(L, "_dequeuedata")
        lua_pushinteger(L, key)
        lua_rawset(L, task)
        lua_settop(L, base)
        return Lua.pushTrue(L)
    }

    /// tqueue:wait: the ready tasks as a new array, each unscheduled.
    static func wait(_ L: LuaState, _ queue: TaskQueue, queueIndex: CInt, timeout: Double?) -> CInt {
        do {
            guard try queue.wait(timeout: timeout) else {
                lua_pushnil(L)
                return 1
            }
        } catch { return Lua.fail(L, error) }
        let ready = queue.ready
        lua_createtable(L, CInt(ready.count), 0)
        guard !ready.isEmpty else { return 1 }
        let result = lua_gettop(L)
        _ = lua_getiuservalue(L, queueIndex, 1)
        _ = lua_getiuservalue(L, queueIndex, 2)
        let tasks = result + 1, objects = result + 2
        var count: lua_Integer = 0
        for id in ready {
            let key = lua_Integer(id) + 1
            let task = lua_gettop(L) + 1
            if lua_rawgeti(L, tasks, key) == LUA_TTABLE {
                clearFields(L, task)
                count += 1
                lua_rawseti(L, result, count)
            } else {
                xpio_pop(L, 1)
            }
            lua_pushnil(L)
            lua_rawseti(L, tasks, key)
            lua_pushnil(L)
            lua_rawseti(L, objects, key)
        }
        lua_settop(L, result)
        return 1
    }

    /// The body of a queue's `_dequeue(task)`; the queue is upvalue 4.
    static func dequeue(_ L: LuaState) -> CInt {
        let queueIndex = xpio_upvalueindex(4)
        guard let queue = Lua.object(L, queueIndex, TaskQueue.self) else { return 0 }
        rawget(L, 1, "_dequeuedata")
        var isInteger: CInt = 0
        let key = lua_tointegerx(L, -1, &isInteger)
        guard isInteger != 0, key > 0, key <= lua_Integer(Int32.max) else { return 0 }
        _ = lua_getiuservalue(L, queueIndex, 1)
        let tasks = lua_gettop(L)
        _ = lua_rawgeti(L, tasks, key)
        guard lua_rawequal(L, -1, 1) != 0 else { return 0 }
        queue.cancel(Int32(key - 1))
        lua_pushnil(L)
        lua_rawseti(L, tasks, key)
        _ = lua_getiuservalue(L, queueIndex, 2)
        lua_pushnil(L)
        lua_rawseti(L, -2, key)
        clearFields(L, 1)
        return Lua.pushTrue(L)
    }

    /// tqueue:close: unschedule every task still waiting, without making it ready.
    static func dropAll(_ L: LuaState, queueIndex: CInt) {
        let base = lua_gettop(L)
        if lua_getiuservalue(L, queueIndex, 1) == LUA_TTABLE {
            let tasks = lua_gettop(L)
            lua_pushnil(L)
            while lua_next(L, tasks) != 0 {
                if lua_type(L, -1) == LUA_TTABLE { clearFields(L, lua_gettop(L)) }
                xpio_pop(L, 1)
            }
            xpio_newtable(L)
            _ = lua_setiuservalue(L, queueIndex, 1)
            xpio_newtable(L)
            _ = lua_setiuservalue(L, queueIndex, 2)
        }
        lua_settop(L, base)
    }

    /// Makes the queue's user values on first use.
    private static func prepare(_ L: LuaState, _ queueIndex: CInt) {
        guard lua_getiuservalue(L, queueIndex, 3) != LUA_TFUNCTION else {
            xpio_pop(L, 1)
            return
        }
        xpio_pop(L, 1)
        xpio_newtable(L)
        _ = lua_setiuservalue(L, queueIndex, 1)
        xpio_newtable(L)
        _ = lua_setiuservalue(L, queueIndex, 2)
        lua_pushvalue(L, queueIndex)
        xpio_pushclosure(L, "_dequeue", "t", { L in Scheduling.dequeue(L) }, 1)
        _ = lua_setiuservalue(L, queueIndex, 3)
    }

    private static func clearFields(_ L: LuaState, _ task: CInt) {
        lua_pushstring(L, "_dequeue")
        lua_pushnil(L)
        lua_rawset(L, task)
        lua_pushstring(L, "_dequeuedata")
        lua_pushnil(L)
        lua_rawset(L, task)
    }

    private static func rawget(_ L: LuaState, _ table: CInt, _ key: StaticString) {
        let index = lua_absindex(L, table)
        _ = Lua.push(L, key)
        _ = lua_rawget(L, index)
    }

    private static func raise(_ L: LuaState, _ base: CInt, _ message: StaticString) -> CInt {
        lua_settop(L, base)
        return Lua.fail(L, .raise(message))
    }
}

extension StaticString {
    var cString: UnsafePointer<CChar> { Lua.cString(self) }
}
