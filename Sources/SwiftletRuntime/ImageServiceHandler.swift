import CRI
import Foundation
import ImageStore
import Logging

/// Swiftlet's CRI ImageService over the image store.
///
/// ListImages, ImageStatus, RemoveImage and ImageFsInfo are served from the store (images get
/// there with `swiftlet images import` today); PullImage answers UNIMPLEMENTED until the
/// registry client lands (issue #4).
public struct ImageServiceHandler: ImageService {
    public let store: ImageStore
    private let logger: Logger

    public init(store: ImageStore, logger: Logger) {
        self.store = store
        self.logger = logger
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
        do {
            if try store.remove(reference) {
                logger.info("image removed", metadata: ["image": "\(reference)"])
            }
        } catch {
            throw CRIError(.internal, "removing image \(reference): \(error)")
        }
        return RemoveImageResponse()
    }

    public func imageFsInfo(_ request: ImageFsInfoRequest, context: CallContext) async throws -> ImageFsInfoResponse {
        let usage = store.usage()
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let filesystem = FilesystemUsage(
            timestamp: Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec),
            fsId: FilesystemIdentifier(mountpoint: store.root),
            usedBytes: UInt64Value(value: usage.bytes), inodesUsed: UInt64Value(value: usage.inodes))
        return ImageFsInfoResponse(imageFilesystems: [filesystem])
    }
}
