import CSystem
import CTLSABI
import Runtime

/// Process-wide set-up, at every load of the module (`luaopen_xpio` in
/// Sources/CLua/module.c calls it): ignore SIGPIPE, let the release build
/// count references without atomics if the runtime's object header is the
/// one it knows (Sources/CSystem/refcount.c), and read the environment
/// switches the tests use.
@_cdecl("xpio_start")
func start() {
    xpio_ignore_sigpipe()
    withExtendedLifetime(RefcountProbe()) { xpio_refcount_check(Unmanaged.passUnretained($0).toOpaque()) }
    if let backend = getenv("XPIO_BACKEND") { TaskQueue.defaultBackendIsPoll = strcmp(backend, "poll") == 0 }
    if let flag = getenv("XPIO_NO_PIDFD") { Process.pidfdDisabled = strcmp(flag, "1") == 0 }
    if let delay = getenv("XPIO_RESOLVER_DELAY") { xpio_set_resolver_delay(atoi(delay)) }
    if let flag = getenv("XPIO_WAIT_FIRST") { Socket.readsWaitFirst = strcmp(flag, "0") != 0 }
}

/// A fresh object for xpio_refcount_check to watch the runtime count.
private final class RefcountProbe {}

/// A Lua state loaded the module for the first time (loading it again,
/// after `package.loaded.xpio = nil`, does not count twice).
@_cdecl("xpio_state_opened")
func stateOpened() { Module.states += 1 }

/// A state that loaded the module is closing (Sources/CLua/module.c): the
/// resolver's requests go (another state's pending ones would be started
/// again by their next call); when it was the last one, the SIGCHLD
/// fallback and the buffered reads' spare block go too.
@_cdecl("xpio_stop")
func stop() {
    Resolver.forgetAll()
    Module.states -= 1
    if Module.states == 0 {
        Process.releaseFallback()
        Socket.dropSpareReadBlock()
    }
}

enum Module {
    /// Lua states that have loaded the module and not closed.
    nonisolated(unsafe) static var states = 0

    /// One version for xpio.so and xpio/tls.so (Sources/CTLSABI).
    static func version() -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: xpio_version(), count: strlen(xpio_version())) }
}
