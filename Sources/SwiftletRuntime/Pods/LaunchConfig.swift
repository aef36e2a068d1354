import Containerizer

/// The containerizer's container config. Named apart from the CRI's `ContainerConfig`
/// (this file imports only the Containerizer, so the name resolves here).
typealias LaunchConfig = ContainerConfig
/// The containerizer's view of a container's state.
typealias LaunchState = ContainerState
