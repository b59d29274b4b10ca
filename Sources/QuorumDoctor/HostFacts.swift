import Foundation
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where the local checks' file, lock and RocksDB reads run: on `NIOThreadPool`, never on the
/// event loops that `quorumctl`'s async code runs on (`ConcurrencyExecutor.runOnEventLoops`).
enum BlockingIO {
    /// `body`'s result, computed on the shared thread pool (inline if the pool has stopped).
    static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        do { return try await NIOThreadPool.singleton.runIfActive(body) } catch { return body() }
    }
}

/// What the local checks read from the host: file metadata, who holds a RocksDB lock, whether an
/// address can be bound. Plain system calls, no state; nothing here writes to disk.
enum HostFacts {
    /// A file's metadata, or why it could not be read.
    struct FileStatus {
        let path: String
        let mode: mode_t
        let owner: uid_t
        let isDirectory: Bool
        let isRegular: Bool

        /// The permission bits, as `0644`.
        var octalMode: String {
            let digits = String(mode & 0o7777, radix: 8)
            return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
        }

        /// Whether group or others have any access.
        var isWiderThanOwner: Bool { mode & 0o077 != 0 }
    }

    /// `stat(2)` of `path` (following symbolic links), or the `strerror` of the failure.
    static func status(_ path: String) -> Result<FileStatus, FileProblem> {
        var info = stat()
        guard stat(path, &info) == 0 else { return .failure(FileProblem(path: path, errno: errno)) }
        let type = info.st_mode & S_IFMT
        return .success(
            FileStatus(
                path: path, mode: info.st_mode, owner: info.st_uid, isDirectory: type == S_IFDIR,
                isRegular: type == S_IFREG))
    }

    /// Why a file could not be used.
    struct FileProblem: Error {
        let path: String
        let errno: Int32

        var isMissing: Bool { errno == ENOENT || errno == ENOTDIR }
        var isDenied: Bool { errno == EACCES || errno == EPERM }
        var reason: String { String(cString: strerror(errno)) }
    }

    /// Whether this process can read (or, with `write`, write) `path`, by `access(2)` with the
    /// effective ids.
    static func canAccess(_ path: String, write: Bool = false) -> Bool {
        access(path, write ? W_OK : R_OK) == 0
    }

    /// The effective user id of this process.
    static var effectiveUser: uid_t { geteuid() }

    /// `name (uid N)`, or `uid N` when the user database has no entry.
    static func describe(user uid: uid_t) -> String {
        "\(userName(uid).map { "\($0) " } ?? "")(uid \(uid))"
    }

    /// The login name of `uid`, if the user database has one.
    static func userName(_ uid: uid_t) -> String? {
        guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return nil }
        return String(cString: name)
    }

    /// The pid holding a POSIX write lock on `path` (as RocksDB locks `LOCK` with `fcntl`), nil
    /// when the file is not locked, and `.failure` when the file cannot be opened (no store yet).
    ///
    /// `F_GETLK` only asks: this process takes no lock, so a node starting meanwhile is not stopped.
    static func lockHolder(_ path: String) -> Result<pid_t?, FileProblem> {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return .failure(FileProblem(path: path, errno: errno)) }
        defer { close(fd) }
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = 0
        lock.l_len = 0
        guard fcntl(fd, F_GETLK, &lock) == 0 else { return .failure(FileProblem(path: path, errno: errno)) }
        return .success(lock.l_type == Int16(F_UNLCK) ? nil : lock.l_pid)
    }

    /// The user a process runs as: the owner of its `/proc` entry (Linux), or nil.
    static func user(ofProcess pid: pid_t) -> uid_t? {
        var info = stat()
        guard stat("/proc/\(pid)", &info) == 0 else { return nil }
        return info.st_uid
    }

    /// Why an address cannot be listened on.
    enum BindProblem: Error {
        /// Another socket listens there.
        case inUse
        /// The host is not an address of this machine.
        case notLocal(String)
        /// The host name does not resolve.
        case unresolved(String)
        /// Anything else, with `strerror`.
        case other(String)
    }

    /// Tries to listen on `host`:`port` (with `SO_REUSEADDR`, as SwiftNIO's listeners do, so a
    /// socket in TIME_WAIT is not taken for a listener) and closes the socket at once.
    static func probeListen(host: String, port: Int) -> Result<Void, BindProblem> {
        var hints = addrinfo()
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
            hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, String(port), &hints, &list)
        guard resolved == 0, let first = list else {
            return .failure(.unresolved(String(cString: gai_strerror(resolved))))
        }
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { return .failure(.other(String(cString: strerror(errno)))) }
        defer { close(fd) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            switch errno {
            case EADDRINUSE: return .failure(.inUse)
            case EADDRNOTAVAIL: return .failure(.notLocal(String(cString: strerror(errno))))
            default: return .failure(.other(String(cString: strerror(errno))))
            }
        }
        guard listen(fd, 1) == 0 else {
            return .failure(errno == EADDRINUSE ? .inUse : .other(String(cString: strerror(errno))))
        }
        return .success(())
    }
}
