# libFuzzer targets: ./configure --enable-fuzz CC=clang.  Seed corpus = the event samples.
if ENABLE_FUZZ
noinst_PROGRAMS += tests/fuzz/fuzz_event_decode
# The codec is compiled into the target (not taken from libjobmon) so libFuzzer sees its coverage.
tests_fuzz_fuzz_event_decode_SOURCES = tests/fuzz/fuzz_event_decode.c src/producer/event.c \
	src/producer/event_spec.c src/producer/event_schema.c src/common/jmtime.c
tests_fuzz_fuzz_event_decode_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_event_decode_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_event_decode_LDADD = libjobmon.la $(JM_DEP_LIBS)
# The workflow file parser (libjobmon's client model), seeded with the example files.
noinst_PROGRAMS += tests/fuzz/fuzz_wffile
tests_fuzz_fuzz_wffile_SOURCES = tests/fuzz/fuzz_wffile.c src/client/wffile.c src/client/model.c \
	src/client/template.c src/client/dag.c src/client/clusters.c src/client/bind.c
tests_fuzz_fuzz_wffile_CFLAGS = $(AM_CFLAGS) -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_wffile_LDFLAGS = $(AM_LDFLAGS) -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_wffile_LDADD = libjobmon.la $(JM_DEP_LIBS)

FUZZ_SECONDS ?= 30
# CI: a short run; fails on any crash, leak or sanitizer report.
fuzz-smoke: tests/fuzz/fuzz_event_decode$(EXEEXT)
	rm -rf tests/fuzz/corpus && mkdir -p tests/fuzz/corpus
	tests/fuzz/fuzz_event_decode$(EXEEXT) -max_total_time=$(FUZZ_SECONDS) -max_len=1100000 \
		-timeout=10 -rss_limit_mb=4096 -dict=$(top_srcdir)/tests/fuzz/event.dict tests/fuzz/corpus \
		$(top_srcdir)/tests/data/events/good $(top_srcdir)/tests/data/events/bad
else
fuzz-smoke:
	@echo "fuzz-smoke: configure with --enable-fuzz CC=clang" >&2; exit 1
endif
EXTRA_DIST += tests/fuzz/fuzz_wffile.c tests/fuzz/fuzz_event_decode.c tests/fuzz/event.dict \
	tests/fuzz/wffile.dict
.PHONY: fuzz-smoke
