import CSystem

/// The pipe `xpio.splice` moves a socket's bytes through: `splice(2)` needs
/// a pipe at one end, so bytes go socket -> this pipe -> socket, never
/// entering user space. It belongs to the source socket and closes with it.
/// Between calls it is empty: what the output did not take goes on to the
/// socket's buffered reads (Socket.splice), where every read sees it.
final class SplicePipe {
    let readEnd: CInt
    let writeEnd: CInt
    /// Bytes in the pipe, taken from the source and not yet given on. Not
    /// zero between calls only when moving them to the buffered reads
    /// failed (ENOMEM): the next splice sends them first.
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
    /// from user space, as they already are there), then the kernel's.
    /// What the kernel gave and the output did not take (it was full, or it
    /// refuses splice: a file opened to append) goes to the buffered reads,
    /// so the next read of any kind, or the next splice, has it first: a
    /// `try_splice` that answers "retry" keeps its bytes where a `readline`
    /// or `detach` finds them. Through TLS (which must see the bytes), or
    /// where the kernel refuses to splice from the source (EINVAL), the
    /// bytes are read into the buffered reads' store and written from
    /// there; so too in the portable build, which has no `splice`.
    /// The corresponding C functions are `splice` (Linux), `read` and `write`.
    public func splice(to output: Socket, count: Int) throws(Failure) -> Int? {
        let fd = try descriptor()
        let out = try output.descriptor()
        if count == 0 { return 0 }
        if let kept = buffered, !kept.isEmpty { return try output.give(kept, count) }
        guard secure == nil && output.secure == nil && Platform.linux else { return try spliceThroughBuffer(to: output, count: count) }
        let pipe: SplicePipe
        if let made = splicePipe { pipe = made } else { pipe = try SplicePipe(); splicePipe = pipe }
        if pipe.held == 0 {
            switch Sys.splice(fd, pipe.writeEnd, count) {
            case .success(0): return nil
            case .success(let taken): pipe.held = taken
            case .failure(.system(EINVAL)): return try spliceThroughBuffer(to: output, count: count)
            case .failure(let failure): throw failure
            }
        }
        let sent = Sys.splice(pipe.readEnd, out, min(pipe.held, count))
        if case .success(let moved) = sent { pipe.held -= moved }
        do throws(Failure) {
            try keepHeld(pipe)
        } catch {
            // The bytes stay in the pipe for the next splice; what went is
            // reported all the same.
            if case .success(let moved) = sent, moved > 0 { return moved }
            throw error
        }
        switch sent {
        case .success(let moved): return moved
        case .failure(.system(EINVAL)): return try output.give(inbox, count)
        case .failure(let failure): throw failure
        }
    }

    /// Moves what the pipe holds to the buffered reads' store.
    private func keepHeld(_ pipe: SplicePipe) throws(Failure) {
        while pipe.held > 0 {
            pipe.held -= try inbox.fill(fromPipe: pipe.readEnd, pipe.held)
        }
    }

    /// The read-and-write way: into the buffered reads' store, then out.
    private func spliceThroughBuffer(to output: Socket, count: Int) throws(Failure) -> Int? {
        if try !more(inbox, try descriptor()) {
            // The end: a TLS output first sends the record it may still hold
            // (SecureChannel.write), so that nothing is left behind it.
            if output.secure?.holdsUnsent == true { _ = try output.write(UnsafeRawBufferPointer(start: nil, count: 0)) }
            return nil
        }
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
            || output.secure?.holdsUnsent == true
        return holding ? try output.waitTarget(.write) : try waitTarget(.read)
    }
}
