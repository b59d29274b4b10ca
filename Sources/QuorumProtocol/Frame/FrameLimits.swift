/// The limits one connection's frames must keep, shared by the encoder and the decoder so that an
/// encoder configured like its peer's decoder never produces a frame that decoder refuses.
public struct FrameLimits: Sendable, Hashable {
    /// The largest value the length prefix may hold: the bytes after the prefix, header included.
    public let maximumFrameLength: Int

    /// The default cap of 4 MiB: well above any cluster message (a heartbeat is under 200 bytes, a
    /// decision request is capped by the bundle's body limit) and small enough that a connection
    /// cannot make a node hold much memory.
    public static let `default` = FrameLimits(maximumFrameLength: 4 << 20)

    /// The smallest cap accepted: a frame with a header and an empty payload.
    public static let smallestMaximum = Frame.headerLength
    /// The largest cap accepted: what the 4-byte length prefix can express.
    public static let largestMaximum = Int(UInt32.max)

    /// Limits capping the length prefix at `maximumFrameLength`.
    ///
    /// - Precondition: `maximumFrameLength` is within ``smallestMaximum``...``largestMaximum``;
    ///   a configuration loader validates the number first and says which setting was wrong.
    public init(maximumFrameLength: Int) {
        precondition(
            (Self.smallestMaximum...Self.largestMaximum).contains(maximumFrameLength),
            "maximumFrameLength \(maximumFrameLength) outside \(Self.smallestMaximum)...\(Self.largestMaximum)")
        self.maximumFrameLength = maximumFrameLength
    }

    /// The largest payload a frame may carry under these limits.
    public var maximumPayloadLength: Int { maximumFrameLength - Frame.headerLength }
}
