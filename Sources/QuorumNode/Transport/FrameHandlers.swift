import Logging
import NIOCore
import QuorumProtocol

/// Turns a connection's decrypted bytes into ``Frame``s with QuorumProtocol's ``FrameDecoder``,
/// the same decoder the fuzz tests run, so there is one decoder of record.
///
/// A ``FrameError`` (oversized, unknown version or kind, bad header) means the peer does not speak
/// this protocol: the reason is logged with the peer's address and this connection, and only
/// this one, is closed. Bytes after the refused frame are never looked at.
final class FrameInboundHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = Frame

    private var decoder: FrameDecoder
    private var frames: [Frame] = []
    private let logger: Logger

    init(limits: FrameLimits, logger: Logger) {
        decoder = FrameDecoder(limits: limits)
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !decoder.isFailed else { return }
        let buffer = unwrapInboundIn(data)
        frames.removeAll(keepingCapacity: true)
        let failure: FrameError? = buffer.withUnsafeReadableBytes { bytes in
            do throws(FrameError) {
                try decoder.feed(bytes, into: &frames)
                return nil
            } catch {
                return error
            }
        }
        for frame in frames {
            context.fireChannelRead(wrapInboundOut(frame))
        }
        if let failure {
            logger.warning("closing connection: malformed frame", metadata: ["reason": "\(failure)"])
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !decoder.isFailed, decoder.bufferedByteCount > 0 {
            logger.debug(
                "connection closed inside a frame",
                metadata: ["buffered": "\(decoder.bufferedByteCount)"])
        }
        context.fireChannelInactive()
    }
}

/// Writes ``Frame``s with QuorumProtocol's encoder. Callers check the size against the limits
/// before writing (so the requester gets ``TransportError/Code/frameTooLarge``); a frame that
/// still does not fit fails its write and is not sent.
final class FrameOutboundEncoder: ChannelOutboundHandler {
    typealias OutboundIn = Frame
    typealias OutboundOut = ByteBuffer

    private let limits: FrameLimits
    private var scratch: [UInt8] = []

    init(limits: FrameLimits) { self.limits = limits }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = unwrapOutboundIn(data)
        scratch.removeAll(keepingCapacity: true)
        do {
            try frame.encode(into: &scratch, limits: limits)
        } catch {
            promise?.fail(error)
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: scratch.count)
        buffer.writeBytes(scratch)
        if scratch.count > 65536 { scratch = [] }
        context.write(wrapOutboundOut(buffer), promise: promise)
    }
}
