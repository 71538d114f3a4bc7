"""Config files and command lines of a real node's components (pure: paths in, text out).

The node's network is fixed: one bridge (`dockyard0`) with the gateway 10.244.0.1 of the pod
subnet 10.244.0.0/24 (inside the control plane's cluster CIDR). The gateway is also the node's
InternalIP, the address the kubelet serves on and the cluster DNS address, so nothing listens on
the host's own interfaces; one real node per machine.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path

from ..components import POD_CIDR

NODE_NAME = "dockyard-node"
BRIDGE = "dockyard0"
POD_SUBNET = "10.244.0.0/24"
GATEWAY = str(next(ipaddress.ip_network(POD_SUBNET).hosts()))
CLUSTER_DOMAIN = "cluster.local"
STORAGE_CLASS = "local-path"
LOCAL_PATH_NAMESPACE = "local-path-storage"
PROVISIONER_NAME = "rancher.io/local-path"
# The ClusterRoles every kubeadm cluster binds for its nodes and kube-proxy.
NODE_GROUP = "system:nodes"
KUBE_PROXY_USER = "system:kube-proxy"
# The API server's identity towards the kubelet (logs, exec, port-forward): a client certificate in
# this group, which RBAC lets do anything.
KUBELET_CLIENT_ORGANIZATION = "system:masters"
KUBELET_CLIENT_NAME = "kube-apiserver-kubelet-client"


@dataclass(frozen=True)
class NodePorts:
    """Loopback ports of the node's health and metrics endpoints, and the kubelet's API port."""

    kubelet: int
    kubelet_healthz: int
    kube_proxy_healthz: int
    kube_proxy_metrics: int
    coredns_ready: int


@dataclass(frozen=True)
class NodeLayout:
    """Where a node's state lives: everything under the cluster's work dir."""

    workdir: Path

    @property
    def containerd_dir(self) -> Path:
        return self.workdir / "containerd"

    @property
    def containerd_config(self) -> Path:
        return self.containerd_dir / "config.toml"

    @property
    def containerd_socket(self) -> Path:
        return self.containerd_dir / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.workdir / "cni" / "net.d"

    @property
    def cni_ipam_dir(self) -> Path:
        return self.workdir / "cni" / "ipam"

    @property
    def kubelet_dir(self) -> Path:
        return self.workdir / "kubelet"

    @property
    def pod_logs_dir(self) -> Path:
        return self.workdir / "pod-logs"

    @property
    def local_path_dir(self) -> Path:
        return self.workdir / "local-path"

    @property
    def node_pki(self) -> Path:
        return self.workdir / "node-pki"


def node_token_lines(node_token: str, proxy_token: str, node_name: str = NODE_NAME) -> list[str]:
    """Extra lines of the API server's token file: the kubelet's and kube-proxy's identities."""
    return [
        f'{node_token},system:node:{node_name},node-uid,"{NODE_GROUP}"',
        f"{proxy_token},{KUBE_PROXY_USER},kube-proxy-uid",
    ]


APISERVER_DROPPED_FLAGS = frozenset({"--disable-admission-plugins=ServiceAccount"})
"""Left out of the shared control plane's API server flags: pods get ServiceAccount tokens."""


def apiserver_flags(kubelet_client_cert: Path, kubelet_client_key: Path) -> list[str]:
    """What the API server needs to reach a kubelet registered under a name DNS does not know, and
    to be reached from pods: the `kubernetes` Service's endpoint is the bridge gateway (the API
    server listens on every address, its serving certificate names 10.0.0.1), so in-cluster
    clients (an operator installed with its Helm chart) work as on any cluster."""
    return [
        "--kubelet-preferred-address-types=InternalIP,Hostname",
        f"--kubelet-client-certificate={kubelet_client_cert}",
        f"--kubelet-client-key={kubelet_client_key}",
        "--bind-address=0.0.0.0",
        f"--advertise-address={GATEWAY}",
        "--endpoint-reconciler-type=lease",
    ]


def rbac_bindings() -> list[dict[str, object]]:
    """The stock node and kube-proxy ClusterRoles bound to their identities (RBAC only: no Node
    authorizer, as in the rest of the local control plane)."""

    def binding(name: str, role: str, kind: str, subject: str) -> dict[str, object]:
        return {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": subject}],
        }

    return [
        binding("dockyard:nodes", "system:node", "Group", NODE_GROUP),
        binding("dockyard:kube-proxy", "system:node-proxier", "User", KUBE_PROXY_USER),
    ]


def containerd_config(layout: NodeLayout, runc: Path, cni_bin_dir: Path, sandbox_image: str) -> str:
    """containerd 1.6 (Debian 12): its own root, state and socket under the work dir; the CRI plugin
    with runc (cgroupfs), the CNI config dir of this node and the pause image imported at start."""
    c = layout.containerd_dir
    return f"""version = 2
root = "{c / "root"}"
state = "{c / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "{layout.containerd_socket}"

[ttrpc]
  address = "{layout.containerd_socket}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{c / "opt"}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{sandbox_image}"
  enable_selinux = false
  # Never ask runc for an oom_score_adj below containerd's own: where root lacks CAP_SYS_RESOURCE
  # (Firecracker sandboxes) runc cannot write the pause container's -998 and every sandbox fails
  # with "can't get final child's PID from pipe: EOF". Harmless elsewhere.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{c / "certs.d"}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin_dir}"
    conf_dir = "{layout.cni_conf_dir}"
    max_conf_num = 1
"""


def cni_conflist(layout: NodeLayout) -> str:
    """bridge (gateway, masquerade, hairpin) + host-local IPAM under the work dir + portmap."""
    config = {
        "cniVersion": "0.4.0",
        "name": "dockyard",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": True,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(layout.cni_ipam_dir),
                    "ranges": [[{"subnet": POD_SUBNET, "gateway": GATEWAY}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }
    return json.dumps(config, indent=2) + "\n"


def kubelet_config(layout: NodeLayout, ports: NodePorts, client_ca: Path) -> str:
    """KubeletConfiguration: cgroupfs driver, cgroup v1 accepted, the API server authenticated by
    its client certificate and authorized through SubjectAccessReviews, served on the bridge
    gateway only; eviction and image GC thresholds low enough for a busy build machine."""
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "address": GATEWAY,
        "port": ports.kubelet,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": ports.kubelet_healthz,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(client_ca)},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": "cgroupfs",
        "failCgroupV1": False,
        "failSwapOn": False,
        "clusterDomain": CLUSTER_DOMAIN,
        "clusterDNS": [GATEWAY],
        # No host resolvers in pods: cluster DNS only.
        "resolvConf": "",
        "podLogsDir": str(layout.pod_logs_dir),
        "serializeImagePulls": False,
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "nodeStatusReportFrequency": "10s",
        "registerNode": True,
    }
    return json.dumps(config, indent=2) + "\n"


def kubelet_argv(kubelet: Path, layout: NodeLayout, config: Path, kubeconfig: Path, node_name: str) -> list[str]:
    return [
        str(kubelet),
        f"--config={config}",
        f"--kubeconfig={kubeconfig}",
        f"--root-dir={layout.kubelet_dir}",
        f"--cert-dir={layout.kubelet_dir / 'pki'}",
        f"--hostname-override={node_name}",
        f"--node-ip={GATEWAY}",
        "--v=1",
    ]


def kube_proxy_config(kubeconfig: Path, ports: NodePorts, node_name: str) -> str:
    """iptables mode; conntrack and route_localnet left alone so the host's sysctls stay as they are."""
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": node_name,
        "mode": "iptables",
        "clusterCIDR": POD_CIDR,
        "bindAddress": "127.0.0.1",
        "healthzBindAddress": f"127.0.0.1:{ports.kube_proxy_healthz}",
        "metricsBindAddress": f"127.0.0.1:{ports.kube_proxy_metrics}",
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        "iptables": {"localhostNodePorts": False},
        "nodePortAddresses": [f"{GATEWAY}/32"],
    }
    return json.dumps(config, indent=2) + "\n"


def kube_proxy_argv(kube_proxy: Path, config: Path) -> list[str]:
    return [str(kube_proxy), f"--config={config}"]


def corefile(kubeconfig: Path, ready_port: int) -> str:
    """CoreDNS on the bridge gateway, serving the cluster domain from the API server. Other names
    are not forwarded anywhere: pods on this node need none, and DNS traffic stays on the machine.
    `/ready` on loopback answers 200 once the Services are synced."""
    return f""".:53 {{
    bind {GATEWAY}
    errors
    ready 127.0.0.1:{ready_port}
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 30
}}
"""


def coredns_argv(coredns: Path, corefile_path: Path) -> list[str]:
    return [str(coredns), "-conf", str(corefile_path)]


def local_path_manifests(layout: NodeLayout, helper_image: str) -> list[dict[str, object]]:
    """The namespace, default StorageClass and ConfigMap of local-path-provisioner: volumes are
    0777 directories under the work dir (so non-root pods can write), made by a busybox helper pod."""
    config = {"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": [str(layout.local_path_dir)]}]}
    helper_pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "helper-pod"},
        "spec": {
            "priorityClassName": "system-node-critical",
            "automountServiceAccountToken": False,
            "containers": [{"name": "helper-pod", "image": helper_image, "imagePullPolicy": "Never"}],
        },
    }
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LOCAL_PATH_NAMESPACE}},
        {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": PROVISIONER_NAME,
            "volumeBindingMode": "WaitForFirstConsumer",
            "reclaimPolicy": "Delete",
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "local-path-config", "namespace": LOCAL_PATH_NAMESPACE},
            "data": {
                "config.json": json.dumps(config),
                "setup": '#!/bin/sh\nset -eu\nmkdir -m 0777 -p "$VOL_DIR"\n',
                "teardown": '#!/bin/sh\nset -eu\nrm -rf "$VOL_DIR"\n',
                "helperPod.yaml": json.dumps(helper_pod),
            },
        },
    ]


def local_path_argv(provisioner: Path, kubeconfig: Path, helper_image: str) -> list[str]:
    return [
        str(provisioner),
        "start",
        f"--kubeconfig={kubeconfig}",
        f"--namespace={LOCAL_PATH_NAMESPACE}",
        "--configmap-name=local-path-config",
        "--service-account-name=default",
        f"--helper-image={helper_image}",
        f"--provisioner-name={PROVISIONER_NAME}",
    ]
