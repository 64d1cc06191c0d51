import CSystem

/// The pipe `xpio.splice` moves a socket's bytes through: `splice(2)` needs
/// a pipe at one end, so bytes go socket -> this pipe -> socket, never
/// entering user space. It belongs to the source socket (its bytes are
/// that socket's stream, like the buffered reads' ones) and closes with it.
final class SplicePipe {
    let readEnd: CInt
    let writeEnd: CInt
    /// Bytes in the pipe, taken from the source and not yet given on.
    var held = 0

    init() throws(Failure) {
        var fds: (CInt, CInt) = (-1, -1)
        try withUnsafeMutableBytes(of: &fds) { Sys.pipe2($0.baseAddress!.assumingMemoryBound(to: CInt.self)) }.get()
        readEnd = fds.0
        writeEnd = fds.1
        // A bigger pipe moves more per call (1 MiB, Linux's unprivileged
        // limit); the default 64 KiB stays when the kernel refuses.
        _ = Sys.growPipe(writeEnd, 1 << 20)
    }

    deinit {
        _ = Sys.close(readEnd)
        _ = Sys.close(writeEnd)
    }
}

extension Socket {
    /// Moves at most `count` bytes from this socket to `output` without them
    /// entering user space; nil at the end of the stream. Bytes this socket
    /// holds come first, in order: what the buffered reads kept (written
    /// from user space, as they already are there), then what an earlier
    /// splice left in the pipe, then the kernel's. Through TLS (which must
    /// see the bytes), or where the kernel refuses to splice (EINVAL), the
    /// bytes are read into the buffered reads' store and written from there,
    /// so nothing read is lost when the output is full; so too in the
    /// portable build, which has no `splice`.
    /// The corresponding C functions are `splice` (Linux) and `write`.
    public func splice(to output: Socket, count: Int) throws(Failure) -> Int? {
        let fd = try descriptor()
        let out = try output.descriptor()
        if count == 0 { return 0 }
        if let kept = buffered, !kept.isEmpty { return try output.give(kept, count) }
        if secure == nil && output.secure == nil && Platform.linux {
            let pipe: SplicePipe
            if let made = splicePipe { pipe = made } else { pipe = try SplicePipe(); splicePipe = pipe }
            if pipe.held == 0 {
                switch Sys.splice(fd, pipe.writeEnd, count) {
                case .success(0): return nil
                case .success(let moved): pipe.held = moved
                case .failure(.system(EINVAL)): return try spliceThroughBuffer(to: output, count: count)
                case .failure(let failure): throw failure
                }
            }
            let moved = try Sys.splice(pipe.readEnd, out, min(pipe.held, count)).get()
            pipe.held -= moved
            return moved
        }
        return try spliceThroughBuffer(to: output, count: count)
    }

    /// The read-and-write way: into the buffered reads' store, then out.
    private func spliceThroughBuffer(to output: Socket, count: Int) throws(Failure) -> Int? {
        if try inbox.fill(from: self, try descriptor()) == 0 { return nil }
        return try output.give(inbox, count)
    }

    /// Writes at most `count` of the bytes `kept` holds, consuming what went.
    private func give(_ kept: ReadBuffer, _ count: Int) throws(Failure) -> Int {
        let written = try write(UnsafeRawBufferPointer(rebasing: kept.bytes.prefix(count)))
        _ = kept.take(written)
        return written
    }

    /// What `when_splice` waits on: the output while bytes wait to go to it,
    /// else this socket's readability.
    public func spliceTarget(to output: Socket) throws(Failure) -> WaitTarget? {
        _ = try output.descriptor()
        let holding = (buffered.map { !$0.isEmpty } ?? false) || (splicePipe?.held ?? 0) > 0
        return holding ? try output.waitTarget(.write) : try waitTarget(.read)
    }
}
