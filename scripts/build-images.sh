#!/usr/bin/env bash
# Builds the container images of aigw-operator, aigw-extproc and aigw with podman from
# deploy/images/*.Containerfile: FROM scratch, the binary (stripped), the shared
# libraries `ldd` lists (with the dynamic loader), a passwd/group entry for uid 65532
# and, for the two that call providers, the system CA bundle. Nothing is pulled.
#
#   scripts/build-images.sh [TAG]          # release binaries (cargo build --release)
#   PROFILE=debug scripts/build-images.sh  # the debug (test build's) binaries
#   AIGW_SKIP_CARGO=1 ...                  # binaries already built
#   IMAGES="aigw-extproc aigw" ...         # some of the images only
#
# Each binary is first started (`--help`) chrooted into the staged root as uid 65532, which
# proves the image holds everything it loads. Then each image's config is checked (user
# 65532, entrypoint, exposed ports, OCI labels) and its size printed. CI runs it on the
# test build's binaries (scripts/test.sh), so no release build is added to CI time.
set -euo pipefail
cd "$(dirname "$0")/.."
TAG="${1:-0.1.0}"
PROFILE="${PROFILE:-release}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
BIN_DIR="$TARGET_DIR/$PROFILE"
declare -A PACKAGE=([aigw-operator]=aigw-operator [aigw-extproc]=aigw-extproc [aigw]=aigw-axum)
declare -A CA=([aigw-operator]=0 [aigw-extproc]=1 [aigw]=1)
declare -A PORTS=([aigw-operator]="1063/tcp 8080/tcp 9443/tcp" [aigw-extproc]="1063/tcp 1064/tcp" [aigw]="1975/tcp")
read -r -a IMAGES <<< "${IMAGES:-aigw-operator aigw-extproc aigw}"

flag=(); [ "$PROFILE" = release ] && flag=(--release)
build() {
  local args=()
  for name in "${IMAGES[@]}"; do args+=(-p "${PACKAGE[$name]}" --bin "$name"); done
  cargo build --locked "${flag[@]}" "${args[@]}"
}
missing=0
for name in "${IMAGES[@]}"; do [ -x "$BIN_DIR/$name" ] || missing=1; done
if [ "${AIGW_SKIP_CARGO:-0}" != 1 ] || [ "$missing" = 1 ]; then
  # (A test run that did not build every binary: the rest reuses its compiled crates.)
  build
fi

# Fails unless `podman image inspect` of $1 gives $2 for the Go template $3.
expect() {
  local got
  got=$(podman image inspect "$1" --format "$3" | sed 's/ *$//')
  [ "$got" = "$2" ] || { echo "$1: $3 is '$got', expected '$2'" >&2; exit 1; }
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
for name in "${IMAGES[@]}"; do
  bin="$BIN_DIR/$name"
  [ -x "$bin" ] || { echo "missing $bin (package ${PACKAGE[$name]})" >&2; exit 1; }
  ctx="$work/$name"; root="$ctx/rootfs"
  mkdir -p "$root/usr/local/bin" "$root/etc" "$root/tmp"
  chmod 1777 "$root/tmp"
  # No symbols or debug sections in the image (they are half of a binary's size).
  objcopy --strip-all "$bin" "$root/usr/local/bin/$name"
  chmod 0755 "$root/usr/local/bin/$name"
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
  image="localhost/$name:$TAG"
  size=$(podman image inspect "$image" --format '{{.Size}}')
  echo "$image $((size / 1024 / 1024)) MiB ($PROFILE binary, stripped)"
  podman image inspect "$image" \
    --format '  user={{.Config.User}} entrypoint={{.Config.Entrypoint}} cmd={{.Config.Cmd}} ports={{.Config.ExposedPorts}} labels={{.Config.Labels}}'
  expect "$image" "65532:65532" '{{.Config.User}}'
  expect "$image" "[/usr/local/bin/$name]" '{{.Config.Entrypoint}}'
  expect "$image" "${PORTS[$name]}" '{{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}'
  expect "$image" "$name" '{{index .Config.Labels "org.opencontainers.image.title"}}'
  expect "$image" "Apache-2.0" '{{index .Config.Labels "org.opencontainers.image.licenses"}}'
done
