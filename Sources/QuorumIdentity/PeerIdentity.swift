#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The role a cluster certificate gives its holder (DESIGN.md §2).
public enum ClusterRole: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// A policy node (`quorumd`): decides, signs, keeps a log replica.
    case node
    /// The front-end proxy (`quorum-proxy`): coordinates signing, never decides.
    case proxy
    /// A person or tool running `quorumctl` against the nodes.
    case `operator`

    /// The role's name as written in certificates and on the command line.
    public var description: String { rawValue }
}

/// Who a cluster certificate says its holder is: a role, and for a node its id, for an operator
/// its name.
///
/// In a certificate the identity is one subject-alternative-name URI, `quorum-latch://node/3`,
/// `quorum-latch://proxy` or `quorum-latch://operator/alice`, and the subject common name
/// repeats it (`node-3`, `proxy`, `operator-alice`) for people reading the certificate.
/// `ClusterIdentity.identity(of:)` refuses a certificate where the two disagree.
public enum PeerIdentity: Sendable, Hashable, CustomStringConvertible {
    /// A policy node with its id, 1…65535 (the FROST participant identifier).
    case node(id: UInt16)
    /// The proxy. Proxies are interchangeable, so they carry no id.
    case proxy
    /// An operator, named so audit trails and `quorumctl status` can say who acted.
    case `operator`(name: String)

    /// The URI scheme of identity URIs.
    public static let uriScheme = "quorum-latch"

    /// The valid range of node ids.
    public static let nodeIDs: ClosedRange<Int> = 1...65535

    /// The longest operator name.
    public static let maximumNameLength = 64

    /// A node identity, refusing an id outside 1…65535.
    public static func node(_ id: Int) throws(IdentityError) -> PeerIdentity {
        guard nodeIDs.contains(id) else {
            throw IdentityError(.invalidNodeID, input: "node id \(id)", "node ids are 1-65535")
        }
        return .node(id: UInt16(id))
    }

    /// An operator identity, refusing a name that could not sit unambiguously in a URI.
    public static func operatorNamed(_ name: String) throws(IdentityError) -> PeerIdentity {
        try checkName(name)
        return .operator(name: name)
    }

    /// The role alone.
    public var role: ClusterRole {
        switch self {
        case .node: .node
        case .proxy: .proxy
        case .operator: .operator
        }
    }

    /// The node id, for a node.
    public var nodeID: UInt16? {
        if case .node(let id) = self { return id }
        return nil
    }

    /// The identity URI placed in the certificate's subject alternative names.
    public var uri: String {
        switch self {
        case .node(let id): "\(Self.uriScheme)://node/\(id)"
        case .proxy: "\(Self.uriScheme)://proxy"
        case .operator(let name): "\(Self.uriScheme)://operator/\(name)"
        }
    }

    /// The subject common name: `node-3`, `proxy`, `operator-alice`.
    public var commonName: String {
        switch self {
        case .node(let id): "node-\(id)"
        case .proxy: "proxy"
        case .operator(let name): "operator-\(name)"
        }
    }

    /// `node 3`, `proxy`, `operator alice`.
    public var description: String {
        switch self {
        case .node(let id): "node \(id)"
        case .proxy: "proxy"
        case .operator(let name): "operator \(name)"
        }
    }

    /// Whether `uri` claims a cluster identity, whatever the case of its scheme, so that a
    /// `QUORUM-LATCH://…` URI counts as a claim (and is then refused as non-canonical) rather than
    /// being overlooked.
    static func isIdentityURI(_ uri: String) -> Bool {
        guard let colon = uri.firstIndex(of: ":") else { return false }
        return uri[..<colon].lowercased() == uriScheme
    }

    /// Parses an identity URI in its one canonical spelling.
    public static func parse(uri: String) throws(IdentityError) -> PeerIdentity {
        let input = "identity URI '\(uri)'"
        let expected =
            "expected quorum-latch://node/<1-65535>, quorum-latch://proxy or quorum-latch://operator/<name>"
        let prefix = "\(uriScheme)://"
        guard uri.hasPrefix(prefix) else { throw IdentityError(.unknownRole, input: input, expected) }
        let parts = uri.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false)
        switch (parts.first.map(String.init), parts.count) {
        case ("node", 1):
            throw IdentityError(.invalidNodeID, input: input, "a node certificate must carry its id: \(expected)")
        case ("node", 2):
            let text = parts[1]
            guard !text.isEmpty, text.count <= 5, text.allSatisfy({ $0.isASCII && $0.isNumber }),
                text.first != "0" || text == "0", let id = Int(text)
            else {
                throw IdentityError(.invalidNodeID, input: input, "node ids are decimal numbers 1-65535")
            }
            do { return try node(id) } catch { throw error.naming(input) }
        case ("proxy", 1):
            return .proxy
        case ("operator", 2):
            do { return try operatorNamed(String(parts[1])) } catch { throw error.naming(input) }
        case ("operator", 1):
            throw IdentityError(.invalidName, input: input, "an operator certificate must carry a name: \(expected)")
        default:
            throw IdentityError(.unknownRole, input: input, expected)
        }
    }

    static func checkName(_ name: String) throws(IdentityError) {
        let allowed = name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                true
            default: false
            }
        }
        guard allowed, let first = name.utf8.first, first != UInt8(ascii: "."), first != UInt8(ascii: "-"),
            name.utf8.count <= maximumNameLength
        else {
            throw IdentityError(
                .invalidName, input: "operator name '\(name)'",
                "use 1-\(maximumNameLength) letters, digits, '.', '_' or '-', starting with a letter, digit or '_'")
        }
    }
}

/// A name a node or proxy certificate is valid for, so TLS hostname verification can work: a DNS
/// name or an IPv4/IPv6 address.
public enum HostName: Sendable, Hashable, CustomStringConvertible {
    /// A DNS name, lowercased, without a trailing dot or wildcards.
    case dns(String)
    /// An address: 4 bytes for IPv4, 16 for IPv6.
    case ip([UInt8])

    /// `localhost`, `127.0.0.1` and `::1`: what a node or proxy certificate carries by default,
    /// enough for a cluster on one machine.
    public static let loopback: [HostName] = [
        .dns("localhost"), .ip([127, 0, 0, 1]), .ip(Array(repeating: 0, count: 15) + [1]),
    ]

    /// Reads an IP address (v4 or v6) or a DNS name, refusing anything else.
    public static func parse(_ text: String) throws(IdentityError) -> HostName {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return .ip(withUnsafeBytes(of: &v4) { Array($0) })
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return .ip(withUnsafeBytes(of: &v6) { Array($0) })
        }
        let name = text.lowercased()
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        // An all-numeric last label would read as a mistyped address (300.1.1.1), never a real name.
        let numericTop = labels.last.map { !$0.isEmpty && $0.allSatisfy(\.isNumber) } ?? false
        let valid =
            !name.isEmpty && name.utf8.count <= 253 && !numericTop
            && labels.allSatisfy { label in
                !label.isEmpty && label.utf8.count <= 63 && label.first != "-" && label.last != "-"
                    && label.utf8.allSatisfy { byte in
                        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-")
                    }
            }
        guard valid else {
            throw IdentityError(
                .invalidHost, input: "host '\(text)'",
                "expected an IPv4 or IPv6 address or a DNS name (letters, digits and '-' in dot-separated labels, no wildcards)"
            )
        }
        return .dns(name)
    }

    /// The name, or the address in its usual text form.
    public var description: String {
        switch self {
        case .dns(let name):
            return name
        case .ip(let bytes):
            let family = bytes.count == 4 ? AF_INET : AF_INET6
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            let ok = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &text, socklen_t(text.count)) } != nil
            return ok ? String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
        }
    }
}
