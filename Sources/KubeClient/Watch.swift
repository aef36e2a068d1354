/// Watches.
extension KubeClient {
    /// Watches a collection (`/api/v1/pods`, `/api/v1/namespaces/ns/pods`, …) from
    /// `resourceVersion` (nil or "": from now, with synthetic ADDED events for what exists; take
    /// it from a list to miss nothing).
    ///
    /// The stream yields ADDED, MODIFIED, DELETED and (with `allowWatchBookmarks`) BOOKMARK
    /// events. It finishes normally when the server ends the watch (its timeout, `timeoutSeconds`):
    /// watch again from the last event's resourceVersion. It finishes by throwing a
    /// ``KubeAPIError`` for an error status or an ERROR event — ``KubeAPIError/isGone`` (410:
    /// the resourceVersion is too old or compacted) means relist, then watch from the list's
    /// resourceVersion — or a transport failure. When the consumer stops iterating (its task is
    /// cancelled or the stream is dropped), the transfer is cancelled and its thread freed.
    ///
    /// Events are buffered without bound between the transfer and the consumer.
    public func watch(_ path: String, resourceVersion: String? = nil, labelSelector: String? = nil, fieldSelector: String? = nil,
                      allowWatchBookmarks: Bool = false, timeoutSeconds: Int? = nil) -> AsyncThrowingStream<WatchEvent, Error> {
        var query = Query()
        query.add("watch", "1")
        query.add("resourceVersion", resourceVersion)
        query.add("labelSelector", labelSelector)
        query.add("fieldSelector", fieldSelector)
        query.add("allowWatchBookmarks", allowWatchBookmarks ? "true" : nil)
        query.add("timeoutSeconds", timeoutSeconds.map(String.init))
        let pathAndQuery = path + query.text
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: WatchEvent.self, throwing: Error.self)
        let request: HTTPRequest
        do {
            request = try makeRequest(method: "GET", path: path, query: query, body: nil, contentType: nil, accept: "application/json",
                                      timeoutSeconds: 0)
        } catch {
            continuation.finish(throwing: error)
            return stream
        }
        let transfer = Transfer()
        continuation.onTermination = { _ in transfer.cancel() }
        let tls = self.tls
        Transport.start {
            let state = WatchState()
            let result = transfer.performBlocking(request, tls: tls) { status, chunk in
                guard status == 200 else {
                    state.errorBody.append(contentsOf: chunk)
                    return state.errorBody.count < 1 << 20
                }
                do throws(KubeAPIError) {
                    for event in try state.decoder.feed(chunk) {
                        if event.type == .error {
                            state.failure = event.statusError
                            return false
                        }
                        continuation.yield(event)
                    }
                    return true
                } catch {
                    state.failure = error
                    return false
                }
            }
            if var failure = state.failure {
                failure.method = "GET"
                failure.path = pathAndQuery
                continuation.finish(throwing: failure)
                return
            }
            switch result {
            case .failure(let error) where error.kind == .cancelled:
                continuation.finish()
            case .failure(var error):
                error.path = pathAndQuery
                continuation.finish(throwing: error)
            case .success(let response) where response.status != 200:
                continuation.finish(throwing: Self.statusError(status: response.status, body: state.errorBody, method: "GET", path: pathAndQuery))
            case .success:
                do throws(KubeAPIError) {
                    if let last = try state.decoder.finish() {
                        if last.type == .error {
                            var failure = last.statusError
                            failure.method = "GET"
                            failure.path = pathAndQuery
                            continuation.finish(throwing: failure)
                            return
                        }
                        continuation.yield(last)
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
        }
        return stream
    }
}

/// What one watch transfer's callbacks share (used on its one thread only).
private final class WatchState: @unchecked Sendable {
    var decoder = WatchEventDecoder()
    var errorBody: [UInt8] = []
    var failure: KubeAPIError?
}
