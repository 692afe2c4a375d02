#!/usr/bin/env bash
# Regenerates bpf/headers/vmlinux_x86.h and vmlinux_arm64.h, the kernel
# types icptrack's BPF code is compiled against. CO-RE relocates field
# offsets at load time, so these need not match the target kernel; they
# must only name the types and fields the code uses.
#
#   x86:   this machine's /sys/kernel/btf/vmlinux (run on an x86 machine).
#   arm64: the BTF inside Debian's arm64 kernel image. The image is not
#          ELF, so the BTF blob is found by its header (magic 0xeB9F).
#
# Needs bpftool, python3, and apt with the arm64 architecture enabled
# (dpkg --add-architecture arm64 && apt-get update).
set -euo pipefail
cd "$(dirname "$0")/../bpf/headers"

bpftool btf dump file /sys/kernel/btf/vmlinux format c > vmlinux_x86.h

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pkg=${ARM64_KERNEL_PACKAGE:-$(apt-cache search --names-only '^linux-image-[0-9.]+-[0-9]+-cloud-arm64-unsigned$' | sort -V | tail -n 1 | cut -d' ' -f1)}
(cd "$work" && apt-get download "$pkg:arm64" && dpkg-deb -x ./*.deb x)
python3 - "$work"/x/boot/vmlinuz-* "$work/vmlinux.btf" <<'PY'
import struct, sys
image = open(sys.argv[1], 'rb').read()
i = 0
while True:
    i = image.find(b'\x9f\xeb\x01\x00\x18\x00\x00\x00', i)
    if i < 0:
        sys.exit('no BTF found in ' + sys.argv[1])
    type_off, type_len, str_off, str_len = struct.unpack_from('<IIII', image, i + 8)
    if type_len > 1_000_000:  # the kernel's own BTF, not a stray match
        end = i + 24 + max(type_off + type_len, str_off + str_len)
        open(sys.argv[2], 'wb').write(image[i:end])
        break
    i += 1
PY
bpftool btf dump file "$work/vmlinux.btf" format c > vmlinux_arm64.h
echo "vmlinux_arm64.h from $pkg"
