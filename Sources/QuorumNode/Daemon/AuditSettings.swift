import QuorumAudit
import TOMLKit

extension TOMLFieldReader {
    /// The node's `[audit]` table: where the read-only audit API listens and how hard each client
    /// may use it; `nil` when the table is absent (no audit API). `listeners` are the node's other
    /// listeners, whose ports the audit listener may not share.
    ///
    /// ```toml
    /// [audit]
    /// listen = "127.0.0.1:7301"
    /// burst = 120          # requests a client may make at once (default 120)
    /// per_second = 20      # and then per second (default 20)
    /// ```
    package func auditServer(
        _ table: TOMLTable, listeners: [(key: String, address: NodeAddress)]
    ) throws(NodeConfigurationError) -> AuditServerConfiguration? {
        guard let value = table["audit"] else { return nil }
        guard let audit = value.table else {
            throw error("audit", "is a \(value.type); it must be a table ([audit]) with listen")
        }
        try refuseUnknown(audit, allowed: ["listen", "burst", "per_second"], prefix: "audit.")
        guard audit["listen"] != nil else {
            throw error(
                "audit.listen", "missing; give the audit API's \"host:port\", as \"127.0.0.1:7301\" (or drop [audit])")
        }
        let listen = try address(audit["listen"], key: "audit.listen", ports: 0...65535)
        for other in listeners where other.address.port == listen.port && listen.port != 0 {
            throw error(
                "audit.listen",
                "port \(listen.port) is also \(other.key) (\(other.address)); the audit API needs a port of its own")
        }
        var configuration = AuditServerConfiguration(host: listen.host, port: listen.port)
        configuration.limits = try auditLimits(audit, prefix: "audit.")
        return configuration
    }

    /// `burst` and `per_second` of an `[audit]` table (the node's or the proxy's).
    package func auditLimits(
        _ audit: TOMLTable, prefix: String
    ) throws(NodeConfigurationError) -> ClientRateLimiter.Limits {
        var limits = ClientRateLimiter.Limits()
        limits.burst = try count(audit["burst"], key: prefix + "burst", default: limits.burst)
        limits.refillPerSecond = Double(
            try count(audit["per_second"], key: prefix + "per_second", default: Int(limits.refillPerSecond)))
        return limits
    }
}
