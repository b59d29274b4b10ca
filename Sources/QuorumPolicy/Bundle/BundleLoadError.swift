/// One problem in a bundle file, placed where an editor can jump to it.
///
/// Syntax problems (invalid YAML or JSON, duplicate keys) carry the position the parser stopped at
/// and an empty path; schema and derivation problems carry the field path too. A semantic problem
/// about a field that is not written (a default, say) is placed at its nearest written ancestor.
public struct LocatedProblem: Sendable, Equatable, CustomStringConvertible {
    /// The file name given to the loader (used only for messages).
    public let file: String
    /// One-based line, or 0 when no position is known.
    public let line: Int
    /// One-based column in Unicode scalars, or 0 when no position is known.
    public let column: Int
    /// The field path (`latches[0].mounts[1].filters[2].rate_limit.window`), or empty.
    public let path: String
    /// What is wrong and what would be valid. Never a secret: the bundle holds none.
    public let message: String

    /// A problem.
    public init(file: String, line: Int, column: Int, path: String, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.path = path
        self.message = message
    }

    /// `bundle.yaml:14:9: latches[0].mounts[1].filters[2].rate_limit.window: "1 minute" is not …`,
    /// the form compilers use, so editors and CI annotate the line.
    public var description: String {
        let place = line > 0 ? "\(file):\(line):\(column)" : file
        return path.isEmpty ? "\(place): \(message)" : "\(place): \(path): \(message)"
    }
}

/// Why a bundle file was refused: every problem found, in document order.
///
/// The loader does not stop at the first problem, so an operator fixes a file in one round; only a
/// syntax error (which leaves nothing to read past it) ends reading early.
public struct BundleLoadError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The problems, ordered by position.
    public let problems: [LocatedProblem]

    /// An error holding `problems`.
    public init(_ problems: [LocatedProblem]) { self.problems = problems }

    /// One problem per line.
    public var description: String { problems.map(\.description).joined(separator: "\n") }
}
