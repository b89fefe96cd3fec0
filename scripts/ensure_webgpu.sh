#!/usr/bin/env bash
# Makes sure Deno's navigator.gpu finds a Vulkan adapter on this host.
# A host with an NVIDIA/AMD/Intel GPU driver already has one; a CPU-only Debian host gets Mesa's
# software Vulkan driver (llvmpipe/lavapipe, package mesa-vulkan-drivers), which supports shader-f16.
set -euo pipefail
shopt -s nullglob
icds=(/usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json /usr/local/nvidia/share/vulkan/icd.d/*.json)
if [ -n "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ] || [ ${#icds[@]} -gt 0 ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "No Vulkan driver found and no apt-get to install one: install your GPU's Vulkan driver" \
    "(or Mesa's software Vulkan driver) so that Deno's WebGPU has an adapter." >&2
  exit 1
fi
echo "No Vulkan driver found: installing Mesa's software Vulkan driver (mesa-vulkan-drivers)..." >&2
sudo_cmd=""
[ "$(id -u)" = 0 ] || sudo_cmd="sudo"
$sudo_cmd apt-get install -y -q mesa-vulkan-drivers >/dev/null 2>&1 ||
  { $sudo_cmd apt-get update -q >/dev/null && $sudo_cmd apt-get install -y -q mesa-vulkan-drivers >/dev/null; }
