import CSystem

/// Bytes a socket has read from the kernel but not yet given to Lua: what
/// `readline`, `readuntil`, `readexactly` and `readall` keep between tries,
/// so a `try_` that answers "retry" loses nothing. It lives in the socket,
/// so that a raw `read` takes from it first and the two can be mixed.
///
/// One growable block (malloc'd); consumed bytes are reclaimed when more room is needed.
/// Bytes handed out (`bytes`, `take`) stay valid until the next fill.
///
/// A buffer holds a block only while it holds bytes: one that `take`
/// empties gives its block up to a single process-wide spare, which the
/// next buffer to read takes (a fill, of any socket, comes after the bytes
/// handed out were pushed). A server's idle connections hold no block, and
/// in request/response traffic no read allocates.
final class ReadBuffer {
    private var base: UnsafeMutableRawPointer?
    private var capacity = 0
    private var start = 0
    private var end = 0
    /// How far the last search for `searched` got, so that a peer sending
    /// one byte at a time costs O(n), not O(n²).
    private var scanned = 0
    private var searched: [UInt8] = []
    /// The last buffered read found these bytes too few (a partial line)
    /// and answered "retry": until bytes come or go, they do not make the
    /// socket ready (`Socket.waitTarget`), or a task would wake for ever.
    var wanting = false

    deinit { free(base) }

    var count: Int { end - start }
    var isEmpty: Bool { end == start }

    /// The buffered bytes.
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base.map { $0 + start }, count: end - start) }

    /// The first `count` bytes, consumed.
    func take(_ count: Int) -> UnsafeRawBufferPointer {
        let taken = UnsafeRawBufferPointer(rebasing: bytes[..<count])
        start += count
        wanting = false
        scanned = max(0, scanned - count)
        if start == end {
            start = 0
            end = 0
            scanned = 0
            giveUpBlock()
        }
        return taken
    }

    /// The block an emptied buffer gave up, for the next one that reads.
    nonisolated(unsafe) private static var spare: UnsafeMutableRawPointer?
    nonisolated(unsafe) private static var spareCapacity = 0

    /// Hands the (empty) block to the spare slot; the block there before was
    /// given up by an earlier call, whose bytes were pushed long since.
    private func giveUpBlock() {
        guard let block = base else { return }
        free(ReadBuffer.spare)
        ReadBuffer.spare = block
        ReadBuffer.spareCapacity = capacity
        base = nil
        capacity = 0
    }

    /// Frees the spare block (the last state using the module closes).
    static func dropSpare() {
        free(spare)
        spare = nil
        spareCapacity = 0
    }

    /// Where `delimiter` first occurs, or nil (remembering how far it looked).
    /// A match leaves nothing remembered: the caller takes the bytes up to
    /// it (or, refusing a line too long, searches again from the start), so
    /// the usual readline neither compares nor stores its delimiter.
    func find(_ delimiter: UnsafeRawBufferPointer) -> Int? {
        // How far an earlier search got counts only for the same delimiter.
        if scanned > 0 && !ReadBuffer.same(searched, delimiter) { scanned = 0 }
        let haystack = bytes
        let from = max(0, scanned - delimiter.count + 1)
        guard delimiter.count > 0, haystack.count >= delimiter.count, from <= haystack.count - delimiter.count,
              let found = xpio_memmem(haystack.baseAddress! + from, haystack.count - from, delimiter.baseAddress!, delimiter.count) else {
            scanned = haystack.count
            if scanned > 0 && !ReadBuffer.same(searched, delimiter) { searched = Array(delimiter) }
            return nil
        }
        scanned = 0
        return UnsafeRawPointer(found) - haystack.baseAddress!
    }

    /// Whether `remembered` holds the bytes of `delimiter` (memcmp: the
    /// generic `elementsEqual` cost 200 instructions).
    private static func same(_ remembered: [UInt8], _ delimiter: UnsafeRawBufferPointer) -> Bool {
        guard remembered.count == delimiter.count else { return false }
        guard delimiter.count > 0 else { return true }
        return remembered.withUnsafeBytes { memcmp($0.baseAddress!, delimiter.baseAddress!, delimiter.count) == 0 }
    }

    /// Puts bytes taken back in front (TLS could not start with them).
    func putBack(_ bytes: UnsafeRawBufferPointer) {
        guard isEmpty, bytes.count > 0 else { return }
        wanting = false
        if capacity < bytes.count {
            guard let block = realloc(base, bytes.count) else { return }
            base = block
            capacity = bytes.count
        }
        base!.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        start = 0
        end = bytes.count
        scanned = 0
    }

    /// One read from `socket` (its descriptor, or TLS) into the free room;
    /// 0 at end of stream. The block is the spare one when there is one, and
    /// sized to the need, not to the largest read: it starts at 4 KiB and
    /// doubles only when reads fill it (a long line, a big `readexactly`,
    /// `readall`). A block bigger than 64 KiB left empty is given back
    /// here. Room is made before the read, so a failure to make it
    /// (ENOMEM) loses no byte.
    /// The corresponding C function is `read`.
    func fill(from socket: Socket, _ fd: CInt) throws(Failure) -> Int {
        takeSpare()
        if isEmpty && capacity > ReadBuffer.largest { release() }
        // A datagram is read whole or its rest is lost: room for the
        // largest one `read` takes (64 KiB), not the usual 4 KiB.
        try reserve(socket.isDatagram ? ReadBuffer.largest : ReadBuffer.smallest)
        let read: Int
        do throws(Failure) {
            read = try socket.receive(fd, base! + end, capacity - end)
        } catch {
            // Nothing came (EAGAIN, mostly): a connection waiting for its
            // peer holds no block while it waits.
            if isEmpty { giveUpBlock() }
            throw error
        }
        end += read
        if read > 0 { wanting = false }
        if isEmpty { giveUpBlock() }
        return read
    }

    /// Appends what one read of pipe end `fd` gives, at most `count` bytes:
    /// the bytes a splice took from the socket and its output did not
    /// (Splice.swift), which the pipe holds for sure. Room for all `count`
    /// is made first (a failure to make it loses no byte: they stay in the
    /// pipe). Returns the bytes appended.
    /// The corresponding C function is `read`.
    func fill(fromPipe fd: CInt, _ count: Int) throws(Failure) -> Int {
        takeSpare()
        try reserve(count)
        let read = try Sys.read(fd, base! + end, count).get()
        end += read
        if read > 0 { wanting = false }
        if isEmpty { giveUpBlock() }
        return read
    }

    /// Takes the spare block when this buffer has none.
    private func takeSpare() {
        if base == nil, let block = ReadBuffer.spare {
            base = block
            capacity = ReadBuffer.spareCapacity
            ReadBuffer.spare = nil
        }
    }

    /// The least room a read gets, and the largest block kept when empty.
    static let smallest = 4096
    static let largest = 64 * 1024

    /// Makes room for `more` bytes after the end: the consumed front is
    /// reclaimed first, then the block grows (at least doubling, so a long
    /// line costs O(n) copies).
    private func reserve(_ more: Int) throws(Failure) {
        guard capacity - end < more else { return }
        if start > 0 {
            if count > 0 { base!.copyMemory(from: base! + start, byteCount: count) }
            end -= start
            start = 0
        }
        guard capacity - end < more else { return }
        // realloc, not Swift's allocator: that one traps when memory runs
        // out, and a peer decides how much a readall holds. Failing keeps
        // the bytes already here.
        let bigger = max(capacity * 2, end + more)
        guard let block = realloc(base, bigger) else { throw .system(ENOMEM) }
        base = block
        capacity = bigger
    }

    /// Gives the block back (the socket closes, or a big one is empty).
    func release() {
        free(base)
        base = nil
        capacity = 0
        start = 0
        end = 0
        scanned = 0
    }
}

/// What the buffered reads answer: the bytes; the end of the stream with
/// nothing left; or the end of the stream before what was asked for, with
/// what there was (Lua: `nil, "xpio: end of stream", partial`).
public enum BufferedRead {
    case bytes(UnsafeRawBufferPointer)
    case end
    case partial(UnsafeRawBufferPointer)
}

extension Socket {
    /// Up to `limit` bytes ending with `delimiter` (which `keep` decides to
    /// return or drop); with `lineEnd`, a `\r` just before the delimiter
    /// is part of the line's end, not of the `limit` bytes (readLine).
    /// The corresponding C function is `read`.
    public func readUntil(_ delimiter: UnsafeRawBufferPointer, keep: Bool, limit: Int64, lineEnd: Bool = false) throws(Failure) -> BufferedRead {
        guard delimiter.count > 0 else { throw .xpio("xpio: empty delimiter") }   // the binding checks it
        let fd = try descriptor()
        // One reference for the whole call: each use of `inbox` is a retain
        // and a release, and a readline made five of them.
        let buffer = inbox
        while true {
            if let at = buffer.find(delimiter) {
                if Int64(at) > limit && !(lineEnd && Int64(at) - 1 == limit && buffer.bytes[at - 1] == UInt8(ascii: "\r")) {
                    throw .xpio("xpio: line too long")
                }
                let taken = buffer.take(at + delimiter.count)
                return .bytes(keep ? taken : UnsafeRawBufferPointer(rebasing: taken[..<at]))
            }
            // Too long once no delimiter could still end within `limit`
            // (a line's last byte may be the `\r` of its end).
            // (No `- limit` here: a limit near Int64.max would overflow.)
            let length = Int64(buffer.count) - Int64(delimiter.count)
            if length >= limit && !(lineEnd && length == limit && buffer.bytes[buffer.count - 1] == UInt8(ascii: "\r")) {
                throw .xpio("xpio: line too long")
            }
            if try !more(buffer, fd) { return atEnd() }
        }
    }

    /// A line: up to `\n`, without it and without a `\r` before it unless
    /// `keepEnd`.
    public func readLine(keepEnd: Bool, limit: Int64) throws(Failure) -> BufferedRead {
        let newline: StaticString = "\n"
        let read = try readUntil(newline.utf8Buffer, keep: true, limit: limit, lineEnd: true)
        guard !keepEnd, case .bytes(let line) = read else { return read }
        var length = line.count - 1
        if length > 0 && line[length - 1] == UInt8(ascii: "\r") { length -= 1 }
        return .bytes(UnsafeRawBufferPointer(rebasing: line[..<length]))
    }

    /// Exactly `size` bytes.
    public func readExactly(_ size: Int64) throws(Failure) -> BufferedRead {
        let fd = try descriptor()
        while Int64(inbox.count) < size {
            if try !more(inbox, fd) { return atEnd() }
        }
        return .bytes(inbox.take(Int(size)))
    }

    /// Everything up to the end of the stream ("" when there was nothing).
    public func readAll() throws(Failure) -> UnsafeRawBufferPointer {
        let fd = try descriptor()
        while try more(inbox, fd) {}
        return inbox.take(inbox.count)
    }

    /// One read into `buffer`; false at the end of the stream. An empty
    /// datagram is no end (a datagram socket has none): it adds nothing,
    /// and the next read goes on (to the next datagram, or "retry").
    func more(_ buffer: ReadBuffer, _ fd: CInt) throws(Failure) -> Bool {
        do throws(Failure) {
            while try buffer.fill(from: self, fd) == 0 {
                guard isDatagram else { return false }
            }
        } catch .retry {
            buffer.wanting = !buffer.isEmpty
            throw .retry
        }
        return true
    }

    private func atEnd() -> BufferedRead {
        inbox.isEmpty ? .end : .partial(inbox.take(inbox.count))
    }
}
