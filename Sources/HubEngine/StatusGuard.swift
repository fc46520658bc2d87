import AsyncHTTPClient
import NIOCore
import NIOHTTP1

/// Refuses an HTTP/1.1 answer whose status is below 100 before AsyncHTTPClient sees it: its request state machine
/// (1.37) takes every status below 200 for an informational answer, ignores it, and then traps on the answer's end,
/// ending the whole process. Any server the hub calls (a webhook receiver a key holder registered, say) could do that.
/// The guard sits right after the response decoder of every connection: on such a head it fails the exchange with
/// ``InvalidStatus``, closes the connection, and drops whatever else arrives on it.
final class StatusGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias InboundOut = HTTPClientResponsePart

    /// The error an exchange fails with.
    struct InvalidStatus: Error {
        let code: UInt
    }

    private var refusing = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if refusing { return }
        if case .head(let head) = unwrapInboundIn(data), head.status.code < 100 {
            refusing = true
            context.fireErrorCaught(InvalidStatus(code: head.status.code))
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(data)
    }

    /// Puts a guard after the response decoder of a new HTTP/1.1 connection (AsyncHTTPClient's connection initializer).
    @Sendable static func install(on channel: any Channel) -> EventLoopFuture<Void> {
        channel.eventLoop.submit {
            let pipeline = channel.pipeline.syncOperations
            let decoder = try pipeline.handler(type: ByteToMessageHandler<HTTPResponseDecoder>.self)
            try pipeline.addHandler(StatusGuard(), position: .after(decoder))
        }
    }
}
