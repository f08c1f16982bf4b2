#!/usr/bin/env bash
# Builds the container images of aigw-operator, aigw-extproc and aigw with podman from
# deploy/images/*.Containerfile: FROM scratch, the binary, the shared libraries `ldd`
# lists (with the dynamic loader), a passwd/group entry for uid 65532 and, for the two
# that call providers, the system CA bundle. Nothing is pulled.
#
#   scripts/build-images.sh [TAG]          # release binaries (cargo build --release)
#   PROFILE=debug scripts/build-images.sh  # reuse debug binaries (for checking the script)
#   AIGW_SKIP_CARGO=1 ...                  # binaries already built
#
# Each binary is first started (`--help`) chrooted into the staged root as uid 65532, which
# proves the image holds everything it loads. Prints each image's size and its config
# (user, entrypoint, ports, labels).
set -euo pipefail
cd "$(dirname "$0")/.."
TAG="${1:-0.1.0}"
PROFILE="${PROFILE:-release}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
BIN_DIR="$TARGET_DIR/$PROFILE"
declare -A PACKAGE=([aigw-operator]=aigw-operator [aigw-extproc]=aigw-extproc [aigw]=aigw-axum)
declare -A CA=([aigw-operator]=0 [aigw-extproc]=1 [aigw]=1)

if [ "${AIGW_SKIP_CARGO:-0}" != 1 ]; then
  flag=(); [ "$PROFILE" = release ] && flag=(--release)
  cargo build --locked "${flag[@]}" -p aigw-operator -p aigw-extproc -p aigw-axum \
    --bin aigw-operator --bin aigw-extproc --bin aigw
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for name in aigw-operator aigw-extproc aigw; do
  bin="$BIN_DIR/$name"
  [ -x "$bin" ] || { echo "missing $bin (package ${PACKAGE[$name]})" >&2; exit 1; }
  ctx="$work/$name"; root="$ctx/rootfs"
  mkdir -p "$root/usr/local/bin" "$root/etc" "$root/tmp"
  chmod 1777 "$root/tmp"
  install -m 0755 "$bin" "$root/usr/local/bin/$name"
  # Every library the binary loads, at the path the loader looks for it.
  ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  echo "nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin" > "$root/etc/passwd"
  echo "nonroot:x:65532:" > "$root/etc/group"
  if [ "${CA[$name]}" = 1 ]; then
    mkdir -p "$root/etc/ssl/certs"
    cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
  fi
  # The binary starts from nothing but these files (containers cannot run here; chroot can).
  chroot --userspec=65532:65532 "$root" "/usr/local/bin/$name" --help >/dev/null
  cp "deploy/images/$name.Containerfile" "$ctx/Containerfile"
  podman build --quiet -t "localhost/$name:$TAG" "$ctx" >/dev/null
  size=$(podman image inspect "localhost/$name:$TAG" --format '{{.Size}}')
  echo "$name:$TAG $((size / 1024 / 1024)) MiB"
  podman image inspect "localhost/$name:$TAG" \
    --format '  user={{.Config.User}} entrypoint={{.Config.Entrypoint}} cmd={{.Config.Cmd}} ports={{.Config.ExposedPorts}} labels={{.Config.Labels}}'
done
