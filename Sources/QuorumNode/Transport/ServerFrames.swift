import QuorumProtocol

/// What a client connection does with frames its server starts: one-way frames (a node pushing
/// fresh nonce commitments to a proxy) and requests.
///
/// The default ignores one-way frames, as a peer that does not know a message would (protocol.md),
/// and answers every server request with `unknown-message-type`; neither closes the connection.
public struct ServerFrames: Sendable {
    /// What happens to a one-way frame that arrives while ``NodeConnection/oneWayFrames`` already
    /// holds ``bufferedOneWayFrames`` frames its consumer has not taken.
    public enum Overflow: Sendable, Hashable {
        /// The arriving frame is dropped, logged and counted in
        /// ``NodeConnection/droppedOneWayFrames``; the connection stays open. Right for news that
        /// the next frame supersedes.
        case dropNewest
        /// The connection is closed, logging why: requests waiting on it fail with
        /// ``TransportError/Code/connectionClosed`` and the stream ends, so the consumer learns it
        /// missed something and can reconnect and resynchronise. Right when every frame matters.
        case closeConnection
    }

    /// How many one-way frames wait for the consumer of ``NodeConnection/oneWayFrames``; 0 (the
    /// default) ignores them and finishes the stream at once. Memory held is at most this many
    /// frames of up to the frame limit each.
    public var bufferedOneWayFrames: Int
    /// What a full buffer does to the next one-way frame.
    public var overflow: Overflow
    /// Answers the server's requests, with the server's identity; nil answers each with
    /// `unknown-message-type`. Thrown errors are answered as on a server (`malformed-request` for
    /// a ``WireError``, `internal` otherwise). At most
    /// ``TransportConfiguration/maximumInFlightRequests`` run at once; more are answered
    /// `unavailable`. A request whose deadline passes is cancelled and answered
    /// `deadline-exceeded`.
    public var requestHandler: NodeRequestHandler?

    /// Frames from the server are kept as these say.
    public init(
        bufferedOneWayFrames: Int = 0, overflow: Overflow = .dropNewest, requestHandler: NodeRequestHandler? = nil
    ) {
        self.bufferedOneWayFrames = max(0, bufferedOneWayFrames)
        self.overflow = overflow
        self.requestHandler = requestHandler
    }

    /// One-way frames ignored, requests answered `unknown-message-type`.
    public static var ignored: ServerFrames { ServerFrames() }
}
