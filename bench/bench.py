#!/usr/bin/env python3
"""ferry vs skopeo, side by side, against real registries. Run it through `bench/run`.

Everything it creates lives in the work directory (default /tmp/ferry-bench) and, for the WAN
setting, in network namespaces named fbench-*; all of it is stopped or removed on exit, also
on failure. Only the Python standard library is used.
"""
import argparse
import ctypes
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
FERRY = ROOT / "target" / "release" / "ferry"
USER, PASSWORD = "bench", "bench-pw-0123456789"
CREDS = f"{USER}:{PASSWORD}"
MIB = 1 << 20

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)

# Processes this run started: (Popen, what). Stopped in reverse order on exit.
STARTED = []


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def in_ns(ns):
    """A preexec_fn that moves the child into network namespace `ns` (None: stay)."""
    if ns is None:
        return None

    def enter():
        fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            os._exit(126)
        os.close(fd)

    return enter


def sh(*argv, check=True, ns=None, capture=False, **kw):
    argv = [str(a) for a in argv]
    r = subprocess.run(argv, preexec_fn=in_ns(ns), capture_output=capture, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"command failed ({r.returncode}): {' '.join(argv)}\n{r.stderr or ''}")
    return r


def start(argv, what, ns=None, stdout=None, stderr=None):
    p = subprocess.Popen([str(a) for a in argv], preexec_fn=in_ns(ns), stdout=stdout,
                         stderr=stderr, stdin=subprocess.DEVNULL)
    STARTED.append((p, what))
    write_pidfile()
    return p


PIDFILE = None


def write_pidfile():
    """The pids of the processes still running, for bench/run's cleanup should this driver die."""
    if PIDFILE:
        PIDFILE.write_text("".join(f"{p.pid}\n" for p, _ in STARTED))


def stop(p, what, timeout=10):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            log(f"{what} did not stop; killing it")
            p.kill()
            p.wait()
    for i, (q, _) in enumerate(STARTED):
        if q is p:
            del STARTED[i]
            break
    write_pidfile()


def stop_all():
    while STARTED:
        p, what = STARTED[-1]
        stop(p, what)


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = tuple(s.getsockname()[1] for s in socks)
    for s in socks:
        s.close()
    return ports


def parse_size(s):
    m = re.fullmatch(r"(\d+)([KMG]?)(i?B)?", s.strip(), re.I)
    if not m:
        raise argparse.ArgumentTypeError(f"bad size {s!r} (e.g. 128M, 256K)")
    return int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2).upper()]


def human(n):
    for unit, f in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= f:
            v = n / f
            return f"{v:.0f} {unit}" if v == int(v) else f"{v:.1f} {unit}"
    return f"{n} B"


# ---------------------------------------------------------------------------------------------
# Images: an OCI layout with random, incompressible layers (gzip, stored deflate blocks, of a
# tar holding one file of random bytes), seeded into the source registry with skopeo.
# ---------------------------------------------------------------------------------------------

class Layout:
    def __init__(self, path):
        self.path = Path(path)
        self.blobs = self.path / "blobs" / "sha256"
        self.blobs.mkdir(parents=True, exist_ok=True)
        (self.path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        self.refs = []  # index.json entries

    def put(self, data: bytes):
        d = hashlib.sha256(data).hexdigest()
        (self.blobs / d).write_bytes(data)
        return f"sha256:{d}", len(data)

    def layer(self, size):
        """A gzip'ed tar of one random file, about `size` bytes compressed."""
        payload = max(size - 1024 - 64, 1)
        info = tarfile.TarInfo("data.bin")
        info.size = payload
        info.mtime = 0
        header = info.tobuf(tarfile.USTAR_FORMAT)
        pad = (-payload) % 512
        tail = b"\0" * pad + b"\0" * 1024
        comp = zlib.compressobj(0, zlib.DEFLATED, 31)
        diff = hashlib.sha256()
        dig = hashlib.sha256()
        tmp = self.blobs / f".tmp-{os.getpid()}"
        n = 0
        with open(tmp, "wb") as f:
            def feed(b):
                nonlocal n
                diff.update(b)
                c = comp.compress(b)
                dig.update(c)
                f.write(c)
                n += len(c)
            feed(header)
            left = payload
            while left:
                k = min(left, 4 * MIB)
                feed(os.urandom(k))
                left -= k
            feed(tail)
            c = comp.flush()
            dig.update(c)
            f.write(c)
            n += len(c)
        digest = f"sha256:{dig.hexdigest()}"
        tmp.rename(self.blobs / dig.hexdigest())
        return {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": digest, "size": n}, f"sha256:{diff.hexdigest()}"

    def image(self, layers, arch="amd64"):
        """layers: list of (descriptor, diff_id). Returns the manifest's descriptor."""
        config = json.dumps({
            "architecture": arch, "os": "linux",
            "config": {"Cmd": ["/bin/true"]},
            "rootfs": {"type": "layers", "diff_ids": [d for _, d in layers]},
            "history": [{"created_by": "ferry bench"} for _ in layers],
        }, sort_keys=True).encode()
        cd, cs = self.put(config)
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": cd, "size": cs},
            "layers": [l for l, _ in layers],
        }).encode()
        md, ms = self.put(manifest)
        return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
                "size": ms, "platform": {"architecture": arch, "os": "linux"}}

    def index(self, manifests):
        idx = json.dumps({"schemaVersion": 2,
                          "mediaType": "application/vnd.oci.image.index.v1+json",
                          "manifests": manifests}).encode()
        d, s = self.put(idx)
        return {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": s}

    def tag(self, desc, name):
        e = {k: v for k, v in desc.items() if k != "platform"}
        e["annotations"] = {"org.opencontainers.image.ref.name": name}
        self.refs.append(e)

    def save(self):
        (self.path / "index.json").write_text(json.dumps({"schemaVersion": 2,
                                                          "manifests": self.refs}))


def image_plan(cfg):
    """What the source registry holds: {name: spec}; name is also the OCI ref and the repo."""
    plan = {
        "a": {"repo": "bench/a", "tag": "latest", "layers": [cfg.a_size] * cfg.a_layers},
        "a4": {"repo": "bench/a4", "tag": "latest",
               "layers": [max(cfg.a_size // 4, 4096)] * cfg.a_layers},
        "b": {"repo": "bench/b", "tag": "latest", "layers": [cfg.b_size] * cfg.b_layers},
        "e": {"repo": "bench/e", "tag": "latest", "platforms": ["amd64", "arm64", "ppc64le", "s390x"],
              "shared": [cfg.e_shared_size] * cfg.e_shared, "own": [cfg.e_own_size] * cfg.e_own},
    }
    for i in range(1, cfg.f_images + 1):
        plan[f"f{i:02d}"] = {"repo": f"bench/f/app{i:02d}", "tag": "v1",
                             "layers": [cfg.f_size] * cfg.f_layers}
    # (n): many small images in a few repositories, only when (n) runs (seeding them takes a while).
    if "n" in cfg.scenario_list:
        for i in range(cfg.n_images):
            plan[f"n{i:03d}"] = {"repo": f"bench/n/app{i % cfg.n_repos:02d}", "tag": f"v{i // cfg.n_repos}",
                                 "layers": [cfg.n_size]}
    return plan


def build_images(wd, plan):
    """Generate the layout (cached by the plan) and return {name: info}."""
    key = hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()[:16]
    lay_dir = wd / f"images-{key}"
    meta_file = lay_dir / "images.json"
    if meta_file.exists():
        return lay_dir, json.loads(meta_file.read_text())
    for old in wd.glob("images-*"):
        shutil.rmtree(old)
    log(f"generating images in {lay_dir}")
    lay = Layout(lay_dir)
    meta = {}
    for name, spec in plan.items():
        if "platforms" in spec:
            shared = [lay.layer(s) for s in spec["shared"]]
            mans = []
            for arch in spec["platforms"]:
                own = [lay.layer(s) for s in spec["own"]]
                mans.append(lay.image(shared + own, arch))
            top = lay.index(mans)
            blobs = [l for l, _ in shared]  # the shared layers (only (a) uses layer_digests)
            nbytes = sum(l["size"] for l, _ in shared) + sum(spec["own"]) * len(spec["platforms"])
        else:
            layers = [lay.layer(s) for s in spec["layers"]]
            top = lay.image(layers)
            blobs = [l for l, _ in layers]
            nbytes = sum(l["size"] for l in blobs)
        lay.tag(top, name)
        meta[name] = {**spec, "digest": top["digest"], "index": "platforms" in spec,
                      "layer_digests": [b["digest"] for b in blobs], "layer_bytes": nbytes}
    lay.save()
    meta_file.write_text(json.dumps(meta, indent=1))
    return lay_dir, meta


# ---------------------------------------------------------------------------------------------
# TLS, auth, registries
# ---------------------------------------------------------------------------------------------

def make_pki(wd, ips):
    pki = wd / "pki"
    certs = wd / "certs"  # the cert dir both tools get: ca.crt only
    # bcrypt cost 4, the minimum: the registry checks the password on every request, and
    # OpenShift's registry (token auth) pays far less per request than bcrypt's default cost.
    pki.mkdir(parents=True, exist_ok=True)
    sh("htpasswd", "-Bbc", "-C", "4", pki / "htpasswd", USER, PASSWORD, capture=True)
    if (pki / "server.crt").exists() and (certs / "ca.crt").exists():
        return pki, certs
    pki.mkdir(parents=True, exist_ok=True)
    certs.mkdir(parents=True, exist_ok=True)
    o = lambda *a: sh("openssl", *a, capture=True)
    o("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=ferry bench CA",
      "-keyout", pki / "ca.key", "-out", pki / "ca.crt")
    o("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=registry", "-keyout", pki / "server.key",
      "-out", pki / "server.csr")
    san = ",".join(f"IP:{ip}" for ip in ips) + ",DNS:localhost"
    (pki / "ext.cnf").write_text(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
                                 "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    o("x509", "-req", "-in", pki / "server.csr", "-CA", pki / "ca.crt", "-CAkey", pki / "ca.key",
      "-CAcreateserial", "-days", "30", "-extfile", pki / "ext.cnf", "-out", pki / "server.crt")
    shutil.copy(pki / "ca.crt", certs / "ca.crt")
    return pki, certs


class Registry:
    def __init__(self, wd, name, ns, host, port, storage, pki, client_ns):
        self.wd, self.name, self.ns, self.host, self.port = wd, name, ns, host, port
        self.addr = f"{host}:{port}"
        self.storage = Path(storage)
        self.pki = pki
        self.client_ns = client_ns
        self.dir = wd / "reg" / f"{name}-{ns or 'lo'}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.access = self.dir / "access.log"
        self.errors = self.dir / "registry.log"
        self.proc = None

    def config(self):
        c = self.dir / "config.yml"
        c.write_text(f"""version: 0.1
log:
  level: warn
  formatter: text
storage:
  filesystem:
    rootdirectory: {self.storage}
  cache:
    blobdescriptor: inmemory
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {self.addr}
  secret: ferry-bench-http-secret
  tls:
    certificate: {self.pki / 'server.crt'}
    key: {self.pki / 'server.key'}
auth:
  htpasswd:
    realm: ferry-bench
    path: {self.pki / 'htpasswd'}
""")
        return c

    def start(self):
        self.storage.mkdir(parents=True, exist_ok=True)
        out = open(self.access, "ab")
        err = open(self.errors, "ab")
        self.proc = start(["docker-registry", "serve", self.config()], f"registry {self.name}",
                          ns=self.ns, stdout=out, stderr=err)
        out.close()
        err.close()
        deadline = time.time() + 20
        while time.time() < deadline:
            r = sh("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2",
                   "--cacert", self.pki / "ca.crt", f"https://{self.addr}/v2/",
                   check=False, capture=True, ns=self.client_ns)
            if r.stdout == "401":
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"registry {self.name} at {self.addr} did not start; see {self.errors}")

    def stop(self):
        if self.proc:
            stop(self.proc, f"registry {self.name}")
            self.proc = None

    def restart(self):
        self.stop()
        self.start()

    def wipe(self, repo=None):
        """Cold state: stop, remove the storage (or one repository of it), start again."""
        self.stop()
        if repo is None:
            shutil.rmtree(self.storage, ignore_errors=True)
        else:
            shutil.rmtree(self.storage / "docker/registry/v2/repositories" / repo, ignore_errors=True)
        self.start()

    def log_pos(self):
        return self.access.stat().st_size if self.access.exists() else 0

    def requests_since(self, pos):
        with open(self.access, "rb") as f:
            f.seek(pos)
            text = f.read().decode(errors="replace")
        methods = {}
        for m in re.finditer(r'"(GET|HEAD|POST|PUT|PATCH|DELETE) \S+ HTTP/[\d.]+" (\d+)', text):
            methods[m.group(1)] = methods.get(m.group(1), 0) + 1
        return sum(methods.values()), methods

    def work_requests_since(self, pos):
        """Requests since `pos` other than the `/v2/` pings (authentication is htpasswd: no
        token requests)."""
        with open(self.access, "rb") as f:
            f.seek(pos)
            text = f.read().decode(errors="replace")
        return len([m for m in re.finditer(r'"(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) HTTP/[\d.]+"', text)
                    if m.group(2) not in ("/v2/", "/v2")])

    def cpu(self):
        """User+system CPU seconds the registry process has used."""
        try:
            f = open(f"/proc/{self.proc.pid}/stat").read().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, AttributeError):
            return 0.0


# ---------------------------------------------------------------------------------------------
# Network settings
# ---------------------------------------------------------------------------------------------

class Loopback:
    name = "loopback"

    def __init__(self, cfg):
        self.cfg = cfg
        self.client_ns = None
        self.src_host = self.dst_host = "127.0.0.1"
        self.src_port, self.dst_port = cfg.ports
        self.desc = "loopback (127.0.0.1), no added delay or rate limit"

    def setup(self):
        pass

    def teardown(self):
        pass

    def probe_targets(self):
        return [("src", None, "127.0.0.1"), ("dst", None, "127.0.0.1")]


NS = ("fbench-cli", "fbench-src", "fbench-dst")


def remove_namespaces():
    existing = sh("ip", "netns", "list", capture=True, check=False).stdout
    for ns in NS:
        if re.search(rf"^{ns}\b", existing, re.M):
            pids = sh("ip", "netns", "pids", ns, capture=True, check=False).stdout.split()
            for pid in pids:  # only processes this benchmark started live in its namespaces
                try:
                    os.kill(int(pid), signal.SIGTERM)
                except OSError:
                    pass
            sh("ip", "netns", "del", ns, check=False)


class Wan:
    """Client and the two registries in three network namespaces; each registry is one veth
    link away from the client, with a rate limit (tbf, both directions) and a delay (NFQUEUE:
    each packet is held for half the round trip as it arrives, in the client's namespace and in
    the registry's)."""
    name = "wan"

    def __init__(self, cfg):
        self.cfg = cfg
        self.client_ns = "fbench-cli"
        self.src_host, self.dst_host = "10.201.1.2", "10.201.2.2"
        self.src_port = self.dst_port = 5000
        self.desc = (f"network namespaces, veth links client↔source and client↔destination, "
                     f"each with {cfg.rtt_ms:g} ms round trip (NFQUEUE delay, half on arrival at each end) "
                     f"and {cfg.rate} each way (tbf)")
        self.delays = []

    def setup(self):
        remove_namespaces()
        cfg = self.cfg
        for ns in NS:
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        for side, net in (("src", 1), ("dst", 2)):
            ns = f"fbench-{side}"
            cli_if, reg_if = f"fbc-{side}", f"fbr-{side}"
            sh("ip", "link", "add", cli_if, "netns", "fbench-cli", "type", "veth",
               "peer", "name", reg_if, "netns", ns)
            sh("ip", "-n", "fbench-cli", "addr", "add", f"10.201.{net}.1/24", "dev", cli_if)
            sh("ip", "-n", ns, "addr", "add", f"10.201.{net}.2/24", "dev", reg_if)
            sh("ip", "-n", "fbench-cli", "link", "set", cli_if, "up")
            sh("ip", "-n", ns, "link", "set", reg_if, "up")
            for n, dev in (("fbench-cli", cli_if), (ns, reg_if)):
                sh("tc", "-n", n, "qdisc", "add", "dev", dev, "root", "tbf", "rate", cfg.rate,
                   "burst", cfg.burst, "latency", "100ms")
            if cfg.rtt_ms > 0:
                # Delay on the way in, at the receiver: a packet held on the way out would still
                # be charged to the sending socket, and TCP small queues would throttle it.
                sh("iptables", "-A", "INPUT", "-i", reg_if, "-j", "NFQUEUE", "--queue-num", "0", ns=ns)
                sh("iptables", "-A", "INPUT", "-i", cli_if, "-j", "NFQUEUE", "--queue-num", "0",
                   ns="fbench-cli")
        if cfg.rtt_ms > 0:
            for ns in NS:
                p = start([self.cfg.nfq_delay, "0", int(cfg.rtt_ms * 1000 / 2)], f"nfq-delay {ns}",
                          ns=ns, stderr=open(self.cfg.wd / f"nfq-delay-{ns}.log", "ab"))
                self.delays.append(p)
        time.sleep(0.3)
        for p in self.delays:
            if p.poll() is not None:
                raise RuntimeError("nfq-delay did not start (see nfq-delay-*.log in the work dir)")

    def teardown(self):
        for p in self.delays:
            stop(p, "nfq-delay")
        self.delays = []
        remove_namespaces()

    def probe_targets(self):
        return [("src", "fbench-src", self.src_host), ("dst", "fbench-dst", self.dst_host)]


def measure_link(net, cfg, regs):
    """Connect time, echo RTT, bulk throughput to each registry's host; TLS handshake to each
    registry (curl)."""
    out = {}
    for side, ns, host in net.probe_targets():
        port = 9000 + (1 if side == "src" else 2)
        srv = start([sys.executable, BENCH / "linkprobe.py", "server", host, port],
                    f"linkprobe {side}", ns=ns)
        try:
            time.sleep(0.3)
            r = sh(sys.executable, BENCH / "linkprobe.py", "client", host, port, cfg.probe_mib,
                   ns=net.client_ns, capture=True)
            m = json.loads(r.stdout)
        finally:
            stop(srv, "linkprobe")
        reg = regs[side]
        tls = []
        for _ in range(5):
            r = sh("curl", "-s", "-o", "/dev/null", "-w", "%{time_connect} %{time_appconnect}",
                   "--cacert", reg.pki / "ca.crt", f"https://{reg.addr}/v2/", ns=net.client_ns,
                   capture=True)
            c, a = map(float, r.stdout.split())
            tls.append((c * 1000, a * 1000))
        m["tcp_connect_ms_curl"] = statistics.median(t[0] for t in tls)
        m["tls_handshake_done_ms"] = statistics.median(t[1] for t in tls)
        out[side] = m
    return out


# ---------------------------------------------------------------------------------------------
# Running the tools
# ---------------------------------------------------------------------------------------------

def tool_env(cfg):
    home = cfg.wd / "home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FERRY_", "REGISTRY_AUTH", "DOCKER_", "XDG_", "RUST_LOG"))}
    env.update(HOME=str(home), TMPDIR=str(cfg.wd / "tmp"))
    (cfg.wd / "tmp").mkdir(exist_ok=True)
    return env


def empty_tool_caches(cfg):
    # c/image's blob info cache (root: /var/lib/containers/cache), which lets skopeo mount or
    # skip blobs it has seen before; a fresh client has none. ferry keeps no cache.
    for p in (Path("/var/lib/containers/cache/blob-info-cache-v1.boltdb"),
              cfg.wd / "home" / ".local/share/containers/cache/blob-info-cache-v1.boltdb"):
        if p.exists():
            p.unlink()


def measured(argv, ns, cfg, log_file):
    """Run a tool; wall time from here, CPU and peak RSS from GNU time (a small process between
    this driver and the tool: the tool's peak RSS would otherwise include this Python process's,
    which Linux carries over the fork and exec)."""
    env = tool_env(cfg)
    empty_tool_caches(cfg)
    usage = cfg.wd / "usage.txt"
    usage.unlink(missing_ok=True)
    with open(log_file, "ab") as out:
        out.write(("\n$ " + " ".join(map(str, argv)) + "\n").encode())
        out.flush()
        t0 = time.perf_counter()
        p = subprocess.Popen(["/usr/bin/time", "-o", usage, "-f", "%U %S %M %x"] + [str(a) for a in argv],
                             preexec_fn=in_ns(ns), stdout=out, stderr=out, stdin=subprocess.DEVNULL, env=env)
        p.wait()
        wall = time.perf_counter() - t0
    fields = usage.read_text().split()[-4:]
    user, sys_, rss, rc = float(fields[0]), float(fields[1]), int(fields[2]), int(fields[3])
    return {"wall": wall, "user": user, "sys": sys_, "cpu": user + sys_, "maxrss_kib": rss,
            "rc": rc if p.returncode == 0 else p.returncode}


def tool_exe(tool, cfg):
    return {"ferry": FERRY, "skopeo": "skopeo", "skopeo18": cfg.skopeo18}[tool]


def sync_yaml(cfg, src, names, meta, path):
    """skopeo's sync YAML for these images of the source (credentials and CA inline)."""
    repos = {}
    for n in names:
        repos.setdefault(meta[n]["repo"], []).append(meta[n]["tag"])
    lines = [f"{src.addr}:", "  images:"]
    for repo, tags in repos.items():
        lines.append(f"    {repo}: [" + ", ".join(f'"{t}"' for t in tags) + "]")
    lines += ["  tls-verify: true", f"  cert-dir: {cfg.certs}", "  credentials:",
              f"    username: {USER}", f"    password: {PASSWORD}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def sync_argv(tool, cfg, yml, dest, extra=()):
    return [tool_exe(tool, cfg), "--policy", cfg.policy, "sync", "--src", "yaml", "--dest", "docker",
            "--dest-creds", CREDS, "--dest-cert-dir", cfg.certs, *extra, yml, dest]


def shards_script(cfg, yml, dest, n, reports):
    """N ferry processes at once, shard I of N each, each writing its report."""
    lines = ["#!/bin/bash", "set -uo pipefail", "pids=()"]
    for i in range(n):
        argv = sync_argv("ferry", cfg, yml, dest, ["--shard", f"{i}/{n}", "--report", reports / f"{n}-{i}.json"])
        lines.append(" ".join(f"'{a}'" for a in argv) + " & pids+=($!)")
    lines += ["rc=0", 'for p in "${pids[@]}"; do wait "$p" || rc=1; done', "exit $rc"]
    path = cfg.wd / f"shards-{n}.sh"
    path.write_text("\n".join(lines) + "\n")
    return ["bash", path]


def copy_argv(tool, cfg, src, dst, extra=()):
    return [tool_exe(tool, cfg), "--policy", cfg.policy, "copy", "-q",
            "--src-creds", CREDS, "--dest-creds", CREDS,
            "--src-cert-dir", cfg.certs, "--dest-cert-dir", cfg.certs,
            *extra, f"docker://{src}", f"docker://{dst}"]


def disk_argv(tool, cfg, src, dst):
    """`copy` with a transport on each side (docker://, oci:, dir:); digests kept by each tool."""
    argv = [tool_exe(tool, cfg), "--policy", cfg.policy, "copy", "-q"]
    if tool != "ferry":
        argv.append("--preserve-digests")
    if src.startswith("docker://"):
        argv += ["--src-creds", CREDS, "--src-cert-dir", cfg.certs]
    if dst.startswith("docker://"):
        argv += ["--dest-creds", CREDS, "--dest-cert-dir", cfg.certs]
    return argv + [src, dst]


def floor_download(cfg, src, repo, digests, out_dir):
    """The floor of a registry-to-disk copy: each blob fetched by curl to a file, all at once."""
    ca = cfg.certs / "ca.crt"
    lines = ["#!/bin/bash", "set -euo pipefail", f"mkdir -p '{out_dir}'",
             f"C=(-sS --fail --http1.1 -u '{CREDS}' --cacert '{ca}')", "pids=()"]
    for d in digests:
        lines.append(f"curl \"${{C[@]}}\" -o '{out_dir}/{d.split(':')[1]}' "
                     f"'https://{src.addr}/v2/{repo}/blobs/{d}' & pids+=($!)")
    lines.append('for p in "${pids[@]}"; do wait "$p"; done')
    path = cfg.wd / f"floor-down-{repo.replace('/', '_')}.sh"
    path.write_text("\n".join(lines) + "\n")
    return ["bash", path]


def floor_upload(cfg, dst, repo, digests, in_dir, name="up"):
    """The floor of a disk-to-registry copy: each blob file uploaded by curl, all at once."""
    ca = cfg.certs / "ca.crt"
    lines = ["#!/bin/bash", "set -euo pipefail",
             f"C=(-sS --fail --http1.1 -u '{CREDS}' --cacert '{ca}')",
             "one() {",
             f"  loc=$(curl \"${{C[@]}}\" -X POST -D - -o /dev/null 'https://{dst.addr}/v2/{repo}/blobs/uploads/' "
             "| tr -d '\\r' | awk 'tolower($1)==\"location:\"{print $2}')",
             f"  case $loc in /*) loc='https://{dst.addr}'$loc;; esac",
             "  curl \"${C[@]}\" -H 'Expect:' -H 'Content-Type: application/octet-stream' -X PUT "
             f"-T '{in_dir}/'${{1#sha256:}} -o /dev/null \"$loc&digest=$1\"",
             "}", "pids=()"]
    for d in digests:
        lines.append(f"one {d} & pids+=($!)")
    lines.append('for p in "${pids[@]}"; do wait "$p"; done')
    path = cfg.wd / f"floor-{name}-{repo.replace('/', '_')}.sh"
    path.write_text("\n".join(lines) + "\n")
    return ["bash", path]


def oci_has(lay, name, digest):
    """Whether the OCI layout names `digest` as `name`."""
    try:
        idx = json.loads((Path(lay) / "index.json").read_text())
    except OSError:
        return False
    return any(m.get("digest") == digest and (m.get("annotations") or {}).get(
        "org.opencontainers.image.ref.name") == name for m in idx.get("manifests") or [])


def manifest_digest(reg, ns, repo, ref, cfg):
    r = sh("curl", "-sS", "-I", "-u", CREDS, "--cacert", cfg.certs / "ca.crt",
           "-H", "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
           "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json",
           f"https://{reg.addr}/v2/{repo}/manifests/{ref}", ns=ns, capture=True, check=False)
    m = re.search(r"^docker-content-digest:\s*(\S+)", r.stdout, re.I | re.M)
    return m.group(1) if m else None


def floor_script(cfg, src, dst, repo, digests, dst_repo):
    """The raw floor: each blob piped GET → PUT by curl, all in parallel, no verification."""
    ca = cfg.certs / "ca.crt"
    lines = ["#!/bin/bash", "set -euo pipefail",
             # HTTP/1.1 as ferry and skopeo speak it (curl would negotiate HTTP/2 with the
             # registry, whose uploads through curl are several times slower).
             f"C=(-sS --fail --http1.1 -u '{CREDS}' --cacert '{ca}')",
             "one() {",
             f"  loc=$(curl \"${{C[@]}}\" -X POST -D - -o /dev/null 'https://{dst.addr}/v2/{dst_repo}/blobs/uploads/' "
             "| tr -d '\\r' | awk 'tolower($1)==\"location:\"{print $2}')",
             f"  case $loc in /*) loc='https://{dst.addr}'$loc;; esac",
             f"  curl \"${{C[@]}}\" 'https://{src.addr}/v2/{repo}/blobs/'$1 "
             "| curl \"${C[@]}\" -H 'Expect:' -H 'Content-Type: application/octet-stream' -X PUT -T - "
             "-o /dev/null \"$loc&digest=$1\"",
             "}", "pids=()"]
    for d in digests:
        lines.append(f"one {d} & pids+=($!)")
    lines.append('for p in "${pids[@]}"; do wait "$p"; done')
    path = cfg.wd / f"floor-{repo.replace('/', '_')}.sh"
    path.write_text("\n".join(lines) + "\n")
    return ["bash", path]


# ---------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------

TARGETS = {
    # scenario: (kind, loopback target, wan target)
    "a": ("floor", 1.05, 1.10),
    "b": ("speedup", 2.0, 3.0),
    "c": ("speedup", 3.0, 3.0),
    "d": ("speedup", 20.0, 20.0),
    "e": ("speedup", 1.5, 2.0),
    "f": ("speedup", 3.0, 3.0),
    "g": ("floor", 1.10, 1.10),
    "h": ("floor", 1.10, 1.10),
    "i": ("floor", 1.10, 1.10),
    # ferry alone: requests per image of a sync with nothing attached, default vs --referrers=none
    "r": ("requests", 1.10, 1.10),
    # ferry sync vs skopeo sync when the destination has every image; also at most 2 requests
    # per image after authentication.
    "n": ("speedup", 5.0, 5.0),
    # (f)'s release as 1, 2, 4 shards at once: requests and bytes must not grow with N.
    "s": ("shards", None, None),
}

# Against current skopeo (1.18), the peer to beat (issue 19): (kind, loopback, wan). "speedup18"
# is skopeo 1.18's wall ÷ ferry's; "cpu_floor" ferry's wall ÷ the registries' CPU floor (their
# CPU seconds during ferry's run spread over the machine's cores: on loopback they share the
# cores with ferry and are the bound); "bw_floor" ferry's wall ÷ the link's bandwidth floor.
TARGETS18 = {
    "b": (("cpu_floor", 1.25), ("speedup18", 4.0)),
    "e": (("cpu_floor", 1.25), ("bw_floor", 1.15)),
    "f": (("cpu_floor", 1.25), ("speedup18", 4.5)),
}

SHARDS = (1, 2, 4)
TOOLS = ("ferry", "skopeo", "skopeo18", "floor") + tuple(f"ferry×{n}" for n in SHARDS)


def scenario_titles(cfg, meta):
    e = meta["e"]
    return {
        "a": f"(a) {cfg.a_layers} × {human(cfg.a_size)} layers, cold",
        "a4": f"(a′) {cfg.a_layers} × {human(max(cfg.a_size // 4, 4096))} layers, cold (RSS growth)",
        "b": f"(b) {cfg.b_layers} × {human(cfg.b_size)} layers, cold",
        "c": f"(c) re-copy of (a)'s image, destination has it",
        "d": f"(d) (a)'s image to another repository of the same registry, fresh client",
        "e": (f"(e) 4-platform index, {cfg.e_shared} shared × {human(cfg.e_shared_size)} + "
              f"{cfg.e_own} own × {human(cfg.e_own_size)} per platform, whole index (--all)"),
        "f": (f"(f) {cfg.f_images} images × {cfg.f_layers} × {human(cfg.f_size)}: "
              f"ferry sync vs a loop of skopeo copy"),
        "g": f"(g) (a)'s image, registry → oci: layout, cold",
        "h": f"(h) (a)'s image, oci: layout → registry, cold",
        "i": (f"(i) air-gap round trip of (f)'s {cfg.f_images} images through dir: "
              f"(sync to disk, sync from disk), cold"),
        "r": (f"(r) (f)'s {cfg.f_images} images, ferry sync: --referrers=none, default (nothing "
              f"attached), and each image with a cosign .sig, a .att and an SBOM referrer"),
        "n": (f"(n) no-op sync of {cfg.n_images} images ({cfg.n_repos} repositories) the destination "
              f"already has: ferry sync --referrers=none (skopeo carries nothing attached) vs skopeo sync"),
        "s": (f"(s) (f)'s {cfg.f_images} images as " + ", ".join(map(str, SHARDS)) +
              " ferry sync shards at once (--shard I/N, by repository), cold"),
    }


def ferry_has_sync():
    r = subprocess.run([str(FERRY), "sync", "--help"], capture_output=True, text=True)
    return r.returncode == 0


def run_scenario(sc, net, cfg, regs, meta, results_dir):
    src, dst = regs["src"], regs["dst"]
    ns = net.client_ns
    logf = results_dir / f"{net.name}-{sc}.log"
    runs = []
    # Every scenario runs Debian's skopeo 1.9.3 and current skopeo 1.18 beside ferry.
    tools = ["ferry", "skopeo", "skopeo18"]
    pairs = cfg.pairs
    extra = []
    check = None  # (registry, repo, ref, digest)

    if sc in ("a", "a4", "b", "c"):
        img = meta["a" if sc == "c" else sc]
        srcref = f"{src.addr}/{img['repo']}:{img['tag']}"
        dstref = f"{dst.addr}/{img['repo']}:{img['tag']}"
        argv = {t: copy_argv(t, cfg, srcref, dstref) for t in tools}
        check = (dst, img["repo"], img["tag"], img["digest"])
        cold = (lambda: dst.wipe()) if sc != "c" else None
        if sc == "a4":
            pairs = min(pairs, cfg.rss_pairs)
        if sc == "a":
            tools = ["ferry", "skopeo", "skopeo18", "floor"]
            argv["floor"] = floor_script(cfg, src, dst, img["repo"], img["layer_digests"], img["repo"])
        if sc == "c":
            dst.wipe()
            r = measured(copy_argv("skopeo", cfg, srcref, dstref), ns, cfg, logf)
            if r["rc"] != 0:
                raise RuntimeError(f"preparing (c) failed; see {logf}")
    elif sc == "d":
        img = meta["a"]
        prod = img["repo"] + "-prod"
        srcref = f"{src.addr}/{img['repo']}:{img['tag']}"
        dstref = f"{src.addr}/{prod}:{img['tag']}"
        argv = {t: copy_argv(t, cfg, srcref, dstref) for t in tools}
        check = (src, prod, img["tag"], img["digest"])
        cold = lambda: src.wipe(prod)
    elif sc == "e":
        img = meta["e"]
        srcref = f"{src.addr}/{img['repo']}:{img['tag']}"
        dstref = f"{dst.addr}/{img['repo']}:{img['tag']}"
        argv = {t: copy_argv(t, cfg, srcref, dstref, ["--all"]) for t in tools}
        check = (dst, img["repo"], img["tag"], img["digest"])
        cold = lambda: dst.wipe()
    elif sc == "f":
        names = [n for n in meta if re.fullmatch(r"f\d+", n)]
        yml = cfg.wd / f"sync-{net.name}.yml"
        lines = [f"{src.addr}:", "  images:"]
        for n in names:
            lines.append(f"    {meta[n]['repo']}: [\"{meta[n]['tag']}\"]")
        lines += ["  tls-verify: true", f"  cert-dir: {cfg.certs}", "  credentials:",
                  f"    username: {USER}", f"    password: {PASSWORD}"]
        yml.write_text("\n".join(lines) + "\n")
        prefix = meta[names[0]]["repo"].rsplit("/", 1)[0]
        argv = {"ferry": [FERRY, "--policy", cfg.policy, "sync", "--src", "yaml", "--dest", "docker",
                          "--dest-creds", CREDS, "--dest-cert-dir", cfg.certs, yml, f"{dst.addr}/{prefix}"]}
        for sk in ("skopeo", "skopeo18"):
            loop = cfg.wd / f"loop-{sk}-{net.name}.sh"
            body = ["#!/bin/bash", "set -euo pipefail"]
            for n in names:
                r = f"{meta[n]['repo']}:{meta[n]['tag']}"
                body.append(" ".join(f"'{a}'" for a in copy_argv(sk, cfg, f"{src.addr}/{r}", f"{dst.addr}/{r}")))
            loop.write_text("\n".join(body) + "\n")
            argv[sk] = ["bash", loop]
        check = [(dst, meta[n]["repo"], meta[n]["tag"], meta[n]["digest"]) for n in names]
        cold = lambda: dst.wipe()
    elif sc == "n":
        names = sorted(n for n in meta if re.fullmatch(r"n\d+", n))
        yml = sync_yaml(cfg, src, names, meta, cfg.wd / f"sync-n-{net.name}.yml")
        dest = f"{dst.addr}/bench"
        tools = ["ferry", "skopeo", "skopeo18"]
        argv = {t: sync_argv(t, cfg, yml, dest) for t in tools}
        argv["ferry"] = sync_argv("ferry", cfg, yml, dest, ["--referrers=none"])
        # Every image at the destination first (one ferry sync), then only no-op runs.
        dst.wipe()
        r = measured(argv["ferry"], ns, cfg, logf)
        if r["rc"] != 0:
            raise RuntimeError(f"preparing (n) failed; see {logf}")
        dst_repo = lambda n: "bench/" + meta[n]["repo"].rsplit("/", 1)[1]
        for n in names:
            got = manifest_digest(dst, ns, dst_repo(n), meta[n]["tag"], cfg)
            if got != meta[n]["digest"]:
                raise RuntimeError(f"preparing (n): {meta[n]['repo']}:{meta[n]['tag']} is {got}")
        sample = names[:: max(1, len(names) // 5)]
        check = [(dst, dst_repo(n), meta[n]["tag"], meta[n]["digest"]) for n in sample]
        cold = None
    elif sc == "s":
        names = [n for n in meta if re.fullmatch(r"f\d+", n)]
        yml = sync_yaml(cfg, src, names, meta, cfg.wd / f"sync-s-{net.name}.yml")
        prefix = meta[names[0]]["repo"].rsplit("/", 1)[0]
        reports = cfg.wd / "shard-reports"
        shutil.rmtree(reports, ignore_errors=True)
        reports.mkdir()
        tools = [f"ferry×{n}" for n in SHARDS]
        argv = {f"ferry×{n}": shards_script(cfg, yml, f"{dst.addr}/{prefix}", n, reports) for n in SHARDS}
        check = [(dst, meta[n]["repo"], meta[n]["tag"], meta[n]["digest"]) for n in names]
        cold = lambda: dst.wipe()
    elif sc == "r":
        names = [n for n in meta if re.fullmatch(r"f\d+", n)]
        attach_images(cfg, src, ns, meta, names, logf)
        argv = {}
        for tool, part, extra in (("none", "f", ["--referrers=none"]), ("ferry", "f", []),
                                  ("attached", "r", [])):
            yml = cfg.wd / f"sync-{part}-{net.name}.yml"
            lines = [f"{src.addr}:", "  images:"]
            for n in names:
                repo = meta[n]["repo"].replace("bench/f/", f"bench/{part}/")
                lines.append(f"    {repo}: [\"{meta[n]['tag']}\"]")
            lines += ["  tls-verify: true", f"  cert-dir: {cfg.certs}", "  credentials:",
                      f"    username: {USER}", f"    password: {PASSWORD}"]
            yml.write_text("\n".join(lines) + "\n")
            argv[tool] = [FERRY, "--policy", cfg.policy, "sync", "--src", "yaml", "--dest", "docker",
                          *extra, "--dest-creds", CREDS, "--dest-cert-dir", cfg.certs, yml,
                          f"{dst.addr}/bench/{part}"]
        tools = ["none", "ferry", "attached"]
        check = [(dst, meta[n]["repo"], meta[n]["tag"], meta[n]["digest"]) for n in names]
        cold = lambda: dst.wipe()
    elif sc in ("g", "h", "i"):
        tools = ["ferry", "skopeo", "skopeo18", "floor"]
        disk = Path(cfg.storage) / "disk"
        img = meta["a"]

        def fresh_disk():
            shutil.rmtree(disk, ignore_errors=True)
            disk.mkdir(parents=True)
        if sc == "g":
            srcref = f"docker://{src.addr}/{img['repo']}:{img['tag']}"
            lay = disk / "lay"
            argv = {t: disk_argv(t, cfg, srcref, f"oci:{lay}:a") for t in tools[:3]}
            argv["floor"] = floor_download(cfg, src, img["repo"], img["layer_digests"], lay / "blobs/sha256")
            check = ("disk", lay, "a", img["digest"])
            cold = fresh_disk
        elif sc == "h":
            lay = Path(cfg.storage) / "h-layout"
            if not oci_has(lay, "a", img["digest"]):
                r = measured(disk_argv("ferry", cfg, f"docker://{src.addr}/{img['repo']}:{img['tag']}",
                                       f"oci:{lay}:a"), ns, cfg, logf)
                if r["rc"] != 0:
                    raise RuntimeError(f"preparing (h) failed; see {logf}")
            dstref = f"docker://{dst.addr}/{img['repo']}:{img['tag']}"
            argv = {t: disk_argv(t, cfg, f"oci:{lay}:a", dstref) for t in tools[:3]}
            argv["floor"] = floor_upload(cfg, dst, img["repo"], img["layer_digests"], lay / "blobs/sha256")
            check = (dst, img["repo"], img["tag"], img["digest"])
            cold = lambda: dst.wipe()
        else:
            names = [n for n in meta if re.fullmatch(r"f\d+", n)]
            yml = cfg.wd / f"sync-ag-{net.name}.yml"
            lines = [f"{src.addr}:", "  images:"]
            for n in names:
                lines.append(f"    {meta[n]['repo']}: [\"{meta[n]['tag']}\"]")
            lines += ["  tls-verify: true", f"  cert-dir: {cfg.certs}", "  credentials:",
                      f"    username: {USER}", f"    password: {PASSWORD}"]
            yml.write_text("\n".join(lines) + "\n")
            usb = disk / "usb"
            prefix = "bench/airgap"
            argv = {}
            for t in tools[:3]:
                exe = tool_exe(t, cfg)
                keep = [] if t == "ferry" else ["--preserve-digests"]
                script = cfg.wd / f"airgap-{t}-{net.name}.sh"
                script.write_text("\n".join([
                    "#!/bin/bash", "set -euo pipefail",
                    " ".join(f"'{a}'" for a in [exe, "--policy", cfg.policy, "sync", *keep, "--src", "yaml",
                                                 "--dest", "dir", yml, usb]),
                    " ".join(f"'{a}'" for a in [exe, "--policy", cfg.policy, "sync", *keep, "--src", "dir",
                                                 "--dest", "docker", "--dest-creds", CREDS, "--dest-cert-dir",
                                                 cfg.certs, usb, f"{dst.addr}/{prefix}"]),
                ]) + "\n")
                argv[t] = ["bash", script]
            # The floor: every blob of every image fetched to a file, then uploaded back.
            blobs = sorted({d for n in names for d in meta[n]["layer_digests"]})
            down = cfg.wd / f"floor-ag-down-{net.name}.sh"
            down_lines = ["#!/bin/bash", "set -euo pipefail", f"mkdir -p '{usb}'",
                          f"C=(-sS --fail --http1.1 -u '{CREDS}' --cacert '{cfg.certs / 'ca.crt'}')", "pids=()"]
            for n in names:
                for d in meta[n]["layer_digests"]:
                    down_lines.append(f"curl \"${{C[@]}}\" -o '{usb}/{d.split(':')[1]}' "
                                      f"'https://{src.addr}/v2/{meta[n]['repo']}/blobs/{d}' & pids+=($!)")
            down_lines.append('for p in "${pids[@]}"; do wait "$p"; done')
            down.write_text("\n".join(down_lines) + "\n")
            up = floor_upload(cfg, dst, f"{prefix}/floor", blobs, usb, name="ag")[1]
            both = cfg.wd / f"floor-airgap-{net.name}.sh"
            both.write_text(f"#!/bin/bash\nset -euo pipefail\nbash '{down}'\nbash '{up}'\n")
            argv["floor"] = ["bash", both]
            check = [(dst, f"{prefix}/{meta[n]['repo'].rsplit('/', 1)[1]}", meta[n]["tag"], meta[n]["digest"])
                     for n in names]

            def cold():
                fresh_disk()
                dst.wipe()
    else:
        raise ValueError(sc)

    checks = check if isinstance(check, list) else [check]
    for pair in range(pairs):
        for tool in tools:
            if cold:
                cold()
            pos = {k: r.log_pos() for k, r in regs.items()}
            cpu0 = {k: r.cpu() for k, r in regs.items()}
            load = os.getloadavg()[0]
            r = measured(argv[tool], ns, cfg, logf)
            time.sleep(0.2)  # let the registries finish writing their access logs
            r.update(tool=tool, pair=pair, load1=load)
            r["requests"] = {}
            r["methods"] = {}
            for k, reg in regs.items():
                r["requests"][k], r["methods"][k] = reg.requests_since(pos[k])
            r["registry_cpu"] = {k: regs[k].cpu() - cpu0[k] for k in regs}
            r["work_requests"] = {k: reg.work_requests_since(pos[k]) for k, reg in regs.items()}
            if sc == "s":
                shards = int(tool.split("×")[1])
                reps = [json.loads((reports / f"{shards}-{i}.json").read_text()) for i in range(shards)]
                r["bytes_copied"] = sum(i["bytes"]["copied"] for rep in reps for i in rep["images"])
                r["images"] = sum(len(rep["images"]) for rep in reps)
                for i in range(shards):
                    (reports / f"{shards}-{i}.json").unlink()
            if r["rc"] != 0:
                raise RuntimeError(f"{tool} failed in scenario {sc} ({net.name}); see {logf}")
            if tool == "attached":
                for reg, repo, ref, want in checks:
                    repo = repo.replace("bench/f/", "bench/r/")
                    got = manifest_digest(reg, ns, repo, ref, cfg)
                    sig = manifest_digest(reg, ns, repo, want.replace(":", "-") + ".sig", cfg)
                    if got != want or sig is None:
                        raise RuntimeError(f"{tool} in {sc}: {reg.name}/{repo}:{ref} is {got} (.sig {sig})")
            elif tool != "floor":
                for reg, repo, ref, want in checks:
                    if reg == "disk":
                        if not oci_has(repo, ref, want):
                            raise RuntimeError(f"{tool} in {sc}: {repo}:{ref} is not {want}")
                        continue
                    got = manifest_digest(reg, ns, repo, ref, cfg)
                    if got != want:
                        raise RuntimeError(f"{tool} in {sc}: {reg.name}/{repo}:{ref} is {got}, want {want}")
            log(f"{net.name} {sc} pair {pair + 1}/{pairs} {tool:6s} {r['wall']:7.2f} s  cpu {r['cpu']:6.2f} s  "
                f"rss {r['maxrss_kib'] / 1024:6.1f} MiB  req src {r['requests']['src']} dst {r['requests']['dst']}")
            runs.append(r)
    return runs


# ---------------------------------------------------------------------------------------------
# Summaries, Markdown, SVG
# ---------------------------------------------------------------------------------------------

def curl_push(reg, ns, cfg, repo, ref, data, media_type=None):
    """Put a blob (ref None) or a manifest (ref: tag or digest) with curl."""
    c = ["curl", "-sS", "--fail", "--http1.1", "-u", CREDS, "--cacert", cfg.certs / "ca.crt"]
    if ref is None:
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        r = sh(*c, "-X", "POST", "-D", "-", "-o", "/dev/null",
               f"https://{reg.addr}/v2/{repo}/blobs/uploads/", ns=ns, capture=True)
        loc = re.search(r"^location:\s*(\S+)", r.stdout, re.I | re.M).group(1)
        if loc.startswith("/"):
            loc = f"https://{reg.addr}{loc}"
        sep = "&" if "?" in loc else "?"
        path = cfg.wd / "push.bin"
        path.write_bytes(data)
        sh(*c, "-X", "PUT", "-H", "Content-Type: application/octet-stream", "--data-binary", f"@{path}",
           "-o", "/dev/null", f"{loc}{sep}digest={d}", ns=ns, capture=True)
        return {"digest": d, "size": len(data)}
    path = cfg.wd / "push.json"
    path.write_bytes(data)
    sh(*c, "-X", "PUT", "-H", f"Content-Type: {media_type}", "--data-binary", f"@{path}",
       "-o", "/dev/null", f"https://{reg.addr}/v2/{repo}/manifests/{ref}", ns=ns, capture=True)
    return {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
            "size": len(data)}


def attach_images(cfg, src, ns, meta, names, logf):
    """(r)'s images: (f)'s, each in bench/r/… with a cosign .sig and .att tag and an SBOM referrer
    listed by the fallback tag (the registry has no referrers API). Once: kept in the source."""
    oci_m, oci_i = "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json"
    for n in names:
        m = meta[n]
        repo = m["repo"].replace("bench/f/", "bench/r/")
        tag = m["digest"].replace(":", "-")
        if manifest_digest(src, ns, repo, tag, cfg):
            continue
        r = measured([FERRY, "--policy", cfg.policy, "copy", "-q", "--referrers=none",
                      "--src-creds", CREDS, "--dest-creds", CREDS, "--src-cert-dir", cfg.certs,
                      "--dest-cert-dir", cfg.certs, f"docker://{src.addr}/{m['repo']}:{m['tag']}",
                      f"docker://{src.addr}/{repo}:{m['tag']}"], ns, cfg, logf)
        if r["rc"] != 0:
            raise RuntimeError(f"preparing (r) failed; see {logf}")
        subject = {"mediaType": oci_m, "digest": m["digest"],
                   "size": int(sh("curl", "-sS", "-u", CREDS, "--cacert", cfg.certs / "ca.crt", "-H",
                                  f"Accept: {oci_m}", "-o", "/dev/null", "-w", "%{size_download}",
                                  f"https://{src.addr}/v2/{repo}/manifests/{m['digest']}",
                                  ns=ns, capture=True).stdout)}
        for suffix, layer_type, payload in (
                (".sig", "application/vnd.dev.cosign.simplesigning.v1+json",
                 {"critical": {"image": {"docker-manifest-digest": m["digest"]},
                               "type": "cosign container image signature"}}),
                (".att", "application/vnd.dsse.envelope.v1+json",
                 {"payloadType": "application/vnd.in-toto+json", "payload": "e30=", "signatures": []})):
            body = json.dumps(payload).encode()
            config = json.dumps({"architecture": "", "os": "", "config": {},
                                 "rootfs": {"type": "layers",
                                            "diff_ids": ["sha256:" + hashlib.sha256(body).hexdigest()]}}).encode()
            layer = {"mediaType": layer_type, **curl_push(src, ns, cfg, repo, None, body),
                     "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQbench"}}
            cfgd = {"mediaType": "application/vnd.oci.image.config.v1+json",
                    **curl_push(src, ns, cfg, repo, None, config)}
            man = json.dumps({"schemaVersion": 2, "mediaType": oci_m, "config": cfgd,
                              "layers": [layer]}).encode()
            curl_push(src, ns, cfg, repo, tag + suffix, man, oci_m)
        sbom = json.dumps({"spdxVersion": "SPDX-2.3", "name": n}).encode()
        empty = {"mediaType": "application/vnd.oci.empty.v1+json", **curl_push(src, ns, cfg, repo, None, b"{}")}
        layer = {"mediaType": "application/spdx+json", **curl_push(src, ns, cfg, repo, None, sbom)}
        man = json.dumps({"schemaVersion": 2, "mediaType": oci_m, "artifactType": "application/spdx+json",
                          "config": empty, "layers": [layer], "subject": subject}).encode()
        d = curl_push(src, ns, cfg, repo, "sha256:" + hashlib.sha256(man).hexdigest(), man, oci_m)
        d["artifactType"] = "application/spdx+json"
        idx = json.dumps({"schemaVersion": 2, "mediaType": oci_i, "manifests": [d]}).encode()
        curl_push(src, ns, cfg, repo, tag, idx, oci_i)


def summarize(runs, tool):
    rs = [r for r in runs if r["tool"] == tool]
    if not rs:
        return None
    w = [r["wall"] for r in rs]
    med = statistics.median
    return {
        "n": len(rs), "min": min(w), "median": med(w), "max": max(w),
        "cpu": med([r["cpu"] for r in rs]),
        "rss_mib": med([r["maxrss_kib"] for r in rs]) / 1024,
        "rss_max_mib": max(r["maxrss_kib"] for r in rs) / 1024,
        "req_src": med([r["requests"]["src"] for r in rs]),
        "req_dst": med([r["requests"]["dst"] for r in rs]),
        "reg_cpu": med([sum(r["registry_cpu"].values()) for r in rs]),
        "load1": med([r["load1"] for r in rs]),
        "work_req": med([sum(r.get("work_requests", {}).values()) for r in rs]),
        "bytes_copied": med([r.get("bytes_copied", 0) for r in rs]),
    }


def pair_ratios(runs, num, den):
    by = {}
    for r in runs:
        by.setdefault(r["pair"], {})[r["tool"]] = r["wall"]
    return [p[num] / p[den] for p in by.values() if num in p and den in p]


def analyse(net_result):
    """Per scenario: summaries, the median of the per-pair ratios, the target and whether it is met."""
    out = {}
    link = net_result.get("link", {})
    for sc, runs in net_result["scenarios"].items():
        if not runs:
            continue
        s = {t: summarize(runs, t) for t in TOOLS + ("none", "attached")}
        speed = pair_ratios(runs, "skopeo", "ferry")
        a = {"summary": s, "speedup": statistics.median(speed) if speed else None, "speedups": speed}
        speed18 = pair_ratios(runs, "skopeo18", "ferry")
        if speed18:
            a["speedup18"] = statistics.median(speed18)
        if sc == "n" and s.get("ferry"):
            n_images = int(re.search(r"of (\d+) images", net_result["titles"]["n"]).group(1))
            a["req_per_image"] = {t: s[t]["work_req"] / n_images for t in ("ferry", "skopeo", "skopeo18")
                                  if s.get(t)}
        if sc == "s":
            base = s.get("ferry×1")
            a["shards"] = {}
            for n in SHARDS:
                sn = s.get(f"ferry×{n}")
                if base and sn:
                    a["shards"][n] = {"wall": sn["median"], "speedup": base["median"] / sn["median"],
                                      "requests": sn["req_src"] + sn["req_dst"], "bytes": sn["bytes_copied"]}
        if sc in ("a", "g", "h", "i"):
            fl = pair_ratios(runs, "ferry", "floor")
            a["vs_floor"] = statistics.median(fl) if fl else None
            if link and net_result["net"] == "wan":
                mbit = min(link["src"]["download_mbit_s"], link["dst"]["upload_mbit_s"])
                bw_floor = net_result["a_bytes"] * 8 / (mbit * 1e6)
                a["bw_floor_s"] = bw_floor
                a["vs_bw_floor"] = statistics.median([r["wall"] / bw_floor for r in runs if r["tool"] == "ferry"])
        ferry_runs = [r for r in runs if r["tool"] == "ferry"]
        if net_result["net"] == "wan":
            nbytes = net_result.get("bytes", {}).get(sc)
            if link and nbytes and "bw_floor_s" not in a:
                mbit = min(link["src"]["download_mbit_s"], link["dst"]["upload_mbit_s"])
                a["bw_floor_s"] = nbytes * 8 / (mbit * 1e6)
                a["vs_bw_floor"] = statistics.median([r["wall"] / a["bw_floor_s"] for r in ferry_runs])
        elif ferry_runs:
            cores = net_result.get("cores") or os.cpu_count() or 1
            a["cpu_floor_s"] = statistics.median(
                [sum(r["registry_cpu"].values()) / cores for r in ferry_runs])
            if a["cpu_floor_s"] > 0:
                a["vs_cpu_floor"] = statistics.median(
                    [r["wall"] / (sum(r["registry_cpu"].values()) / cores) for r in ferry_runs
                     if sum(r["registry_cpu"].values()) > 0])
        if sc in TARGETS18:
            kind18, t18 = TARGETS18[sc][1 if net_result["net"] == "wan" else 0]
            value = {"cpu_floor": a.get("vs_cpu_floor"), "bw_floor": a.get("vs_bw_floor"),
                     "speedup18": a.get("speedup18")}[kind18]
            a["target18"] = {"cpu_floor": f"≤ {t18:g}× the registries' CPU floor",
                             "bw_floor": f"≤ {t18:g}× the bandwidth floor",
                             "speedup18": f"≥ {t18:g}× skopeo 1.18"}[kind18]
            a["met18"] = value is not None and (value >= t18 if kind18 == "speedup18" else value <= t18)
        kind, lo, wan = TARGETS.get(sc, (None, None, None))
        target = wan if net_result["net"] == "wan" else lo
        if kind == "speedup" and sc == "n":
            a["target"] = f"≥ {target:g}× faster than 1.9.3 and 1.18; ≤ 2 requests per image after auth"
            rpi = a.get("req_per_image", {}).get("ferry")
            a["met"] = (a["speedup"] is not None and a["speedup"] >= target
                        and a.get("speedup18", target) >= target and rpi is not None and rpi <= 2)
        elif kind == "speedup":
            a["target"] = f"≥ {target:g}× faster"
            a["met"] = a["speedup"] is not None and a["speedup"] >= target
        elif kind == "shards":
            sh = a.get("shards", {})
            one = sh.get(1)
            a["target"] = "requests and bytes do not grow with N"
            a["met"] = bool(one) and all(v["requests"] <= one["requests"] and v["bytes"] <= one["bytes"]
                                         for v in sh.values())
        elif kind == "requests":
            n = net_result.get("f_images") or 1
            per = {t: (v["req_src"] + v["req_dst"]) / n for t, v in s.items() if v}
            a["per_image"] = per
            a["req_ratio"] = per["ferry"] / per["none"] if per.get("none") else None
            a["target"] = f"≤ {target:g}× the requests per image of --referrers=none"
            a["met"] = a["req_ratio"] is not None and a["req_ratio"] <= target
        elif kind == "floor":
            if sc in ("g", "h", "i"):
                a["target"] = f"≤ {target:g}× the curl floor, ≥ 1× skopeo 1.9.3 and 1.18"
                a["met"] = (a.get("vs_floor") is not None and a["vs_floor"] <= target
                            and (a["speedup"] or 0) >= 1 and a.get("speedup18", 1) >= 1)
            elif net_result["net"] == "wan":
                a["target"] = f"≤ {target:g}× the link's bandwidth floor"
                a["met"] = a.get("vs_bw_floor") is not None and a["vs_bw_floor"] <= target
            else:
                a["target"] = f"≤ {target:g}× the raw floor (curl)"
                a["met"] = a.get("vs_floor") is not None and a["vs_floor"] <= target
        out[sc] = a
    return out


def fmt_s(x):
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"


def markdown(res):
    L = []
    m = res["machine"]
    L.append("<!-- generated by bench/bench.py from docs/bench-results.json; do not edit by hand -->")
    L.append("# Benchmark: ferry vs skopeo\n")
    L.append(f"Run {res['started']} with `bench/run {' '.join(res['args'])}`".rstrip() + ".\n")
    L.append(f"- Machine: {m['cores']} cores, {m['mem_gib']:.0f} GiB, {m['cpu_model']}, kernel {m['kernel']}; "
             f"load average {m['load_before']} at the start, {m.get('load_after', '?')} at the end "
             f"(other work was {'running' if float(m['load_before'].split()[0]) > 0.8 else 'not running'} on it).")
    L.append(f"- Tools: {m['ferry']} (release build, commit {m['commit']}); {m['skopeo']}; "
             f"registries: {m['registry']} (filesystem storage on tmpfs, HTTPS with a generated CA, htpasswd basic auth with bcrypt cost 4).")
    if res.get("nice"):
        L.append(f"- Everything the benchmark started (registries, tools, delay program) ran at niceness "
                 f"{res['nice']}, so that the other work on the machine disturbed the comparison less.")
    L.append(f"- {res['pairs']} pairs per scenario (ferry, skopeo alternately; (a) also runs the curl floor "
             "in each round); cold state (destination storage wiped, registry restarted, skopeo's blob "
             "info cache removed) before every cold run. Times are wall-clock seconds; CPU is the tool's "
             "user+system time (children included); RSS is the tool's peak resident set; requests are "
             "the lines each registry wrote to its access log during the run; registry CPU is both "
             "registries' CPU time during the run.\n")
    for net in res["nets"]:
        an = analyse(net)
        L.append(f"## {net['net']}: {net['desc']}\n")
        if net.get("link"):
            L.append("Link, measured at the start (client → registry host):\n")
            L.append("| to | TCP connect | echo RTT | TLS ready (curl) | download | upload |")
            L.append("|---|---|---|---|---|---|")
            for side, k in net["link"].items():
                L.append(f"| {side} | {k['connect_ms']:.2f} ms | {k['echo_rtt_ms']:.2f} ms | "
                         f"{k['tls_handshake_done_ms']:.1f} ms | {k['download_mbit_s']:.0f} Mbit/s | "
                         f"{k['upload_mbit_s']:.0f} Mbit/s |")
            L.append("")
        L.append("| scenario | tool | wall min / median / max (s) | CPU (s) | peak RSS (MiB) | "
                 "requests src / dst | registry CPU (s) | skopeo ÷ ferry (median of pairs) | target | met |")
        L.append("|---|---|---|---|---|---|---|---|---|---|")
        for sc, a in an.items():
            title = net["titles"][sc]
            first = True
            for tool in ("none", "ferry", "attached", "skopeo", "skopeo18", "floor") + TOOLS[4:]:
                s = a["summary"].get(tool)
                if not s:
                    continue
                name = {"floor": "curl floor", "skopeo": "skopeo 1.9.3", "skopeo18": "skopeo 1.18",
                        "none": "ferry --referrers=none", "attached": "ferry, attachments"}.get(tool, tool)
                if sc == "s":
                    shards = int(tool.split("×")[1])
                    name = f"ferry, {shards} shard" + ("s" if shards > 1 else "")
                row = [title if first else "", name,
                       f"{fmt_s(s['min'])} / **{fmt_s(s['median'])}** / {fmt_s(s['max'])}",
                       f"{s['cpu']:.2f}", f"{s['rss_mib']:.0f}",
                       f"{s['req_src']:g} / {s['req_dst']:g}", f"{s['reg_cpu']:.2f}"]
                if sc == "s":
                    v = a.get("shards", {}).get(int(tool.split("×")[1]))
                    if v:
                        row[5] += f" (bytes copied {human(v['bytes'])})"
                if first:
                    ratio = f"**{a['speedup']:.2f}×**" if a.get("speedup") else ""
                    if a.get("speedup18"):
                        ratio += f" (1.18: **{a['speedup18']:.2f}×**)"
                    if sc == "n" and a.get("req_per_image"):
                        names18 = {"skopeo": "skopeo 1.9.3", "skopeo18": "skopeo 1.18"}
                        ratio += "; requests per image after auth: " + ", ".join(
                            f"{names18.get(t, t)} {v:.2f}" for t, v in a["req_per_image"].items())
                    if sc == "s" and a.get("shards"):
                        ratio = "wall of 1 shard ÷ wall of N: " + ", ".join(
                            f"N={n}: **{v['speedup']:.2f}×**" for n, v in a["shards"].items())
                    if a.get("per_image"):
                        per = a["per_image"]
                        ratio = ("requests per image: " + ", ".join(
                            f"{ {'none': 'none', 'ferry': 'default', 'attached': 'attached'}[t]} {v:.1f}"
                            for t, v in per.items()) + f"; default ÷ none **{a['req_ratio']:.3f}×**")
                    if sc in ("a", "g", "h", "i") and a.get("vs_floor"):
                        ratio += f"; ferry ÷ floor **{a['vs_floor']:.2f}×**"
                    if a.get("vs_bw_floor"):
                        ratio += (f"; ferry ÷ bandwidth floor ({a['bw_floor_s']:.2f} s) "
                                  f"**{a['vs_bw_floor']:.2f}×**")
                    if a.get("vs_cpu_floor"):
                        ratio += (f"; ferry ÷ registries' CPU floor ({a['cpu_floor_s']:.2f} s) "
                                  f"**{a['vs_cpu_floor']:.2f}×**")
                    met = {True: "yes", False: "**no**", None: ""}[a.get("met")]
                    target = a.get("target", "")
                    if a.get("target18"):
                        met18 = {True: "yes", False: "**no**"}[a["met18"]]
                        target += f"; vs 1.18: {a['target18']}"
                        met += f"; {met18}"
                    row += [ratio, target, met]
                else:
                    row += ["", "", ""]
                L.append("| " + " | ".join(row) + " |")
                first = False
        L.append("")
    return "\n".join(L) + "\n"


def svg_plot(res):
    """Speed-up of ferry over skopeo per scenario and network, with the targets marked."""
    nets = res["nets"]
    rows = []
    for net in nets:
        an = analyse(net)
        for sc in ("a", "b", "c", "d", "e", "f"):
            if sc in an and an[sc].get("speedup"):
                kind, lo, wan = TARGETS[sc]
                tgt = (wan if net["net"] == "wan" else lo) if kind == "speedup" else None
                rows.append((net["net"], sc, an[sc]["speedup"], tgt, an[sc]["speedups"]))
    if not rows:
        return ""
    import math
    W, left, right, top, rowh = 820, 150, 40, 60, 26
    H = top + rowh * len(rows) + 60
    vmax = max(max(r[2] for r in rows), max((r[3] or 0) for r in rows), max(max(r[4]) for r in rows)) * 1.15
    lmax = math.log10(max(vmax, 2))
    lmin = math.log10(0.5)

    def x(v):
        return left + (math.log10(max(v, 0.5)) - lmin) / (lmax - lmin) * (W - left - right)

    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">'
         f'ferry speed-up over skopeo (skopeo wall ÷ ferry wall, median of {res["pairs"]} pairs; log scale)</text>',
         f'<text x="{W / 2}" y="40" text-anchor="middle" fill="#555">bar: median; dots: each pair; '
         f'black tick: target; dashed: 1× (same speed)</text>']
    ticks = [t for t in (0.5, 1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000) if t <= 10 ** lmax]
    for t in ticks:
        style = 'stroke="#888" stroke-dasharray="4 3"' if t == 1 else 'stroke="#ddd"'
        o.append(f'<line x1="{x(t):.1f}" y1="{top - 5}" x2="{x(t):.1f}" y2="{top + rowh * len(rows)}" {style}/>')
        o.append(f'<text x="{x(t):.1f}" y="{top + rowh * len(rows) + 16}" text-anchor="middle">{t:g}×</text>')
    colors = {"loopback": "#4C78A8", "wan": "#F58518"}
    for i, (net, sc, v, tgt, pts) in enumerate(rows):
        y = top + i * rowh
        o.append(f'<text x="{left - 8}" y="{y + rowh / 2 + 4}" text-anchor="end">({sc}) {net}</text>')
        o.append(f'<rect x="{x(0.5):.1f}" y="{y + 4}" width="{x(v) - x(0.5):.1f}" height="{rowh - 8}" '
                 f'fill="{colors.get(net, "#999")}" opacity="0.85"/>')
        lx = x(max([v, *pts, tgt or 0])) + 6
        o.append(f'<text x="{lx:.1f}" y="{y + rowh / 2 + 4}">{v:.2f}×</text>')
        for p in pts:
            o.append(f'<circle cx="{x(p):.1f}" cy="{y + rowh / 2}" r="2.2" fill="black" opacity="0.5"/>')
        if tgt:
            o.append(f'<line x1="{x(tgt):.1f}" y1="{y + 1}" x2="{x(tgt):.1f}" y2="{y + rowh - 1}" '
                     f'stroke="black" stroke-width="3"/>')
    o.append(f'<text x="{W / 2}" y="{H - 12}" text-anchor="middle" fill="#555">'
             f'(a) is a throughput scenario: see docs/bench.md for ferry vs the raw floor</text>')
    o.append("</svg>")
    return "\n".join(o) + "\n"


def write_outputs(res, out_dir):
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench-results.json").write_text(json.dumps(res, indent=1))
    md = markdown(res)
    svg = svg_plot(res)
    if svg:
        (out_dir / "bench.svg").write_text(svg)
        md = md.replace("# Benchmark: ferry vs skopeo\n", "# Benchmark: ferry vs skopeo\n\n![ferry speed-up over skopeo](bench.svg)\n", 1)
    (out_dir / "bench-results.md").write_text(md)
    return md


# ---------------------------------------------------------------------------------------------

def machine_info():
    cpu = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = int(re.search(r"MemTotal:\s+(\d+)", open("/proc/meminfo").read()).group(1)) / (1 << 20)
    first = lambda argv: subprocess.run(argv, capture_output=True, text=True).stdout.strip().splitlines()[0]
    return {
        "cores": os.cpu_count(), "mem_gib": mem, "cpu_model": cpu, "kernel": platform.release(),
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "ferry": first([str(FERRY), "--version"]), "skopeo": first(["skopeo", "--version"]),
        "registry": first(["docker-registry", "--version"]),
        "commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                 capture_output=True, text=True).stdout.strip(),
    }


def main():
    global FERRY, PIDFILE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, 2 pairs: a smoke run (a minute or two)")
    ap.add_argument("--net", choices=["loopback", "wan", "both"], default="both")
    ap.add_argument("--scenarios", default="a,a4,b,c,d,e,f,g,h,i,r,n,s", help="comma list of a,a4,b,c,d,e,f,g,h,i,r,n,s")
    ap.add_argument("--pairs", type=int, help="runs of each tool per scenario (default 5, quick 2)")
    ap.add_argument("--rss-pairs", type=int, default=2, help="pairs for (a′), the RSS-growth run")
    ap.add_argument("--rtt-ms", type=float, default=20.0, help="WAN round-trip delay (default 20)")
    ap.add_argument("--rate", default="1gbit", help="WAN rate limit per link, tc syntax (default 1gbit)")
    ap.add_argument("--burst", default="256kb", help="tbf burst (default 256kb)")
    ap.add_argument("--a-layers", type=int), ap.add_argument("--a-size", type=parse_size)
    ap.add_argument("--b-layers", type=int), ap.add_argument("--b-size", type=parse_size)
    ap.add_argument("--e-shared", type=int), ap.add_argument("--e-shared-size", type=parse_size)
    ap.add_argument("--e-own", type=int), ap.add_argument("--e-own-size", type=parse_size)
    ap.add_argument("--f-images", type=int), ap.add_argument("--f-layers", type=int)
    ap.add_argument("--f-size", type=parse_size)
    ap.add_argument("--n-images", type=int), ap.add_argument("--n-repos", type=int)
    ap.add_argument("--n-size", type=parse_size)
    ap.add_argument("--probe-mib", type=int, default=256, help="bulk transfer of the link measurement")
    ap.add_argument("--ports", default="auto", help="loopback registry ports SRC,DST (default: two free ones)")
    ap.add_argument("--workdir", default="/tmp/ferry-bench", help="images, certificates, logs")
    ap.add_argument("--storage", default="/dev/shm/ferry-bench",
                    help="registry storage (default on tmpfs; removed at the end)")
    ap.add_argument("--keep-storage", action="store_true",
                    help="keep the seeded source registry's storage for the next run")
    ap.add_argument("--out", default=str(ROOT / "target" / "bench"),
                    help="where results go (bench-results.json, bench-results.md, bench.svg)")
    ap.add_argument("--nfq-delay", default=str(ROOT / "target" / "bench" / "nfq-delay"))
    ap.add_argument("--ferry", default=str(FERRY), help="the ferry binary (default: the release build)")
    ap.add_argument("--serve", action="store_true",
                    help="set up the network setting(s) and registries, seed them, print how to reach "
                         "them and wait (for profiling by hand); ends on Ctrl-C")
    ap.add_argument("--nice", type=int, default=0,
                    help="run everything (registries, tools, delay) at this niceness, e.g. -10 on a "
                         "machine shared with other work, so that its load disturbs the comparison less")
    ap.add_argument("--report-only", metavar="RESULTS_JSON", help="only regenerate the table and plot")
    cfg = ap.parse_args()
    FERRY = Path(cfg.ferry)

    if cfg.report_only:
        res = json.loads(Path(cfg.report_only).read_text())
        print(write_outputs(res, Path(cfg.out)))
        return

    full = dict(pairs=5, a_layers=8, a_size=128 * MIB, b_layers=200, b_size=256 << 10,
                e_shared=2, e_shared_size=32 * MIB, e_own=2, e_own_size=16 * MIB,
                f_images=20, f_layers=5, f_size=2 * MIB, n_images=200, n_repos=20, n_size=4096)
    quick = dict(pairs=2, a_layers=8, a_size=16 * MIB, b_layers=60, b_size=256 << 10,
                 e_shared=2, e_shared_size=4 * MIB, e_own=2, e_own_size=2 * MIB,
                 f_images=5, f_layers=5, f_size=512 << 10, n_images=40, n_repos=8, n_size=4096)
    for k, v in (quick if cfg.quick else full).items():
        if getattr(cfg, k) is None:
            setattr(cfg, k, v)
    if cfg.quick:
        cfg.probe_mib = min(cfg.probe_mib, 64)
    cfg.ports = free_ports(2) if cfg.ports == "auto" else tuple(int(p) for p in cfg.ports.split(","))
    cfg.wd = Path(cfg.workdir)
    cfg.wd.mkdir(parents=True, exist_ok=True)
    cfg.nfq_delay = Path(cfg.nfq_delay)
    scenarios = [s.strip() for s in cfg.scenarios.split(",") if s.strip()]
    if "f" in scenarios and not ferry_has_sync():
        log("ferry has no `sync` verb yet: scenario (f) is skipped")
        scenarios.remove("f")
    cfg.scenario_list = scenarios
    nets = {"loopback": [Loopback], "wan": [Wan], "both": [Loopback, Wan]}[cfg.net]

    if cfg.nice:
        os.nice(cfg.nice)

    def on_term(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    res = {"started": time.strftime("%Y-%m-%d %H:%M %Z"), "args": sys.argv[1:], "pairs": cfg.pairs,
           "nice": cfg.nice,
           "machine": machine_info(), "nets": [],
           "config": {k: getattr(cfg, k) for k in ("a_layers", "a_size", "b_layers", "b_size", "e_shared",
                                                   "e_shared_size", "e_own", "e_own_size", "f_images",
                                                   "f_layers", "f_size", "n_images", "n_repos", "n_size",
                                                   "rtt_ms", "rate", "burst")}}
    out_dir = Path(cfg.out)
    results_dir = cfg.wd / "logs"
    shutil.rmtree(results_dir, ignore_errors=True)
    results_dir.mkdir(parents=True)
    PIDFILE = cfg.wd / "pids"
    PIDFILE.write_text("")
    # Current skopeo (1.18) beside Debian's 1.9.3, where a scenario runs it.
    sh("bash", str(ROOT / "scripts/skopeo-current"), "--install-wrapper", str(cfg.wd / "skopeo18"),
       capture=True)
    cfg.skopeo18 = cfg.wd / "skopeo18" / "skopeo"
    cfg.policy = cfg.wd / "policy.json"
    cfg.policy.write_text('{"default":[{"type":"insecureAcceptAnything"}]}\n')

    res["machine"]["skopeo18"] = subprocess.run([str(cfg.skopeo18), "--version"], capture_output=True,
                                                text=True).stdout.strip()
    pki, cfg.certs = make_pki(cfg.wd, ["127.0.0.1", "10.201.1.2", "10.201.2.2"])
    plan = image_plan(cfg)
    layout, meta = build_images(cfg.wd, plan)
    titles = scenario_titles(cfg, meta)
    # Registry storage on tmpfs by default: the registries' disk (and, on a shared machine,
    # other people's disk traffic) is not what this benchmark compares.
    storage = Path(cfg.storage)
    src_storage = storage / "src"
    dst_storage = storage / "dst"

    try:
        for Net in nets:
            net = Net(cfg)
            log(f"setting up {net.name}: {net.desc}")
            net.setup()
            try:
                regs = {
                    "src": Registry(cfg.wd, "src", net.client_ns and "fbench-src", net.src_host, net.src_port,
                                    src_storage, pki, net.client_ns),
                    "dst": Registry(cfg.wd, "dst", net.client_ns and "fbench-dst", net.dst_host, net.dst_port,
                                    dst_storage, pki, net.client_ns),
                }
                for r in regs.values():
                    r.start()
                seed(cfg, regs["src"], net.client_ns, layout, meta)
                link = measure_link(net, cfg, regs)
                for side, k in link.items():
                    log(f"link to {side}: connect {k['connect_ms']:.2f} ms, echo RTT {k['echo_rtt_ms']:.2f} ms, "
                        f"TLS ready {k['tls_handshake_done_ms']:.1f} ms, down {k['download_mbit_s']:.0f} Mbit/s, "
                        f"up {k['upload_mbit_s']:.0f} Mbit/s")
                if cfg.serve:
                    print(f"{net.name}: source https://{regs['src'].addr}, destination https://{regs['dst'].addr}"
                          f"{', client namespace ' + net.client_ns if net.client_ns else ''}\n"
                          f"  creds {CREDS}, cert dir {cfg.certs}, policy {cfg.policy}\n"
                          f"  images: " + ", ".join(f"{m['repo']}:{m['tag']}" for m in meta.values()
                                                    if not m['repo'].startswith('bench/f/')), flush=True)
                    signal.pause()
                nres = {"net": net.name, "desc": net.desc, "link": link, "titles": titles,
                        "a_bytes": meta["a"]["layer_bytes"], "f_images": cfg.f_images, "scenarios": {},
                        "cores": os.cpu_count(),
                        "bytes": {"a": meta["a"]["layer_bytes"], "b": meta["b"]["layer_bytes"],
                                  "e": meta["e"]["layer_bytes"],
                                  "f": sum(m["layer_bytes"] for n, m in meta.items()
                                           if re.fullmatch(r"f\d+", n))}}
                res["nets"].append(nres)
                for sc in scenarios:
                    log(f"{net.name}: scenario {titles[sc]}")
                    nres["scenarios"][sc] = run_scenario(sc, net, cfg, regs, meta, results_dir)
                    res["machine"]["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
                    write_outputs(res, out_dir)
                for r in regs.values():
                    r.stop()
                # The (d) repository lives in the shared source storage: leave it clean.
                shutil.rmtree(src_storage / "docker/registry/v2/repositories" / (meta["a"]["repo"] + "-prod"),
                              ignore_errors=True)
            finally:
                stop_all()
                net.teardown()
    finally:
        stop_all()
        remove_namespaces()
        if not cfg.keep_storage:
            shutil.rmtree(storage, ignore_errors=True)
        else:
            shutil.rmtree(dst_storage, ignore_errors=True)
    res["machine"]["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(write_outputs(res, out_dir))
    log(f"results in {out_dir} (bench-results.md, bench.svg, bench-results.json); tool output in {results_dir}")


def seed(cfg, src, ns, layout, meta):
    """Push the generated images to the source registry with skopeo --preserve-digests (once:
    the source storage is kept between runs and network settings)."""
    todo = [n for n, m in meta.items() if manifest_digest(src, ns, m["repo"], m["tag"], cfg) != m["digest"]]
    if not todo:
        return
    log(f"seeding {len(todo)} images into the source registry")
    for n in todo:
        m = meta[n]
        argv = ["skopeo", "--policy", cfg.policy, "copy", "-q", "--preserve-digests",
                "--dest-creds", CREDS, "--dest-cert-dir", cfg.certs]
        if m["index"]:
            argv.append("--all")
        argv += [f"oci:{layout}:{n}", f"docker://{src.addr}/{m['repo']}:{m['tag']}"]
        sh(*argv, ns=ns, capture=True)
        got = manifest_digest(src, ns, m["repo"], m["tag"], cfg)
        if got != m["digest"]:
            raise RuntimeError(f"seeding {n}: source has {got}, want {m['digest']}")


if __name__ == "__main__":
    main()
