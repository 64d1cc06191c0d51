import Testing
@testable import Runtime

/// The address format, straight from the runtime (the Lua tests check the
/// same through `socket:bind` and `getsockname`).
@Suite struct AddressTests {
    func endpoint(_ text: String) -> Endpoint? {
        var copy = text
        return copy.withUTF8 { try? Endpoint.parse(UnsafeRawBufferPointer($0)) }
    }

    /// The address in the format, as getsockname would show it: parse, then format.
    func roundTrip(_ text: String) -> String? {
        guard case .address(let address) = endpoint(text) else { return nil }
        var buffer = [UInt8](repeating: 0, count: 128)
        let count = buffer.withUnsafeMutableBytes { address.format(into: $0) }
        return String(decoding: buffer[..<count], as: UTF8.self)
    }

    func isName(_ text: String) -> Bool {
        if case .name = endpoint(text) { return true }
        return false
    }

    @Test func acceptsEveryVariantOfTheIPv4Format() {
        #expect(roundTrip("192.168.1.1:80") == "192.168.1.1:80")
        #expect(roundTrip("127.0.0.1") == "127.0.0.1:0")
        #expect(roundTrip("127.0.0.1:") == "127.0.0.1:0")
        #expect(roundTrip(":80") == "0.0.0.0:80")
        #expect(roundTrip("0:") == "0.0.0.0:0")
        #expect(roundTrip("") == "0.0.0.0:0")
        #expect(roundTrip("2130706433:8080") == "127.0.0.1:8080")
        #expect(roundTrip("255.255.255.255:65535") == "255.255.255.255:65535")
        #expect(roundTrip("127.0.0.010:000080") == "127.0.0.10:80")   // decimal, leading zeros allowed
    }

    @Test func acceptsIPv6InBrackets() {
        #expect(roundTrip("[::1]:80") == "[::1]:80")
        #expect(roundTrip("[::]:0") == "[::]:0")
        #expect(roundTrip("[::]") == "[::]:0")
        #expect(roundTrip("[::1]:") == "[::1]:0")
        #expect(roundTrip("[fe80::1%lo]:80") == "[fe80::1%lo]:80")
        #expect(roundTrip("[fe80::1%1]:80") == "[fe80::1%lo]:80")     // scope by number, shown by name
        #expect(roundTrip("[2001:DB8::1]:443") == "[2001:db8::1]:443")
        #expect(roundTrip("[::ffff:127.0.0.1]:1") == "[::ffff:127.0.0.1]:1")
    }

    @Test func acceptsUnixPathsAndAbstractNames() {
        #expect(roundTrip("unix:/tmp/x.sock") == "unix:/tmp/x.sock")
        #expect(roundTrip("unix:relative.sock") == "unix:relative.sock")
        #expect(roundTrip("unix:@name") == "unix:@name")
        #expect(roundTrip("unix:") == "unix:")
        #expect(roundTrip("unix:/" + String(repeating: "a", count: 106)) != nil)   // 107 bytes + NUL fit
        #expect(roundTrip("unix:/" + String(repeating: "a", count: 107)) == nil)
    }

    @Test func namesNeedAPortOrServiceAndALetterFirstLastLabel() {
        #expect(isName("localhost:80"))
        #expect(isName("example.org:https"))
        #expect(isName("3com.com:80"))
        #expect(isName("no-such-host.invalid:1"))
        #expect(!isName("localhost"))            // no port: mal-formed
        #expect(endpoint("localhost") == nil)
    }

    @Test(arguments: ["256.0.0.1", "1.2.3.4:65536", "1.2.3.4.5", "1.2.3", "1.2", "1..2.3", ".1.2.3",
                      "1.2.3.4.", " 1.2.3.4", "1.2.3.4:80x", "1.2.3.4:-1", "+1", "1.2.3.4::80",
                      "4294967296", "99999999999", "1.2.3.4:100000", "::1", "::", "[::1", "[::1]80", "[::1]:x",
                      "[::1]:65536", "[:::1]:1", "[::1%]:1", "[::1%nosuchif0]:1", "[1.2.3.4]:1", "0x7f000001:1",
                      "1e3:0", "127.0.0.1x:0", "a..b:1", "-a:1", "a-:1", "example.org.:80", "a.b:", "a_b:80",
                      "unix:/a\0b", "localhost:http s"])
    func rejectsMalformedAddresses(_ text: String) {
        #expect(endpoint(text) == nil, "\(text) should be rejected")
    }
}

extension Endpoint: Equatable {
    public static func == (a: Endpoint, b: Endpoint) -> Bool {
        switch (a, b) {
        case (.address(let x), .address(let y)): return x.sameBytes(as: y)
        case (.name(let h1, let s1), .name(let h2, let s2)): return h1.elementsEqual(h2) && s1.elementsEqual(s2)
        default: return false
        }
    }
}
