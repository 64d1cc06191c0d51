import CSystem

/// An IPv4 address and port, in XPIO's address format: `"a.b.c.d:port"`.
///
/// Accepted variations: the address as one number (`"2130706433:80"`), an
/// empty address for 0.0.0.0 (`":80"`), no port or an empty one for port 0
/// (`"127.0.0.1"`, `"127.0.0.1:"`). Numbers are decimal, leading zeros
/// included (`"127.0.0.010"` is 127.0.0.10). Anything else (octets over 255, ports
/// over 65535, two, three or more than four parts, signs, spaces, letters)
/// is rejected: the format's first implementation never validated.
public struct Address {
    public var host: UInt32   // host byte order
    public var port: UInt16

    public init(host: UInt32, port: UInt16) {
        self.host = host
        self.port = port
    }

    init(raw: sockaddr_in) {
        host = UInt32(bigEndian: raw.sin_addr.s_addr)
        port = UInt16(bigEndian: raw.sin_port)
    }

    var raw: sockaddr_in {
        var raw = sockaddr_in()
        raw.sin_family = sa_family_t(AF_INET)
        raw.sin_port = port.bigEndian
        raw.sin_addr.s_addr = host.bigEndian
        return raw
    }

    /// Parses the address format; `.xpio("xpio: mal-formed address")` when it does not match.
    public static func parse(_ text: UnsafeRawBufferPointer) throws(Failure) -> Address {
        let malformed = Failure.xpio("xpio: mal-formed address")
        var colon = text.count
        for index in 0..<text.count where text[index] == UInt8(ascii: ":") {
            guard colon == text.count else { throw malformed }   // a second ':'
            colon = index
        }
        // The host: empty, one number, or four dotted octets.
        var parts: [UInt64] = []
        var value: UInt64 = 0
        var digits = 0
        for index in 0...colon {
            let byte = index < colon ? text[index] : UInt8(ascii: ".")
            if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                digits += 1
                value = value * 10 + UInt64(byte - UInt8(ascii: "0"))
                guard value <= UInt64(UInt32.max) else { throw malformed }   // leading zeros are fine
            } else if byte == UInt8(ascii: ".") {
                if digits == 0 {
                    // Only an entirely empty host is allowed.
                    guard index == colon && parts.isEmpty && colon == 0 else { throw malformed }
                    break
                }
                parts.append(value)
                value = 0
                digits = 0
            } else {
                throw malformed
            }
        }
        let host: UInt64
        switch parts.count {
        case 0: host = 0
        case 1: host = parts[0]
        case 4:
            guard parts.allSatisfy({ $0 <= 255 }) else { throw malformed }
            host = parts[0] << 24 | parts[1] << 16 | parts[2] << 8 | parts[3]
        default: throw malformed
        }
        guard host <= UInt64(UInt32.max) else { throw malformed }
        // The port: nothing, or decimal digits up to 65535.
        var port: UInt64 = 0
        if colon < text.count {
            for index in (colon + 1)..<text.count {
                let byte = text[index]
                guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { throw malformed }
                port = port * 10 + UInt64(byte - UInt8(ascii: "0"))
                guard port <= 65535 else { throw malformed }
            }
        }
        return Address(host: UInt32(host), port: UInt16(port))
    }

    /// Writes `"a.b.c.d:port"` into `buffer` (22 bytes at most) and returns its length.
    public func format(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        var length = 0
        func put(_ number: UInt32) {
            var digits: (UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0)
            var count = 0
            var rest = number
            withUnsafeMutableBytes(of: &digits) { scratch in
                repeat {
                    scratch[count] = UInt8(ascii: "0") + UInt8(rest % 10)
                    rest /= 10
                    count += 1
                } while rest > 0
                while count > 0 {
                    count -= 1
                    buffer[length] = scratch[count]
                    length += 1
                }
            }
        }
        for shift in [24, 16, 8, 0] as [UInt32] {
            put((host >> shift) & 0xff)
            buffer[length] = shift == 0 ? UInt8(ascii: ":") : UInt8(ascii: ".")
            length += 1
        }
        put(UInt32(port))
        return length
    }
}
