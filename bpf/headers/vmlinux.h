/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Kernel types for CO-RE, one dump per architecture (see tools/vmlinux.sh).
 * bpf2go defines __TARGET_ARCH_<arch> for each -target it builds. */
#if defined(__TARGET_ARCH_x86)
#include "vmlinux_x86.h"
#elif defined(__TARGET_ARCH_arm64)
#include "vmlinux_arm64.h"
#else
#error "icptrack's BPF code is built for x86 and arm64 only (set -target amd64 or arm64)"
#endif
