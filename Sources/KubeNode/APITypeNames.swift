import KubeClient

// The CRI and core/v1 share type names (Container, ContainerStatus, ContainerState), and the
// KubeClient module's main class shadows its own module name, so `KubeClient.Container` cannot
// be spelled. These names, declared where only KubeClient is imported, say which one is meant.

/// core/v1 Container (a container of a pod's spec).
typealias ContainerSpec = Container
/// core/v1 ContainerStatus (a pod status entry).
typealias APIContainerStatus = ContainerStatus
/// core/v1 ContainerState.
typealias APIContainerState = ContainerState
/// core/v1 PodIP.
typealias APIPodIP = PodIP
