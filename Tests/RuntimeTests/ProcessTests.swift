import CSystem
import Testing
@testable import Runtime

/// How a child's exit is learnt when pidfd_open fails, with faults
/// injected into the wrappers (debug builds only; `Sys.faults` is global,
/// so the suite is serialized and `make test` runs `--no-parallel`).
@Suite(.serialized) struct ProcessTests {
    init() {
        Sys.faults = [:]
        Process.pidfdsWork = true   // as on this machine, without probing
    }

    /// `sh -c script` with no descriptors.
    func spawn(_ script: String) throws -> Process {
        let words = ["/bin/sh", "-c", script].map { $0.withCString { strdup($0) } }
        defer { for word in words { free(word) } }
        let request = SpawnRequest(program: words[0]!, arguments: words.map { UnsafePointer($0!) })
        return try Spawn.start(request)
    }

    /// Waits on `process` as a task would: its wait target, then `poll`.
    func waitForExit(_ process: Process) throws -> Runtime.ExitStatus {
        let queue = try TaskQueue()
        for _ in 0..<50 {
            do throws(Failure) { return try process.poll() } catch .retry {}
            guard let target = try process.waitTarget(.read) else { continue }
            let id = try queue.schedule(on: target.descriptor, target.readiness)
            _ = try queue.wait(timeout: 2)
            queue.markDelivered()
            queue.cancel(id)
        }
        throw Failure.xpio("xpio: the child never became waitable")
    }

    @Test func aPidfdThatCouldNotBeOpenedAtSpawnIsOpenedByTheWait() throws {
        Sys.faults["pidfd_open"] = (EMFILE, 1)
        let process = try spawn("exit 3")
        #expect(process.exitWatch == nil)
        let status = try waitForExit(process)
        #expect(status.kind == .exit && status.code == 3)
        // A transient failure says nothing about whether pidfds work.
        #expect(Process.pidfdsWork != false)
        #expect(Process.sigchldPipe == nil)
    }

    @Test func withoutADescriptorTheWaitReportsTheFailureInsteadOfSpinning() throws {
        Sys.faults["pidfd_open"] = (EMFILE, 2)
        let process = try spawn("sleep 0.2")
        do {
            _ = try process.waitTarget(.read)
            Issue.record("a wait target without a descriptor must fail, not be ready at once")
        } catch .system(let code) {
            #expect(code == EMFILE)
        } catch {
            Issue.record("expected EMFILE, got \(error)")
        }
        #expect(try waitForExit(process).code == 0)
    }

    @Test func stopWithALatePidfdStillWakesOnTheExit() throws {
        Sys.faults["pidfd_open"] = (EMFILE, 1)
        let process = try spawn("exec sleep 30")
        let start = Clock.now()
        var status: Runtime.ExitStatus?
        while status == nil && Clock.now() - start < 5 {
            do throws(Failure) { status = try process.stop(grace: 5) } catch .retry {
                let queue = try TaskQueue()
                if let target = try process.stopTarget() {
                    try queue.schedule(on: target.descriptor, target.readiness)
                    _ = try queue.wait(timeout: 1)
                }
            }
        }
        #expect(status?.kind == .signal && status?.code == SIGTERM)
        #expect(Clock.now() - start < 0.5)   // the exit wakes it, not the deadline
    }

    @Test func enosysMeansNoPidfdsAndTheFallbackFindsAnEarlyExit() throws {
        defer {
            Process.pidfdsWork = true
            Process.releaseFallback()
        }
        // The handler comes after the child: one that exits first must be
        // found all the same.
        Sys.faults["pidfd_open"] = (ENOSYS, 1)
        let process = try spawn("exit 5")
        usleep(50_000)
        #expect(Process.pidfdsWork == false)
        #expect(process.usesFallback || process.status != nil)
        #expect(try waitForExit(process).code == 5)
    }

    /// Whether `failure` is `.closed("process")`.
    func isClosed(_ failure: Failure) -> Bool {
        if case .closed(let kind) = failure { return kind.description == "process" }
        return false
    }

    @Test func aClosedProcessAnswersClosedAndIsReapedOnce() throws {
        let process = try spawn("sleep 0.1")
        process.abandon()
        process.abandon()   // __close then __gc: one hand-off, not two
        do throws(Failure) { _ = try process.poll(); Issue.record("poll after close") } catch { #expect(isClosed(error)) }
        do throws(Failure) { try process.kill(SIGTERM); Issue.record("kill after close") } catch { #expect(isClosed(error)) }
        do throws(Failure) { _ = try process.waitTarget(.read); Issue.record("wait after close") } catch { #expect(isClosed(error)) }
        do throws(Failure) { _ = try process.stop(grace: 1); Issue.record("stop after close") } catch { #expect(isClosed(error)) }
    }
}
