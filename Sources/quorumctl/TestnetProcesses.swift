import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The detached processes of a local testnet: each runs in the background after `testnet up`
/// exits, with its log in `DIR/NAME.log`, its pid in `DIR/run/NAME.pid` and, once it has exited,
/// its exit status in `DIR/run/NAME.exit`.
///
/// A process that outlives its parent cannot be waited for by the command that stops it later,
/// so its exit status would be lost. Each service therefore runs under a small `/bin/sh` keeper
/// that starts it, records its pid, waits for it and records how it ended. The keeper only
/// waits: signals go to the service itself (the pid file names the service, not the keeper),
/// and both run in their own process group, so a Ctrl-C meant for the terminal does not reach
/// them.
enum TestnetProcesses {
    /// One service of the testnet: its file name stem and how to show it.
    struct Service: Sendable, Hashable {
        /// The stem of its files: `node-1`, `upstream`, `proxy`.
        let name: String
        /// How messages name it: `node 1`, `demo upstream`, `proxy`.
        let label: String
    }

    /// A pid read from a pid file, with the service it belongs to.
    struct Running: Sendable {
        let service: Service
        let pid: pid_t
    }

    /// How a stop went for one service.
    enum StopOutcome: Sendable, Equatable {
        /// It was not running when asked to stop; its exit status if recorded.
        case notRunning(exit: Int?)
        /// It exited after SIGTERM; its exit status if recorded.
        case stopped(exit: Int?)
        /// It did not exit in time after SIGTERM and was killed.
        case killed
    }

    /// The keeper: `sh -c KEEPER keeper DIR NAME PROGRAM ARGS...`. It runs in DIR, writes
    /// run/NAME.pid once PROGRAM runs and run/NAME.exit once it has ended, each atomically
    /// (written to a temporary name, then renamed).
    static let keeper = """
        cd "$1" || exit 125
        name=$2
        shift 2
        "$@" &
        pid=$!
        printf '%s\\n' "$pid" >"run/$name.pid.tmp" && mv "run/$name.pid.tmp" "run/$name.pid"
        wait "$pid"
        status=$?
        printf '%s\\n' "$status" >"run/$name.exit.tmp" && mv "run/$name.exit.tmp" "run/$name.exit"
        """

    /// Starts `executable` with `arguments` detached, in `layout`'s directory, and returns the
    /// service's pid once its keeper has recorded it (at most 10 s).
    static func start(
        _ service: Service, executable: String, arguments: [String], layout: TestnetLayout
    ) throws -> pid_t {
        for suffix in ["pid", "exit", "ready"] { unlink(layout.run("\(service.name).\(suffix)")) }
        let log = layout.log(service)

        #if canImport(Glibc)
            var actions = posix_spawn_file_actions_t()
            var attributes = posix_spawnattr_t()
        #else
            var actions: posix_spawn_file_actions_t?
            var attributes: posix_spawnattr_t?
        #endif
        posix_spawn_file_actions_init(&actions)
        posix_spawnattr_init(&attributes)
        defer {
            posix_spawn_file_actions_destroy(&actions)
            posix_spawnattr_destroy(&attributes)
        }
        // Standard input from /dev/null; output and errors appended to the log; nothing else
        // inherited. So the service keeps no pipe of whoever ran `testnet up` open (a test reading
        // quorumctl's output to its end would wait for the testnet to stop) and no socket of ours.
        closeOnExec()
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // A process group of its own, default signal handling and an empty signal mask: whatever
        // quorumctl ignores or blocks is not passed on.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT] { sigaddset(&defaults, signal) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let argv =
            ["/bin/sh", "-c", keeper, "quorum-testnet-keeper", layout.root, service.name, executable] + arguments
        var cArguments = argv.map { strdup($0) }
        defer { for argument in cArguments { free(argument) } }
        cArguments.append(nil)
        var keeperPID: pid_t = 0
        let spawned = posix_spawn(&keeperPID, "/bin/sh", &actions, &attributes, cArguments, environ)
        guard spawned == 0 else {
            throw CLIError("cannot start \(service.label) (\(executable)): \(String(cString: strerror(spawned)))")
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if let pid = readInteger(layout.run("\(service.name).pid")) { return pid_t(pid) }
            if let exit = readInteger(layout.run("\(service.name).exit")) {
                throw CLIError("\(service.label) exited at once with status \(exit); its log: \(log)")
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
        kill(keeperPID, SIGKILL)
        throw CLIError("\(service.label): its keeper did not record a pid within 10 s; its log: \(log)")
    }

    /// Marks every descriptor above standard error close-on-exec, where the system lists them
    /// (`/proc/self/fd`, `/dev/fd`).
    private static func closeOnExec() {
        for directory in ["/proc/self/fd", "/dev/fd"] {
            guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) else { continue }
            for fd in entries.compactMap({ Int32($0) }) where fd > 2 {
                let flags = fcntl(fd, F_GETFD)
                if flags >= 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
            }
            return
        }
    }

    /// The services of `layout` that have a pid file, in the order given.
    static func recorded(_ services: [Service], layout: TestnetLayout) -> [Running] {
        services.compactMap { service in
            readInteger(layout.run("\(service.name).pid")).map { Running(service: service, pid: pid_t($0)) }
        }
    }

    /// Whether `pid` is alive and, where `/proc` tells, runs with an argument inside `layout`'s
    /// directory: a pid reused by an unrelated process after a reboot is not taken for ours.
    static func isRunning(_ pid: pid_t, layout: TestnetLayout) -> Bool {
        guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return true }
        let arguments = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        return arguments.contains { $0.hasPrefix(layout.root + "/") }
    }

    /// Whether `pid` is a zombie (exited, not yet reaped): stopped for every purpose here.
    private static func isZombie(_ pid: pid_t) -> Bool {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return false }
        return text[text.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }

    private static func alive(_ pid: pid_t, layout: TestnetLayout) -> Bool {
        isRunning(pid, layout: layout) && !isZombie(pid)
    }

    /// SIGTERMs every running service at once, waits up to `grace` for them all, SIGKILLs any
    /// left, and removes their pid files (the exit files stay). Bounded: returns within about
    /// `grace` + 7 s whatever the services do.
    static func stop(
        _ running: [Running], layout: TestnetLayout, grace: Duration = .seconds(15)
    ) -> [(Running, StopOutcome)] {
        var signalled: [pid_t] = []
        for entry in running where alive(entry.pid, layout: layout) {
            kill(entry.pid, SIGTERM)
            signalled.append(entry.pid)
        }
        let deadline = ContinuousClock.now + grace
        while ContinuousClock.now < deadline, signalled.contains(where: { alive($0, layout: layout) }) {
            Thread.sleep(forTimeInterval: 0.05)
        }
        var killed: Set<pid_t> = []
        for pid in signalled where alive(pid, layout: layout) {
            kill(pid, SIGKILL)
            killed.insert(pid)
        }
        let killDeadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < killDeadline, killed.contains(where: { alive($0, layout: layout) }) {
            Thread.sleep(forTimeInterval: 0.05)
        }
        return running.map { entry in
            let exitFile = layout.run("\(entry.service.name).exit")
            let outcome: StopOutcome
            if killed.contains(entry.pid) {
                outcome = .killed
            } else {
                // The keeper writes the status right after the service ends; give it a moment.
                var exit = readInteger(exitFile)
                let exitDeadline = ContinuousClock.now + .seconds(2)
                while exit == nil, ContinuousClock.now < exitDeadline {
                    Thread.sleep(forTimeInterval: 0.02)
                    exit = readInteger(exitFile)
                }
                outcome = signalled.contains(entry.pid) ? .stopped(exit: exit) : .notRunning(exit: exit)
            }
            unlink(layout.run("\(entry.service.name).pid"))
            return (entry, outcome)
        }
    }

    /// The integer on the first line of `path`, or nil if it is missing or not an integer.
    static func readInteger(_ path: String) -> Int? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}
