// The Kubernetes face (being written).
