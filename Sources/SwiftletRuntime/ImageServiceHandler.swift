import CRI
import Dispatch
import Foundation
import ImageStore
import RegistryClient
import Logging

/// Swiftlet's CRI ImageService over the image store.
///
/// PullImage pulls from registries (RegistryClient); ListImages, ImageStatus, RemoveImage and
/// ImageFsInfo are served from the store.
public struct ImageServiceHandler: ImageService {
    public let store: ImageStore
    private let puller: Puller
    private let logger: Logger

    public init(store: ImageStore, registryHosts: RegistryHosts, logger: Logger) {
        self.store = store
        self.puller = Puller(store: store, hosts: registryHosts)
        self.logger = logger
    }

    public func pullImage(_ request: PullImageRequest, context: CallContext) async throws -> PullImageResponse {
        let reference = request.image?.image ?? ""
        guard !reference.isEmpty else { throw CRIError.invalidArgument("PullImage needs an image reference") }
        var credentials = RegistryCredentials()
        if let auth = request.auth {
            credentials = RegistryCredentials(username: auth.username, password: auth.password,
                                              identityToken: auth.identityToken, registryToken: auth.registryToken)
            if credentials.username.isEmpty, !auth.auth.isEmpty {
                guard let decoded = RegistryCredentials(auth: auth.auth) else {
                    throw CRIError.invalidArgument("auth is not base64 of user:password")
                }
                credentials = decoded
            }
        }
        let started = ContinuousClock.now
        do {
            let image = try await puller.pull(reference, credentials: credentials)
            logger.info("image pulled", metadata: ["image": "\(reference)", "id": "\(image.id)", "duration": "\(ContinuousClock.now - started)"])
            return PullImageResponse(imageRef: image.id.description)
        } catch {
            logger.warning("image pull failed", metadata: ["image": "\(reference)", "error": "\(error)"])
            let code: CRIError.Code = switch error.kind {
            case .unauthenticated: .unauthenticated
            case .permissionDenied: .permissionDenied
            case .notFound: .notFound
            case .invalidReference: .invalidArgument
            case .transport: .unavailable
            case .protocolError, .store: .internal
            }
            throw CRIError(code, "pulling \(reference): \(error)")
        }
    }

    /// The CRI's Image for a stored one: id = config digest; uid or username from the
    /// config's User (numeric → uid, a name → username, as containerd reports them).
    static func criImage(_ image: StoredImage) -> Image {
        var result = Image(id: image.id.description, repoTags: image.tags.sorted(), repoDigests: image.repoDigests.sorted(),
                           size: UInt64(max(0, image.size)), spec: ImageSpec(image: image.id.description))
        let user = image.configuration.config?.User ?? ""
        let name = user.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
        if let uid = Int64(name) {
            result.uid = Int64Value(value: uid)
        } else {
            result.username = name
        }
        return result
    }

    public func listImages(_ request: ListImagesRequest, context: CallContext) async throws -> ListImagesResponse {
        if let wanted = request.filter?.image?.image, !wanted.isEmpty {
            return ListImagesResponse(images: store.resolve(wanted).map { [Self.criImage($0)] } ?? [])
        }
        return ListImagesResponse(images: store.images().map(Self.criImage))
    }

    public func imageStatus(_ request: ImageStatusRequest, context: CallContext) async throws -> ImageStatusResponse {
        let reference = request.image?.image ?? ""
        guard !reference.isEmpty else { throw CRIError.invalidArgument("ImageStatus needs an image (id, name or digest)") }
        // An unknown image is not an error: the response just has no image.
        guard let image = store.resolve(reference) else { return ImageStatusResponse() }
        var response = ImageStatusResponse(image: Self.criImage(image))
        if request.verbose {
            struct Info: Encodable {
                var chainID: String
                var manifest: String
                var imageSpec: ImageConfiguration
                var snapshots: [String]
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let info = Info(chainID: image.chainIDs.last?.description ?? "", manifest: image.manifest.description,
                            imageSpec: image.configuration, snapshots: store.lowerDirectories(image))
            response.info = ["info": (try? encoder.encode(info)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"]
        }
        return response
    }

    public func removeImage(_ request: RemoveImageRequest, context: CallContext) async throws -> RemoveImageResponse {
        let reference = request.image?.image ?? ""
        guard !reference.isEmpty else { throw CRIError.invalidArgument("RemoveImage needs an image (id, name or digest)") }
        // Garbage collection walks and deletes files, and may wait for the store's lock (an
        // import in another process): not on the CRI server's poller thread.
        let store = self.store
        let removed: Result<Bool, ImageStoreError> = await Offload.run {
            Result { () throws(ImageStoreError) -> Bool in try store.remove(reference) }
        }
        switch removed {
        case .success(true): logger.info("image removed", metadata: ["image": "\(reference)"])
        case .success(false): break
        case .failure(let error): throw CRIError(.internal, "removing image \(reference): \(error)")
        }
        return RemoveImageResponse()
    }

    public func imageFsInfo(_ request: ImageFsInfoRequest, context: CallContext) async throws -> ImageFsInfoResponse {
        let store = self.store
        let usage = await Offload.run { store.usage() }  // a walk of the whole store
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let filesystem = FilesystemUsage(
            timestamp: Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec),
            fsId: FilesystemIdentifier(mountpoint: store.root),
            usedBytes: UInt64Value(value: usage.bytes), inodesUsed: UInt64Value(value: usage.inodes))
        return ImageFsInfoResponse(imageFilesystems: [filesystem])
    }
}

/// Runs blocking work (file-system walks, lock waits) on a dispatch thread, so a CRI handler
/// never holds the server's poller thread with it.
enum Offload {
    static func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: work()) }
        }
    }

    /// ``run(_:)`` for work that fails with a CRI error.
    static func throwing<T: Sendable>(_ work: @escaping @Sendable () throws(CRIError) -> T) async throws(CRIError) -> T {
        let result: Result<T, CRIError> = await run { Result { () throws(CRIError) -> T in try work() } }
        return try result.get()
    }
}
