import CSystem

/// One name being resolved by getaddrinfo on a worker thread (resolver.c).
/// Its completion descriptor (a duplicate of the request's wake-up: an
/// eventfd, or a pipe's read end in the portable build) becomes
/// readable when the answer is there, so a task can wait on it.
///
/// `localhost` and names under `.localhost` are loopback by RFC 6761 and
/// never leave the process: 127.0.0.1 and ::1, whatever /etc/hosts says;
/// they are answered at once, without a thread. So is a numeric address
/// with a numeric port or none: there is nothing to look up, and a caller
/// outside a task gets its answer instead of "retry".
public final class Resolution {
    private var request: OpaquePointer?
    public private(set) var completion: Descriptor?
    private var answer: Result<[Address], Failure>?
    /// When the answer was first seen (the registry's expiry).
    var finishedAt: Double?

    public init(host: UnsafeRawBufferPointer, service: UnsafeRawBufferPointer, family: AddressFamily?, passive: Bool) throws(Failure) {
        if Resolver.isLocalhost(host) {
            request = nil
            completion = nil
            answer = Result { () throws(Failure) in try Resolver.loopback(service: service, family: family, passive: passive) }
            return
        }
        if Resolver.isNumericHost(host) && service.allSatisfy(isDigit) {
            request = nil
            completion = nil
            answer = Result { () throws(Failure) in
                try Resolver.lookup(host: host, service: service, family: family, passive: passive, numeric: true)
            }
            return
        }
        let started = try Sys.resolveStart(host, service, family.map { $0.domain } ?? AF_UNSPEC, passive: passive).get()
        switch Sys.fcntl(xpio_resolve_descriptor(started), F_DUPFD_CLOEXEC, 0) {
        case .success(let fd):
            request = started
            completion = Descriptor(fd)
        case .failure(let failure):
            xpio_resolve_release(started)
            throw failure
        }
    }

    deinit { cancel() }

    /// Nobody wants the answer any more: the worker frees the request when
    /// its lookup ends, and closing the completion wakes whoever waits on it.
    func cancel() {
        if let request { xpio_resolve_release(request) }
        request = nil
        _ = try? completion?.closeDescriptor()
        completion = nil
    }

    public var isDone: Bool { answer != nil || (request.map { xpio_resolve_done($0) != 0 } ?? true) }

    /// What to wait on: the completion, or nothing once the answer is there.
    public func waitTarget(_ readiness: Readiness) throws(Failure) -> WaitTarget? {
        guard !isDone, let completion else { return nil }
        return WaitTarget(completion, .read)   // the worker writes it once: readable then
    }

    /// The addresses, in getaddrinfo's order; `.retry` while resolving.
    public func addresses() throws(Failure) -> [Address] {
        harvest()
        guard let answer else { throw .retry }
        return try answer.get()
    }

    /// Once the worker is done: keep its answer and let go of the request
    /// and the completion descriptor (a task still waiting on it wakes, as
    /// for any descriptor closed under it), so a finished resolution holds
    /// no descriptor.
    func harvest() {
        guard answer == nil, let request, xpio_resolve_done(request) != 0 else { return }
        let code = xpio_resolve_error(request)
        if code == 0 {
            answer = .success(Resolver.addresses(xpio_resolve_result(request)))
        } else {
            answer = .failure(code == EAI_SYSTEM ? Failure.errno(xpio_resolve_system_error(request)) : .resolution(code))
        }
        xpio_resolve_release(request)
        self.request = nil
        _ = try? completion?.closeDescriptor()
        completion = nil
    }
}

/// Turns host names into addresses.
public enum Resolver {
    /// `xpio.resolve`'s requests, by their arguments. Concurrent calls with
    /// the same arguments share one; a finished one lets go of its
    /// descriptors at the next call and its answer stays 2 seconds for the
    /// callers its completion woke.
    /// A list, not a Dictionary: it stays short (the lookups in flight), and
    /// a Dictionary would pull libm's ceil into the module.
    nonisolated(unsafe) static var requests: [(key: [UInt8], resolution: Resolution)] = []
    static let keepFinished = 2.0

    /// `xpio.resolve(host, service, family)`: the addresses, or `.retry`
    /// while the name is being resolved.
    public static func resolve(host: UnsafeRawBufferPointer, service: UnsafeRawBufferPointer?,
                               family: AddressFamily?) throws(Failure) -> [Address] {
        forgetFinished()
        let key = requestKey(host, service, family)
        if let pending = requests.first(where: { $0.key == key }) { return try pending.resolution.addresses() }
        guard Endpoint.isHostName(host) || isNumericHost(host) else { throw .xpio("xpio: mal-formed host name") }
        guard isValidService(service) else { throw .xpio("xpio: mal-formed service") }
        let resolution = try Resolution(host: host, service: service ?? UnsafeRawBufferPointer(start: nil, count: 0),
                                        family: family, passive: false)
        if resolution.isDone { return try resolution.addresses() }
        requests.append((key, resolution))
        throw .retry
    }

    /// What `when_resolve` waits on: the request's completion (nil: at once).
    public static func waitTarget(host: UnsafeRawBufferPointer, service: UnsafeRawBufferPointer?,
                                  family: AddressFamily?) -> WaitTarget? {
        let key = requestKey(host, service, family)
        guard let pending = requests.first(where: { $0.key == key }) else { return nil }
        return (try? pending.resolution.waitTarget(.read)) ?? nil
    }

    /// Drops every request (the Lua state is closing); their workers free
    /// them when their lookups end.
    public static func forgetAll() { requests.removeAll() }

    static func forgetFinished() {
        guard !requests.isEmpty else { return }
        let now = Clock.now()
        for entry in requests where entry.resolution.isDone && entry.resolution.finishedAt == nil {
            entry.resolution.harvest()
            entry.resolution.finishedAt = now
        }
        requests.removeAll { entry in entry.resolution.finishedAt.map { now - $0 > keepFinished } ?? false }
    }

    /// The arguments as bytes (Swift's String would pull Unicode tables
    /// into the embedded module).
    static func requestKey(_ host: UnsafeRawBufferPointer, _ service: UnsafeRawBufferPointer?, _ family: AddressFamily?) -> [UInt8] {
        var key = Array(host)
        key.append(0)
        if let service { key += Array(service) }
        key.append(0)
        switch family {
        case nil: key.append(UInt8(ascii: "*"))
        case .inet: key.append(UInt8(ascii: "4"))
        case .inet6: key.append(UInt8(ascii: "6"))
        case .unix: key.append(UInt8(ascii: "u"))
        }
        return key
    }

    static func isNumericHost(_ host: UnsafeRawBufferPointer) -> Bool {
        guard host.count > 0, host.count < 64, var text = cString(host) else { return false }
        var scratch = sockaddr_storage()
        if let percent = host.firstIndex(of: UInt8(ascii: "%")) {
            // An IPv6 address with a scope id (`fe80::1%lo`, `fe80::1%2`):
            // getaddrinfo checks the interface.
            let scope = host[(percent + 1)...]
            guard !scope.isEmpty, scope.allSatisfy({ $0 != UInt8(ascii: "%") && $0 > 32 && $0 < 127 }) else { return false }
            text[percent] = 0
            return inet_pton(AF_INET6, text, &scratch) == 1
        }
        // IPv4 in the address format's forms (one number: `2130706433`,
        // as getaddrinfo takes it too), or IPv6.
        return Address.parseIPv4(host) != nil || inet_pton(AF_INET6, text, &scratch) == 1
    }

    /// A service given as a number must be a port (0...65535): getaddrinfo
    /// would wrap 65536 to 0.
    static func isValidService(_ service: UnsafeRawBufferPointer?) -> Bool {
        guard let service, !service.isEmpty, service.allSatisfy(isDigit) else { return true }
        return Address.parsePort(service, from: -1) != nil   // the one port check
    }

    /// The address an endpoint names, resolving a name now (blocking the
    /// caller while getaddrinfo runs): the first one of `family` (any when nil).
    static func resolveNow(_ endpoint: Endpoint, family: AddressFamily?, passive: Bool) throws(Failure) -> Address {
        switch endpoint {
        case .address(let address): return address
        case .name(let host, let service):
            let found = isLocalhost(host)
                ? try loopback(service: service, family: family, passive: passive)
                : try lookup(host: host, service: service, family: family, passive: passive, numeric: false)
            guard let first = found.first else { throw .resolution(EAI_NONAME) }
            return first
        }
    }

    /// 127.0.0.1 and ::1 (those of `family`; both, ::1 first, when nil).
    static func loopback(service: UnsafeRawBufferPointer, family: AddressFamily?, passive: Bool) throws(Failure) -> [Address] {
        let six: StaticString = "::1", four: StaticString = "127.0.0.1"
        var found: [Address] = []
        if family == nil || family == .inet6 {
            found += try lookup(host: six.utf8Buffer, service: service, family: .inet6, passive: passive, numeric: true)
        }
        if family == nil || family == .inet {
            found += try lookup(host: four.utf8Buffer, service: service, family: .inet, passive: passive, numeric: true)
        }
        if family == .unix { throw .resolution(EAI_FAMILY) }
        return found
    }

    /// getaddrinfo on the calling thread.
    static func lookup(host: UnsafeRawBufferPointer, service: UnsafeRawBufferPointer, family: AddressFamily?,
                       passive: Bool, numeric: Bool) throws(Failure) -> [Address] {
        var hints = addrinfo()
        hints.ai_family = family.map { $0.domain } ?? AF_UNSPEC
        hints.ai_flags = (passive ? AI_PASSIVE : 0) | (numeric ? AI_NUMERICHOST : 0)
        hints.ai_socktype = CInt(SOCK_STREAM.rawValue)
        // (a name is labels and a service has no NUL: checked when parsed)
        guard let hostText = cString(host), let serviceText = cString(service) else { throw .resolution(EAI_NONAME) }
        var list: UnsafeMutablePointer<addrinfo>?
        try Sys.getaddrinfo(host.isEmpty ? nil : hostText, service.isEmpty ? nil : serviceText, &hints, &list).get()
        defer { freeaddrinfo(list) }
        return addresses(list)
    }

    /// The addresses of an addrinfo list, in order, without duplicates.
    static func addresses(_ list: UnsafePointer<addrinfo>?) -> [Address] {
        var found: [Address] = []
        var entry = list
        while let current = entry {
            if let raw = current.pointee.ai_addr, Int(current.pointee.ai_addrlen) <= MemoryLayout<sockaddr_storage>.size {
                var address = Address()
                address.length = current.pointee.ai_addrlen
                withUnsafeMutableBytes(of: &address.storage) {
                    $0.copyMemory(from: UnsafeRawBufferPointer(start: raw, count: Int(current.pointee.ai_addrlen)))
                }
                if !found.contains(where: { $0.sameBytes(as: address) }) { found.append(address) }
            }
            entry = UnsafePointer(current.pointee.ai_next)
        }
        return found
    }

    static func isLocalhost(_ host: UnsafeRawBufferPointer) -> Bool {
        let name: StaticString = "localhost"
        func matches(_ bytes: Slice<UnsafeRawBufferPointer>) -> Bool {
            bytes.count == name.utf8CodeUnitCount && zip(bytes, name.utf8Buffer).allSatisfy { ($0 | 0x20) == $1 }
        }
        if matches(host[...]) { return true }
        return host.count > 10 && host[host.count - 10] == UInt8(ascii: ".") && matches(host[(host.count - 9)...])
    }
}

extension Address {
    func sameBytes(as other: Address) -> Bool {
        guard length == other.length else { return false }
        var a = storage, b = other.storage
        return withUnsafeBytes(of: &a) { x in withUnsafeBytes(of: &b) { y in x.prefix(Int(length)).elementsEqual(y.prefix(Int(length))) } }
    }
}

extension StaticString {
    public var utf8Buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: utf8Start, count: utf8CodeUnitCount) }
}
