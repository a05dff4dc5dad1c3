#!/usr/bin/env bash
# Builds local stand-ins for the official images that infra/docker-compose.yml and
# infra/Dockerfile name, for machines that reach no image registry (`docker pull` fails) but
# do reach Debian's packages. Each stand-in is made from a debootstrap'd Debian bookworm and
# Debian's own packages, under the official tag, and honours the subset of the official image
# (environment variables, paths, commands) that the compose file and the Dockerfile use, so
# both run here unmodified. Every stand-in carries the label ticketd.stand-in=true.
#
#   infra/images/build.sh            for each tag missing: pull it, or else build its stand-in
#   FORCE=1 infra/images/build.sh    build every stand-in, even over an existing tag
#   infra/images/build.sh redis:7.0  only the tags named
#
# Grafana has none: it is not installable from Debian's packages.
set -euo pipefail
cd "$(dirname "$0")"

FORCE=${FORCE:-}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
TANSU=${TANSU:-$HOME/.cargo/bin/tansu}
# The legacy builder: it needs no buildx plugin (which a Docker client may lack).
export DOCKER_BUILDKIT=0

# Scratch space (a root file system, build contexts holding the toolchain), removed on exit.
WORK=$(mktemp -d /tmp/stand-ins.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

say() { echo "stand-ins: $*" >&2; }
has_image() { docker image inspect "$1" >/dev/null 2>&1; }
timed() {
    local name=$1 started=$SECONDS
    shift
    "$@"
    say "$name: $((SECONDS - started)) s"
}
# Host network: where the default bridge has no way out, build steps still reach Debian.
build() {
    docker build --network host -t "$@" >"$WORK/build.log" 2>&1 || {
        tail -30 "$WORK/build.log" >&2
        return 1
    }
}

# The Rust image the Dockerfile's builder stage names (rust:<major.minor>-slim-bookworm).
rust_tag() {
    local version
    version=$(sed -n 's/^ARG RUST_VERSION=//p' ../Dockerfile)
    echo "rust:${version}-slim-bookworm"
}

# debian:bookworm-slim as the official one is made: minbase, no docs, man pages or
# translations, apt that cleans up after itself, and no service starts inside a build.
debian_base() {
    command -v debootstrap >/dev/null || apt-get install -y -q debootstrap >/dev/null
    local rootfs=$WORK/debian-rootfs
    debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >/tmp/debootstrap.log 2>&1 || {
        tail -20 /tmp/debootstrap.log >&2
        return 1
    }
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
    echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
    echo 'APT::AutoRemove::SuggestsImportant "false";' >"$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"
    printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
    chmod +x "$rootfs/usr/sbin/policy-rc.d"
    rm -f "$rootfs/etc/apt/sources.list"
    cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<CFG
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
CFG
    (
        cd "$rootfs"
        find usr/share/doc -mindepth 1 -not -name copyright -not -type d -delete
        find usr/share/doc -mindepth 1 -type d -empty -delete
        rm -rf usr/share/man/* usr/share/groff/* usr/share/info/* usr/share/lintian/* \
            var/cache/apt/* var/lib/apt/lists/* var/log/*.log var/log/apt/* \
            etc/resolv.conf etc/hostname
        find usr/share/locale -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
    )
    tar --numeric-owner -C "$rootfs" -c . | docker import \
        -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'CMD ["bash"]' \
        -c 'LABEL ticketd.stand-in=true' \
        - debian:bookworm-slim >/dev/null
}

# The official Rust image's layout (RUSTUP_HOME, CARGO_HOME, rustup proxies, minimal
# profile), filled with this machine's own toolchain instead of a download.
rust_image() {
    local tag=$1 version toolchain context
    version=$(rustc --version | awk '{print $2}')
    case $tag in
        "rust:${version%.*}-slim-bookworm") ;;
        *) say "the Dockerfile wants $tag but this machine's rustc is $version"; return 1 ;;
    esac
    toolchain=$(rustc --print sysroot)
    context=$WORK/rust-image
    mkdir -p "$context"
    cp rust/Dockerfile "$context/"
    # Only what the minimal profile installs (rustc, cargo, rust-std): no docs, sources, clippy.
    mkdir -p "$context/toolchain/bin" "$context/toolchain/lib"
    cp -al "$toolchain/bin/cargo" "$toolchain/bin/rustc" "$toolchain/bin/rustdoc" "$context/toolchain/bin/"
    cp -al "$toolchain/lib/." "$context/toolchain/lib/"
    [ -d "$toolchain/libexec" ] && cp -al "$toolchain/libexec" "$context/toolchain/"
    rm -rf "$context/toolchain/lib/rustlib/src" "$context/toolchain/lib/rustlib/manifest-rust-docs"*
    cp "$(command -v rustup || echo "$HOME/.cargo/bin/rustup")" "$context/rustup"
    # This machine's own trust anchors (where an HTTPS proxy stands between it and crates.io),
    # so that cargo inside a build trusts what cargo on the host trusts.
    mkdir -p "$context/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$context/ca-certificates/" 2>/dev/null || true
    build "$tag" --build-arg RUST_VERSION="$version" "$context"
}

# apache/kafka: the tansu Kafka-API broker (this machine's build of it) behind the official
# image's paths, since Apache Kafka itself cannot be installed here.
kafka_image() {
    if [ ! -x "$TANSU" ]; then
        say "building the tansu broker once (11 to 14 minutes on 2 cores)"
        cargo install tansu --version 0.6.0 --locked --features libsql,dynostore >&2
    fi
    local context=$WORK/kafka-image
    mkdir -p "$context"
    cp -r kafka/. "$context/"
    cp "$TANSU" "$context/tansu"
    build apache/kafka:3.9.0 "$context"
}

ensure() {
    local tag=$1
    shift
    if [ ${#ONLY[@]} -gt 0 ] && [[ " ${ONLY[*]} " != *" $tag "* ]]; then
        return 0
    fi
    if [ -z "$FORCE" ] && has_image "$tag"; then
        say "$tag: present"
        return 0
    fi
    # Where a registry answers, the official image is the real thing.
    if [ -z "$FORCE" ] && docker pull -q "$tag" >/dev/null 2>&1; then
        say "$tag: pulled the official image"
        return 0
    fi
    say "$tag: building a stand-in"
    timed "$tag" "$@"
}

ONLY=("$@")
command -v docker >/dev/null || { say "docker is not installed"; exit 1; }
ensure debian:bookworm-slim debian_base
RUST=$(rust_tag)
ensure "$RUST" rust_image "$RUST"
ensure redis:7.0 build redis:7.0 redis
ensure postgres:15 build postgres:15 postgres
ensure prom/prometheus:v2.42.0 build prom/prometheus:v2.42.0 prometheus
ensure prom/alertmanager:v0.25.0 build prom/alertmanager:v0.25.0 alertmanager
ensure nginx:1.22 build nginx:1.22 nginx
ensure apache/kafka:3.9.0 kafka_image
