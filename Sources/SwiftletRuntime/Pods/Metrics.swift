import CRI

/// The CRI's metrics (ListMetricDescriptors, ListPodSandboxMetrics): cAdvisor's names for the
/// values the stats already carry, so a kubelet that takes its metrics from the runtime
/// exports the same series it would from cAdvisor.
extension PodRuntime {
    /// (name, help, label keys, type) of every metric reported.
    static let metricDescriptors: [(String, String, [String], MetricType)] = [
        ("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", [], .counter),
        ("container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", [], .gauge),
        ("container_memory_working_set_bytes", "Current working set in bytes.", [], .gauge),
        ("container_fs_usage_bytes", "Number of bytes that are consumed by the container's writable layer.", [], .gauge),
        ("container_fs_inodes_total", "Number of inodes the container's writable layer uses.", [], .gauge),
        ("container_network_receive_bytes_total", "Cumulative count of bytes received.", ["interface"], .counter),
        ("container_network_receive_errors_total", "Cumulative count of errors encountered while receiving.", ["interface"], .counter),
        ("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.", ["interface"], .counter),
        ("container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting.", ["interface"], .counter),
    ]

    func listMetricDescriptors() -> [MetricDescriptor] {
        Self.metricDescriptors.map { MetricDescriptor(name: $0.0, help: $0.1, labelKeys: $0.2) }
    }

    /// Every ready pod's metrics: network per interface at pod level, the rest per container.
    /// cpu is in seconds as cAdvisor's counter is, truncated to whole nanoseconds' worth.
    func listPodSandboxMetrics() -> [PodSandboxMetrics] {
        listSandboxStats(nil).map { stats in
            let linux = stats.linux
            let now = linux?.cpu?.timestamp ?? nowNanoseconds()
            func metric(_ name: String, _ value: UInt64?, _ type: MetricType, labels: [String] = []) -> Metric? {
                value.map { Metric(name: name, timestamp: now, metricType: type, labelValues: labels, value: UInt64Value(value: $0)) }
            }
            var pod: [Metric] = []
            for interface in linux?.network?.interfaces ?? [] {
                pod += [
                    metric("container_network_receive_bytes_total", interface.rxBytes?.value, .counter, labels: [interface.name]),
                    metric("container_network_receive_errors_total", interface.rxErrors?.value, .counter, labels: [interface.name]),
                    metric("container_network_transmit_bytes_total", interface.txBytes?.value, .counter, labels: [interface.name]),
                    metric("container_network_transmit_errors_total", interface.txErrors?.value, .counter, labels: [interface.name]),
                ].compactMap { $0 }
            }
            let containers = (linux?.containers ?? []).map { container in
                ContainerMetrics(containerId: container.attributes?.id ?? "", metrics: [
                    metric("container_cpu_usage_seconds_total", container.cpu?.usageCoreNanoSeconds.map { $0.value / 1_000_000_000 }, .counter),
                    metric("container_memory_usage_bytes", container.memory?.usageBytes?.value, .gauge),
                    metric("container_memory_working_set_bytes", container.memory?.workingSetBytes?.value, .gauge),
                    metric("container_fs_usage_bytes", container.writableLayer?.usedBytes?.value, .gauge),
                    metric("container_fs_inodes_total", container.writableLayer?.inodesUsed?.value, .gauge),
                ].compactMap { $0 })
            }
            return PodSandboxMetrics(podSandboxId: stats.attributes?.id ?? "", metrics: pod, containerMetrics: containers)
        }
    }
}
