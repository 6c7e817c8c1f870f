#!/usr/bin/env bash
# Debian packages the firmware tests need: arm-none-eabi-gcc + newlib + qemu-system-arm
# (Cortex-M4), aarch64-linux-gnu-gcc + its libc + qemu-user (aarch64 Linux).
# Skipped when the tools are already there.
set -euo pipefail
if command -v arm-none-eabi-gcc >/dev/null && command -v qemu-system-arm >/dev/null \
   && command -v aarch64-linux-gnu-gcc >/dev/null && command -v qemu-aarch64 >/dev/null; then
    echo "toolchains already installed"
    exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
    gcc make gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm \
    gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
