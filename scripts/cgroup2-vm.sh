#!/usr/bin/env bash
# Container engines on cgroup v2 in a virtual machine, the shape of today's
# Docker Desktop and of a current Linux distribution: Docker 28.5 (the
# containerd image store, API 1.44 at the least) and Podman 5 (rootful and
# rootless) in a Debian 13 VM (systemd, unified cgroup hierarchy); the host
# sees each engine as a unix socket.
#
#   scripts/cgroup2-vm.sh start NAME    # boots (or reuses) VM NAME
#   scripts/cgroup2-vm.sh stop NAME     # powers it off; keeps its disk
#   scripts/cgroup2-vm.sh status NAME   # exit 0 if its engine answers GET /_ping
#   scripts/cgroup2-vm.sh purge NAME    # stop, then delete its disk
#   scripts/cgroup2-vm.sh image         # only make the cached VM image
#
# `start` prints the Docker engine's DOCKER_HOST
# (unix:///run/dse-vm/NAME/docker.sock) as its last line of stdout; progress
# goes to stderr. It is idempotent: a VM whose engine answers is reused.
# Beside docker.sock, /run/dse-vm/NAME/ holds the Podman sockets (see
# "Podman" below).
#
# The engine is Docker 28.5 with the containerd image store
# ({"features":{"containerd-snapshotter":true}}) and DOCKER_MIN_API_VERSION=1.44,
# as Docker Engine 29 has it: Debian 12's docker CLI (API 1.41) cannot talk
# to it, so this script's client is one that speaks API 1.44
# (DSE_VM_DOCKER, default /usr/local/bin/docker).
#
# The VM image is made once per machine under /var/cache/dse-vm: a Debian 13
# root from debootstrap (packages from the archive scripts/debian-mirror.sh
# names) with systemd, podman and busybox-static, Debian unstable's docker.io,
# containerd and runc installed into it with dpkg (fetched with `apt-get
# download` through an apt source list of this script's own; Debian 13's
# glibc is new enough for unstable's runc), written into an ext4 image by
# `mkfs.ext4 -d` (nothing is mounted), Debian 13's kernel unpacked with
# `dpkg-deb -x`, and an initramfs of busybox that loads the virtio and ext4
# modules and switches to the root on /dev/vda. A marker file says the image
# is complete; an incomplete one, or one of an older recipe, is made anew.
#
# Podman: Debian 13's Podman 5 serves its Docker-compatible API as root
# (podman.socket) and for two ordinary users whose user managers start at
# boot (lingering), as Fedora and RHEL users run it rootless: dse (uid 1000)
# with user@.service's cgroup delegation as Fedora sets it (cpu cpuset io
# memory pids), and dsend (uid 1001) without the cpu and io controllers (an
# instance drop-in leaves it pids and memory), the case a user without
# Fedora's setting meets. Each API is forwarded to a port of the VM by
# systemd-socket-proxyd and served on the host, like Docker's, as
# /run/dse-vm/NAME/podman.sock, podman-rootless.sock and
# podman-nodelegate.sock. Each `podman system service` stays up (--time=0)
# rather than exit 5 s after its last call as podman.service has it: under
# emulation a start took 4 s, and the tests, whose calls come seconds apart,
# paid it again and again (the two readers' test on rootless Podman: 148 s,
# 87 s with this).
# Each VM boots from a qcow2 overlay of that image of its own
# (/var/lib/dse-vm/NAME), made anew at each boot: nothing an earlier boot
# left (a container with a restart policy holding a port, a package a test
# stopped before purging) is there at the next start.
#
# The VM's network is a tap device in a network namespace of its own,
# dse-vm-NAME, holding nothing else: the guest (10.0.2.15) reaches the
# namespace's end of the tap (10.0.2.2) and nothing beyond it, and the
# host's own namespace sees neither. dockerd listens on tcp port 2375 inside
# the VM; socat, in that namespace, serves it as the unix socket on the
# host's file system. (qemu's user-mode network forwards a port through a
# listen queue of one connection: a burst of a hundred calls then waits for
# SYN retransmissions, up to a minute.) The serial console goes to
# /run/dse-vm/NAME/console.log.
#
# Acceleration: KVM when DSE_VM_ACCEL=kvm, else TCG. On the machines this was
# made on (a container on a KVM guest, no vmx flag in /proc/cpuinfo),
# /dev/kvm opens but its CPUID lacks even SSE3 ("host doesn't support
# requested feature: CPUID.01H:ECX.pni"), and a guest under it spins a core
# right after the boot stub: nothing after "Probing EDD" (with edd=off or
# nokaslr: "KASLR disabled") in 90 s. Tried: -cpu host, max, qemu64,
# kvm64,-kvmclock; -machine pc and q35; -no-hpet; edd=off noapic nolapic
# nokaslr no-kvmclock nopv; -accel kvm,kernel-irqchip=off (qemu aborts:
# "failed to set MSR 0x4b564d06"). Under TCG the same kernel is at its root
# mount in under 2 s of guest time, and the engine answers 40 s after qemu
# starts on an idle host, 60-120 s while other builds load the machine. Both
# vCPUs run on one host thread (see accel_args): a thread each answered in
# 24 s, but once left the guest spinning on a stale translation.
#
# Environment for `start`:
#   DSE_VM_ACCEL=tcg|kvm  (default tcg)
#   DSE_VM_CPUS=N         vCPUs (default 2; TCG runs them on threads of their own)
#   DSE_VM_MEMORY=MiB     (default 2048)
#   DSE_VM_DOCKER=PATH    a docker CLI that speaks API 1.44
#                         (default /usr/local/bin/docker)
#   DSE_TEST_IMAGE        the busybox image imported on first start
#                         (default dse-test/busybox:latest)
# Needs root.
set -euo pipefail

SCRIPTS=$(cd "$(dirname "$0")" && pwd)
# The engine in the VM refuses clients below API 1.44 (Debian 12's speaks 1.41).
DOCKER=${DSE_VM_DOCKER:-/usr/local/bin/docker}
IMAGE="${DSE_TEST_IMAGE:-dse-test/busybox:latest}"
CACHE=/var/cache/dse-vm    # packages, kernel, the finished image
RUN_BASE=/run/dse-vm       # socket, pidfiles, logs, lock per VM
DATA_BASE=/var/lib/dse-vm  # each VM's disk overlay
RECIPE=5                   # bump when the image's contents change
IMAGE_SIZE=6G              # sparse; the engine's images and containers live on it
START_TIMEOUT=${DSE_VM_START_TIMEOUT:-300} # seconds until GET /_ping must answer
STOP_TIMEOUT=40            # seconds for the guest to power off
GUEST_PORT=2375
# Ports of the guest's Podman APIs (systemd-socket-proxyd to their sockets),
# each served on the host as the socket named beside it.
PODMAN_PORTS=(2376 2377 2378)
PODMAN_SOCKS=(podman.sock podman-rootless.sock podman-nodelegate.sock)
GUEST_ADDR=10.0.2.15 # the guest's address, set in its systemd-networkd file
TAP_ADDR=10.0.2.2    # the namespace's end of the tap, the guest's gateway
TAP=dsevm0
# apparmor=0: Debian's kernel enables AppArmor, and dockerd then wants
# apparmor_parser for its default profile. The modules left out are ones udev
# would load for qemu's emulated hardware (and for the nested virtualization
# TCG's "max" CPU offers) that the engine never needs, at a cost under TCG.
KERNEL_ARGS="console=ttyS0 panic=-1 apparmor=0 mitigations=off systemd.unified_cgroup_hierarchy=1 systemd.show_status=1 modprobe.blacklist=kvm,kvm_amd,kvm_intel,floppy,powernow_k8,pcspkr,psmouse,cfg80211"

PROG=cgroup2-vm
USAGE_LINES=6,10
# shellcheck source=scripts/lib.sh
. "$SCRIPTS/lib.sh"

# --- names and paths ----------------------------------------------------------

vm_paths() {
  NAME=$1
  [[ $NAME =~ ^[a-z0-9][a-z0-9-]{0,15}$ ]] ||
    die "VM name '$NAME': use 1-16 characters a-z, 0-9 and '-'"
  RUN="$RUN_BASE/$NAME"
  SOCK="$RUN/docker.sock"
  URL="unix://$SOCK"
  QEMU_PID="$RUN/qemu.pid"
  QMP="$RUN/qmp.sock"
  CONSOLE="$RUN/console.log"
  QEMU_LOG="$RUN/qemu.log"
  SOCAT_LOG="$RUN/socat.log"
  NETNS="dse-vm-$NAME"
  DATA="$DATA_BASE/$NAME"
  DISK="$DATA/disk.qcow2"
}

# --- process helpers ----------------------------------------------------------

qemu_pid() { pid_of "$QEMU_PID" "-pidfile $QEMU_PID"; }
# The socat serving socket file $1 (a name in $RUN); its pidfile is named after it.
socat_pid() { pid_of "$RUN/socat-${1%.sock}.pid" "UNIX-LISTEN:$RUN/$1,"; }
answers() { engine_answers "$SOCK" 3; }

# --- the image ------------------------------------------------------------------

IMG="$CACHE/image"

image_complete() {
  [ "$(cat "$IMG/.complete" 2>/dev/null)" = "recipe $RECIPE" ] &&
    [ -s "$IMG/rootfs.ext4" ] && [ -s "$IMG/vmlinuz" ] && [ -s "$IMG/initrd.img" ]
}

# apt-get and apt-cache on an apt state of this script's own under
# $CACHE/apt (Debian 13 and unstable, Packages indexes only).
own_apt() { apt_in "$CACHE/apt" "$@"; }

# Updates that apt state from archive $1.
own_apt_update() {
  local mirror=$1 dir="$CACHE/apt" suite
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/parts" "$dir/preferences.d"
  : >"$dir/sources.list"
  for suite in trixie sid; do
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg target=Packages] $mirror $suite main" >>"$dir/sources.list"
  done
  own_apt apt-get update >"$CACHE/apt.log" 2>&1 8>&- ||
    {
      tail -n 20 "$CACHE/apt.log" >&2
      die "apt-get update for Debian 13 and unstable failed; see $CACHE/apt.log"
    }
}

# The newest version of package $1 in suite $2 of that apt state.
suite_version() {
  own_apt apt-cache madison "$1" | awk -v suite="$2" -F' *[|] *' '$3 ~ ("(^| )" suite "/") { print $2; exit }'
}

# Debian 13's kernel (the package linux-image-amd64 depends on) and
# unstable's docker.io, containerd, runc and tini-static, fetched into $CACHE/debs.
# Prints the kernel package's path.
fetch_debs() {
  local mirror=$1 debs="$CACHE/debs" kpkg pkg version want=()
  mkdir -p "$debs"
  own_apt_update "$mirror"
  kpkg=$(own_apt apt-cache show "linux-image-amd64=$(suite_version linux-image-amd64 trixie)" |
    sed -n 's/^Depends:.*\(linux-image-[0-9][^ ,]*-amd64\).*/\1/p' | head -n 1)
  [ -n "$kpkg" ] || die "Debian 13's linux-image-amd64 names no kernel package; see $CACHE/apt.log"
  want+=("$kpkg=$(suite_version "$kpkg" trixie)")
  for pkg in docker.io containerd runc tini-static; do
    version=$(suite_version "$pkg" sid)
    [ -n "$version" ] || die "Debian unstable has no $pkg"
    want+=("$pkg=$version")
  done
  rm -f "$debs"/*.deb
  log "fetching ${want[*]}"
  (cd "$debs" && own_apt apt-get download "${want[@]}") >>"$CACHE/apt.log" 2>&1 8>&- ||
    {
      tail -n 20 "$CACHE/apt.log" >&2
      die "apt-get download ${want[*]} failed; see $CACHE/apt.log"
    }
  compgen -G "$debs/linux-image-*.deb" | head -n 1
}

# Podman's APIs: root's podman.socket, and each rootless user's, started
# at boot by lingering user managers; each forwarded to a port of the VM.
configure_podman() {
  local root=$1 user uid port sock i
  chroot "$root" systemctl enable podman.socket >&2
  chroot "$root" systemctl --global enable podman.socket >&2
  # Fedora's user@.service delegation (its systemd carries it), for every
  # user; dsend's instance keeps only pids and memory.
  mkdir -p "$root/etc/systemd/system/user@.service.d" "$root/etc/systemd/system/user@1001.service.d"
  printf '[Service]\nDelegate=cpu cpuset io memory pids\n' >"$root/etc/systemd/system/user@.service.d/delegate.conf"
  printf '[Service]\nDelegate=\nDelegate=pids memory\n' >"$root/etc/systemd/system/user@1001.service.d/delegate.conf"
  local unit_dir
  for unit_dir in "$root/etc/systemd/system/podman.service.d" "$root/etc/systemd/user/podman.service.d"; do
    mkdir -p "$unit_dir"
    # shellcheck disable=SC2016 # $LOGGING is the unit's own variable
    printf '[Service]\nExecStart=\nExecStart=/usr/bin/podman $LOGGING system service --time=0\n' >"$unit_dir/dse-vm.conf"
  done
  mkdir -p "$root/var/lib/systemd/linger"
  for user in dse:1000 dsend:1001; do
    uid=${user#*:}
    user=${user%:*}
    chroot "$root" useradd -m -u "$uid" -s /bin/bash "$user" >&2
    # Each user's own range of subordinate ids for its user namespace.
    grep -q "^$user:" "$root/etc/subuid" 2>/dev/null ||
      echo "$user:$((100000 + (uid - 1000) * 65536)):65536" >>"$root/etc/subuid"
    grep -q "^$user:" "$root/etc/subgid" 2>/dev/null ||
      echo "$user:$((100000 + (uid - 1000) * 65536)):65536" >>"$root/etc/subgid"
    touch "$root/var/lib/systemd/linger/$user"
  done
  # systemd-socket-proxyd forwards each port to its API's socket, started on
  # the first connection; the rootless sockets exist once that user's
  # manager has started podman.socket.
  local targets=(/run/podman/podman.sock /run/user/1000/podman/podman.sock /run/user/1001/podman/podman.sock)
  local afters=(podman.socket user@1000.service user@1001.service)
  for i in 0 1 2; do
    port=${PODMAN_PORTS[$i]}
    sock=${targets[$i]}
    cat >"$root/etc/systemd/system/dse-podman-$port.socket" <<EOF
[Socket]
ListenStream=$port

[Install]
WantedBy=sockets.target
EOF
    cat >"$root/etc/systemd/system/dse-podman-$port.service" <<EOF
[Unit]
Requires=dse-podman-$port.socket
After=dse-podman-$port.socket ${afters[$i]}

[Service]
ExecStart=/usr/lib/systemd/systemd-socket-proxyd --connections-max=4096 $sock
EOF
    chroot "$root" systemctl enable "dse-podman-$port.socket" >&2
  done
}

# The guest's own settings, written into the debootstrapped root $1.
configure_root() {
  local root=$1
  echo dse-vm >"$root/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 dse-vm\n' >"$root/etc/hosts"
  echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' >"$root/etc/fstab"
  : >"$root/etc/machine-id" # made at first boot
  # qemu's user network: the guest is 10.0.2.15, inside the VM only.
  mkdir -p "$root/etc/systemd/network"
  cat >"$root/etc/systemd/network/10-dse-vm.network" <<'EOF'
[Match]
Name=en* eth*

[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
EOF
  printf '%s\n' virtio_net overlay br_netfilter >"$root/etc/modules-load.d/dse-vm.conf"
  # dockerd also listens on tcp port 2375 of the VM's addresses, reached from
  # the host only through the VM's own network namespace. --tls=false says so
  # on purpose: without it dockerd waits 15 s at start to warn about plain
  # TCP. --iptables=false --ip6tables=false: their rules cost half a minute
  # of iptables runs under TCG, and the guest's network reaches nothing
  # outside anyway; containers still get the bridge (and its counters).
  # DOCKER_MIN_API_VERSION=1.44: the floor Docker Engine 29.0-29.2 set.
  mkdir -p "$root/etc/systemd/system/docker.service.d"
  cat >"$root/etc/systemd/system/docker.service.d/dse-vm.conf" <<EOF
[Service]
Environment=DOCKER_MIN_API_VERSION=1.44
ExecStart=
ExecStart=/usr/sbin/dockerd -H fd:// -H tcp://0.0.0.0:$GUEST_PORT --tls=false --iptables=false --ip6tables=false --containerd=/run/containerd/containerd.sock
EOF
  # The containerd image store, the default of Docker Engine 29 and Desktop.
  mkdir -p "$root/etc/docker"
  echo '{"features": {"containerd-snapshotter": true}}' >"$root/etc/docker/daemon.json"
  # The socket as Docker Desktop hands it to containers: root:root 0660
  # (Debian's is root:docker).
  mkdir -p "$root/etc/systemd/system/docker.socket.d"
  printf '[Socket]\nSocketGroup=root\n' >"$root/etc/systemd/system/docker.socket.d/dse-vm.conf"
  chroot "$root" systemctl enable systemd-networkd.service >&2
  chroot "$root" systemctl enable docker.service >&2
  # Static addresses are there at once; nothing waits for "online".
  chroot "$root" systemctl mask systemd-networkd-wait-online.service >&2
  configure_podman "$root"
  chroot "$root" passwd -d root >&2 # a console login for debugging
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
}

# An initramfs of busybox: loads the modules that mounting /dev/vda needs
# (virtio_pci, virtio_blk, ext4 and theirs), mounts it and switches to it.
make_initramfs() {
  local root=$1 kver=$2 out=$3 dir m
  dir=$(mktemp -d "$CACHE/.initramfs.XXXXXX")
  mkdir -p "$dir/bin" "$dir/mods" "$dir/proc" "$dir/sys" "$dir/dev" "$dir/newroot"
  cp "$root/bin/busybox" "$dir/bin/busybox"
  : >"$dir/modules"
  # crc32c: ext4's checksums ask for it by name, not as a module dependency.
  for m in $(for want in virtio_pci virtio_blk crc32c_generic ext4; do
    chroot "$root" modprobe -S "$kver" --show-depends "$want"
  done | awk '$1 == "insmod" { print $2 }'); do
    if ! grep -qxF "${m##*/}" "$dir/modules"; then
      cp "$root$m" "$dir/mods/"
      echo "${m##*/}" >>"$dir/modules"
    fi
  done
  cat >"$dir/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules); do insmod "/mods/$m" || echo "dse-vm initramfs: insmod $m failed"; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
if ! mount -t ext4 -o rw /dev/vda /newroot; then
  echo "dse-vm initramfs: cannot mount /dev/vda"
  sleep 2
  poweroff -f
fi
umount /proc /sys /dev
exec switch_root /newroot /sbin/init
EOF
  chmod +x "$dir/init"
  (cd "$dir" && find . | "$root/bin/busybox" cpio -o -H newc 2>/dev/null | gzip -1) >"$out"
  rm -rf "$dir"
}

build_image() {
  local mirror deb kver build root start=$SECONDS
  mkdir -p "$CACHE"
  exec 8>"$CACHE/build.lock" # two starts at once build once
  flock -w 1800 8 || die "another run holds $CACHE/build.lock"
  image_complete && return 0
  need debootstrap debootstrap
  need mkfs.ext4 e2fsprogs
  mirror=$("$SCRIPTS/debian-mirror.sh" trixie) || die "no Debian archive for trixie (see scripts/debian-mirror.sh)"
  deb=$(fetch_debs "$mirror")

  build="$CACHE/build"
  # A build that an earlier run left halfway is started over, with the
  # /proc and /sys that a failed debootstrap leaves mounted in its root.
  local m
  for m in $(findmnt -rn -o TARGET | awk -v d="$build/" 'index($0, d) == 1' | sort -r); do
    umount "$m" || umount -l "$m" || die "cannot unmount $m"
  done
  rm -rf --one-file-system "$build" "$IMG"
  mkdir -p "$build" "$CACHE/debootstrap"
  root="$build/root"
  log "making the VM image (debootstrap trixie; log: $CACHE/build.log)"
  # What unstable's docker.io, containerd and runc depend on comes from
  # Debian 13 (iptables, libseccomp2), but tini-static, which only unstable
  # has. Podman, nftables for its netavark, and what rootless Podman needs
  # (uidmap, passt, dbus-user-session for its systemd cgroup manager) are
  # Debian 13's.
  debootstrap --variant=minbase --cache-dir="$CACHE/debootstrap" \
    --include=systemd,systemd-sysv,udev,dbus,kmod,iproute2,busybox-static,iptables,nftables,libseccomp2,sysvinit-utils,podman,uidmap,passt,slirp4netns,dbus-user-session,libpam-systemd,catatonit \
    trixie "$root" "$mirror" >"$CACHE/build.log" 2>&1 8>&- ||
    {
      tail -n 20 "$CACHE/build.log" >&2
      die "debootstrap failed; see $CACHE/build.log"
    }
  log "debootstrap done after $((SECONDS - start)) s; adding unstable's engine and $(basename "$deb")"
  mkdir -p "$root/tmp/dse-debs"
  cp "$CACHE"/debs/docker.io_*.deb "$CACHE"/debs/containerd_*.deb "$CACHE"/debs/runc_*.deb "$CACHE"/debs/tini-static_*.deb "$root/tmp/dse-debs/"
  # Nothing starts in the chroot: no systemd runs there, and policy-rc.d
  # says no to anything that would start a service another way.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod +x "$root/usr/sbin/policy-rc.d"
  DEBIAN_FRONTEND=noninteractive chroot "$root" sh -c 'dpkg -i /tmp/dse-debs/*.deb' >>"$CACHE/build.log" 2>&1 8>&- ||
    {
      tail -n 20 "$CACHE/build.log" >&2
      die "dpkg -i of unstable's docker.io, containerd, runc and tini-static failed; see $CACHE/build.log"
    }
  rm -rf "$root/tmp/dse-debs" "$root/usr/sbin/policy-rc.d"
  # Unpacked beside the root, not into it: the package's /lib would replace
  # the root's /lib -> usr/lib link with a directory.
  dpkg-deb -x "$deb" "$build/kernel"
  local moddir
  moddir=$(compgen -G "$build/kernel/lib/modules/*-amd64" || compgen -G "$build/kernel/usr/lib/modules/*-amd64") ||
    die "$(basename "$deb") holds no modules directory"
  moddir=$(head -n 1 <<<"$moddir")
  kver=$(basename "$moddir")
  cp -a "$build/kernel/boot/." "$root/boot/"
  mkdir -p "$root/usr/lib/modules"
  cp -a "$moddir" "$root/usr/lib/modules/"
  chroot "$root" depmod "$kver"
  configure_root "$root" >>"$CACHE/build.log" 2>&1

  mkdir -p "$build/image"
  cp "$root/boot/vmlinuz-$kver" "$build/image/vmlinuz"
  make_initramfs "$root" "$kver" "$build/image/initrd.img"
  log "initramfs modules: $(zcat "$build/image/initrd.img" | "$root/bin/busybox" cpio -i --to-stdout modules 2>/dev/null | tr '\n' ' ')"
  mkfs.ext4 -q -F -L dse-vm -d "$root" "$build/image/rootfs.ext4" "$IMAGE_SIZE" >>"$CACHE/build.log" 2>&1 ||
    die "mkfs.ext4 -d failed; see $CACHE/build.log"
  echo "$kver" >"$build/image/kernel-version"
  date -u +%Y%m%dT%H%M%SZ >"$build/image/made"
  echo "recipe $RECIPE" >"$build/image/.complete"
  mv "$build/image" "$IMG"
  rm -rf --one-file-system "$build"
  log "VM image made in $((SECONDS - start)) s: $IMG ($(du -sh --apparent-size "$IMG/rootfs.ext4" | cut -f1) sparse, $(du -sh "$IMG/rootfs.ext4" | cut -f1) used)"
  exec 8>&-
}

# --- start --------------------------------------------------------------------

# This VM's disk: a new overlay of the image.
new_disk() {
  mkdir -p "$DATA"
  rm -f "$DISK" "$DATA/image-made"
  qemu-img create -q -f qcow2 -F raw -b "$IMG/rootfs.ext4" "$DISK" >&2
}

# The VM's network namespace and the tap in it, made if missing.
ensure_netns() {
  [ -e "/run/netns/$NETNS" ] || ip netns add "$NETNS"
  ip -n "$NETNS" link set lo up
  if ! ip -n "$NETNS" link show "$TAP" >/dev/null 2>&1; then
    ip -n "$NETNS" tuntap add dev "$TAP" mode tap
    ip -n "$NETNS" addr add "$TAP_ADDR/24" dev "$TAP"
  fi
  ip -n "$NETNS" link set "$TAP" up
}

# Runs a command in the VM's network namespace.
in_netns() { nsenter --net="/run/netns/$NETNS" "$@"; }

accel_args() {
  case ${DSE_VM_ACCEL:-tcg} in
    kvm) ACCEL=(-accel kvm -cpu host) ;;
    # One host thread for both vCPUs: with a thread each (thread=multi),
    # qemu 7.2 once kept running a stale translation of a kernel jump label
    # after the kernel patched it back (its memory held the jmp, both vCPUs
    # trapped on the int3 the patching had put there for good, and the
    # guest answered nothing more, 12 minutes into a test run).
    tcg) ACCEL=(-accel "tcg,thread=single" -cpu max) ;;
    *) die "DSE_VM_ACCEL '${DSE_VM_ACCEL}': use tcg or kvm" ;;
  esac
}

boot_vm() {
  local cpus=${DSE_VM_CPUS:-2} mem=${DSE_VM_MEMORY:-2048} until
  accel_args
  new_disk
  ensure_netns
  rm -f "$QEMU_PID" "$QMP" "$CONSOLE"
  log "booting VM '$NAME' (${DSE_VM_ACCEL:-tcg}, $cpus vCPUs, $mem MiB; engine on $GUEST_ADDR:$GUEST_PORT in network namespace $NETNS; console: $CONSOLE)"
  BOOT_START=$(date +%s.%N)
  in_netns qemu-system-x86_64 -name "dse-vm-$NAME" -nodefaults -no-user-config -display none \
    "${ACCEL[@]}" -smp "$cpus" -m "$mem" \
    -kernel "$IMG/vmlinuz" -initrd "$IMG/initrd.img" \
    -append "$KERNEL_ARGS" \
    -drive "file=$DISK,if=virtio,format=qcow2,cache=writeback,discard=unmap" \
    -netdev "tap,id=n0,ifname=$TAP,script=no,downscript=no" \
    -device virtio-net-pci,netdev=n0 \
    -serial "file:$CONSOLE" \
    -qmp "unix:$QMP,server=on,wait=off" \
    -no-reboot -pidfile "$QEMU_PID" -daemonize >>"$QEMU_LOG" 2>&1 </dev/null 8>&- 9>&- ||
    {
      tail -n 5 "$QEMU_LOG" >&2
      die "qemu did not start; see $QEMU_LOG"
    }
  start_forwarder
  until=$((SECONDS + START_TIMEOUT))
  until answers; do
    qemu_pid >/dev/null || {
      tail -n 20 "$CONSOLE" >&2
      die "the VM '$NAME' stopped while booting; see $CONSOLE"
    }
    if [ "$SECONDS" -ge "$until" ]; then
      tail -n 20 "$CONSOLE" >&2
      die "the engine in VM '$NAME' did not answer GET /_ping within $START_TIMEOUT s; see $CONSOLE (stop it with: $0 stop $NAME)"
    fi
    sleep 0.5
  done
  log "engine answers $(awk -v s="$BOOT_START" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }') s after qemu started"
}

# socat serves each of the guest's API ports as a unix socket, one
# connection each: Docker's port as docker.sock, Podman's as theirs.
# -t: a client that closes its sending half (docker run without -i, after
# the attach request) still gets the engine's answer until the engine closes
# its own; socat's default would end the connection 0.5 s after that half-close.
# backlog: connections queue as they would on dockerd's own socket (socat's
# default of 5 refuses the sixth of a burst while it forks for the first).
start_forwarder() {
  local i
  forward docker.sock "$GUEST_PORT"
  for i in "${!PODMAN_PORTS[@]}"; do
    forward "${PODMAN_SOCKS[$i]}" "${PODMAN_PORTS[$i]}"
  done
}

# Serves guest port $2 as socket file $1 in $RUN, unless socat already does.
forward() {
  local file=$1 port=$2 listen pid pidfile
  local sock="$RUN/$file"
  pidfile="$RUN/socat-${file%.sock}.pid"
  listen="UNIX-LISTEN:$sock,fork,backlog=4096,mode=660,unlink-early"
  if pid=$(socat_pid "$file") && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$listen TCP:$GUEST_ADDR:$port"; then
    return 0
  fi
  stop_forward "$file"
  need socat socat
  # setsid may fork, so $! need not be socat: the shell that becomes socat
  # (exec) writes its own pid. socat leads its own process group, which
  # holds the children it forks for each connection.
  # shellcheck disable=SC2016
  in_netns setsid sh -c 'echo $$ >"$1"; shift; exec "$@"' sh "$pidfile" \
    socat -t 86400 "$listen" "TCP:$GUEST_ADDR:$port" \
    </dev/null >>"$SOCAT_LOG" 2>&1 8>&- 9>&- &
  local until=$((SECONDS + 10))
  until [ -S "$sock" ] && socat_pid "$file" >/dev/null; do
    [ "$SECONDS" -lt "$until" ] || die "socat did not make $sock; see $SOCAT_LOG"
    sleep 0.1
  done
}

# The test image in Docker's storage and in each Podman's (root's and both
# users'), imported from this machine's busybox-static.
ensure_image() {
  local file url until
  for file in docker.sock "${PODMAN_SOCKS[@]}"; do
    url="unix://$RUN/$file"
    # A user's Podman answers once that user's manager has started.
    until=$((SECONDS + 120))
    until engine_answers "$RUN/$file" 5; do
      [ "$SECONDS" -lt "$until" ] || die "nothing answers GET /_ping on $RUN/$file in VM '$NAME' within 120 s; see $CONSOLE"
      sleep 0.5
    done
    if ! "$DOCKER" -H "$url" image inspect "$IMAGE" >/dev/null 2>&1; then
      log "importing $IMAGE into $file's storage"
      bash "$SCRIPTS/busybox-rootfs.sh" | "$DOCKER" -H "$url" import - "$IMAGE" >/dev/null ||
        die "docker import of $IMAGE on $url failed"
    fi
  done
}

# The engine is the one Desktop users have today: Docker 28.5, the
# containerd image store, API 1.44 at the least, cgroup v2 with systemd's
# driver; a container on the default bridge has its eth0.
check_engine() {
  local version driver controllers
  version=$(curl -s --max-time 10 --unix-socket "$SOCK" http://engine/version)
  grep -q '"MinAPIVersion":"1.44"' <<<"$version" ||
    die "the engine in VM '$NAME' does not say MinAPIVersion 1.44: $version"
  driver=$("$DOCKER" -H "$URL" info --format '{{json .DriverStatus}}') ||
    die "docker info on $URL failed"
  grep -q io.containerd.snapshotter.v1 <<<"$driver" ||
    die "the engine in VM '$NAME' does not use the containerd image store: $driver"
  controllers=$("$DOCKER" -H "$URL" run --rm -v /sys/fs/cgroup:/host-cgroup:ro "$IMAGE" \
    sh -c 'cat /host-cgroup/cgroup.controllers && cat /sys/class/net/eth0/address') ||
    die "a test container failed to run on the bridge in VM '$NAME'; see $CONSOLE"
  log "$(sed -n 's/.*"Version":"\([^"]*\)","ApiVersion":"\([^"]*\)","MinAPIVersion":"\([^"]*\)".*/Docker \1 (API \3 to \2)/p' <<<"$version") on cgroup v2 in the VM, controllers: $(head -n 1 <<<"$controllers")"
}

cmd_start() {
  [ $# -eq 1 ] || usage
  vm_paths "$1"
  lock_run 600
  if qemu_pid >/dev/null; then
    start_forwarder
    if answers; then
      log "VM '$NAME' already answers on $URL"
      ensure_image
      check_engine
      echo "$URL"
      return 0
    fi
    log "VM '$NAME' runs but its engine does not answer; restarting it"
  fi
  stop_vm
  need qemu-system-x86_64 qemu-system-x86
  need qemu-img qemu-utils
  need curl curl
  need ip iproute2
  [ -x "$DOCKER" ] || die "$DOCKER, a docker CLI that speaks API 1.44, is missing (DSE_VM_DOCKER names another)"
  build_image
  boot_vm
  ensure_image
  check_engine
  echo "$URL"
}

# --- stop ---------------------------------------------------------------------

stop_forwarder() {
  local file
  for file in docker.sock "${PODMAN_SOCKS[@]}"; do stop_forward "$file"; done
}

stop_forward() {
  local file=$1 pid
  if pid=$(socat_pid "$file"); then
    # Its group: the listener and the connections it forked.
    kill -TERM -- "-$pid" 2>/dev/null || true
    local until=$((SECONDS + 5))
    while alive "$pid" && [ "$SECONDS" -lt "$until" ]; do sleep 0.1; done
    alive "$pid" && kill -KILL -- "-$pid" 2>/dev/null
  fi
  rm -f "$RUN/socat-${file%.sock}.pid" "$RUN/$file"
}

stop_vm() {
  local pid until
  stop_forwarder
  if pid=$(qemu_pid); then
    log "powering off VM '$NAME' (qemu $pid)"
    if [ -S "$QMP" ]; then
      printf '%s\n' '{"execute":"qmp_capabilities"}' '{"execute":"system_powerdown"}' |
        timeout 5 socat - "UNIX-CONNECT:$QMP" >/dev/null 2>&1 || true
    fi
    until=$((SECONDS + STOP_TIMEOUT))
    while alive "$pid" && [ "$SECONDS" -lt "$until" ]; do sleep 0.2; done
    if alive "$pid"; then
      log "VM '$NAME' did not power off within $STOP_TIMEOUT s; stopping qemu $pid"
      kill -TERM "$pid" 2>/dev/null || true
      until=$((SECONDS + 10))
      while alive "$pid" && [ "$SECONDS" -lt "$until" ]; do sleep 0.1; done
      alive "$pid" && kill -KILL "$pid" 2>/dev/null
    fi
  fi
  rm -f "$QEMU_PID" "$QMP"
  # The tap goes with the namespace.
  if [ -e "/run/netns/$NETNS" ]; then ip netns delete "$NETNS"; fi
}

cmd_stop() {
  [ $# -eq 1 ] || usage
  vm_paths "$1"
  lock_run 600
  stop_vm
  log "VM '$NAME' stopped"
}

cmd_purge() {
  cmd_stop "$@"
  rm -rf "$DATA" "$RUN"
  log "VM '$NAME' purged (the image in $CACHE stays; delete it to make it anew)"
}

cmd_status() {
  [ $# -eq 1 ] || usage
  vm_paths "$1"
  answers
}

cmd_image() {
  [ $# -eq 0 ] || usage
  build_image
  log "VM image: $IMG ($(cat "$IMG/kernel-version"), made $(cat "$IMG/made"))"
}

[ $# -ge 1 ] || usage
if [ "$(id -u)" -ne 0 ]; then
  exec sudo --preserve-env=DSE_VM_ACCEL,DSE_VM_CPUS,DSE_VM_MEMORY,DSE_VM_START_TIMEOUT,DSE_VM_DOCKER,DSE_TEST_IMAGE -- "$0" "$@"
fi
command=$1
shift
case $command in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  status) cmd_status "$@" ;;
  purge) cmd_purge "$@" ;;
  image) cmd_image "$@" ;;
  *) usage ;;
esac
