import Runtime

/// What `__close`, `__gc` and `__tostring` need of each object kind (the
/// generated glue calls these for every kind the spec declares).
protocol LuaObject: AnyObject {
    /// Release what the object holds, quietly: what `close` does, for
    /// `__close` and `__gc`.
    func dispose()
    /// What `tostring` shows after "xpio.kind: " (a label and a number),
    /// or nil for "closed".
    var summary: (label: StaticString, number: Int64?)? { get }
}

extension Socket: LuaObject {
    var summary: (label: StaticString, number: Int64?)? { isOpen ? ("fd", Int64(fd)) : nil }
}

extension TaskQueue: LuaObject {
    func dispose() { close() }
    var summary: (label: StaticString, number: Int64?)? {
        if isClosed { return nil }
        guard let fd = epollDescriptor else { return ("poll", nil) }
        return ("fd", Int64(fd))
    }
}

extension Process: LuaObject {
    /// Never kills: the child is reaped once it exits.
    func dispose() { abandon() }
    var summary: (label: StaticString, number: Int64?)? { closed ? nil : ("pid", Int64(pid)) }
}

extension SignalWatch: LuaObject {
    var summary: (label: StaticString, number: Int64?)? { isWatching ? ("signal", Int64(number)) : nil }
}

extension TLSContext: LuaObject {
    var summary: (label: StaticString, number: Int64?)? { isOpen ? (isServer ? "server" : "client", nil) : nil }
}
