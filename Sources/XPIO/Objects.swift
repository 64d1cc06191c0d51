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
    var summary: (label: StaticString, number: Int64?)? { isClosed ? nil : ("fd", Int64(fd)) }
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
    var summary: (label: StaticString, number: Int64?)? { isClosed ? nil : ("pid", Int64(pid)) }
}

extension SignalWatch: LuaObject {
    var summary: (label: StaticString, number: Int64?)? { isClosed ? nil : ("signal", Int64(number)) }
}

extension TLSContext: LuaObject {
    var summary: (label: StaticString, number: Int64?)? { isClosed ? nil : (isServer ? "server" : "client", nil) }
}
