// The kubelet API server (being written).
