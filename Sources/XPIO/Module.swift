import CLua
import CSystem
import Runtime

/// The entry point `require "xpio"` calls. Everything else is registered by
/// the generated `registerGlue`.
@_cdecl("luaopen_xpio")
public func luaopen_xpio(_ L: OpaquePointer?) -> CInt {
    xpio_ignore_sigpipe()
    if let backend = getenv("XPIO_BACKEND") {
        TaskQueue.defaultBackendIsPoll = strcmp(backend, "poll") == 0
    }
    if let flag = getenv("XPIO_NO_PIDFD") {
        Process.pidfdDisabled = strcmp(flag, "1") == 0
    }
    lua_createtable(L, 0, 24)
    registerGlue(L)
    return 1
}
