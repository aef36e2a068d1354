#!/usr/bin/env bash
# A real Kubernetes 1.20 control plane on loopback for Swiftlet's node tests, built from Debian.
#
#   hack/local-up-cluster.sh build [--force]
#       Builds kube-apiserver, kube-controller-manager, kube-scheduler and kubelet from Debian
#       bookworm's `kubernetes` source package (1.20.5+really1.20.2, which ships vendor/) with
#       Debian's Go 1.19, offline, and caches them outside the checkout in
#       $SWIFTLET_K8S_CACHE (default /var/cache/swiftlet-k8s)/<source package version>/bin.
#       A cached build is reused; only a fresh machine (or --force) builds. Prints the bin dir.
#   hack/local-up-cluster.sh up --dir DIR [--node-name NAME]
#       Builds if needed, then starts etcd, kube-apiserver, kube-controller-manager and
#       kube-scheduler in the background (logs DIR/*.log, pidfiles DIR/*.pid), every listener on
#       127.0.0.1 on free ports chosen now (DIR/env records them, so clusters can coexist).
#       Generates a CA and certs with openssl, enables `--authorization-mode=Node,RBAC` and the
#       NodeRestriction admission plugin, waits for /healthz and /readyz, then writes
#       DIR/admin.kubeconfig (system:masters) and DIR/node.kubeconfig
#       (system:node:NAME in system:nodes; NAME defaults to 127.0.0.1, as upstream's
#       HOSTNAME_OVERRIDE does) and prints their paths. Kubeconfigs embed their certificates.
#       DIR/env (KEY=VALUE lines): CLUSTER_DIR KUBE_BIN_DIR KUBE_VERSION NODE_NAME SERVER
#       APISERVER_PORT ETCD_PORT ETCD_PEER_PORT CONTROLLER_MANAGER_PORT SCHEDULER_PORT
#       ADMIN_KUBECONFIG NODE_KUBECONFIG CA_CERT CA_KEY SERVICE_CLUSTER_IP_RANGE CLUSTER_CIDR.
#       DIR/pki also holds the CA key (to sign e.g. a kubelet serving cert), the client cert the
#       API server presents to kubelets (kube-apiserver-kubelet-client, system:masters), the
#       front-proxy CA and client, and the service-account key pair. The controller manager
#       signs CSRs with the CA, allocates pod CIDRs from CLUSTER_CIDR, and runs the bootstrap
#       token controllers (the API server accepts bootstrap tokens). The API server advertises
#       127.0.0.1 and so keeps no `kubernetes` Endpoints (a loopback endpoint is invalid).
#       Kubelet TLS bootstrapping (a separate step after the above, as kubeadm sets it up): a
#       bootstrap token (Secret bootstrap-token-<id> in kube-system), ClusterRoleBindings letting
#       the group system:bootstrappers create CSRs (system:node-bootstrapper) with auto-approval
#       of their node client CSRs (certificatesigningrequests:nodeclient), and auto-approval of
#       nodes' renewals of their own client certificates for system:nodes
#       (certificatesigningrequests:selfnodeclient); DIR/bootstrap.kubeconfig holds the token,
#       and DIR/env adds BOOTSTRAP_KUBECONFIG and BOOTSTRAP_TOKEN.
#       If `up` fails it stops what it started and leaves DIR with the logs for `down`.
#   hack/local-up-cluster.sh down --dir DIR
#       Stops every process `up` started in DIR (SIGTERM, then SIGKILL) and removes DIR.
#   hack/local-up-cluster.sh bin-dir
#       Prints the cached bin dir (building first if needed).
#
# Three changes to the unpacked tree make 1.20.2 build with Go >= 1.16/1.18 in module mode:
#   1. vendor/modules.txt re-laid as `go mod vendor` (Go >= 1.17) writes it: wildcard
#      `# path => replacement` lines moved to the end;
#   2. the vendored github.com/modern-go/reflect2 v1.0.1 replaced by v1.0.2 (Debian's
#      golang-github-modern-go-reflect2-dev): with 1.0.1 built by Go >= 1.18 the API server
#      panicked on the first JSON map decode in the trial build;
#   3. pkg/generated/openapi/zz_generated.openapi.go (not shipped) generated with the vendored
#      openapi-gen, on the same input packages as Makefile.generated_files chooses.
# Only Debian's archive is needed: a bookworm deb-src entry is added for `apt-get source` if no
# configured source offers the package. The build runs in CACHE/<version>/work (~2 GiB at its
# peak, removed on success; kept on failure), logs to CACHE/<version>/build.log, and leaves
# ~330 MiB of binaries; a lock file lets concurrent callers wait for one build.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
SELF="$REPO/hack/local-up-cluster.sh"
CACHE_ROOT="${SWIFTLET_K8S_CACHE:-/var/cache/swiftlet-k8s}"
# The version this script was written against; another bookworm version is used (and cached
# under its own name) only if the archive no longer offers this one.
PINNED_VERSION="${SWIFTLET_K8S_SOURCE_VERSION:-1.20.5+really1.20.2-1.1+deb12u1}"
KUBE_GIT_VERSION="v1.20.2"
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
BUILD_PACKAGES=(golang-go golang-github-modern-go-reflect2-dev dpkg-dev)
RUN_PACKAGES=(etcd-server openssl curl)
DEB_SRC_FILE=/etc/apt/sources.list.d/swiftlet-deb-src.sources

log() { echo "local-up-cluster: $*" >&2; }
die() { log "error: $*"; exit 1; }

ensure_packages() {
  local missing=() package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# The cached bin dir of a complete build, if any: the pinned version's, else the newest.
cached_bin_dir() {
  local dir
  if [ -f "$CACHE_ROOT/$PINNED_VERSION/bin/.complete" ]; then
    echo "$CACHE_ROOT/$PINNED_VERSION/bin"; return 0
  fi
  dir=$(find "$CACHE_ROOT" -mindepth 3 -maxdepth 3 -path '*/bin/.complete' -printf '%h\n' 2>/dev/null | sort -V | tail -n1)
  [ -n "$dir" ] && echo "$dir"
}

# Sources must offer `kubernetes`; add bookworm's deb-src (deb822) if none does.
ensure_deb_src() {
  if [ -z "$(apt-cache showsrc kubernetes 2>/dev/null | sed -n 's/^Version: //p')" ]; then
    if [ ! -f "$DEB_SRC_FILE" ]; then
      log "adding bookworm deb-src in $DEB_SRC_FILE"
      cat >"$DEB_SRC_FILE" <<'EOF'
# Added by swiftlet's hack/local-up-cluster.sh: `apt-get source kubernetes` needs deb-src.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    fi
    apt-get update -q >/dev/null
  fi
}

resolve_version() {
  local versions
  versions=$(apt-cache showsrc kubernetes 2>/dev/null | sed -n 's/^Version: //p' | sort -uV)
  [ -n "$versions" ] || die "no source package 'kubernetes' in the configured apt sources"
  if grep -qxF "$PINNED_VERSION" <<<"$versions"; then
    echo "$PINNED_VERSION"
  else
    local chosen
    chosen=$(grep '^1\.20\.5+really1\.20\.2' <<<"$versions" | tail -n1 || true)
    [ -n "$chosen" ] || die "the archive offers kubernetes $(tr '\n' ' ' <<<"$versions")but not 1.20.5+really1.20.2"
    log "warning: $PINNED_VERSION is not in the archive; using $chosen"
    echo "$chosen"
  fi
}

# Fix 1: modules.txt as Go >= 1.17's `go mod vendor` lays it out.
relayout_modules_txt() {
  awk '/^# [^ ]+ => / { tail[n++] = $0; next } { print } END { for (i = 0; i < n; i++) print tail[i] }' \
    vendor/modules.txt >vendor/modules.txt.new
  mv vendor/modules.txt.new vendor/modules.txt
}

# Fix 2: reflect2 v1.0.1 -> Debian's v1.0.2.
replace_reflect2() {
  local from=/usr/share/gocode/src/github.com/modern-go/reflect2 to=vendor/github.com/modern-go/reflect2
  [ -f "$from/go_above_118.go" ] || die "$from lacks go_above_118.go: is golang-github-modern-go-reflect2-dev >= 1.0.2 installed?"
  find "$to" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) -delete
  find "$from" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' -exec cp {} "$to/" \;
  sed -i 's|github.com/modern-go/reflect2 v1.0.1|github.com/modern-go/reflect2 v1.0.2|g' go.mod vendor/modules.txt
  grep -q 'github.com/modern-go/reflect2 v1.0.2' vendor/modules.txt || die "reflect2 not found in vendor/modules.txt"
}

# Fix 3: pkg/generated/openapi/zz_generated.openapi.go with the vendored openapi-gen, run in
# GOPATH mode as hack/run-in-gopath.sh does; inputs as Makefile.generated_files computes them.
generate_openapi() {
  local work=$1 gopath="$1/gopath" tree
  mkdir -p "$gopath/src/k8s.io" "$gopath/bin"
  ln -sfn "$(pwd)" "$gopath/src/k8s.io/kubernetes"
  tree="$gopath/src/k8s.io/kubernetes"
  local dirs
  dirs=$(cd "$tree" && find -H . \( -path './_*' -o -path './.*' -o -path ./vendor -o -path ./debian \) -prune -o \
           -type f -name '*.go' -print0 \
         | xargs -0 grep -l '^// *+k8s:' \
         | xargs grep -l '+k8s:openapi-gen=' \
         | sed 's|^\./staging/src|vendor|; s|^\./||' \
         | grep -v -e '^vendor/k8s.io/code-generator/' -e '^vendor/k8s.io/sample-apiserver/' \
         | xargs -n1 dirname | LC_ALL=C sort -u | sed 's|^|k8s.io/kubernetes/|' | paste -sd, -)
  [ -n "$dirs" ] || die "no +k8s:openapi-gen packages found"
  log "openapi-gen over $(tr ',' '\n' <<<"$dirs" | wc -l) packages"
  (cd "$tree" && GO111MODULE=off GOPATH="$gopath" GOFLAGS= \
     go build -o "$gopath/bin/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen)
  (cd "$tree" && GO111MODULE=off GOPATH="$gopath" GOFLAGS= \
     "$gopath/bin/openapi-gen" --logtostderr -i "$dirs" \
       -p k8s.io/kubernetes/pkg/generated/openapi -O zz_generated.openapi \
       -h hack/boilerplate/boilerplate.generatego.txt -o "$gopath/src" \
       -r "$work/openapi-violations.report")
  [ -s pkg/generated/openapi/zz_generated.openapi.go ] || die "openapi-gen wrote no zz_generated.openapi.go"
  if ! diff -q "$work/openapi-violations.report" api/api-rules/violation_exceptions.list >/dev/null; then
    log "note: the API rule violation report differs from api/api-rules/violation_exceptions.list (harmless here)"
  fi
}

build_binaries() {
  local out=$1 date_iso
  date_iso=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}" +%Y-%m-%dT%H:%M:%SZ)
  local ldflags="-s -w" pkg
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBE_GIT_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=20"
    ldflags+=" -X $pkg.gitTreeState=archive -X $pkg.buildDate=$date_iso"
  done
  GO111MODULE=on GOFLAGS=-mod=vendor GOPROXY=off CGO_ENABLED=0 \
    go build -trimpath -tags selinux,notest -ldflags "$ldflags" -o "$out/" \
      ./cmd/kube-apiserver ./cmd/kube-controller-manager ./cmd/kube-scheduler ./cmd/kubelet
}

cmd_build() {
  local force=false
  while [ $# -gt 0 ]; do
    case "$1" in
      --force) force=true ;;
      *) die "build: unknown argument $1" ;;
    esac
    shift
  done
  local bin
  if ! $force && bin=$(cached_bin_dir); then
    echo "$bin"; return 0
  fi
  [ "$(id -u)" = 0 ] || die "build needs root (apt-get, $CACHE_ROOT)"
  ensure_packages "${BUILD_PACKAGES[@]}"
  ensure_deb_src
  local version
  version=$(resolve_version)
  local dest="$CACHE_ROOT/$version"
  mkdir -p "$dest"
  # One builder at a time per version; a second caller waits and then reuses the result.
  exec 9>"$dest/.lock"
  flock 9
  if ! $force && [ -f "$dest/bin/.complete" ]; then
    echo "$dest/bin"; return 0
  fi
  local work="$dest/work" start=$SECONDS
  rm -rf "$work" "$dest/bin"
  mkdir -p "$work/src" "$work/gocache" "$dest/bin"
  log "building kubernetes $version in $work (log: $dest/build.log); a cold build takes minutes"
  # A separate process, so that `set -e` holds inside it (it would not in `( … ) || …`).
  if ! "$SELF" __build-tree "$version" "$dest" >"$dest/build.log" 2>&1; then
    tail -n 40 "$dest/build.log" >&2
    die "build failed; the full log is $dest/build.log, the tree is under $work"
  fi
  local b
  for b in "${BINARIES[@]}"; do [ -x "$dest/bin/$b" ] || die "build produced no $b"; done
  {
    echo "source-package: kubernetes $version"
    echo "go: $(go version)"
    echo "built: $(date -u +%FT%TZ) in $((SECONDS - start)) s"
  } >"$dest/bin/.complete"
  rm -rf "$work"
  log "built in $((SECONDS - start)) s: $dest/bin"
  echo "$dest/bin"
}

# ---------------------------------------------------------------------------------------------
# The cluster.

MARKER=.swiftlet-local-cluster
# Stop order: the reverse of the start order.
COMPONENTS=(kube-scheduler kube-controller-manager kube-apiserver etcd)

# free_ports N: N ports free on 127.0.0.1, below the kernel's ephemeral range
# (net.ipv4.ip_local_port_range), so that no outgoing connection is given one of them between
# this choice and the daemon's bind.
free_ports() {
  python3 - "$1" <<'PY'
import random, socket, sys
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
candidates = list(range(20000, max(20001, low)))
random.shuffle(candidates)
chosen = []
for port in candidates:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    chosen.append(port)
    if len(chosen) == int(sys.argv[1]):
        break
print(" ".join(map(str, chosen)))
PY
}

# Keys are RSA 2048 in PKCS#1 PEM, as kubeadm writes them.
new_key() { openssl genrsa -traditional -out "$1" 2048 2>/dev/null; chmod 0600 "$1"; }

# new_ca NAME CN: a self-signed CA, pki/NAME.key and pki/NAME.crt, valid 10 years.
new_ca() {
  local pki="$CLUSTER_DIR/pki"
  new_key "$pki/$1.key"
  openssl req -x509 -new -key "$pki/$1.key" -subj "/CN=$2" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$pki/$1.crt" 2>/dev/null
}

# sign NAME SUBJECT EXTENSIONS [CA]: pki/NAME.key and pki/NAME.crt signed by CA (default: ca),
# valid 1 year.
sign() {
  local name=$1 subject=$2 ext=$3 ca=${4:-ca} pki="$CLUSTER_DIR/pki"
  new_key "$pki/$name.key"
  openssl req -new -key "$pki/$name.key" -subj "$subject" -out "$pki/$name.csr" 2>/dev/null
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" "$ext" \
    >"$pki/$name.ext"
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/$ca.crt" -CAkey "$pki/$ca.key" -CAcreateserial \
    -days 365 -sha256 -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
  rm -f "$pki/$name.csr" "$pki/$name.ext"
}

generate_pki() {
  local pki="$CLUSTER_DIR/pki"
  mkdir -p "$pki"
  new_ca ca swiftlet-local-ca
  sign apiserver "/CN=kube-apiserver" "extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  sign admin "/O=system:masters/CN=kubernetes-admin" "extendedKeyUsage=clientAuth"
  sign node "/O=system:nodes/CN=system:node:$NODE_NAME" "extendedKeyUsage=clientAuth"
  sign controller-manager "/CN=system:kube-controller-manager" "extendedKeyUsage=clientAuth"
  sign scheduler "/CN=system:kube-scheduler" "extendedKeyUsage=clientAuth"
  # What the API server presents to kubelets (logs, exec, port-forward).
  sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "extendedKeyUsage=clientAuth"
  # The aggregation layer's front proxy (as kubeadm sets it up): the API server's client cert
  # for extension API servers, and the CA they (and the controllers) trust for request headers.
  new_ca front-proxy-ca swiftlet-local-front-proxy-ca
  sign front-proxy-client "/CN=front-proxy-client" "extendedKeyUsage=clientAuth" front-proxy-ca
  new_key "$pki/sa.key"
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

# write_kubeconfig FILE USER CERT-NAME: a self-contained kubeconfig (certs embedded).
write_kubeconfig() {
  local file=$1 user=$2 name=$3 pki="$CLUSTER_DIR/pki"
  cat >"$file" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: $SERVER
    certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 "$pki/$name.crt")
    client-key-data: $(base64 -w0 "$pki/$name.key")
contexts:
- name: $user@local
  context:
    cluster: local
    user: $user
current-context: $user@local
preferences: {}
KUBECONFIG
  chmod 0600 "$file"
}

# start NAME COMMAND...: in its own session, output appended to NAME.log, pid in NAME.pid.
start() {
  local name=$1; shift
  setsid "$@" >>"$CLUSTER_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$CLUSTER_DIR/$name.pid"
  STARTED+=("$name")
}

# live_pid DIR NAME: the pid in DIR/NAME.pid if that process lives and was started for DIR.
live_pid() {
  local pidfile="$1/$2.pid" pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qF -- "$1/" || return 1
  echo "$pid"
}

admin_curl() {
  curl -sS --max-time 5 --cacert "$CLUSTER_DIR/pki/ca.crt" --cert "$CLUSTER_DIR/pki/admin.crt" \
    --key "$CLUSTER_DIR/pki/admin.key" "$@"
}

# wait_for WHAT SECONDS COMMAND...: retries COMMAND every 0.5 s; fails early if a component died.
wait_for() {
  local what=$1 timeout=$2; shift 2
  local deadline=$((SECONDS + timeout)) c
  until "$@" >/dev/null 2>&1; do
    for c in "${STARTED[@]}"; do
      if ! live_pid "$CLUSTER_DIR" "$c" >/dev/null; then
        tail -n 30 "$CLUSTER_DIR/$c.log" >&2
        die "$c exited while waiting for $what (log: $CLUSTER_DIR/$c.log)"
      fi
    done
    [ $SECONDS -lt $deadline ] || die "timed out after ${timeout}s waiting for $what"
    sleep 0.5
  done
}

ok_body() { [ "$("$@")" = ok ]; }

default_sa_has_token() {
  admin_curl -f "$SERVER/api/v1/namespaces/default/serviceaccounts/default" | grep -q '"secrets"'
}

# stop_cluster DIR: SIGTERM to every live component (scheduler first, etcd last), SIGKILL after 15 s.
stop_cluster() {
  local dir=$1 c pid pids=() deadline
  for c in "${COMPONENTS[@]}"; do
    if pid=$(live_pid "$dir" "$c"); then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  deadline=$((SECONDS + 15))
  for pid in "${pids[@]}"; do
    while [ -e "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
      sleep 0.1
    done
    if [ -e "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
      log "pid $pid ignored SIGTERM for 15 s; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      while [ -e "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; do sleep 0.1; done
    fi
  done
}

# setup_bootstrap: kubelet TLS bootstrapping, as kubeadm's `bootstrap-token` phase sets it up:
# a token, RBAC for system:bootstrappers (create CSRs, node client CSRs auto-approved), node
# client renewals auto-approved for system:nodes, and DIR/bootstrap.kubeconfig with the token.
setup_bootstrap() {
  local d=$CLUSTER_DIR id secret entry binding role group
  id=$(openssl rand -hex 3) secret=$(openssl rand -hex 8)
  admin_curl -f -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary @- \
    "$SERVER/api/v1/namespaces/kube-system/secrets" <<JSON
{"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
 "metadata": {"name": "bootstrap-token-$id", "namespace": "kube-system"},
 "stringData": {"description": "swiftlet local-up-cluster kubelet bootstrap token", "token-id": "$id",
                "token-secret": "$secret", "usage-bootstrap-authentication": "true", "usage-bootstrap-signing": "true"}}
JSON
  for entry in \
    "swiftlet:kubelet-bootstrap system:node-bootstrapper system:bootstrappers" \
    "swiftlet:node-autoapprove-bootstrap system:certificates.k8s.io:certificatesigningrequests:nodeclient system:bootstrappers" \
    "swiftlet:node-autoapprove-certificate-rotation system:certificates.k8s.io:certificatesigningrequests:selfnodeclient system:nodes"; do
    read -r binding role group <<<"$entry"
    admin_curl -f -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary @- \
      "$SERVER/apis/rbac.authorization.k8s.io/v1/clusterrolebindings" <<JSON
{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "$binding"},
 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "$role"},
 "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "$group"}]}
JSON
  done
  cat >"$d/bootstrap.kubeconfig" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: $SERVER
    certificate-authority-data: $(base64 -w0 "$d/pki/ca.crt")
users:
- name: kubelet-bootstrap
  user:
    token: $id.$secret
contexts:
- name: kubelet-bootstrap@local
  context:
    cluster: local
    user: kubelet-bootstrap
current-context: kubelet-bootstrap@local
preferences: {}
KUBECONFIG
  chmod 0600 "$d/bootstrap.kubeconfig"
  printf 'BOOTSTRAP_KUBECONFIG=%s\nBOOTSTRAP_TOKEN=%s\n' "$d/bootstrap.kubeconfig" "$id.$secret" >>"$d/env"
}

cmd_up() {
  CLUSTER_DIR="" NODE_NAME="127.0.0.1"
  while [ $# -gt 0 ]; do
    case "$1" in
      --dir) CLUSTER_DIR=${2:?--dir needs a value}; shift ;;
      --dir=*) CLUSTER_DIR=${1#--dir=} ;;
      --node-name) NODE_NAME=${2:?--node-name needs a value}; shift ;;
      --node-name=*) NODE_NAME=${1#--node-name=} ;;
      *) die "up: unknown argument $1" ;;
    esac
    shift
  done
  [ -n "$CLUSTER_DIR" ] || die "up: --dir DIR is required"
  [ "$(id -u)" = 0 ] || die "up needs root (packages, the cache)"
  mkdir -p "$CLUSTER_DIR"
  CLUSTER_DIR=$(cd "$CLUSTER_DIR" && pwd -P)
  if [ -n "$(ls -A "$CLUSTER_DIR")" ]; then
    die "up: $CLUSTER_DIR is not empty (a cluster already there? $SELF down --dir $CLUSTER_DIR)"
  fi
  : >"$CLUSTER_DIR/$MARKER"
  ensure_packages "${RUN_PACKAGES[@]}"
  KUBE_BIN_DIR=$(cmd_build)
  SERVICE_CLUSTER_IP_RANGE=10.0.0.0/24 SERVICE_IP=10.0.0.1 CLUSTER_CIDR=10.244.0.0/16
  local ports
  read -r -a ports <<<"$(free_ports 5)"
  ETCD_PORT=${ports[0]} ETCD_PEER_PORT=${ports[1]} APISERVER_PORT=${ports[2]}
  CONTROLLER_MANAGER_PORT=${ports[3]} SCHEDULER_PORT=${ports[4]}
  SERVER="https://127.0.0.1:$APISERVER_PORT"
  local d=$CLUSTER_DIR pki="$CLUSTER_DIR/pki"
  cat >"$d/env" <<ENV
CLUSTER_DIR=$d
KUBE_BIN_DIR=$KUBE_BIN_DIR
KUBE_VERSION=$KUBE_GIT_VERSION
NODE_NAME=$NODE_NAME
SERVER=$SERVER
APISERVER_PORT=$APISERVER_PORT
ETCD_PORT=$ETCD_PORT
ETCD_PEER_PORT=$ETCD_PEER_PORT
CONTROLLER_MANAGER_PORT=$CONTROLLER_MANAGER_PORT
SCHEDULER_PORT=$SCHEDULER_PORT
ADMIN_KUBECONFIG=$d/admin.kubeconfig
NODE_KUBECONFIG=$d/node.kubeconfig
CA_CERT=$pki/ca.crt
CA_KEY=$pki/ca.key
SERVICE_CLUSTER_IP_RANGE=$SERVICE_CLUSTER_IP_RANGE
CLUSTER_CIDR=$CLUSTER_CIDR
ENV
  generate_pki
  write_kubeconfig "$d/controller-manager.kubeconfig" system:kube-controller-manager controller-manager
  write_kubeconfig "$d/scheduler.kubeconfig" system:kube-scheduler scheduler

  STARTED=()
  trap 'rc=$?; if [ $rc -ne 0 ]; then log "up failed; stopping what it started (logs stay in $CLUSTER_DIR)"; stop_cluster "$CLUSTER_DIR"; fi' EXIT

  start etcd /usr/bin/etcd --name default --data-dir "$d/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "default=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new
  wait_for "etcd" 60 curl -sf --max-time 2 "http://127.0.0.1:$ETCD_PORT/health"

  # The advertised address is loopback, which an Endpoints object may not hold: no reconciler.
  start kube-apiserver "$KUBE_BIN_DIR/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --secure-port "$APISERVER_PORT" --advertise-address 127.0.0.1 \
    --endpoint-reconciler-type none \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --enable-bootstrap-token-auth \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range "$SERVICE_CLUSTER_IP_RANGE" \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP,ExternalIP,Hostname \
    --requestheader-client-ca-file "$pki/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$pki/front-proxy-client.crt" --proxy-client-key-file "$pki/front-proxy-client.key" \
    --allow-privileged=true --v 1
  wait_for "kube-apiserver /healthz" 120 ok_body admin_curl "$SERVER/healthz"
  wait_for "kube-apiserver /readyz" 120 ok_body admin_curl "$SERVER/readyz"

  start kube-controller-manager "$KUBE_BIN_DIR/kube-controller-manager" \
    --kubeconfig "$d/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$d/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$d/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$CONTROLLER_MANAGER_PORT" --port 0 \
    --leader-elect=false --use-service-account-credentials \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --controllers '*,bootstrapsigner,tokencleaner' \
    --service-cluster-ip-range "$SERVICE_CLUSTER_IP_RANGE" \
    --allocate-node-cidrs --cluster-cidr "$CLUSTER_CIDR" --v 1

  start kube-scheduler "$KUBE_BIN_DIR/kube-scheduler" \
    --kubeconfig "$d/scheduler.kubeconfig" \
    --authentication-kubeconfig "$d/scheduler.kubeconfig" \
    --authorization-kubeconfig "$d/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --port 0 \
    --leader-elect=false --v 1

  wait_for "kube-controller-manager /healthz" 120 ok_body curl -sk --max-time 2 "https://127.0.0.1:$CONTROLLER_MANAGER_PORT/healthz"
  wait_for "kube-scheduler /healthz" 120 ok_body curl -sk --max-time 2 "https://127.0.0.1:$SCHEDULER_PORT/healthz"
  wait_for "namespace kube-node-lease" 60 admin_curl -f "$SERVER/api/v1/namespaces/kube-node-lease"
  # 1.20's ServiceAccount admission refuses pods until the default account has its token.
  wait_for "the default service account's token" 60 default_sa_has_token

  write_kubeconfig "$d/admin.kubeconfig" kubernetes-admin admin
  write_kubeconfig "$d/node.kubeconfig" "system:node:$NODE_NAME" node
  setup_bootstrap
  trap - EXIT
  echo "server:           $SERVER"
  echo "admin kubeconfig: $d/admin.kubeconfig"
  echo "node kubeconfig:  $d/node.kubeconfig   (system:node:$NODE_NAME in system:nodes)"
  echo "bootstrap kubeconfig: $d/bootstrap.kubeconfig   (a bootstrap token in system:bootstrappers)"
  echo "env:              $d/env"
  echo "stop with:        $SELF down --dir $d"
}

cmd_down() {
  local dir=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --dir) dir=${2:?--dir needs a value}; shift ;;
      --dir=*) dir=${1#--dir=} ;;
      *) die "down: unknown argument $1" ;;
    esac
    shift
  done
  [ -n "$dir" ] || die "down: --dir DIR is required"
  [ -d "$dir" ] || { log "$dir does not exist; nothing to do"; return 0; }
  dir=$(cd "$dir" && pwd -P)
  [ -f "$dir/$MARKER" ] || die "down: $dir was not made by '$SELF up' (no $MARKER); not touching it"
  stop_cluster "$dir"
  rm -rf "$dir"
}

# Internal: unpack, fix and build in $dest/work (run by cmd_build with its output in build.log).
build_tree() {
  local version=$1 dest=$2 work="$2/work"
  echo "# $(date -u +%FT%TZ) kubernetes $version with $(go version)"
  cd "$work/src"
  apt-get source -q "kubernetes=$version" 2>&1
  cd kubernetes-*/
  export GOCACHE="$work/gocache" GOPATH="$work/gopath" GOTOOLCHAIN=local
  relayout_modules_txt
  replace_reflect2
  generate_openapi "$work"
  build_binaries "$dest/bin"
  echo "# $(date -u +%FT%TZ) done"
}

main() {
  case "${1:-}" in
    build) shift; cmd_build "$@" ;;
    up) shift; cmd_up "$@" ;;
    down) shift; cmd_down "$@" ;;
    bin-dir) cmd_build ;;
    __build-tree) shift; set -x; build_tree "$@" ;;
    *) die "usage: $0 build [--force] | up --dir DIR [--node-name NAME] | down --dir DIR | bin-dir" ;;
  esac
}

# One line, parsed whole before it runs: editing this file under a running build is harmless.
main "$@"; exit $?
