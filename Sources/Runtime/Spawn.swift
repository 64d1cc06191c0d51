import CSystem

/// What a child's descriptor is made from (`SpawnRequest.files`).
public enum SpawnFile {
    /// A descriptor number of the parent's, which stays open there.
    case descriptor(CInt)
    /// A socket object's descriptor, handed over: the object is closed once
    /// the child has started (the child owns the file now).
    case handOver(Socket)
    /// /dev/null, opened for reading and writing.
    case null
    /// The same file as the child's descriptor 1 (which `files` must map).
    case sameAsStdout
}

/// What to start, as the caller was given it: C strings already checked
/// (no NULs, no `=` in names), the environment as name and value bytes, the
/// files as what each child descriptor is made from.
public struct SpawnRequest {
    /// The program: a path, or a name without `/` searched in `PATH`.
    public var program: UnsafePointer<CChar>
    public var arguments: [UnsafePointer<CChar>]
    public var environment: [(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)]
    public var files: [(target: CInt, source: SpawnFile)]
    public var directory: UnsafePointer<CChar>?
    /// nil: inherit; 0: a new group led by the child; n: join group n.
    public var processGroup: pid_t?
    public var newSession = false
    /// The child's umask; nil: inherited.
    public var umask: mode_t?

    public init(program: UnsafePointer<CChar>, arguments: [UnsafePointer<CChar>],
                environment: [(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer)] = [],
                files: [(target: CInt, source: SpawnFile)] = []) {
        self.program = program
        self.arguments = arguments
        self.environment = environment
        self.files = files
    }
}

public enum Spawn {
    /// Starts a child with `posix_spawn` (glibc's runs on a vfork-like clone:
    /// no copy of the parent's memory).
    ///
    /// The descriptor map: every source is first duplicated (close-on-exec)
    /// to a number that is no target (the lowest free ones: numbers above
    /// the highest target may not exist when it is near the descriptor
    /// limit), then `dup2`'d onto its target by a
    /// file action. Since no duplicate can be a target, any permutation works
    /// (swaps, cycles, one source on several targets, a target equal to its
    /// source), and dup2 onto a different number clears close-on-exec without
    /// relying on the dup2(n, n) behaviour glibc changed in 2.29. Everything
    /// else is closed in the child: the numbers below the highest target one
    /// by one, the rest with closefrom (the portable build: see
    /// `xpio_spawn_close_rest`). Sources are made blocking (the flag
    /// belongs to the open file, which the child shares).
    ///
    /// Signals: all dispositions reset to default (SIGPIPE included: the
    /// parent ignores it, and ignored dispositions survive exec) and an empty
    /// mask.
    ///
    /// The corresponding C functions are `posix_spawn` and `posix_spawnp`.
    public static func start(_ request: SpawnRequest) throws(Failure) -> Process {
        // What each child descriptor is: /dev/null opened here (closed once
        // the child has it), a handed-over socket's number (the socket is
        // closed once the child has started).
        var files: [(target: CInt, source: CInt)] = []
        var opened: [Descriptor] = []
        var stdoutAliases: [CInt] = []
        for (target, source) in request.files {
            switch source {
            case .descriptor(let fd): files.append((target, fd))
            case .handOver(let socket): files.append((target, try socket.descriptorForChild()))
            case .null:
                let null = try Descriptor.openNull()
                opened.append(null)
                files.append((target, null.fd))
            case .sameAsStdout: stdoutAliases.append(target)
            }
        }
        if !stdoutAliases.isEmpty {
            guard let stdout = files.first(where: { $0.target == 1 }) else { throw .xpio("xpio: \"stdout\" needs files[1]") }
            for target in stdoutAliases { files.append((target, stdout.source)) }
        }
        let process = try start(request, files: files)
        withExtendedLifetime(opened) {}
        // Handed over: the child has them now; XPIO must not use them again.
        for case (_, .handOver(let socket)) in request.files where !socket.isClosed { socket.dispose() }
        return process
    }

    private static func start(_ request: SpawnRequest, files: [(target: CInt, source: CInt)]) throws(Failure) -> Process {
        // argv and envp ("NAME=value"), NULL-terminated, in blocks of
        // malloc's that are checked: a spawn out of memory fails with
        // ENOMEM, before anything else is set up.
        let vectors = try Vectors(request)
        defer { vectors.free() }
        try Process.prepareFallback()
        let highest = files.map { $0.target }.max() ?? -1
        var duplicates: [CInt] = []
        var restoreNonBlocking: [CInt] = []   // duplicates whose file was non-blocking
        var started = false
        defer {
            // A spawn that failed leaves the caller's files as they were.
            if !started { for fd in restoreNonBlocking { _ = try? Descriptor.setBlocking(fd, false) } }
            for fd in duplicates { _ = Sys.close(fd) }
        }
        for (_, source) in files {
            let copy = try duplicateOffTargets(source, files)
            duplicates.append(copy)
            if try Descriptor.setBlocking(copy, true) { restoreNonBlocking.append(copy) }
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }

        var code: CInt = 0
        for (index, file) in files.enumerated() where code == 0 {
            code = posix_spawn_file_actions_adddup2(&actions, duplicates[index], file.target)
        }
        if highest >= 0 {
            for fd in 0...highest where code == 0 && !files.contains(where: { $0.target == fd }) {
                code = posix_spawn_file_actions_addclose(&actions, fd)
            }
        }
        var closeFlags: Int16 = 0
        if code == 0 { code = xpio_spawn_close_rest(&actions, &closeFlags, highest + 1) }
        if code == 0, let directory = request.directory { code = xpio_spawn_chdir(&actions, directory) }

        var flags = CInt(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK) | CInt(closeFlags)
        var defaults = sigset_t()
        xpio_sigset_everything(&defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        if code == 0 { code = posix_spawnattr_setsigdefault(&attributes, &defaults) }
        if code == 0 { code = posix_spawnattr_setsigmask(&attributes, &mask) }
        if let group = request.processGroup {
            flags |= CInt(POSIX_SPAWN_SETPGROUP)
            if code == 0 { code = posix_spawnattr_setpgroup(&attributes, group) }
        }
        if request.newSession { flags |= CInt(POSIX_SPAWN_SETSID) }
        if code == 0 { code = posix_spawnattr_setflags(&attributes, Int16(flags)) }
        guard code == 0 else { throw .system(code) }

        // posix_spawn has no umask action: set it around the call (the
        // process's umask, for an instant; XPIO's threads make no files).
        let previousMask = request.umask.map { Sys.umask($0) }
        defer { if let previousMask { _ = Sys.umask(previousMask) } }

        // One descriptor held for the child's pidfd, released just before
        // pidfd_open: a process out of descriptors fails here, before a
        // child exists, rather than with a child it cannot wait for. (The
        // portable build has no pidfd: its SIGCHLD pipe is already open.)
        let reserve = Platform.linux ? try Sys.eventfd().get() : -1
        var pid: pid_t = 0
        let searchPath = strchr(request.program, CInt(UInt8(ascii: "/"))) == nil
        let spawned = Sys.posix_spawn(&pid, request.program, searchPath: searchPath, &actions, &attributes, vectors.argv, vectors.envp)
        if reserve >= 0 { _ = Sys.close(reserve) }
        try spawned.get()
        started = true
        let group: pid_t? = request.newSession ? pid : request.processGroup.map { $0 == 0 ? pid : $0 }
        return Process(pid: pid, group: group)
    }

    /// A close-on-exec duplicate of `source` at the lowest free number that
    /// is none of the targets: a target number it lands on is held while
    /// the next one is tried, then released.
    /// The corresponding C function is `fcntl(F_DUPFD_CLOEXEC)`.
    private static func duplicateOffTargets(_ source: CInt, _ files: [(target: CInt, source: CInt)]) throws(Failure) -> CInt {
        var held: [CInt] = []
        defer { for fd in held { _ = Sys.close(fd) } }
        var copy = try Sys.fcntl(source, F_DUPFD_CLOEXEC, 0).get()
        while files.contains(where: { $0.target == copy }) {
            held.append(copy)
            copy = try Sys.fcntl(source, F_DUPFD_CLOEXEC, copy + 1).get()
        }
        return copy
    }

    /// "NAME=value", NUL-terminated, allocated (the caller frees it).
}

/// A spawn's argv and envp, NULL-terminated, in memory of malloc's: the
/// pointer arrays, and one block for every "NAME=value" string. Each
/// allocation is checked (Swift's own would trap when malloc fails).
private struct Vectors {
    let argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    let envp: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    private let strings: UnsafeMutableRawPointer?

    init(_ request: SpawnRequest) throws(Failure) {
        let slot = MemoryLayout<UnsafeMutablePointer<CChar>?>.stride
        let environment = request.environment
        var bytes = 0
        for pair in environment { bytes += pair.name.count + pair.value.count + 2 }
        guard let argv = malloc((request.arguments.count + 1) * slot) else { throw .system(ENOMEM) }
        guard let envp = malloc((environment.count + 1) * slot) else {
            CSystem.free(argv)
            throw .system(ENOMEM)
        }
        let strings = bytes > 0 ? malloc(bytes) : nil
        if bytes > 0 && strings == nil {
            CSystem.free(argv)
            CSystem.free(envp)
            throw .system(ENOMEM)
        }
        self.argv = argv.bindMemory(to: UnsafeMutablePointer<CChar>?.self, capacity: request.arguments.count + 1)
        self.envp = envp.bindMemory(to: UnsafeMutablePointer<CChar>?.self, capacity: environment.count + 1)
        self.strings = strings
        for (index, argument) in request.arguments.enumerated() { self.argv[index] = UnsafeMutablePointer(mutating: argument) }
        self.argv[request.arguments.count] = nil
        var at = 0
        for (index, pair) in environment.enumerated() {
            let entry = (strings! + at).assumingMemoryBound(to: CChar.self)
            if pair.name.count > 0 { UnsafeMutableRawPointer(entry).copyMemory(from: pair.name.baseAddress!, byteCount: pair.name.count) }
            entry[pair.name.count] = CChar(UInt8(ascii: "="))
            if pair.value.count > 0 {
                UnsafeMutableRawPointer(entry + pair.name.count + 1).copyMemory(from: pair.value.baseAddress!, byteCount: pair.value.count)
            }
            entry[pair.name.count + 1 + pair.value.count] = 0
            self.envp[index] = entry
            at += pair.name.count + pair.value.count + 2
        }
        self.envp[environment.count] = nil
    }

    func free() {
        CSystem.free(argv)
        CSystem.free(envp)
        CSystem.free(strings)
    }
}
