#!/bin/sh
# Regenerate the build system (configure, Makefile.in, build-aux/tap-driver.sh).
set -e
cd "$(dirname "$0")"
mkdir -p m4 build-aux
autoreconf -fi
cp -f "$(automake --print-libdir)/tap-driver.sh" build-aux/tap-driver.sh
