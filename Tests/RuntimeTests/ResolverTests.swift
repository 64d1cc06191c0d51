import CSystem
import Testing
@testable import Runtime

@Suite struct ResolverTests {
    func endpoint(_ text: StaticString) throws -> Endpoint { try Endpoint.parse(text.utf8Buffer) }

    @Test func aConnectToAnUnknownNameFailsOnceResolved() throws {
        let socket = try Socket.open(type: .TCP)
        let target = try endpoint("nothing-here.invalid:80")
        #expect(throws: Failure.self) { try socket.connect(target) }
        for _ in 0..<500 {
            do {
                try socket.connect(target)
                Issue.record("connected to a name that does not exist")
                return
            } catch .retry {
                usleep(10_000)
            } catch .resolution(let code) {
                #expect(code == EAI_NONAME)
                return
            } catch {
                Issue.record("unexpected \(error)")
                return
            }
        }
        Issue.record("still resolving after 5 s")
    }
}
