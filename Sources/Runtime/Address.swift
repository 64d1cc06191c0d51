import CSystem

/// The address families of XPIO's sockets.
public enum AddressFamily {
    case inet, inet6, unix

    var domain: CInt {
        switch self {
        case .inet: return AF_INET
        case .inet6: return AF_INET6
        case .unix: return AF_UNIX
        }
    }
}

/// A socket address of any family, held as the kernel takes it
/// (`sockaddr_storage` and a length), in XPIO's address format as text:
///
/// - IPv4: `"a.b.c.d:port"`, with the seed's variations: the address as one
///   number (`"2130706433:80"`), an empty address for 0.0.0.0 (`":80"`), no
///   port or an empty one for port 0 (`"127.0.0.1"`, `"127.0.0.1:"`).
///   Numbers are decimal, leading zeros included. Octets over 255, ports
///   over 65535, two, three or more than four parts, signs, spaces are
///   rejected: the format's first implementation never validated.
/// - IPv6, always in brackets: `"[::1]:80"`, `"[::]"` (port 0),
///   `"[fe80::1%lo]:80"` (a scope by interface name or number).
/// - Unix domain: `"unix:/path"` (or a relative path), `"unix:@name"` for
///   Linux's abstract namespace, and `"unix:"` for no name (binding it
///   autobinds an abstract name).
public struct Address {
    public var storage = sockaddr_storage()
    public var length: socklen_t = 0

    public init() {}

    public var family: AddressFamily? {
        switch CInt(storage.ss_family) {
        case AF_INET: return .inet
        case AF_INET6: return .inet6
        case AF_UNIX: return .unix
        default: return nil
        }
    }

    /// An IPv4 address (host byte order) and port.
    public init(ipv4 host: UInt32, port: UInt16) {
        edit(sockaddr_in.self) {
            $0.pointee.sin_family = sa_family_t(AF_INET)
            $0.pointee.sin_port = port.bigEndian
            $0.pointee.sin_addr.s_addr = host.bigEndian
        }
        length = socklen_t(MemoryLayout<sockaddr_in>.size)
    }

    /// The port of an IP address (0 for other families).
    public var port: UInt16 {
        switch family {
        case .inet: return UInt16(bigEndian: withRaw(sockaddr_in.self) { $0.pointee.sin_port })
        case .inet6: return UInt16(bigEndian: withRaw(sockaddr_in6.self) { $0.pointee.sin6_port })
        default: return 0
        }
    }

    /// The same address as an IPv4-mapped IPv6 one (`::ffff:a.b.c.d`), for
    /// an inet6 socket given an IPv4 address.
    public var mappedToIPv6: Address {
        guard family == .inet else { return self }
        var mapped = Address()
        let (host, port) = withRaw(sockaddr_in.self) { ($0.pointee.sin_addr.s_addr, $0.pointee.sin_port) }
        mapped.edit(sockaddr_in6.self) { six in
            six.pointee.sin6_family = sa_family_t(AF_INET6)
            six.pointee.sin6_port = port
            withUnsafeMutableBytes(of: &six.pointee.sin6_addr) { bytes in
                bytes[10] = 0xff
                bytes[11] = 0xff
                withUnsafeBytes(of: host) { for i in 0..<4 { bytes[12 + i] = $0[i] } }
            }
        }
        mapped.length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        return mapped
    }

    func withRaw<T, R>(_ type: T.Type, _ body: (UnsafeMutablePointer<T>) -> R) -> R {
        var copy = storage
        return withUnsafeMutableBytes(of: &copy) { body($0.baseAddress!.assumingMemoryBound(to: T.self)) }
    }

    mutating func edit<T, R>(_ type: T.Type, _ body: (UnsafeMutablePointer<T>) -> R) -> R {
        withUnsafeMutableBytes(of: &storage) { body($0.baseAddress!.assumingMemoryBound(to: T.self)) }
    }

    /// Whether this address, a connected socket's peer, is where a connect
    /// to `target` leads: the family, and the port and address of an IP one
    /// (not IPv6's flow label, which the kernel may fill in), the path bytes
    /// of a Unix one. A target of the unspecified address (`0.0.0.0`, `::`,
    /// `::ffff:0.0.0.0`), which the kernel connects to this host's loopback,
    /// is reached by any address with its port.
    func isPeer(of target: Address) -> Bool {
        guard storage.ss_family == target.storage.ss_family else { return false }
        switch family {
        case .inet:
            let theirs = target.withRaw(sockaddr_in.self) { $0.pointee.sin_addr.s_addr }
            return port == target.port && (theirs == 0 || withRaw(sockaddr_in.self) { $0.pointee.sin_addr.s_addr } == theirs)
        case .inet6:
            return port == target.port && withRaw(sockaddr_in6.self) { mine in
                target.withRaw(sockaddr_in6.self) { theirs in
                    Address.isUnspecified6(&theirs.pointee.sin6_addr) || memcmp(&mine.pointee.sin6_addr, &theirs.pointee.sin6_addr, 16) == 0
                }
            }
        default:
            return withSockaddr { mine, mineLength in
                target.withSockaddr { theirs, theirLength in
                    let a = Address.name(mine, mineLength), b = Address.name(theirs, theirLength)
                    return a.count == b.count && (a.count == 0 || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0)
                }
            }
        }
    }

    /// `::` or `::ffff:0.0.0.0`: every byte zero but a mapped address's
    /// two 0xff.
    private static func isUnspecified6(_ address: UnsafeMutablePointer<in6_addr>) -> Bool {
        withUnsafeBytes(of: &address.pointee) { bytes in
            (0..<10).allSatisfy { bytes[$0] == 0 } && bytes[10] == bytes[11] && (bytes[10] == 0 || bytes[10] == 0xff)
                && (12..<16).allSatisfy { bytes[$0] == 0 }
        }
    }

    /// The name bytes of a Unix address of `length` bytes: a path without
    /// the NUL the kernel may count after it (an abstract name, which
    /// starts with NUL: every byte).
    private static func name(_ address: UnsafePointer<sockaddr>, _ length: socklen_t) -> UnsafeRawBufferPointer {
        let offset = MemoryLayout<sa_family_t>.size
        let bytes = UnsafeRawBufferPointer(start: UnsafeRawPointer(address) + offset, count: max(0, Int(length) - offset))
        guard let first = bytes.first, first != 0, let end = bytes.firstIndex(of: 0) else { return bytes }
        return UnsafeRawBufferPointer(rebasing: bytes[..<end])
    }

    /// Calls `body` with the address as the kernel takes it.
    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var copy = storage
        return withUnsafeBytes(of: &copy) { body($0.baseAddress!.assumingMemoryBound(to: sockaddr.self), length) }
    }

    // MARK: parsing

    /// Parses an address literal of any form; names are not addresses.

    static func parseIPv4(_ text: UnsafeRawBufferPointer) -> Address? {
        var colon = text.count
        for index in 0..<text.count where text[index] == UInt8(ascii: ":") {
            guard colon == text.count else { return nil }   // a second ':'
            colon = index
        }
        // The host: empty, one number, or four dotted octets.
        var parts: [UInt64] = []
        var value: UInt64 = 0
        var digits = 0
        for index in 0...colon {
            let byte = index < colon ? text[index] : UInt8(ascii: ".")
            if isDigit(byte) {
                digits += 1
                value = value * 10 + UInt64(byte - UInt8(ascii: "0"))
                guard value <= UInt64(UInt32.max) else { return nil }   // leading zeros are fine
            } else if byte == UInt8(ascii: ".") {
                if digits == 0 {
                    // Only an entirely empty host is allowed.
                    guard index == colon && parts.isEmpty && colon == 0 else { return nil }
                    break
                }
                parts.append(value)
                value = 0
                digits = 0
            } else {
                return nil
            }
        }
        let host: UInt64
        switch parts.count {
        case 0: host = 0
        case 1: host = parts[0]
        case 4:
            guard parts.allSatisfy({ $0 <= 255 }) else { return nil }
            host = parts[0] << 24 | parts[1] << 16 | parts[2] << 8 | parts[3]
        default: return nil
        }
        guard let port = parsePort(text, from: colon) else { return nil }
        return Address(ipv4: UInt32(host), port: port)
    }

    /// Decimal digits up to 65535 after `colon` (none: port 0).
    static func parsePort(_ text: UnsafeRawBufferPointer, from colon: Int) -> UInt16? {
        var port: UInt32 = 0
        var index = colon + 1
        while index < text.count {
            let byte = text[index]
            guard isDigit(byte) else { return nil }
            port = port * 10 + UInt32(byte - UInt8(ascii: "0"))
            guard port <= 65535 else { return nil }
            index += 1
        }
        return UInt16(port)
    }

    /// `[address%scope]:port`, `[address]` or `[address]:` (port 0).
    static func parseIPv6(_ text: UnsafeRawBufferPointer) -> Address? {
        guard let close = text.firstIndex(of: UInt8(ascii: "]")) else { return nil }
        let start = 1, end = close
        var portColon = text.count
        if close + 1 < text.count {
            guard text[close + 1] == UInt8(ascii: ":") else { return nil }
            portColon = close + 1
        }
        var scopeAt = end
        for index in start..<end where text[index] == UInt8(ascii: "%") {
            scopeAt = index
            break
        }
        let hostLength = scopeAt - start
        guard hostLength > 0, hostLength < 64 else { return nil }
        var address = Address()
        let parsed: Bool = address.edit(sockaddr_in6.self) { six in
            six.pointee.sin6_family = sa_family_t(AF_INET6)
            guard let host = cString(text[start..<(start + hostLength)]) else { return false }
            guard inet_pton(AF_INET6, host, &six.pointee.sin6_addr) == 1 else { return false }
            if scopeAt < end {
                guard let scope = parseScope(text, scopeAt + 1, end) else { return false }
                six.pointee.sin6_scope_id = scope
            }
            return true
        }
        guard parsed else { return nil }
        guard let port = portColon < text.count ? parsePort(text, from: portColon) : 0 else { return nil }
        address.edit(sockaddr_in6.self) { $0.pointee.sin6_port = port.bigEndian }
        address.length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        return address
    }

    /// A scope: an interface number, or a name (`if_nametoindex`).
    static func parseScope(_ text: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> UInt32? {
        guard end > start, end - start < Int(IF_NAMESIZE) else { return nil }
        if text[start..<end].allSatisfy(isDigit) {
            var value: UInt64 = 0
            for byte in text[start..<end] {
                value = value * 10 + UInt64(byte - UInt8(ascii: "0"))
                guard value <= UInt64(UInt32.max) else { return nil }
            }
            return UInt32(value)
        }
        // an interface's name; not an alias label ("lo:0"), which ioctl would also take
        guard !text[start..<end].contains(UInt8(ascii: ":")), let name = cString(text[start..<end]) else { return nil }
        let index = if_nametoindex(name)
        return index == 0 ? nil : index
    }

    /// After `unix:`: `@name` (abstract), a path, or nothing.
    static func parseUnix(_ text: UnsafeRawBufferPointer) -> Address? {
        let prefix = 5
        let name = UnsafeRawBufferPointer(rebasing: text[prefix...])
        let capacity = MemoryLayout.size(ofValue: sockaddr_un().sun_path)
        let abstract = name.first == UInt8(ascii: "@")
        guard abstract || !name.contains(0) else { return nil }
        guard name.count <= (abstract ? capacity : capacity - 1) else { return nil }
        var address = Address()
        address.edit(sockaddr_un.self) { un in
            un.pointee.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &un.pointee.sun_path) { path in
                for (i, byte) in name.enumerated() { path[i] = (abstract && i == 0) ? 0 : byte }
            }
        }
        let header = MemoryLayout<sa_family_t>.size
        address.length = socklen_t(header + name.count + (abstract || name.isEmpty ? 0 : 1))
        return address
    }

    // MARK: formatting

    /// The address in XPIO's format, written into `buffer` (128 bytes are
    /// always enough); returns the length.
    public func format(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        var writer = Writer(buffer: buffer)
        switch family {
        case .inet:
            let (host, port) = withRaw(sockaddr_in.self) { (UInt32(bigEndian: $0.pointee.sin_addr.s_addr), UInt16(bigEndian: $0.pointee.sin_port)) }
            for shift in [24, 16, 8, 0] as [UInt32] {
                writer.number(UInt64((host >> shift) & 0xff))
                writer.byte(shift == 0 ? UInt8(ascii: ":") : UInt8(ascii: "."))
            }
            writer.number(UInt64(port))
        case .inet6:
            writer.byte(UInt8(ascii: "["))
            withRaw(sockaddr_in6.self) { six in
                var text = [CChar](repeating: 0, count: 64)
                if inet_ntop(AF_INET6, &six.pointee.sin6_addr, &text, 64) != nil {
                    for byte in text where byte != 0 { writer.byte(UInt8(bitPattern: byte)) }
                }
                if six.pointee.sin6_scope_id != 0 {
                    writer.byte(UInt8(ascii: "%"))
                    var name = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
                    if if_indextoname(six.pointee.sin6_scope_id, &name) != nil {
                        for byte in name where byte != 0 { writer.byte(UInt8(bitPattern: byte)) }
                    } else {
                        writer.number(UInt64(six.pointee.sin6_scope_id))
                    }
                }
            }
            writer.byte(UInt8(ascii: "]"))
            writer.byte(UInt8(ascii: ":"))
            writer.number(UInt64(port))
        case .unix:
            for byte in "unix:".utf8 { writer.byte(byte) }
            let header = MemoryLayout<sa_family_t>.size
            let count = max(0, Int(length) - header)
            withRaw(sockaddr_un.self) { un in
                withUnsafeBytes(of: &un.pointee.sun_path) { path in
                    guard count > 0 else { return }
                    if path[0] == 0 {
                        writer.byte(UInt8(ascii: "@"))
                        for i in 1..<min(count, path.count) { writer.byte(path[i]) }
                    } else {
                        for i in 0..<min(count, path.count) where path[i] != 0 { writer.byte(path[i]) }
                    }
                }
            }
        case nil:
            for byte in "unknown:".utf8 { writer.byte(byte) }
        }
        return writer.length
    }

    struct Writer {
        let buffer: UnsafeMutableRawBufferPointer
        var length = 0
        mutating func byte(_ byte: UInt8) {
            guard length < buffer.count else { return }
            buffer[length] = byte
            length += 1
        }
        mutating func number(_ value: UInt64) {
            var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
            var count = 0
            var rest = value
            withUnsafeMutableBytes(of: &digits) { scratch in
                repeat {
                    scratch[count] = UInt8(ascii: "0") + UInt8(rest % 10)
                    rest /= 10
                    count += 1
                } while rest > 0
                while count > 0 {
                    count -= 1
                    byte(scratch[count])
                }
            }
        }
    }
}

@inline(__always) func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

extension Failure {
    static var malformedAddress: Failure { .xpio("xpio: mal-formed address") }
}

/// What `bind`, `connect` and `sendto` take: an address, or a host name
/// with a port or service that must be resolved first (`"localhost:80"`,
/// `"example.org:https"`). A name is labels of letters, digits and `-`
/// joined by dots, the last one starting with a letter (so no numeric form
/// getaddrinfo would read as an address, like `"0x7f000001"`, is a name),
/// and always has a port or service after its `:`. So `"localhost"` alone,
/// like every other string that is neither, is a mal-formed address.
public enum Endpoint {
    case address(Address)
    case name(host: UnsafeRawBufferPointer, service: UnsafeRawBufferPointer)

    public static func parse(_ text: UnsafeRawBufferPointer) throws(Failure) -> Endpoint {
        if text.count >= 5, text[0] == UInt8(ascii: "u"), text[1] == UInt8(ascii: "n"), text[2] == UInt8(ascii: "i"),
           text[3] == UInt8(ascii: "x"), text[4] == UInt8(ascii: ":") {
            guard let address = Address.parseUnix(text) else { throw .malformedAddress }
            // A well-formed abstract name (`unix:@name`) is Linux's alone, and
            // so is `unix:`, whose bind autobinds one: the kernel would hand
            // out names the build then refuses.
            if !Platform.linux, text.count == 5 || text[5] == UInt8(ascii: "@") { throw Platform.unsupported }
            return .address(address)
        }
        if text.first == UInt8(ascii: "[") {
            guard let address = Address.parseIPv6(text) else { throw .malformedAddress }
            return .address(address)
        }
        if let address = Address.parseIPv4(text) { return .address(address) }
        guard let colon = text.firstIndex(of: UInt8(ascii: ":")) else { throw .malformedAddress }
        let host = UnsafeRawBufferPointer(rebasing: text[..<colon])
        let service = UnsafeRawBufferPointer(rebasing: text[(colon + 1)...])
        guard isHostName(host), isService(service) else { throw .malformedAddress }
        return .name(host: host, service: service)
    }

    static func isHostName(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count > 0, bytes.count <= 253 else { return false }
        var labelStart = 0
        for index in 0...bytes.count {
            guard index < bytes.count, bytes[index] != UInt8(ascii: ".") else {
                let length = index - labelStart
                guard length > 0, length <= 63, bytes[labelStart] != UInt8(ascii: "-"), bytes[index - 1] != UInt8(ascii: "-") else { return false }
                if index == bytes.count { return isLetter(bytes[labelStart]) }   // the last label starts with a letter
                labelStart = index + 1
                continue
            }
            guard isLetter(bytes[index]) || isDigit(bytes[index]) || bytes[index] == UInt8(ascii: "-") else { return false }
        }
        return false
    }

    static func isLetter(_ byte: UInt8) -> Bool { (byte | 0x20) >= UInt8(ascii: "a") && (byte | 0x20) <= UInt8(ascii: "z") }

    /// A port number, or a service name of letters, digits and `-`.
    static func isService(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count > 0, bytes.count <= 32 else { return false }
        if bytes.allSatisfy(isDigit) { return Address.parsePort(bytes, from: -1) != nil }
        return bytes.allSatisfy { isLetter($0) || isDigit($0) || $0 == UInt8(ascii: "-") }
    }
}
