#!/usr/bin/env bash
# Runs this package's tests on an emulated AVX-512 CPU, for machines that
# lack one (the AVX-512 kernel is otherwise skipped there, and says so).
#
#   internal/sgemm/emulate_avx512.sh [go test flags as -test.X...]
#   default: -test.v -test.short -kernels=avx512
#
# Bochs (Debian's build has AVX-512) emulates a Skylake-X; a Debian cloud
# kernel boots with the static test binary as init (TestMain powers the
# machine off afterwards) and the test output comes back over the serial
# port. It needs root for apt-get and mknod, and is slow: a few minutes for
# the default, an hour or more for everything. Debian's kernels reject
# Bochs's XSAVES area size, hence clearcpuid=xsaves,xsavec (standard XSAVE).
set -euo pipefail
cd "$(dirname "$0")"
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(-test.v -test.short -kernels=avx512)

need=()
for p in bochs bochsbios vgabios isolinux syslinux-common xorriso cpio; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 go test -c -o "$work/init" .

kernel=$(apt-cache search --names-only '^linux-image-[0-9.-]+-cloud-amd64-unsigned$' | cut -d' ' -f1 | sort -V | tail -1)
(cd "$work" && apt-get download -qq "$kernel" 2>/dev/null)
dpkg -x "$work"/linux-image-*.deb "$work/k"

mkdir -p "$work/root/dev" "$work/iso/isolinux"
mv "$work/init" "$work/root/init"
mknod "$work/root/dev/console" c 5 1
(cd "$work/root" && find . | cpio -o -H newc 2>/dev/null | gzip -1 >"$work/iso/initrd.gz")
cp "$work"/k/boot/vmlinuz-* "$work/iso/vmlinuz"
cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 "$work/iso/isolinux/"
cat >"$work/iso/isolinux/isolinux.cfg" <<EOF
DEFAULT linux
PROMPT 0
TIMEOUT 0
LABEL linux
  KERNEL /vmlinuz
  APPEND initrd=/initrd.gz console=ttyS0 quiet clearcpuid=xsaves,xsavec -- ${args[*]}
EOF
xorriso -as mkisofs -quiet -o "$work/boot.iso" -b isolinux/isolinux.bin -c isolinux/boot.cat \
  -no-emul-boot -boot-load-size 4 -boot-info-table "$work/iso" 2>/dev/null

cat >"$work/bochsrc" <<EOF
megs: 1024
cpu: model=corei7_skylake_x, count=1, ips=400000000
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/bochs/VGABIOS-lgpl-latest
ata0-master: type=cdrom, path=$work/boot.iso, status=inserted
boot: cdrom
com1: enabled=1, mode=file, dev=$work/serial.txt
display_library: rfb, options="timeout=0"
plugin_ctrl: usb_uhci=0, speaker=0, e1000=0, ne2k=0, sb16=0, es1370=0, parallel=0
sound: driver=dummy
log: $work/bochs.log
clock: sync=none
EOF
echo c >"$work/debugger.rc" # Debian's bochs starts in its debugger: continue
bochs -q -f "$work/bochsrc" -rc "$work/debugger.rc" >"$work/bochs.out" 2>&1 &
pid=$!
while kill -0 "$pid" 2>/dev/null; do
  sleep 2
  if grep -q "Kernel panic\|reboot: Power down" "$work/serial.txt" 2>/dev/null; then sleep 2; break; fi
done
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
grep -v '^\[ *[0-9.]*\]' "$work/serial.txt" | tr -d '\r'
tr -d '\r' <"$work/serial.txt" | grep -q '^PASS$'
