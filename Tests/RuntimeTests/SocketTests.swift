import CSystem
import Testing
@testable import Runtime

@Suite struct SocketTests {
    @Test func closedSocketsRefuseEverything() throws {
        let socket = try Socket.open(stream: true)
        try socket.close()
        #expect(!socket.isOpen)
        #expect(throws: Failure.self) { try socket.close() }
        #expect(throws: Failure.self) { _ = try socket.descriptor() }
    }

    @Test func descriptorsAreCloseOnExecAndNonBlocking() throws {
        let (a, b) = try Socket.pipe()
        for socket in [a, b, try Socket.open(stream: true), try Socket.duplicate(1)] {
            let fd = try socket.descriptor()
            #expect(xpio_fcntl(fd, F_GETFD) & FD_CLOEXEC != 0)
            #expect(xpio_fcntl(fd, F_GETFL) & O_NONBLOCK != 0)
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
        let socket = try Socket.open(stream: true)
        try socket.setOption(.tcpNoDelay, .flag(true))
        guard case .flag(true) = try socket.option(.tcpNoDelay) else { Issue.record("TCP_NODELAY"); return }
        try socket.setOption(.nonBlocking, .flag(false))
        guard case .flag(false) = try socket.option(.nonBlocking) else { Issue.record("O_NONBLOCK"); return }
        #expect(throws: Failure.self) { try socket.setOption(.sendBuffer, .size(-1)) }
        #expect(throws: Failure.self) { try socket.setOption(.keepAlive, .size(1)) }
    }

    @Test func connectToAClosedPortIsRefused() throws {
        let listener = try Socket.open(stream: true)
        try listener.bind(Address(host: 0x7F00_0001, port: 0))
        let address = try listener.localAddress()
        try listener.close()   // nothing listens there now
        let client = try Socket.open(stream: true)
        var outcome: Failure?
        for _ in 0..<1000 {
            do { try client.connect(address); break } catch .retry {
                usleep(1000)
                continue
            } catch { outcome = error; break }
        }
        guard case .system(ECONNREFUSED) = outcome else { Issue.record("expected ECONNREFUSED, got \(String(describing: outcome))"); return }
    }
}
