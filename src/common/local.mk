libjobmon_la_SOURCES += \
	src/common/error.c \
	src/common/log.c \
	src/common/jmtime.c \
	src/common/progmain.c src/common/progmain.h
libjobmon_la_SOURCES += src/common/config.c src/common/pg.c src/common/redis.c
libjobmon_la_SOURCES += src/common/wfcache.c src/common/wfcache.h src/common/ownership_sql.h \
	src/common/status_sql.h src/common/prune_sql.h
