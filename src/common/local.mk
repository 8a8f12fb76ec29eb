libjobmon_la_SOURCES += \
	src/common/error.c \
	src/common/log.c \
	src/common/jmtime.c
