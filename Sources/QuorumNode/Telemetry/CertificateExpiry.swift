import Foundation
import Metrics
import QuorumIdentity
import X509

/// A certificate whose remaining validity a process exports, so an alert fires weeks before an
/// expired certificate stops the cluster (every handshake checks validity).
public struct MonitoredCertificate: Sendable, Hashable {
    /// What it is to the process: `node`, `proxy`, `ca` (the cluster CA) or `agent-tls` (the
    /// proxy's HTTPS listener).
    public var role: String
    /// Whose it is: the subject common name (`node-3`, `proxy`, the CA's name), or the whole
    /// subject when it has none.
    public var subject: String
    /// The end of its validity.
    public var notValidAfter: Date

    /// An entry from its parts.
    public init(role: String, subject: String, notValidAfter: Date) {
        self.role = role
        self.subject = subject
        self.notValidAfter = notValidAfter
    }

    /// The entry of `certificate` in `role`.
    public init(role: String, certificate: Certificate) {
        let names = certificate.subject.flatMap { $0 }.filter { $0.type == .RDNAttributeType.commonName }
            .map { String($0.value) ?? "\($0.value)" }
        self.init(
            role: role, subject: names.first ?? certificate.subject.description,
            notValidAfter: certificate.notValidAfter)
    }

    /// The entry of the DER certificate `der` in `role`, or `nil` when it does not parse.
    public static func parsing(der: [UInt8], role: String) -> MonitoredCertificate? {
        (try? ClusterIdentity.certificate(der: der)).map { MonitoredCertificate(role: role, certificate: $0) }
    }
}

extension TransportConfiguration {
    /// This process's own certificate (its role: `node` or `proxy`) and the cluster CA (`ca`).
    public var monitoredCertificates: [MonitoredCertificate] {
        [
            MonitoredCertificate(role: identity.role.rawValue, certificate: certificate),
            MonitoredCertificate(role: "ca", certificate: clusterCA),
        ]
    }
}

/// The gauge `quorum_certificate_expiry_seconds{role, subject}`: seconds until each certificate's
/// notAfter, negative once it has passed. Sampled at each scrape, so it is exact when read.
public struct CertificateExpiryGauges: Sendable {
    /// The certificates watched.
    public let certificates: [MonitoredCertificate]
    private let gauges: [Gauge]

    /// Gauges for `certificates`, made with `factory`.
    public init(_ certificates: [MonitoredCertificate], factory: any MetricsFactory = MetricsSystem.factory) {
        self.certificates = certificates
        gauges = certificates.map {
            Gauge(
                label: NodeMetrics.Names.certificateExpiry, dimensions: [("role", $0.role), ("subject", $0.subject)],
                factory: factory)
        }
    }

    /// Sets each gauge to the time left at `now`.
    public func sample(now: Date = Date()) {
        for (certificate, gauge) in zip(certificates, gauges) {
            gauge.record(certificate.notValidAfter.timeIntervalSince(now).rounded(.down))
        }
    }
}
