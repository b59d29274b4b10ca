import Foundation
import QuorumCrypto
import QuorumPolicy
import QuorumProtocol

/// The proxy's store of sealed credentials: one ``SealedCredential`` record per secret at
/// `<proxy dir>/credentials/<name>.json`, mode 0600, in a 0700 directory.
///
/// It lives here rather than in QuorumProtocol (which does no I/O) so that `quorumctl secrets` and
/// the proxy read and write the same files through one type. Every record holds only a sealed
/// box; nothing here ever sees a plaintext. Calls block on file I/O: a server calls them from a
/// thread pool (`NIOThreadPool`), never on an event loop.
public struct SealedCredentialDirectory: Sendable {
    /// The records' directory: `<proxy dir>/credentials`.
    public let path: String

    /// The store under a proxy's data directory.
    public init(proxyDirectory: String) {
        path = (proxyDirectory as NSString).appendingPathComponent("credentials")
    }

    /// The file that holds `name`'s record, after checking `name` against the bundle's secret
    /// name rule (so a name is always a plain file name, never a path).
    public func file(for name: String) throws(SealedCredentialError) -> String {
        guard SecretSpec.isValidName(name) else {
            throw SealedCredentialError(
                file: name, "not a valid secret name; expected \(SecretSpec.nameRule) (the bundle's rule)")
        }
        return (path as NSString).appendingPathComponent(name + ".json")
    }

    /// Whether a record named `name` exists.
    public func contains(_ name: String) throws(SealedCredentialError) -> Bool {
        FileManager.default.fileExists(atPath: try file(for: name))
    }

    /// Writes `record` atomically (temporary file, fsync, rename), mode 0600, creating the
    /// directory 0700 if needed. Without `replace`, an existing record is left alone and the write
    /// refused with "already exists".
    public func store(_ record: SealedCredential, replace: Bool) throws(SealedCredentialError) {
        let target = try file(for: record.name)
        try makeDirectory()
        do {
            try KeyFiles.writeSecretFile(SecretBytes(record.encoded()), to: target, replaceExisting: replace)
        } catch {
            throw SealedCredentialError(file: target, error.reason)
        }
        // The rename is durable only once the directory entry is.
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            _ = fsync(fd)
            close(fd)
        }
    }

    /// Reads and checks the record for `name`: well formed, and naming `name` itself (a record
    /// copied to another file name is refused).
    public func load(_ name: String) throws(SealedCredentialError) -> SealedCredential {
        try read(try file(for: name), expectedName: name)
    }

    /// Every record, sorted by name. A malformed record fails the whole load, naming its file:
    /// a proxy must not start with a credential it cannot read. A missing directory is no records.
    public func loadAll() throws(SealedCredentialError) -> [SealedCredential] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return [] }
        guard isDirectory.boolValue else { throw SealedCredentialError(file: path, "exists and is not a directory") }
        let entries: [String]
        do {
            entries = try FileManager.default.contentsOfDirectory(atPath: path)
        } catch {
            throw SealedCredentialError(file: path, "cannot list the directory: \(error.localizedDescription)")
        }
        var records: [SealedCredential] = []
        // Leftover temporary files of an interrupted write (`<name>.json.tmp-<pid>`) are not records.
        for entry in entries.sorted() where entry.hasSuffix(".json") {
            let name = String(entry.dropLast(".json".count))
            let file = (path as NSString).appendingPathComponent(entry)
            guard SecretSpec.isValidName(name) else {
                throw SealedCredentialError(
                    file: file, "the file name is not a valid secret name; expected \(SecretSpec.nameRule) + .json")
            }
            records.append(try read(file, expectedName: name))
        }
        return records.sorted { $0.name < $1.name }
    }

    private func read(_ file: String, expectedName: String) throws(SealedCredentialError) -> SealedCredential {
        let bytes: [UInt8]
        do { bytes = try KeyFiles.readFile(file) } catch { throw SealedCredentialError(file: file, error.reason) }
        let record = try SealedCredential(decoding: bytes, file: file)
        guard record.name == expectedName else {
            throw SealedCredentialError(
                file: file, field: "name",
                "is '\(record.name)' but the file is named for '\(expectedName)'; a record is not moved or renamed")
        }
        return record
    }

    private func makeDirectory() throws(SealedCredentialError) {
        do {
            try FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        } catch {
            throw SealedCredentialError(file: path, "cannot create the proxy directory: \(error.localizedDescription)")
        }
        if mkdir(path, 0o700) != 0, errno != EEXIST {
            throw SealedCredentialError(file: path, "cannot create: \(String(cString: strerror(errno)))")
        }
        var status = stat()
        guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else {
            throw SealedCredentialError(file: path, "exists and is not a directory")
        }
    }
}
