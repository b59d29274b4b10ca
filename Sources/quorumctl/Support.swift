import Foundation
import QuorumCrypto

/// A refusal or bad input found by the CLI itself. The message names the file or flag at fault
/// and never contains secret material.
struct CLIError: Error, CustomStringConvertible {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// Unbuffered writes to stdout and stderr, so their order holds and nothing is lost on exit.
enum Output {
    static func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    static func error(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// Writes secret bytes to stdout straight from zeroizing memory.
    static func write(_ secret: SecretBytes) throws(CLIError) {
        let ok = secret.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = Foundation.write(STDOUT_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0, errno == EINTR { continue }
                if n <= 0 { return false }
                offset += n
            }
            return true
        }
        guard ok else { throw CLIError("cannot write to stdout: \(String(cString: strerror(errno)))") }
    }
}

extension CiphersuiteID {
    /// The generic type for this suite, so commands dispatch on what a file declares with one
    /// switch: a generic function called with it opens the existential.
    var type: any Ciphersuite.Type {
        switch self {
        case .ed25519: Ed25519Suite.self
        case .secp256k1: Secp256k1Suite.self
        }
    }
}

/// Reading key files and inputs, with errors that name the file.
enum Inputs {
    /// Reads `group.json` (or `sealing-group.json`) and returns its declared ciphersuite.
    static func groupSuite(_ path: String) throws -> (CiphersuiteID, [UInt8]) {
        let bytes = try KeyFiles.readFile(path)
        return (try KeyFiles.ciphersuite(of: bytes, file: path), bytes)
    }

    /// Decodes a group file and checks it has the purpose the command needs.
    static func group<C: Ciphersuite>(
        _ bytes: [UInt8], as _: C.Type, file: String, purpose: KeyPurpose, command: String
    ) throws -> PublicKeyPackage<C> {
        let group = try KeyFiles.decodeGroup(bytes, as: C.self, file: file)
        guard group.purpose == purpose else {
            let expected = purpose == .signing ? "group.json" : "sealing-group.json"
            throw CLIError(
                "\(file): is the \(group.purpose.rawValue) group; \(command) needs the \(purpose.rawValue) group (\(expected))"
            )
        }
        return group
    }

    /// Reads every share file, checks each against `group`, and refuses a participant given twice
    /// or fewer participants than the threshold. Keys come back sorted by identifier.
    static func shares<C: Ciphersuite>(
        _ paths: [String], group: PublicKeyPackage<C>, groupFile: String
    ) throws -> [KeyPackage<C>] {
        var byIdentifier: [Identifier: (key: KeyPackage<C>, file: String)] = [:]
        for path in paths {
            let contents = try KeyFiles.readSecretFile(path)
            let key = try KeyFiles.decodeShare(contents, as: C.self, file: path)
            do {
                try key.check(against: group)
            } catch {
                throw CLIError("\(path): not a share of the group in \(groupFile): \(error.description)")
            }
            if let earlier = byIdentifier[key.identifier] {
                throw CLIError(
                    "\(path): duplicate share: participant \(key.identifier) was already given by \(earlier.file); "
                        + "each --share must come from a different participant")
            }
            byIdentifier[key.identifier] = (key, path)
        }
        guard byIdentifier.count >= group.minSigners else {
            throw CLIError(
                "too few shares: \(byIdentifier.count) given, the threshold of \(groupFile) is \(group.minSigners) "
                    + "(\(group.minSigners)-of-\(group.maxSigners)); pass --share for at least \(group.minSigners) participants"
            )
        }
        return byIdentifier.keys.sorted().map { byIdentifier[$0]!.key }
    }

    /// Reads a whole public input (a message, a sealed box); `-` reads stdin.
    static func contents(of path: String, what: String) throws(CLIError) -> [UInt8] {
        let name = path == "-" ? "stdin" : path
        let fd = path == "-" ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CLIError("\(name): cannot open \(what): \(String(cString: strerror(errno)))") }
        defer { if fd != STDIN_FILENO { close(fd) } }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n < 0, errno == EINTR { continue }
            if n < 0 { throw CLIError("\(name): cannot read \(what): \(String(cString: strerror(errno)))") }
            if n == 0 { return out }
            out += buffer[0..<n]
        }
    }

    /// Reads a secret input (plaintext to seal) into zeroizing memory; `-` reads stdin, so the
    /// plaintext need never touch the disk.
    ///
    /// `KeyFiles.readSecretFile` stops at 1 MiB, a limit meant for key files; a credential is far
    /// smaller, and a larger regular file is refused up front with a message that says so.
    static func secret(_ path: String) throws -> SecretBytes {
        var status = stat()
        if path != "-", stat(path, &status) == 0, status.st_mode & S_IFMT == S_IFREG, status.st_size > 1 << 20 {
            throw CLIError("\(path): \(status.st_size) bytes; a sealed credential may be at most 1 MiB")
        }
        return try KeyFiles.readSecretFile(path == "-" ? "/dev/stdin" : path)
    }
}
