import CLua
import CSystem
import Runtime

/// The process entries of `Spec/process.spec` (spawn itself is `ModuleAPI.spawn`).
enum ProcessAPI {
    typealias Object = Process

    static func pid(_ this: Process) throws(Failure) -> CInt { this.pid }

    static func kill(_ L: LuaState, _ this: Process, signal: CInt) throws(Failure) {
        try this.kill(try signalNumber(L, signal))
    }

    static func wait(_ this: Process) throws(Failure) -> ExitStatus { try this.poll() }

    /// What when_wait waits on: the pidfd; nil (ready at once) once the status
    /// is known. Without pidfds the task is ready at every wait, so a blocking
    /// `wait` polls.
    static func readiness(_ this: Process) throws(Failure) -> Socket? { this.status == nil ? this.pidfd : nil }

    /// __gc and __close: never kill; reap once the child exits.
    static func dispose(_ this: Process) { this.abandon() }

    static func describe(_ L: LuaState, _ this: Process?) -> CInt {
        xpio_pushdescription(L, "xpio.process", this.map { CInt($0.pid) } ?? -1, "pid")
        return 1
    }

    /// A signal given as a number, a name ("TERM", "SIGTERM"), or nothing (SIGKILL).
    static func signalNumber(_ L: LuaState, _ index: CInt) throws(Failure) -> CInt {
        if Lua.isAbsent(L, index) { return SIGKILL }
        if lua_type(L, index) == LUA_TNUMBER, lua_isinteger(L, index) != 0 {
            let number = Lua.integer(L, index)
            guard number > 0 && number < 65 else { throw .badArgument(2, "invalid signal number") }
            return CInt(number)
        }
        guard lua_type(L, index) == LUA_TSTRING else { throw .badArgument(2, "signal number or name expected") }
        var name = Lua.string(L, index).bytes
        if name.count > 3, name[0] == UInt8(ascii: "S"), name[1] == UInt8(ascii: "I"), name[2] == UInt8(ascii: "G") {
            name = UnsafeRawBufferPointer(rebasing: name[3...])
        }
        for (number, text) in signalNames where name.elementsEqual(text.utf8Buffer) { return number }
        throw .badArgument(2, "unknown signal name")
    }

    static let signalNames: [(CInt, StaticString)] = [
        (SIGHUP, "HUP"), (SIGINT, "INT"), (SIGQUIT, "QUIT"), (SIGILL, "ILL"), (SIGTRAP, "TRAP"),
        (SIGABRT, "ABRT"), (SIGBUS, "BUS"), (SIGFPE, "FPE"), (SIGKILL, "KILL"), (SIGUSR1, "USR1"),
        (SIGSEGV, "SEGV"), (SIGUSR2, "USR2"), (SIGPIPE, "PIPE"), (SIGALRM, "ALRM"), (SIGTERM, "TERM"),
        (SIGCHLD, "CHLD"), (SIGCONT, "CONT"), (SIGSTOP, "STOP"), (SIGTSTP, "TSTP"), (SIGTTIN, "TTIN"),
        (SIGTTOU, "TTOU"), (SIGWINCH, "WINCH"),
    ]
}
