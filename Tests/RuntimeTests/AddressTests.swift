import Testing
@testable import Runtime

/// The address format, straight from the runtime (the Lua tests check the
/// same through `socket:bind`).
@Suite struct AddressTests {
    func parse(_ text: String) -> (UInt32, UInt16)? {
        var copy = text
        return copy.withUTF8 { bytes in
            (try? Address.parse(UnsafeRawBufferPointer(bytes))).map { ($0.host, $0.port) }
        }
    }

    func format(_ host: UInt32, _ port: UInt16) -> String {
        var buffer = [UInt8](repeating: 0, count: 24)
        let count = buffer.withUnsafeMutableBytes { Address(host: host, port: port).format(into: $0) }
        return String(decoding: buffer[..<count], as: UTF8.self)
    }

    @Test func acceptsEveryVariantOfTheFormat() {
        #expect(parse("192.168.1.1:80")! == (0xC0A8_0101, 80))
        #expect(parse("127.0.0.1")! == (0x7F00_0001, 0))
        #expect(parse("127.0.0.1:")! == (0x7F00_0001, 0))
        #expect(parse(":80")! == (0, 80))
        #expect(parse("0:")! == (0, 0))
        #expect(parse("")! == (0, 0))
        #expect(parse("2130706433:8080")! == (0x7F00_0001, 8080))
        #expect(parse("255.255.255.255:65535")! == (0xFFFF_FFFF, 65535))
        #expect(parse("127.0.0.010:000080")! == (0x7F00_000A, 80))   // decimal, leading zeros allowed
    }

    @Test(arguments: ["256.0.0.1", "1.2.3.4:65536", "1.2.3.4.5", "1.2.3", "1.2", "1..2.3", ".1.2.3",
                      "1.2.3.4.", "a.b.c.d", " 1.2.3.4", "1.2.3.4:80x", "1.2.3.4:-1", "+1", "1.2.3.4::80",
                      "4294967296", "99999999999", "1.2.3.4:65536", "1.2.3.4:100000"])
    func rejectsMalformedAddresses(_ text: String) {
        #expect(parse(text) == nil, "\(text) should be rejected")
    }

    @Test func formatsAddresses() {
        #expect(format(0x7F00_0001, 8080) == "127.0.0.1:8080")
        #expect(format(0, 0) == "0.0.0.0:0")
        #expect(format(0xFFFF_FFFF, 65535) == "255.255.255.255:65535")
    }
}
