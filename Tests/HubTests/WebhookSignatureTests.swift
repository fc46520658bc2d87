import Foundation
import HubCore
import Testing

@Suite("Standard Webhooks signatures")
struct WebhookSignatureTests {
    static let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    static let body = Data(#"{"test": 2432232314}"#.utf8)

    @Test("the specification's test vector")
    func vector() throws {
        let signature = try WebhookSignature.sign(secret: Self.secret, id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330, body: Self.body)
        #expect(signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        #expect(WebhookSignature.verify(header: signature, secret: Self.secret, id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330, body: Self.body))
        #expect(!WebhookSignature.verify(header: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=", secret: Self.secret,
                                         id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330, body: Self.body))
        #expect(!WebhookSignature.verify(header: signature, secret: Self.secret, id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_331, body: Self.body))
    }

    @Test("during a rotation every valid secret signs, space-separated")
    func rotation() throws {
        let newer = WebhookSecret.generate()
        let header = try WebhookSignature.sign(secrets: [newer, Self.secret], id: "msg_1", timestamp: 1, body: Self.body)
        #expect(header.split(separator: " ").count == 2)
        #expect(WebhookSignature.verify(header: header, secret: Self.secret, id: "msg_1", timestamp: 1, body: Self.body))
        #expect(WebhookSignature.verify(header: header, secret: newer, id: "msg_1", timestamp: 1, body: Self.body))
        #expect(throws: HubError.self) { try WebhookSignature.sign(secret: "plain", id: "m", timestamp: 1, body: Data()) }
    }
}
