import CSystem
import Runtime

/// Process-wide set-up, once per load of the module (`luaopen_xpio` in
/// Sources/CLua/module.c calls it): ignore SIGPIPE, and read the
/// environment switches the tests use.
@_cdecl("xpio_start")
func start() {
    xpio_ignore_sigpipe()
    if let backend = getenv("XPIO_BACKEND") { TaskQueue.defaultBackendIsPoll = strcmp(backend, "poll") == 0 }
    if let flag = getenv("XPIO_NO_PIDFD") { Process.pidfdDisabled = strcmp(flag, "1") == 0 }
    if let delay = getenv("XPIO_RESOLVER_DELAY") { xpio_set_resolver_delay(atoi(delay)) }
}

enum Module {
    static func version() -> StaticString { "0.2.0" }
}
