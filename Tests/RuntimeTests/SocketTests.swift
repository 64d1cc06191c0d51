import CSystem
import Testing
@testable import Runtime

@Suite struct SocketTests {
    @Test func closedSocketsRefuseEverything() throws {
        let socket = try Socket.open(type: .TCP)
        try socket.close()
        #expect(socket.isClosed)
        #expect(throws: Failure.self) { try socket.close() }
        #expect(throws: Failure.self) { _ = try socket.descriptor() }
        #expect(throws: Failure.self) { _ = try socket.read(size: 1) }
        #expect(throws: Failure.self) { _ = try socket.waitTarget(.read) }
    }

    @Test func descriptorsAreCloseOnExecAndNonBlocking() throws {
        let (a, b) = try Socket.pipe()
        let (c, d) = try Socket.pair()
        let made = [a, b, c, d, try Socket.open(type: .TCP), try Socket.open(type: .UDP, family: .inet6),
                    try Socket.open(type: .UDP, family: .unix), try Socket.duplicate(fd: 1)]
        for socket in made {
            let fd = try socket.descriptor()
            #expect(xpio_fcntl_int(fd, F_GETFD, 0) & FD_CLOEXEC != 0)
            #expect(xpio_fcntl_int(fd, F_GETFL, 0) & O_NONBLOCK != 0)
        }
    }

    @Test func errnoClassesMapToRetryOrSystem() {
        for code in [EAGAIN, EWOULDBLOCK, EINPROGRESS, EALREADY, EINTR] {
            guard case .retry = Failure.errno(code) else { Issue.record("\(code) is not retry"); continue }
        }
        guard case .system(ECONNREFUSED) = Failure.errno(ECONNREFUSED) else {
            Issue.record("ECONNREFUSED is not a system failure")
            return
        }
    }

    @Test func optionsRoundTrip() throws {
        let socket = try Socket.open(type: .TCP)
        // The runtime reads an int option as the kernel holds it; which
        // options Lua sees as flags is the Spec's to say (the glue fits the
        // value to the `option` enum's types, and checks what is set).
        try socket.setOption(.tcpNoDelay, .flag(true))
        guard case .integer(let noDelay) = try socket.option(.tcpNoDelay), noDelay != 0 else { Issue.record("TCP_NODELAY"); return }
        try socket.setOption(.keepAlive, .integer(1))
        guard case .integer(let keepAlive) = try socket.option(.keepAlive), keepAlive != 0 else { Issue.record("SO_KEEPALIVE"); return }
        try socket.setOption(.keepAlive, .flag(false))
        guard case .integer(0) = try socket.option(.keepAlive) else { Issue.record("SO_KEEPALIVE off"); return }
        try socket.setOption(.nonBlocking, .flag(false))
        guard case .flag(false) = try socket.option(.nonBlocking) else { Issue.record("O_NONBLOCK"); return }
        try socket.setOption(.linger, .integer(3))
        guard case .integer(3) = try socket.option(.linger) else { Issue.record("SO_LINGER on"); return }
        try socket.setOption(.linger, .flag(false))
        guard case .flag(false) = try socket.option(.linger) else { Issue.record("SO_LINGER off"); return }
        guard case .integer(0) = try socket.option(.error) else { Issue.record("SO_ERROR"); return }
        #expect(throws: Failure.self) { try socket.setOption(.error, .integer(0)) }
        #expect(throws: Failure.self) { try socket.setOption(.sendBuffer, .integer(-1)) }
        #expect(throws: Failure.self) { try socket.setOption(.linger, .flag(true)) }
    }

    @Test func connectToAClosedPortIsRefused() throws {
        let listener = try Socket.open(type: .TCP)
        try listener.bind(.address(Address(ipv4: 0x7F00_0001, port: 0)))
        let address = try listener.localAddress()
        try listener.close()   // nothing listens there now
        let client = try Socket.open(type: .TCP)
        var outcome: Failure?
        for _ in 0..<1000 {
            do { try client.connect(.address(address)); break } catch .retry {
                usleep(1000)
                continue
            } catch { outcome = error; break }
        }
        guard case .system(ECONNREFUSED) = outcome else { Issue.record("expected ECONNREFUSED, got \(String(describing: outcome))"); return }
    }

    /// An inet6 socket takes an IPv4 address as a mapped one.
    @Test func anInet6SocketConnectsToAnIPv4Listener() throws {
        let listener = try Socket.open(type: .TCP)
        try listener.bind(.address(Address(ipv4: 0x7F00_0001, port: 0)))
        try listener.listen(backlog: 4)
        let client = try Socket.open(type: .TCP, family: .inet6)
        do { try client.connect(.address(try listener.localAddress())) } catch .retry {}
        usleep(20_000)
        _ = try listener.accept()
    }
}
